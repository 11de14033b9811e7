"""Suites, both scoring modes on a tiny model (plain and PEFT), and `coin-train eval` end to end."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from coin_data.perturb import LEVELS
from coin_data.templates import slot_lock_violation
from coin_train.cli import main
from coin_train.evaluate import (
    INVALID,
    ScoringConfig,
    common_prefix_length,
    encode_shared_prefix,
    generate_answers,
    generate_classify,
    option_log_likelihoods,
    parse_prediction,
    predict_suite,
    rank_classify,
)
from coin_train.prompt_format import PromptFormat
from coin_train.suites import SuiteConfig, SuiteError, build_suite

INSTRUCTIONS = [
    "Review: The film was great and lovely.\nIs this review positive or negative?",
    "Decide if the following review is positive or negative.\nThe meal was awful.",
    "The book was dull and boring and poor.\nWhat is the sentiment of this review? Answer positive or negative.",
]
OPTIONS = ["positive", "negative", "not sure at all"]


@pytest.fixture(scope="module")
def tiny(make_tiny_model, tiny_tokenizer):
    return make_tiny_model(seed=1).eval(), tiny_tokenizer


def full_pass_log_likelihood(model, prompt: list[int], option: list[int]) -> float:
    """Reference: one unpadded forward over prompt + option, summing the option tokens' log-probs."""
    ids = torch.tensor([prompt + option])
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)
    return sum(logp[len(prompt) - 1 + j, token].item() for j, token in enumerate(option))


# --- rank classification ---------------------------------------------------------------------------


@pytest.mark.parametrize("kernel", ["sdpa", "eager", "flash_attention_2"])  # flash: the repeated-cache path
def test_option_scores_with_a_shared_prompt_cache_equal_full_forward_passes(tiny, kernel, monkeypatch,
                                                                             close_to_rounding):
    model, tok = tiny
    fmt = PromptFormat()
    if kernel == "flash_attention_2":  # only the choice of path is faked; the model still runs sdpa
        from coin_train import option_scores

        monkeypatch.setattr(option_scores, "_packed_options", lambda *args: None)
    else:
        monkeypatch.setattr(model.config, "_attn_implementation", kernel)
    prompts = fmt.encode_prompts(tok, INSTRUCTIONS)  # different lengths: left padding is exercised
    options = fmt.encode_targets(tok, OPTIONS)  # 1 to several tokens, plus EOS
    assert len({len(p) for p in prompts}) == 3 and len({len(o) for o in options}) > 1
    sums, counts = option_log_likelihoods(model, prompts, options, tok.pad_token_id)
    assert sums.shape == (3, 3) and counts.tolist() == [len(o) for o in options]
    for b, prompt in enumerate(prompts):
        for k, option in enumerate(options):
            full = full_pass_log_likelihood(model, prompt, option)
            close_to_rounding(sums[b, k], torch.tensor(full), what=f"prompt {b}, option {k}")


SHARED_OPENING = "Decide if the following review is positive or negative, and answer with one word.\n"
EXAMPLES = ["The meal was awful.", "A lovely, great film!", "Dull and boring and poor, the book was not good at all.",
            "Great."]


@pytest.mark.parametrize("kernel", ["sdpa", "eager", "flash_attention_2"])  # flash: the repeated-cache path
def test_option_scores_after_a_shared_instruction_prefix_equal_full_forward_passes(tiny, kernel, monkeypatch,
                                                                                  close_to_rounding):
    model, tok = tiny
    fmt = PromptFormat()
    if kernel == "flash_attention_2":
        from coin_train import option_scores

        monkeypatch.setattr(option_scores, "_packed_options", lambda *args: None)
    else:
        monkeypatch.setattr(model.config, "_attn_implementation", kernel)
    prompts = fmt.encode_prompts(tok, [SHARED_OPENING + text for text in EXAMPLES])  # one instruction, 4 examples
    others = fmt.encode_prompts(tok, ["Is this review positive? " + text for text in EXAMPLES[:2]])  # another one
    options = fmt.encode_targets(tok, OPTIONS)
    shared, other = common_prefix_length(prompts), common_prefix_length(others)
    assert shared >= 10 and len({len(p) - shared for p in prompts}) > 2  # a real prefix; padding after it
    assert 0 < other < shared  # prefixes of different lengths: the prefix block is left-padded too
    prefix = encode_shared_prefix(model, [prompts[0][:shared], others[0][:other]], tok.pad_token_id)
    single = [prompts[3]]  # a prompt run whole, next to prompts that read a prefix
    batches = [(prompts, [0] * 4), (prompts[2:] + others + single, [0, 0, 1, 1, None])]  # the cache is reused unchanged
    for batch, rows in batches:
        sums, _ = option_log_likelihoods(model, batch, options, tok.pad_token_id, prefix, rows)
        for b, prompt in enumerate(batch):
            for k, option in enumerate(options):
                full = full_pass_log_likelihood(model, prompt, option)
                close_to_rounding(sums[b, k], torch.tensor(full), what=f"prompt {b}, option {k}")
    with pytest.raises(ValueError, match="shared prefix"):
        option_log_likelihoods(model, [prompts[0][:shared]], options, tok.pad_token_id, prefix, [0])


def test_rank_classify_with_a_shared_prefix_per_instruction_predicts_as_without(tiny):
    model, tok = tiny
    fmt = PromptFormat()
    texts = [SHARED_OPENING + t for t in EXAMPLES] + [t + "\nIs this review positive or negative?" for t in EXAMPLES]
    groups = [0] * len(EXAMPLES) + [1] * len(EXAMPLES)
    seen = []
    shared = rank_classify(model, tok, fmt, texts, OPTIONS, ScoringConfig(batch_size=3), groups, seen.append)
    plain = rank_classify(model, tok, fmt, texts, OPTIONS, ScoringConfig(batch_size=3, share_prefix=False), groups)
    assert shared == plain and set(shared) <= set(OPTIONS)
    assert seen == [3, 3, 2]  # progress: one call per batch (batches mix instructions)


def test_rank_classify_takes_the_argmax_and_normalization_divides_by_length(tiny):
    model, tok = tiny
    fmt = PromptFormat()
    prompts, options = fmt.encode_prompts(tok, INSTRUCTIONS), fmt.encode_targets(tok, OPTIONS)
    totals = [[full_pass_log_likelihood(model, prompt, o) for o in options] for prompt in prompts]
    for normalize in ("sum", "mean"):
        expected = []
        for row in totals:
            scores = [total / (len(o) if normalize == "mean" else 1) for total, o in zip(row, options)]
            expected.append(OPTIONS[max(range(len(OPTIONS)), key=scores.__getitem__)])
        got = rank_classify(model, tok, fmt, INSTRUCTIONS, OPTIONS, ScoringConfig(normalize=normalize, batch_size=2))
        assert got == expected


def test_rank_classify_works_through_a_peft_adapter(tiny, make_tiny_model):
    from peft import LoraConfig, get_peft_model

    _, tok = tiny
    base = make_tiny_model(seed=1).eval()
    plain = rank_classify(base, tok, PromptFormat(), INSTRUCTIONS, OPTIONS, ScoringConfig())
    peft_model = get_peft_model(make_tiny_model(seed=1), LoraConfig(r=4, target_modules=["q_proj", "v_proj"])).eval()
    # Fresh LoRA adapters start as the identity (B = 0): same predictions as the base model.
    assert rank_classify(peft_model, tok, PromptFormat(), INSTRUCTIONS, OPTIONS, ScoringConfig()) == plain


# --- generate and parse ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "expected"),
    [("positive", "positive"), ("  Negative.", "negative"), ("- positive\n", "positive"), ("'NOT  SURE at all'", "not sure at all"),
     ("positively", INVALID), ("I think positive", INVALID), ("", INVALID)],
)  # fmt: skip
def test_parse_prediction_reads_the_label_the_output_starts_with(output, expected):
    assert parse_prediction(output, OPTIONS) == expected


def test_longest_option_wins_when_options_share_a_prefix():
    assert parse_prediction("not spam", ["spam", "not spam"]) == "not spam"
    assert parse_prediction("spam!", ["not spam", "spam"]) == "spam"


def test_generation_is_greedy_and_its_predictions_are_parsed_answers(tiny):
    model, tok = tiny
    fmt = PromptFormat()
    answers = generate_answers(model, tok, fmt, INSTRUCTIONS, max_new_tokens=3, batch_size=2)
    for instruction, answer in zip(INSTRUCTIONS, answers):
        ids = torch.tensor([fmt.encode_prompt(tok, instruction)])
        with torch.no_grad():
            first = model(input_ids=ids).logits[0, -1].argmax().item()  # greedy first token, unpadded
        produced = tok(answer, add_special_tokens=False)["input_ids"]
        assert len(produced) <= 3 and (not produced or first == tok.eos_token_id or produced[0] == first)
    predicted = generate_classify(model, tok, fmt, INSTRUCTIONS, OPTIONS, ScoringConfig(mode="generate", max_new_tokens=3))
    assert predicted == [parse_prediction(a, OPTIONS) for a in answers]


# --- suites ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_suite():
    return build_suite(SuiteConfig(tasks="sentiment,spam", max_examples=4, max_instructions=2))


def test_default_suite_has_heldout_instructions_at_every_level_with_slots_and_labels_kept(small_suite):
    from coin_data.sources import load_embedded_corpus

    corpus = load_embedded_corpus(["sentiment", "spam"])
    assert small_suite.levels == LEVELS and [t.name for t in small_suite.tasks] == ["sentiment", "spam"]
    for task in small_suite.tasks:
        spec = corpus.tasks[task.name]
        heldout = {t.template_id: t for t in spec.heldout_templates}
        training_texts = {t.text for t in spec.templates}
        assert [v.id for v in task.variants("clean")] == [t.template_id for t in spec.heldout_templates[:2]]
        assert len(task.examples) == 4 and task.options == spec.options
        for level in LEVELS:
            variants = task.variants(level)
            assert len(variants) + sum(s["level"] == level for s in task.skipped) == 2
            for variant in variants:
                source = heldout[variant.source_id]
                assert variant.template.text not in training_texts
                assert slot_lock_violation(source, variant.template.text) is None
                assert (variant.template.text == source.text) == (level == "clean")
                for option in spec.options:  # label words are never edited
                    assert variant.template.text.count(option) >= source.text.count(option)
        assert any(task.variants("semantic") for task in small_suite.tasks)


def test_suite_examples_are_fixed_and_do_not_depend_on_the_perturbation_seed():
    a = build_suite(SuiteConfig(tasks="sentiment", levels="clean,sentence", max_examples=5, seed=0))
    b = build_suite(SuiteConfig(tasks="sentiment", levels="clean,sentence", max_examples=5, seed=1))
    assert [e.id for e in a.tasks[0].examples] == [e.id for e in b.tasks[0].examples]
    assert [v.template.text for v in a.tasks[0].variants("sentence")] != [v.template.text for v in b.tasks[0].variants("sentence")]


def test_a_suite_file_with_local_data_maps_label_ids_to_words(tmp_path):
    rows = [{"idx": i, "sentence": f"sentence {i}", "label": i % 2} for i in range(6)] + [{"idx": 9, "sentence": "x", "label": -1}]
    (tmp_path / "val.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (tmp_path / "mini.yaml").write_text(
        "name: mini\ndataset: json\ndata_files: {validation: val.jsonl}\nsplit: validation\n"
        "tasks:\n  toy:\n    fields: [sentence]\n    labels: [bad, good]\n    instructions:\n"
        "      - {id: t0, text: \"Sentence: {sentence}\\nIs this sentence good or bad?\\n{options_}\"}\n")
    suite = build_suite(SuiteConfig(suite=str(tmp_path / "mini.yaml"), levels="clean,character", max_examples=10))
    task = suite.tasks[0]
    assert suite.name == "mini" and task.options == ("bad", "good") and len(task.examples) == 6  # label -1 skipped
    assert all(e.label == ("good" if int(e.id) % 2 else "bad") for e in task.examples)
    assert [v.id for v in task.instructions] == ["t0", "t0@character"]


def test_glue_suite_file_has_six_instructions_per_task_with_glue_columns():
    from coin_train.suites import SUITES_DIR, read_suite_file

    raw = read_suite_file(SUITES_DIR / "glue.yaml")
    assert sorted(raw["tasks"]) == sorted(["sst2", "cola", "qqp", "mrpc", "mnli", "qnli", "rte", "wnli"])
    for task in raw["tasks"].values():
        ids = [i["id"] for i in task["instructions"]]
        assert ids == ["t0", "t1", "t2", "r0", "r1", "r2"]  # 3 task-oriented, 3 role-oriented


def test_promptbench_instructions_are_read_from_the_package_files_without_importing_it(tmp_path, monkeypatch):
    from coin_train.suites import promptbench_task

    prompts = tmp_path / "promptbench" / "prompts"
    prompts.mkdir(parents=True)
    (tmp_path / "promptbench" / "__init__.py").write_text("raise ImportError('never imported')\n")
    for name, variable in (("task_oriented.py", "TASK_ORIENTED_PROMPTS"), ("role_oriented.py", "ROLE_ORIENTED_PROMPTS")):
        items = [f"{variable[:4]} {i}: does it entail? 'entailment' or 'not_entailment':\nQuestion:{{content}}\nAnswer:"
                 for i in range(4)]  # fmt: skip
        (prompts / name).write_text(f"{variable} = {{'rte': {items!r}}}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    labels, instructions = promptbench_task("rte")
    assert labels == ["entailment", "not_entailment"] and [i["id"] for i in instructions] == ["t0", "t1", "t2", "r0", "r1", "r2"]
    assert instructions[3]["text"] == ("ROLE 0: does it entail? 'entailment' or 'not_entailment':\n"
                                       "Question:Sentence 1: {sentence1} Sentence 2: {sentence2}\nAnswer:")


@pytest.mark.parametrize(
    ("config", "message"),
    [({"suite": "nope"}, "unknown suite 'nope'"),
     ({"tasks": "summarize"}, "'summarize' has no label set"),
     ({"tasks": "nonexistent"}, "unknown task"),
     ({"levels": "clean,typos"}, "unknown level"),
     ({"instructions": "promptbench"}, "glue suite only")],
)  # fmt: skip
def test_bad_suite_requests_give_clear_errors(config, message):
    with pytest.raises(SuiteError, match=message):
        build_suite(SuiteConfig(**config))


@pytest.mark.parametrize(
    ("task_yaml", "message"),
    [("    fields: [sentence]\n    instructions: [{id: t0, text: '{sentence}'}]\n", "no label set"),
     ("    fields: [sentence]\n    labels: [a, b]\n    instructions: []\n", "empty instruction list"),
     ("    fields: [sentence]\n    labels: [a, b]\n    instructions: [{id: t0, text: '{other}'}]\n", "unknown slot")],
)  # fmt: skip
def test_bad_suite_files_give_clear_errors(tmp_path, task_yaml, message):
    path = tmp_path / "bad.yaml"
    path.write_text("dataset: json\ntasks:\n  toy:\n" + task_yaml)
    with pytest.raises(SuiteError, match=message):
        build_suite(SuiteConfig(suite=str(path)))


def test_predict_suite_gives_one_prediction_per_level_instruction_and_example(tiny):
    model, tok = tiny
    suite = build_suite(SuiteConfig(tasks="spam", levels="clean,sentence", max_examples=4))
    for mode in ("rank", "generate"):
        predictions = predict_suite(model, tok, PromptFormat(), suite, ScoringConfig(mode=mode, max_new_tokens=2))
        for task in suite.tasks:
            for level in suite.levels:
                by_instruction = predictions[task.name][level]
                assert sorted(by_instruction) == sorted(v.source_id for v in task.variants(level))
                allowed = set(task.options) | ({INVALID} if mode == "generate" else set())
                assert all(len(p) == 4 and set(p) <= allowed for p in by_instruction.values())


# --- the CLI -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_adapter(tiny_model_dir, coin_dataset_dir, tmp_path_factory):
    """A LoRA checkpoint written by `coin-train train` (2 steps on the tiny model)."""
    out = tmp_path_factory.mktemp("trained") / "coin"
    result = CliRunner().invoke(main, [
        "train", "--model", str(tiny_model_dir), "--dataset", str(coin_dataset_dir), "--output-dir", str(out),
        "--lora", "--max-steps", "2", "--per-device-train-batch-size", "4", "--max-length", "64",
        "--report_to", "none", "--save_strategy", "no", "--logging_steps", "1",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


def test_eval_cli_writes_report_table_and_plot_for_a_trained_checkpoint_and_a_comparison(trained_adapter, tiny_model_dir, tmp_path):
    out = tmp_path / "eval"
    args = ["eval", "--model", str(trained_adapter), "--suite", "default", "--out", str(out), "--compare",
            str(tiny_model_dir), "--tasks", "sentiment,spam", "--max-examples", "3", "--max-instructions", "2"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["suite"]["levels"] == list(LEVELS)
    assert [m["model"] for m in report["models"]] == [str(trained_adapter), str(tiny_model_dir)]
    for model in report["models"]:
        assert set(model["levels"]) == set(LEVELS) and model["overall"]["mean"] is not None
        assert model["tasks"]["sentiment"]["clean"]["n_examples"] == 3
    table = (out / "report.md").read_text()
    assert "| overall" in table.replace("**", "") and "sentiment" in table
    assert (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "report.json" in result.output


def test_eval_cli_without_matplotlib_says_so_first_and_writes_the_report_without_the_plot(tiny_model_dir, tmp_path,
                                                                                         monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what Python does for a package that is not installed
    out = tmp_path / "eval"
    out.mkdir()
    (out / "report.png").write_bytes(b"a plot from an earlier run")
    result = CliRunner().invoke(main, ["eval", "--model", str(tiny_model_dir), "--out", str(out), "--tasks", "spam",
                                       "--levels", "clean", "--max-examples", "2", "--max-instructions", "1"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "matplotlib is not installed" in lines[0] and "pip install 'coin-toolkit[plot]'" in lines[0]
    assert (out / "report.json").is_file() and (out / "report.md").is_file() and not (out / "report.png").exists()
    assert "task spam" in result.output and "prompt" in result.output  # the progress bar names the task
    assert "Traceback" not in result.output


def _moved_adapter(trained_adapter, tiny_model_dir, root, stored: str):
    """The adapter at root/out/coin, its base model at root/models/base, its config naming ``stored``."""
    import shutil

    adapter = root / "out" / "coin"
    shutil.copytree(trained_adapter, adapter)
    shutil.copytree(tiny_model_dir, root / "models" / "base")
    config = json.loads((adapter / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = stored
    (adapter / "adapter_config.json").write_text(json.dumps(config))
    return adapter


def test_eval_of_an_adapter_with_a_relative_base_path_run_from_another_folder(trained_adapter, tiny_model_dir,
                                                                              tmp_path, monkeypatch):
    adapter = _moved_adapter(trained_adapter, tiny_model_dir, tmp_path / "project", "models/base")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # training ran in project/; "models/base" is relative to it
    args = ["eval", "--model", str(adapter), "--out", "e", "--tasks", "spam", "--levels", "clean",
            "--max-examples", "2", "--max-instructions", "1"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "elsewhere" / "e" / "report.json").read_text())["models"][0]["overall"]["mean"] is not None


def test_eval_of_an_adapter_whose_relative_base_is_nowhere_is_one_clear_error(trained_adapter, tiny_model_dir,
                                                                              tmp_path, monkeypatch):
    adapter = _moved_adapter(trained_adapter, tiny_model_dir, tmp_path / "project", "../gone/base")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["eval", "--model", str(adapter), "--out", "e", "--tasks", "spam",
                                       "--levels", "clean", "--max-examples", "2", "--max-instructions", "1"])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "adapter_config.json: base_model_name_or_path '../gone/base'" in result.output
    assert "absolute path or Hub id" in result.output


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--suite", "nope"], "unknown suite 'nope'"), (["--tasks", "summarize"], "has no label set")],
)  # fmt: skip
def test_eval_cli_bad_input_is_one_clear_error(tiny_model_dir, tmp_path, extra, message):
    result = CliRunner().invoke(main, ["eval", "--model", str(tiny_model_dir), "--out", str(tmp_path / "e"), *extra])
    assert result.exit_code != 0 and message in result.output and "Traceback" not in result.output


@pytest.mark.slow
def test_eval_cli_on_the_bundled_smollm2_in_both_modes(tmp_path):
    for mode in ("rank", "generate"):
        out = tmp_path / mode
        result = CliRunner().invoke(main, ["eval", "--model", "smollm2", "--out", str(out), "--mode", mode,
                                           "--tasks", "sentiment", "--levels", "clean,sentence", "--max-examples", "4",
                                           "--max-instructions", "2"])  # fmt: skip
        assert result.exit_code == 0, result.output
        model = json.loads((out / "report.json").read_text())["models"][0]
        allowed = {"positive", "negative"} | ({INVALID} if mode == "generate" else set())
        predictions = model["predictions"]["sentiment"]
        assert {p for by_id in predictions.values() for preds in by_id.values() for p in preds} <= allowed
        assert model["tasks"]["sentiment"]["sentence"]["n_instructions"] == 2
