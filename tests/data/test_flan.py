"""FLAN source: reading FLAN-format rows, template induction, unrecovered-row reporting, the Hub path.

The fixtures are FLAN-format rows (``inputs``, ``targets``, ``task``) rendered by this file from known
templates with invented field text (no FLAN text is copied), shuffled like the real files, plus noise rows
whose template cannot be recovered (typos in the instruction, one-off formats, empty inputs). Induction
is scored against the templates and fields the rows were rendered from.
"""

import importlib.util
import json
import os
import random
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from coin_data.cli import main
from coin_data.sources.flan import (
    EMPTY_INPUTS,
    NO_TEMPLATE_MATCH,
    FlanRow,
    InductionConfig,
    flan_corpus,
    hub_file,
    induce_templates,
    load_flan_corpus,
    read_flan_files,
    task_name,
)
from coin_data.sources import CLASSIFICATION, GENERATION, CorpusError
from coin_data.templates import parse_template, render_options

# --- fixtures: rows rendered from known templates ------------------------------------------------
SUBJECTS = ["The farmer", "A young pilot", "The old museum", "Our neighbour", "The city council", "A small bakery",
            "The river", "My cousin", "The school choir", "A delivery robot", "The mayor", "The orchestra"]
VERBS = ["painted", "repaired", "visited", "sold", "photographed", "described", "cleaned", "opened", "moved"]
OBJECTS = ["the red barn", "an antique clock", "the north bridge", "a wooden boat", "the public library",
           "three bicycles", "the garden fence", "a silver kettle", "the train station", "a paper lantern"]
TIMES = ["on Monday", "last winter", "before sunrise", "after the storm", "in early spring", "during the festival"]
EXTRAS = ["Nobody expected it.", "Everyone was surprised by the result.", "It took most of the afternoon.",
          "The local paper wrote about it later.", "Several people helped.", "It was the first time in years."]
QUESTION_STARTS = ["Which", "What", "Where", "Why"]

# task -> (fields, options (None: generation or per-row options), templates)
TASKS = {
    "rte": (
        ["premise", "hypothesis"],
        ("yes", "no"),
        [
            "{premise}\n\nCan we draw the following conclusion from the text above?\n{hypothesis}\n\n{options_}",
            "Premise: {premise}\nHypothesis: {hypothesis}\nDoes the premise entail the hypothesis?\n{options_}",
            "Read the passage and decide whether the claim follows.\n\nPassage: {premise}\n\nClaim: {hypothesis}\n{options_}",
            "Here is a statement: \"{hypothesis}\"\nIs it supported by this text?\n{premise}\n{options_}",
            "{premise}\nBased on the paragraph above, can we conclude that \"{hypothesis}\"?\n\n{options_}",
            "{premise}\nBased on the paragraph above, can we infer that \"{hypothesis}\"?\n\n{options_}",
            "Determine if the sentence is true given the context.\n\nContext:\n{premise}\n\nSentence:\n{hypothesis}\n\n{options_}",
            "Text: {premise}\n\nQuestion: Is it true that \"{hypothesis}\"?\n\n{options_}",
        ],
    ),
    "cola": (
        ["sentence"],
        ("unacceptable", "acceptable"),
        [
            "Sentence: \"{sentence}\"\nWould a linguist rate this sentence to be acceptable linguistically?\n\n{options_}",
            "{sentence}\n\nHow would you judge the grammar of the sentence above?\n{options_}",
            "Is the following sentence grammatically correct?\n{sentence}\n\n{options_}",
            "Check the grammar of this sentence and say whether it is acceptable: {sentence}\n{options_}",
            "Test sentence: \"{sentence}\"\nIs this test sentence a correct grammatical English sentence?\n\n{options_}",
            "Rate the grammatical quality of the following text.\n\n{sentence}\n\n{options_}",
        ],
    ),
    "quiz": (
        ["question"],
        None,  # per-row options: the answer set changes with every question
        [
            "Answer the following question by choosing one option.\n\nQuestion: {question}\n\n{options_}",
            "{question}\nPick the best answer from the choices below.\n{options_}",
            "Choose your answer. {question}\n\n{options_}",
            "Here is a quiz question for you: {question}\nWhich of the following answers is right?\n\n{options_}",
            "Q: {question}\nSelect the correct choice.\n\n{options_}",
        ],
    ),
    "summarize": (
        ["text"],
        None,
        [
            "Write a one-sentence summary of the following article.\n\nArticle:\n{text}",
            "{text}\n\nWhat is a short summary of the text above?",
            "Summarize this passage in a few words:\n\n{text}\n\nSummary:",
            "Here is a news report.\n{text}\nGive it a suitable headline.",
            "Condense the following paragraph into one line.\n\n{text}",
        ],
    ),
}


SYLLABLES = ["ka", "lo", "min", "tar", "su", "vel", "dor", "pi", "ran", "ex", "ol", "bri", "mat", "zu", "fen",
             "gor", "ith", "nal", "qua", "sep", "tor", "ul", "wen", "yas"]


def _word(rng: random.Random) -> str:
    """An invented content word: real FLAN fields are varied text, so content words rarely repeat."""
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3)))


def _sentence(rng: random.Random) -> str:
    """A sentence mixing stock phrases (which do repeat across rows) with invented words."""
    kind = rng.random()
    if kind < 0.4:
        return f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} the {_word(rng)} {rng.choice(TIMES)}."
    if kind < 0.7:
        return f"The {_word(rng)} of {_word(rng).title()} was {_word(rng)} and {_word(rng)}."
    return f"{_word(rng).title()} {rng.choice(VERBS)} {rng.choice(OBJECTS)} near {_word(rng).title()}."


def _fields(task: str, rng: random.Random) -> tuple[dict[str, str], str, tuple[str, ...] | None]:
    if task == "rte":
        premise = " ".join([_sentence(rng)] + rng.sample(EXTRAS, rng.randint(0, 2)))
        hypothesis = _sentence(rng)
        return {"premise": premise, "hypothesis": hypothesis}, rng.choice(["yes", "no"]), None
    if task == "cola":
        words = _sentence(rng).split()
        if rng.random() < 0.4:
            i = rng.randrange(len(words) - 1)
            words[i], words[i + 1] = words[i + 1], words[i]
            return {"sentence": " ".join(words)}, "unacceptable", None
        return {"sentence": " ".join(words)}, "acceptable", None
    if task == "quiz":
        question = rng.choice([
            f"{rng.choice(QUESTION_STARTS)} {_word(rng)} fits the {_word(rng)} of {_word(rng).title()}?",
            f"How would you describe the {_word(rng)} {rng.choice(TIMES)}?",
            f"Who {rng.choice(VERBS)} the {_word(rng)} near {_word(rng).title()}?",
            f"If {_word(rng).title()} saw a {_word(rng)}, what would stand out?",
        ])
        options = tuple(dict.fromkeys(_word(rng) for _ in range(4)))
        return {"question": question}, rng.choice(options), options
    text = " ".join(_sentence(rng) for _ in range(rng.randint(3, 6))) + " " + rng.choice(EXTRAS)
    return {"text": text}, _sentence(rng)[:-1], None


NOISE = [
    "Wirte a summry of this: the fair was loud.",
    "{premise} ??? {hypothesis}",
    "Translate to French: The cat is on the mat.",
    "",
    "Premise - {premise} / Hypothesis - {hypothesis} / entailment? (yes or no)",
]


def make_flan_rows(per_template: int = 14, noise: int = 6, seed: int = 0) -> list[dict]:
    """FLAN-format rows of every task in :data:`TASKS` plus ``noise`` noise rows per task, shuffled.

    Returns:
        Dicts with ``inputs``, ``targets``, ``task`` (``<task>_10templates``) and ``truth``
        (``{"template": index, "fields": {...}}`` or ``{"noise": True}``).
    """
    rng = random.Random(seed)
    rows = []
    for task, (fields, options, templates) in TASKS.items():
        task_rows = []
        for index, text in enumerate(templates):
            template = parse_template(text, task, f"t{index}")
            for _ in range(per_template):
                values, target, row_options = _fields(task, rng)
                inputs = template.render(values, row_options or options)
                task_rows.append({"inputs": inputs, "targets": target, "task": f"{task}_10templates",
                                  "truth": {"template": index, "fields": values}})
        for n in range(noise):
            values, target, row_options = _fields(task, rng)
            raw = NOISE[n % len(NOISE)]
            inputs = raw.replace("{premise}", values.get("premise", "x")).replace("{hypothesis}", values.get("hypothesis", "y"))
            if n % 3 == 0 and options:
                inputs += "\n" + render_options(options)
            task_rows.append({"inputs": inputs, "targets": target, "task": f"{task}_10templates", "truth": {"noise": True}})
        rng.shuffle(task_rows)
        rows.extend(task_rows)
    return rows



def recovery(rows_by_task: dict, truth: dict, corpus) -> dict:
    """How well induction recovered the templates and fields the rows were rendered with.

    Args:
        rows_by_task: what :func:`coin_data.sources.flan.read_flan_files` returned.
        truth: ``where -> truth`` of every row (``where`` as the reader names rows).
        corpus: the induced corpus.

    Returns:
        ``templates`` (true templates recovered exactly, slot names aside), ``rows`` (clean rows that
        became an instance with exactly their true field values), ``noise_reported`` (noise rows left
        unrecovered, i.e. counted in the report), and the totals.
    """

    def shape(text: str) -> str:
        return re.sub(r"\{[a-z_0-9]+\}", "{}", text).replace("{options}", "{}")

    induced = {(task.split("_")[0], shape(entry.text))
               for task, info in corpus.induction.tasks.items() for entry in info.templates}
    true = {(task, shape(text)) for task, (_, _, templates) in TASKS.items() for text in templates}
    recovered = {}
    for task, instances in corpus.instances.items():
        for inst in instances:
            base, index = task.split("_")[0], int(inst.id.rsplit("-", 1)[1])
            recovered[rows_by_task[base][index].where] = inst
    clean = {w: t for w, t in truth.items() if not t.get("noise")}

    def naming(where: str) -> tuple | None:
        """(true name, induced name) pairs when the row's values were recovered exactly."""
        got = {v: k for k, v in recovered[where].fields.items() if k != "options"}
        true_fields = clean[where]["fields"]
        if sorted(got) != sorted(true_fields.values()):
            return None
        return tuple(sorted((name, got[value]) for name, value in true_fields.items()))

    # slots must be paired across templates: a true field gets the same name in every template of a task
    namings = {w: naming(w) for w in clean if w in recovered}
    def base(where: str) -> str:
        return recovered[where].task.split("_")[0]

    votes = Counter((base(w), pair) for w, pairs in namings.items() if pairs for pair in pairs)
    majority = {}
    for (task, (true_name, induced_name)), _ in votes.most_common():
        majority.setdefault((task, true_name), induced_name)
    exact = sum(1 for pairs in namings.values() if pairs is not None)
    paired = sum(1 for w, pairs in namings.items() if pairs and all(majority[base(w), t] == i for t, i in pairs))
    noise = [w for w, t in truth.items() if t.get("noise")]
    return {
        "templates": len(true & induced), "templates_total": len(true), "templates_extra": len(induced - true),
        "rows": exact, "rows_paired": paired, "rows_total": len(clean),
        "noise_reported": sum(1 for w in noise if w not in recovered), "noise_total": len(noise),
    }


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "truth"}) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def flan_file(tmp_path_factory):
    """The fixture rows as one FLAN-format JSONL file, with the truth of each row by its location."""
    rows = make_flan_rows(seed=0)
    path = write_jsonl(tmp_path_factory.mktemp("flan") / "flan_train.jsonl", rows)
    truth = {f"{path}:{line}": row["truth"] for line, row in enumerate(rows, start=1)}
    return path, rows, truth


@pytest.fixture(scope="module")
def induced(flan_file):
    path, _, truth = flan_file
    rows_by_task = read_flan_files([path])
    return rows_by_task, flan_corpus(rows_by_task), truth


# --- induction ----------------------------------------------------------------------------------


def test_induction_recovers_the_true_templates_and_fields(induced):
    rows_by_task, corpus, truth = induced
    score = recovery(rows_by_task, truth, corpus)
    assert score["templates"] == score["templates_total"] == 24
    assert score["templates_extra"] == 0
    assert score["rows"] == score["rows_paired"] == score["rows_total"]
    assert score["noise_reported"] == score["noise_total"]


@pytest.mark.parametrize("seed", [1, 2])
def test_recovery_rate_on_other_random_fixtures(seed, tmp_path):
    rows = make_flan_rows(seed=seed)
    path = write_jsonl(tmp_path / "flan_train.jsonl", rows)
    truth = {f"{path}:{line}": row["truth"] for line, row in enumerate(rows, start=1)}
    rows_by_task = read_flan_files([path])
    score = recovery(rows_by_task, truth, flan_corpus(rows_by_task))
    assert score["templates"] >= 0.9 * score["templates_total"]
    assert score["rows_paired"] >= 0.9 * score["rows_total"]
    assert score["noise_reported"] >= 0.9 * score["noise_total"]


def test_slots_are_named_and_paired_across_templates(induced):
    _, corpus, _ = induced
    rte = corpus.tasks["rte"]
    # "Premise:"/"Passage:" and "Hypothesis:"/"Claim:" labels name the slots; every template uses both
    assert len(rte.fields) == 2 and all(set(t.field_slots) == set(rte.fields) for t in rte.templates)
    premise_slot = next(slot for slot in rte.fields if slot in ("premise", "passage", "context", "text"))
    statement = next(t for t in rte.templates if t.text.startswith("Here is a statement"))
    # in this template the hypothesis comes first: pairing by value statistics, not by position
    assert statement.slots.index(premise_slot) == 1
    instance = corpus.instances["rte"][0]
    assert len(instance.fields[premise_slot]) > 0


def test_fixed_options_become_a_classification_task(induced):
    _, corpus, _ = induced
    for name, options in (("rte", ("yes", "no")), ("cola", ("unacceptable", "acceptable"))):
        spec = corpus.tasks[name]
        assert spec.kind == CLASSIFICATION and spec.options == options
        assert all(t.has_options for t in spec.templates)
        assert all(inst.target in options for inst in corpus.instances[name])


def test_per_row_options_become_a_field(induced):
    _, corpus, _ = induced
    quiz = corpus.tasks["quiz"]
    assert quiz.kind == GENERATION and "options" in quiz.fields
    instance = corpus.instances["quiz"][0]
    assert instance.fields["options"].startswith("OPTIONS:\n- ")
    rendered = quiz.templates[0].render(instance.fields)
    assert instance.fields["options"] in rendered


def test_unrecovered_rows_are_counted_with_examples(induced, flan_file):
    _, corpus, _ = induced
    report = corpus.induction
    assert report.rows == len(flan_file[1])
    assert report.recovered + sum(report.unrecovered().values()) == report.rows
    assert report.recovered == sum(len(rows) for rows in corpus.instances.values())
    reasons = report.unrecovered()
    assert reasons[NO_TEMPLATE_MATCH] > 0 and reasons[EMPTY_INPUTS] > 0
    examples = report.examples()
    assert examples and all(e.where.startswith(str(flan_file[0])) for e in examples)
    assert any("Wirte a summry" in e.inputs for e in examples)


def test_induce_templates_on_plain_strings():
    rows = [f"Question: {q}?\nAnswer with a short phrase." for q in
            ["why is the sky blue", "who wrote the letter", "where do owls sleep", "when does the bus leave"]]
    templates = induce_templates(rows, InductionConfig(min_support=2))
    assert [t.text for t in templates] == ["Question: {question}\nAnswer with a short phrase."]


def test_rows_without_shared_instruction_text_are_not_a_template():
    rows = [FlanRow(f"{word} {word}", "x", f"r{i}") for i, word in enumerate(["alpha", "beta", "gamma", "delta"])]
    with pytest.raises(CorpusError, match="no FLAN template could be recovered from 4 rows"):
        flan_corpus({"toy": rows})


# --- reading ---------------------------------------------------------------------------------------


def test_task_names_and_hub_files():
    assert task_name("rte_10templates_train.jsonl") == "rte"
    assert task_name("glue_mrpc_10templates") == "glue_mrpc"
    assert hub_file("rte") == "train/rte_10templates_train.jsonl"
    assert hub_file("mrpc", "validation") == "validation/glue_mrpc_10templates_validation.jsonl"


def test_reader_errors_name_file_row_and_field(tmp_path):
    bad = tmp_path / "rte_10templates_train.jsonl"
    bad.write_text(json.dumps({"inputs": "x", "targets": "y"}) + "\n" + json.dumps({"inputs": "x"}) + "\n")
    with pytest.raises(CorpusError, match=r"rte_10templates_train.jsonl:2: field 'targets'"):
        read_flan_files([bad])
    with pytest.raises(CorpusError, match=r"no rows for task\(s\) cola"):
        read_flan_files([bad], tasks=["cola"])
    with pytest.raises(CorpusError, match="needs --data-files FILE... or --tasks"):
        load_flan_corpus()


def test_task_from_file_name_and_column_map(tmp_path):
    path = tmp_path / "cola_10templates_train.csv"
    path.write_text("source,target\nIs this fine?,yes\n")
    rows = read_flan_files([path], column_map={"inputs": "source", "targets": "target"})
    assert list(rows) == ["cola"] and rows["cola"][0].inputs == "Is this fine?"
    assert rows["cola"][0].where == f"{path}:2"


# --- end to end -------------------------------------------------------------------------------------


@pytest.fixture
def shared_model(embedder, monkeypatch):
    """The build uses the session's already loaded all-MiniLM-L6-v2 (loading it again is slow)."""
    from coin_data import build

    monkeypatch.setattr(build, "SentenceTransformerEmbedder", lambda model=None, **_: embedder)


def test_cli_builds_a_valid_dataset_from_local_flan_files(flan_file, tmp_path, shared_model):
    import datasets

    path, _, _ = flan_file
    out = tmp_path / "coin-flan"
    done = CliRunner().invoke(main, ["build", "--source", "flan", "--data-files", str(path), "--tasks", "cola",
                                     "--max-rows", "40", "-k", "1", "--out", str(out), "-q"])
    assert done.exit_code == 0, done.output
    ds = datasets.load_dataset(str(out))
    assert set(ds) == {"train", "validation"} and len(ds["train"]) > 0
    row = ds["train"][0]
    assert row["task"] == "cola" and row["targets"] in ("acceptable", "unacceptable")
    assert "OPTIONS:" in row["original_instruction"]
    card = (out / "README.md").read_text()
    assert "## Template induction (FLAN rows)" in card
    assert "no_template_match" in card and "Wirte a summry" in card
    assert "--source flan" in card
    assert "\nlicense: apache-2.0\n" in card and "the license of FLAN (google-research/FLAN)" in card


# --- the Hub path, against a loopback double of the Hub ---------------------------------------------


def _hub_server():
    if "hub_server" in sys.modules:
        return sys.modules["hub_server"]
    spec = importlib.util.spec_from_file_location("hub_server", Path(__file__).parents[1] / "hub_server.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_flan_tasks_are_read_from_the_hub_layout(tmp_path, flan_file):
    import huggingface_hub

    _, rows, _ = flan_file
    repo = tmp_path / "repo"
    for task in ("rte", "cola"):
        (repo / "train").mkdir(parents=True, exist_ok=True)
        write_jsonl(repo / "train" / f"{task}_10templates_train.jsonl",
                    [r for r in rows if r["task"] == f"{task}_10templates"])
    (repo / "flan.py").write_text("# a loading script, as in the real repository; datasets no longer runs it\n")
    with _hub_server().HubServer(token="hf_test") as hub:
        api = huggingface_hub.HfApi(endpoint=hub.url, token="hf_test")
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)
            api.create_repo("Muennighoff/flan", repo_type="dataset")
            api.upload_folder(folder_path=str(repo), repo_id="Muennighoff/flan", repo_type="dataset")
        # datasets and huggingface_hub read HF_ENDPOINT at import: a fresh process sees the double
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING_FACE_"))}
        env.update(HF_ENDPOINT=hub.url, HF_HUB_DISABLE_XET="1", HF_HOME=str(tmp_path / "hf-home"),
                   HF_DATASETS_CACHE=str(tmp_path / "datasets-cache"))
        script = (
            "import json\n"
            "from coin_data.sources.flan import load_flan_corpus\n"
            "corpus = load_flan_corpus(tasks=['rte', 'cola'], max_rows=60)\n"
            "print(json.dumps({t: [len(s.templates), len(corpus.instances[t])] for t, s in corpus.tasks.items()}))\n"
        )
        done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300,
                              check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    counts = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(counts) >= {"rte", "cola"}
    assert counts["cola"][0] >= 4 and counts["cola"][1] > 40
    assert not any(r.route is None for r in hub.requests), [r.path for r in hub.requests if r.route is None]
