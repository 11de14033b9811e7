"""Evaluation throughput: CoIN's rank scoring (before and after prefix sharing) versus lm-eval, same prompts.

    python benchmarks/eval.py --model smollm2 --threads 1 --lm-eval-python /tmp/lmeval/bin/python

Every arm scores exactly the same prompts and options (the default suite, cut down by the options below)
with the same model, batch size and torch threads:

* ``rank_before``: CoIN's rank classification as it was before prefix sharing (``share_prefix=False``:
  batches across a task, one prompt pass plus one packed options pass per batch);
* ``rank``: today's default (the shared opening of each instruction runs once, batches per instruction);
* ``lm_eval``: lm-evaluation-harness's Hugging Face log-likelihood scoring (``HFLM``) of every
  (prompt, option) pair, given the same token ids (``benchmarks/lm_eval_worker.py``), run by another
  interpreter because lm-eval is not a dependency of this project. Install it once:

      python3 -m venv /tmp/lmeval && /tmp/lmeval/bin/pip install torch==2.13.0 lm-eval accelerate

  and pass ``--lm-eval-python /tmp/lmeval/bin/python`` (or set ``COIN_LM_EVAL_PYTHON``); without it the
  arm is reported as skipped with this command;
* ``generate`` (with ``--generate``): greedy generation and parsing;
* ``rank_bfloat16`` (with ``--bfloat16``): ``rank`` on a bfloat16 copy of the model (``coin-train eval
  --dtype bfloat16``), with the share of its predictions equal to float32's: not the same scores (bfloat16
  rounding), but on CPUs with AMX or AVX512-BF16 its matrix products run several times faster;
* ``rank_bfloat16_rescored`` (with ``--rescore-margin NATS``): ``rank`` with ``ScoringConfig(rescore_margin=NATS)``
  (``coin-train eval --rescore-margin``): the bfloat16 copy scores every prompt, the float32 model rescores
  those whose best option leads the second by less than NATS; the copy is made inside the timed call, as
  ``coin-train eval`` makes it. Reports the share rescored and the agreement with float32's predictions.

Arms run in turn, ``--rounds`` times (interleaved, so a change in the machine's load hits all of them);
each reports its fastest round. prompts/s counts scored prompts (one instruction variant x one example)
per second of CPU time (``process_time``, the fairer clock on a shared machine with ``--threads 1``) and
of wall time, after one warm-up batch; model loading is excluded. ``tiny`` is a random-init Llama
(hidden 64, 2 layers) with a byte-level BPE trained in-process; ``smollm2`` is the bundled
SmolLM2-135M-Instruct; any other value is a model folder or Hub id.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import tempfile
import time

import torch

from coin_train.evaluate import INVALID, ScoringConfig, bfloat16_screen, predict_suite, resolve_model
from coin_train.prompt_format import PromptFormat
from coin_train.suites import SuiteConfig, build_suite


def tiny_model(suite):
    """A random-init Llama and a BPE tokenizer trained on the suite's prompts (no files, no network)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    texts = [v.render(e, t.options) for t in suite.tasks for v in t.instructions for e in t.examples]
    texts += [o for t in suite.tasks for o in t.options] + ["### Response:"]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(texts, trainer=trainers.BpeTrainer(
        vocab_size=1000, special_tokens=["<|pad|>", "<|eos|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False))  # fmt: skip
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, pad_token="<|pad|>", eos_token="<|eos|>")
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, pad_token_id=tokenizer.pad_token_id,
                         eos_token_id=tokenizer.eos_token_id, bos_token_id=None)  # fmt: skip
    torch.manual_seed(0)
    return LlamaForCausalLM(config).eval(), tokenizer, PromptFormat()


def load(name: str, suite):
    if name == "tiny":
        return tiny_model(suite)
    from coin_train.modeling import load_for_inference

    return load_for_inference(resolve_model(name))


def measure(model, tokenizer, fmt, suite, scoring: ScoringConfig) -> tuple[dict, float, float, int | None]:
    """Predictions, wall and CPU seconds of ``predict_suite`` after a warm-up batch, and the prompts rescored."""
    warm = build_warmup(suite, scoring.batch_size)
    predict_suite(model, tokenizer, fmt, warm, scoring)
    wall, cpu = time.perf_counter(), time.process_time()
    screen = bfloat16_screen(model) if scoring.rescore_margin is not None else None  # timed: the eval CLI pays it too
    predictions = predict_suite(model, tokenizer, fmt, suite, scoring, screen=screen)
    return predictions, time.perf_counter() - wall, time.process_time() - cpu, None if screen is None else screen.rescored


LM_EVAL_SETUP = "python3 -m venv /tmp/lmeval && /tmp/lmeval/bin/pip install torch==2.13.0 lm-eval accelerate"


def lm_eval_requests(tokenizer, fmt, suite) -> tuple[list[list[list[int]]], list[tuple]]:
    """(prompt ids, option ids) pairs for every prompt and option, and per prompt its key and option count."""
    requests, keys = [], []
    for task in suite.tasks:
        options = fmt.encode_targets(tokenizer, list(task.options))
        for variant in task.instructions:
            prompts = fmt.encode_prompts(tokenizer, [variant.render(e, task.options) for e in task.examples])
            for index, prompt in enumerate(prompts):
                requests += [[prompt, option] for option in options]
                keys.append((task.name, variant.level, variant.source_id, index, task.options))
    return requests, keys


def run_lm_eval(python: str, model_dir: str, requests, batch_size: int, threads: int) -> dict:
    """Score ``requests`` with lm-eval in its own interpreter; its timing and log-likelihoods."""
    import subprocess
    import sys
    import tempfile

    worker = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lm_eval_worker.py")
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump({"model": model_dir, "batch_size": batch_size, "threads": threads, "requests": requests}, handle)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    try:
        done = subprocess.run([python, worker, handle.name], capture_output=True, text=True, env=env)
    finally:
        os.unlink(handle.name)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        sys.exit(f"lm-eval worker failed with {python}: {last}\n(set it up with: {LM_EVAL_SETUP})")
    return json.loads(done.stdout.strip().splitlines()[-1])


def lm_eval_agreement(scores: list[float], keys, predictions) -> float:
    """Share of prompts where lm-eval's highest-scoring option is CoIN's prediction (sum normalisation)."""
    agree, at = 0, 0
    for task, level, source_id, index, options in keys:
        row = scores[at : at + len(options)]
        at += len(options)
        agree += options[max(range(len(options)), key=row.__getitem__)] == predictions[task][level][source_id][index]
    return agree / len(keys)


def build_warmup(suite, batch_size: int):
    """A copy of the suite's first task cut to one batch of prompts (kernels, caches, allocator warm)."""
    from dataclasses import replace

    task = suite.tasks[0]
    first = [v for v in task.instructions][:1]
    return replace(suite, tasks=[replace(task, instructions=first, examples=task.examples[:batch_size])])


def accuracy(predictions, suite) -> float:
    hits = total = 0
    for task in suite.tasks:
        for by_instruction in predictions[task.name].values():
            for preds in by_instruction.values():
                hits += sum(p == e.label for p, e in zip(preds, task.examples))
                total += len(preds)
    return hits / total


def flat(predictions) -> list[str]:
    return [p for levels in predictions.values() for ids in levels.values() for preds in ids.values() for p in preds]


def rate(prompts: int, wall: float, cpu: float, extra: dict | None = None) -> dict:
    return {"seconds": round(wall, 2), "cpu_seconds": round(cpu, 2), "prompts_per_second": round(prompts / wall, 2),
            "prompts_per_cpu_second": round(prompts / cpu, 2), **(extra or {})}  # fmt: skip


RESCORED = "rank_bfloat16_rescored"


def rescored_summary(outputs: dict, rescored: int, margin: float, prompts: int) -> dict:
    """The rescored arm's share of float32-identical predictions and of prompts rescored in float32."""
    same = sum(a == b for a, b in zip(flat(outputs[RESCORED]), flat(outputs["rank"])))
    return {"rescore_margin": margin, "rescored": rescored, "rescored_share": round(rescored / prompts, 4),
            "agreement_with_float32": round(same / prompts, 4)}  # fmt: skip


def target_met(row: dict) -> dict:
    """Per rank arm: its speedup over ``rank_before`` (prompts per CPU second) and whether it reaches 2x."""
    before = row["rank_before"]["prompts_per_cpu_second"]
    return {arm: {"speedup": round(row[arm]["prompts_per_cpu_second"] / before, 2),
                  "met": row[arm]["prompts_per_cpu_second"] >= 2 * before}
            for arm in ("rank", "rank_bfloat16", RESCORED) if arm in row}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", help="tiny, smollm2, or a model folder / Hub id (repeatable)")
    parser.add_argument("--tasks", default="sentiment,nli,spam,topic", help="default-suite tasks to score")
    parser.add_argument("--levels", default="clean,sentence")
    parser.add_argument("--max-examples", type=int, default=8)
    parser.add_argument("--max-instructions", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2, help="interleaved repetitions; each arm keeps its fastest")
    parser.add_argument("--generate", action="store_true", help="also time generate-and-parse")
    parser.add_argument("--bfloat16", action="store_true", help="also time rank scoring of a bfloat16 copy")
    parser.add_argument("--rescore-margin", type=float, default=None, metavar="NATS",
                        help="also time a bfloat16 screen with float32 rescoring of margins below NATS")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="generate: default longest option + 2")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--lm-eval-python", default=os.environ.get("COIN_LM_EVAL_PYTHON"),
                        help="python of an environment with lm-eval (env COIN_LM_EVAL_PYTHON); see the docstring")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    suite = build_suite(SuiteConfig(tasks=args.tasks, levels=args.levels, max_examples=args.max_examples,
                                    max_instructions=args.max_instructions))  # fmt: skip
    prompts = sum(len(t.instructions) * len(t.examples) for t in suite.tasks)
    if not args.lm_eval_python:
        print(f"lm-eval arm skipped: set it up with `{LM_EVAL_SETUP}` and pass --lm-eval-python /tmp/lmeval/bin/python",
              file=__import__("sys").stderr)  # fmt: skip
    results = []
    for name in args.model or ["smollm2"]:
        model, tokenizer, fmt = load(name, suite)
        row = {"model": name, "parameters": sum(p.numel() for p in model.parameters())}
        arms = {"rank_before": ScoringConfig(batch_size=args.batch_size, share_prefix=False),
                "rank": ScoringConfig(batch_size=args.batch_size)}  # fmt: skip
        if args.generate:
            arms["generate"] = ScoringConfig(mode="generate", batch_size=args.batch_size, max_new_tokens=args.max_new_tokens)
        half = None
        if args.bfloat16:
            arms["rank_bfloat16"] = arms["rank"]
            half = copy.deepcopy(model).to(torch.bfloat16)
        if args.rescore_margin is not None:
            arms[RESCORED] = ScoringConfig(batch_size=args.batch_size, rescore_margin=args.rescore_margin)
        timings: dict[str, list[tuple[float, float]]] = {arm: [] for arm in [*arms, "lm_eval"]}
        outputs, lm_scores, rescored = {}, None, None
        with tempfile.TemporaryDirectory() as scratch:
            model_dir = resolve_model(name)
            if name == "tiny" and args.lm_eval_python:  # lm-eval loads from a folder
                model.save_pretrained(scratch)
                tokenizer.save_pretrained(scratch)
                model_dir = scratch
            requests, keys = lm_eval_requests(tokenizer, fmt, suite)
            for _ in range(args.rounds):
                for arm, scoring in arms.items():
                    predictions, wall, cpu, count = measure(half if arm == "rank_bfloat16" else model, tokenizer, fmt,
                                                            suite, scoring)  # fmt: skip
                    outputs[arm] = predictions
                    rescored = count if arm == RESCORED else rescored
                    timings[arm].append((wall, cpu))
                if args.lm_eval_python:
                    done = run_lm_eval(args.lm_eval_python, model_dir, requests, args.batch_size, torch.get_num_threads())
                    timings["lm_eval"].append((done["seconds"], done["cpu_seconds"]))
                    lm_scores = done["log_likelihoods"]
        for arm, runs in timings.items():
            if runs:
                wall, cpu = min(runs, key=lambda run: run[1])
                extra = {"accuracy": round(accuracy(outputs[arm], suite), 4)} if arm in outputs else {}
                row[arm] = rate(prompts, wall, cpu, {**extra, "rounds_cpu_seconds": [round(c, 2) for _, c in runs]})
        row["rank_equals_rank_before"] = outputs["rank"] == outputs["rank_before"]
        if half is not None:
            same = sum(a == b for a, b in zip(flat(outputs["rank_bfloat16"]), flat(outputs["rank"])))
            row["rank_bfloat16"]["agreement_with_float32"] = round(same / prompts, 4)
            row["speedup_bfloat16_vs_before"] = round(
                row["rank_bfloat16"]["prompts_per_cpu_second"] / row["rank_before"]["prompts_per_cpu_second"], 2)
        if args.rescore_margin is not None:
            row[RESCORED].update(rescored_summary(outputs, rescored, args.rescore_margin, prompts))
        row["speedup_vs_before"] = round(row["rank"]["prompts_per_cpu_second"] / row["rank_before"]["prompts_per_cpu_second"], 2)
        row["target_2x_vs_rank_before_met"] = target_met(row)
        if lm_scores is not None:
            row["lm_eval"]["agreement_with_rank"] = round(lm_eval_agreement(lm_scores, keys, outputs["rank"]), 4)
            row["speedup_vs_lm_eval"] = round(row["rank"]["prompts_per_cpu_second"] / row["lm_eval"]["prompts_per_cpu_second"], 2)
        else:
            row["lm_eval"] = {"skipped": f"no --lm-eval-python; set one up with: {LM_EVAL_SETUP}"}
        if args.generate:
            row["generate"]["invalid_rate"] = round(flat(outputs["generate"]).count(INVALID) / prompts, 4)
        results.append(row)
        del model, half

    print(json.dumps({
        "benchmark": "eval",
        "suite": {"name": suite.name, "tasks": [t.name for t in suite.tasks], "levels": list(suite.levels),
                  "prompts": prompts, "batch_size": args.batch_size},
        "results": results,
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads(),
                    "cpus": os.cpu_count(), "load_average_1min_5min_15min": [round(x, 2) for x in os.getloadavg()]},
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
