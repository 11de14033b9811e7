"""Peer pairs: reading a PromptBench-format wheel, the pairs and edits built from it, the fixed split.

The wheel here is made by the test with instructions written for it (the real one is downloaded only by
benchmarks/verify.py and scripts/fit_combiner.py). The offline test runs pip for real against a closed
local port.
"""

import zipfile
from collections import Counter

import pytest

from coin_data.verify.peer_pairs import (
    FIT,
    HELDOUT,
    PeerDataError,
    family_of,
    family_split,
    fetch_promptbench,
    instruction_text,
    minimal_edits,
    promptbench_pairs,
    read_prompt_lists,
    task_key_words,
)

TASKS = {
    "sst2": ["Decide the sentiment of this line, 'positive' or 'negative':\nQuestion:{content}\nAnswer:",
             "Classify the sentiment of the given text as 'positive' or 'negative':\nQuestion:{content}\nAnswer:"],
    "cola": ["Check the grammar of the sentence and reply 'acceptable' or 'unacceptable':\nQuestion:{content}\nAnswer:",
             "Is the grammar of this sentence 'acceptable' or 'unacceptable'?\nQuestion:{content}\nAnswer:"],
    "math": ["Solve the math problem about {task}:\nQuestion:{content}\nAnswer:",
             "Work out this math exercise on {task}:\nQuestion:{content}\nAnswer:"],
    "mmlu": ["Pick the correct answer to the question about {task} from 'A', 'B', 'C' or 'D'.\nQuestion:{content}\nAnswer:"],
    "rte": ["Does the premise entail the hypothesis? Say 'entailment' or 'not_entailment'.\nQuestion:{content}\nAnswer:"],
    "mrpc": ["Do the two sentences mean the same? Say 'equivalent' or 'not_equivalent'.\nQuestion:{content}\nAnswer:"],
}
ROLES = {"sst2": ["As a mood detector, label the sentiment of the text 'positive' or 'negative':\nQuestion: {content}\nAnswer:"]}
SEMANTIC = {
    "sst2": {"french": ["Tell whether the feeling in this text is 'positive' or 'negative'."]},
    "math": {"korean": ["Compute the math task concerning {}."]},
    "rte": {"arabic": ["Answer 'entailment' if the first sentence implies the second, else 'not_entailment'."]},
    "mrpc": {"spanish": ["Say 'equivalent' when both sentences say the same thing, otherwise 'not_equivalent'."]},
}


def _wheel(path, task=TASKS, role=ROLES, semantic=SEMANTIC):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("promptbench/prompts/task_oriented.py", f"# made by the test\nTASK_ORIENTED_PROMPTS = {task!r}\n")
        archive.writestr("promptbench/prompts/role_oriented.py", f"ROLE_ORIENTED_PROMPTS = {role!r}\n")
        archive.writestr("promptbench/prompts/semantic_atk_prompts.py", f"SEMANTIC_ADV_PROMPT_SET = {semantic!r}\n")
    return path


def test_read_prompt_lists_without_importing(tmp_path):
    lists = read_prompt_lists(_wheel(tmp_path / "promptbench-0.0.4-py3-none-any.whl",
                                     semantic={"translation_iwslt": {"french": ["Translate it from {} to {}."]}}))
    assert lists["task"]["sst2"][0].startswith("Decide the sentiment")
    assert lists["semantic"] == {"iwslt": {"french": ["Translate it from {} to {}."]}}  # alias resolved


def test_a_broken_wheel_is_named(tmp_path):
    bad = tmp_path / "promptbench-0.0.4-py3-none-any.whl"
    bad.write_bytes(b"not a zip")
    with pytest.raises(PeerDataError, match="not a readable PromptBench"):
        read_prompt_lists(bad)


def test_instruction_text_strips_the_scaffold_and_numbers_slots():
    assert instruction_text("Work out this math exercise on {task}:\nQuestion:{content}\nAnswer:") == \
        "Work out this math exercise on {x1}:"
    assert instruction_text("Translate from {src} to {}, keeping the tone.") == "Translate from {x1} to {x2}, keeping the tone."


def test_pairs_kinds_labels_and_split(tmp_path):
    rows = promptbench_pairs(read_prompt_lists(_wheel(tmp_path / "w.whl")))
    kinds = Counter(r["kind"] for r in rows)
    assert kinds["rewording"] >= 4 and kinds["add_criterion"] >= 6 and kinds["word_swap"] >= 2
    for row in rows:
        assert row["label"] == ("equivalent" if row["kind"] == "rewording" else "changed")
        assert row["split"] == family_split(family_of(row["task_type"]))
    rewording = next(r for r in rows if r["kind"] == "rewording" and r["task_type"] == "math")
    assert rewording["paraphrase"] == "Compute the math task concerning {x1}." and "{x1}" in rewording["original"]
    by_text = {}
    for task, prompts in list(TASKS.items()) + list(ROLES.items()):
        for prompt in prompts:
            by_text[instruction_text(prompt)] = task
    for row in rows:
        if row["kind"] == "other_task":  # another family, same split, same slots
            other = by_text[row["paraphrase"]]
            assert family_of(other) != row["family"] and family_split(family_of(other)) == row["split"]
            assert row["original"].count("{x") == row["paraphrase"].count("{x")


def test_family_split_is_fixed():
    assert {family_split(f) for f in ("translation", "entailment", "paraphrase", "sst2", "cola", "math", "mmlu",
                                      "squad_v2", "bool_logic", "valid_parentheses")} == {HELDOUT, FIT}
    assert family_split("entailment") == HELDOUT and family_split("sst2") == FIT
    assert family_of("wnli") == family_of("rte") == "entailment"


def test_minimal_edits_change_the_task():
    edits = dict(minimal_edits("Classify the sentiment of the review, 'positive' or 'negative'.", ["sentiment"]))
    assert edits["word_swap"] == "Classify the length of the review, 'positive' or 'negative'."
    assert edits["add_criterion"].startswith("Classify the sentiment of the review, 'positive' or 'negative' ")
    # A persona clause and quoted answer words are not the task: the swap leaves them alone.
    persona = dict(minimal_edits("As a sentiment expert, rate the sentiment of the text.", ["sentiment"]))
    assert persona["word_swap"] == "As a sentiment expert, rate the length of the text."
    reversal = dict(minimal_edits("Decide if the context supports the answer to the question.", [], seed=0))
    assert reversal["role_reversal"] == "Decide if the answer supports the context to the question."
    assert dict(minimal_edits("Translate it from {x1} to {x2}.", []))["role_reversal"] == "Translate it from {x2} to {x1}."
    # Two nouns in a plain list ("the context and the question") are never exchanged.
    assert "role_reversal" not in dict(minimal_edits("Read the context and the question.", []))


def test_key_words_mark_the_task():
    instructions = {t: [instruction_text(p) for p in ps] for t, ps in TASKS.items()}
    assert task_key_words(instructions, "sst2") == ["sentiment"]
    assert task_key_words(instructions, "cola") == ["grammar"]


def test_fetch_uses_a_wheel_in_the_cache(tmp_path):
    wheel = _wheel(tmp_path / "promptbench-0.0.4-py3-none-any.whl")
    assert fetch_promptbench(tmp_path) == wheel


def test_fetch_offline_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    with pytest.raises(PeerDataError, match="Offline: on a machine with PyPI access run `pip download promptbench"):
        fetch_promptbench(tmp_path / "empty")
    assert not list((tmp_path / "empty").glob("*.whl"))
