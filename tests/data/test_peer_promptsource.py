"""Promptsource pairs: reading a promptsource-layout sdist, converting prompts, clean labels, the split.

The tarball here is written by the test with templates invented for it (the real sdist is downloaded
only by benchmarks/verify.py). The offline test runs pip for real against a closed local port.
"""

import io
import tarfile
from collections import Counter

import pytest
import yaml

from coin_data.templates import parse_template
from coin_data.verify.peer_pairs import FIT, HELDOUT, PeerDataError, labelled_sources
from coin_data.verify.peer_promptsource import (
    PROMPTSOURCE_SDIST,
    by_position,
    convert_prompt,
    fetch_promptsource,
    load_promptsource_pairs,
    other_task_pairs,
    promptsource_pairs,
    ps_family_split,
    read_templates,
    same_task_pairs,
)

TARGET = "{{ answer_choices[label] }}"


def _t(jinja, choices="calm ||| angry", original=True):
    return {"answer_choices": choices, "jinja": jinja, "metadata": {"original_task": original, "metrics": ["Accuracy"]}}


# dataset path -> {template name: template}; the texts are invented for this test.
DATASETS = {
    "moods": {
        "ask": _t("Is the writer of this note calm or angry?\n{{note}} ||| " + TARGET),
        "tell": _t("{{note}}\nSay whether the person who wrote this was calm or angry. |||  {{answer_choices[label]}} "),
        "other_target": _t("Which mood, calm or angry, shows in: {{note}} ||| {{answer_choices[1 - label]}}"),
        "other_choices": _t("Is the writer of this note relaxed or upset?\n{{note}} ||| " + TARGET,
                            choices="relaxed ||| upset"),
        "other_slots": _t("Title: {{title}}\nIs the writer calm or angry? {{note}} ||| " + TARGET),
        "not_original": _t("Write a calm note. ||| {{note}}", original=False),
        "complex": _t("{% if note %}Mood of {{note | lower}}?{% endif %} ||| " + TARGET),
        "literal": _t('Answer {{"calm"}} or {{"angry"}}: {{note}} ||| ' + TARGET),
    },
    "ferry/times": {
        "when": _t("Timetable: {{table}}\nDoes the ferry leave before noon? ||| " + TARGET, choices="yes ||| no"),
        "early": _t("Does the ferry in this timetable leave before noon?\n{{table}} ||| " + TARGET, choices="yes ||| no"),
        "no_slot": _t("Does the ferry leave before noon? ||| " + TARGET, choices="yes ||| no"),
        "twice": _t("{{table}} Again: {{table}} ||| " + TARGET, choices="yes ||| no"),
    },
    "ferry/prices": {
        "fare": _t("Fares: {{table}}\nIs the ferry cheap? ||| " + TARGET, choices="CALM ||| dear"),
    },
    "orchard": {
        "ripe": _t("Fruit: {{fruit}}\nIs it ripe? ||| " + TARGET, choices="yes ||| no"),
        "pick": _t("Should this fruit be picked now? {{fruit}} ||| " + TARGET, choices="yes ||| no"),
    },
}


def _sdist(folder, datasets=DATASETS):
    """A promptsource-layout sdist: promptsource-0.2.3/promptsource/templates/<dataset>/templates.yaml."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / PROMPTSOURCE_SDIST
    with tarfile.open(path, "w:gz") as archive:
        for dataset, templates in datasets.items():
            name, _, subset = dataset.partition("/")
            body = {"dataset": name, "subset": subset or None,
                    "templates": {f"id-{key}": {**t, "name": key, "id": f"id-{key}"} for key, t in templates.items()}}
            # promptsource tags each template and its metadata: "id-x: !Template", "metadata: !TemplateMetadata".
            text = "\n".join(line + " !Template" if line.startswith("  id-") and line.endswith(":") else line
                             for line in yaml.safe_dump(body).splitlines()).replace("metadata:", "metadata: !TemplateMetadata")
            _add(archive, f"promptsource-0.2.3/promptsource/templates/{dataset}/templates.yaml", text)
        _add(archive, "promptsource-0.2.3/setup.py", "# not read\n")
    return path


def _add(archive, name, text):
    data = text.encode("utf-8")
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


@pytest.fixture()
def templates(tmp_path):
    return read_templates(_sdist(tmp_path)).templates


def test_the_sdist_uses_custom_tags(tmp_path):
    with tarfile.open(_sdist(tmp_path)) as archive:
        text = archive.extractfile("promptsource-0.2.3/promptsource/templates/moods/templates.yaml").read().decode()
    assert "!Template" in text and "!TemplateMetadata" in text  # read by the safe loader all the same


def test_conversion_and_skip_counts(tmp_path):
    read = read_templates(_sdist(tmp_path))
    by_name = {(t.dataset, t.name): t for t in read.templates}
    assert len(read.templates) == 15
    assert by_name["moods", "ask"].text == "Is the writer of this note calm or angry?\n{note}"
    assert by_name["moods", "literal"].text == "Answer calm or angry: {note}"
    assert by_name["moods", "tell"].target == by_name["moods", "ask"].target == "{{answer_choices[label]}}"
    assert by_name["moods", "complex"].text is None
    assert read.skipped == Counter({"complex_jinja": 1, "no_slot": 2, "repeated_slot": 1})
    assert by_name["ferry/times", "when"].family == "ferry"
    assert by_name["moods", "ask"].choices == ("calm", "angry")


def test_convert_prompt_escapes_braces_and_rejects_jinja():
    assert convert_prompt("Code: {{code}} uses { and } ") == ("Code: {code} uses {{ and }}", None)
    assert parse_template(convert_prompt("Code: {{code}} uses { and } ")[0]).slots == ("code",)
    assert convert_prompt("{{ text.split()[0] }}") == (None, "complex_jinja")
    assert convert_prompt("{{text}} {# a comment #}") == (None, "complex_jinja")
    assert convert_prompt("Unclosed {{text") == (None, "complex_jinja")
    assert convert_prompt("   ") == (None, "empty")


def test_same_task_pairs_have_clean_labels(templates):
    rows = same_task_pairs(templates)
    pairs = {frozenset((r["original"], r["paraphrase"])) for r in rows}
    text = {t.name: t.text for t in templates}
    moods = ("ask", "tell", "literal")  # {{"calm"}} is plain text: the same prompt kind as "ask"
    assert pairs == {frozenset((text[a], text[b])) for a, b in zip(moods, moods[1:] + moods[:1])} | {
        frozenset((text["when"], text["early"])), frozenset((text["ripe"], text["pick"]))}
    # Same dataset but another target, other choices, other slots, a non-original task: never equivalent.
    for name in ("other_target", "other_choices", "other_slots", "not_original"):
        assert not any(text[name] in pair for pair in pairs), name
    assert {r["label"] for r in rows} == {"equivalent"} and {r["kind"] for r in rows} == {"same_task"}


def test_same_task_pairs_are_capped_per_dataset(templates):
    assert len(same_task_pairs(templates, per_dataset=0)) == 0
    many = [t for t in templates if t.dataset == "moods"]
    assert len(same_task_pairs(many, per_dataset=1)) == 1


def test_other_task_pairs_join_families_with_disjoint_choices(templates):
    rows = other_task_pairs(templates)
    assert rows and {r["label"] for r in rows} == {"changed"} and {r["kind"] for r in rows} == {"other_task"}
    family = {t.text and by_position(t.text): t.family for t in templates}
    choices = {t.text and by_position(t.text): {c.lower() for c in t.choices} for t in templates}
    for r in rows:
        a, b = r["original"], r["paraphrase"]
        assert family[a] != family[b] and choices[a].isdisjoint(choices[b])
        assert ps_family_split(family[a]) == ps_family_split(family[b]) == r["split"]
        assert parse_template(a).slots == parse_template(b).slots  # renamed by position: {x1}, ...
    # "ferry/prices" answers CALM/dear: not disjoint from calm/angry (case does not count).
    assert not any("Fares:" in r["paraphrase"] and "calm or angry" in r["original"] for r in rows)


def test_by_position_renames_in_order():
    assert by_position("{b} then {a} ({{literal}})") == "{x1} then {x2} ({{literal}})"


def test_split_is_fixed_by_family_and_covers_both_parts():
    assert ps_family_split("moods") == ps_family_split("moods")
    parts = {ps_family_split(f"family{i}") for i in range(40)}
    assert parts == {FIT, HELDOUT}
    shares = Counter(ps_family_split(f"family{i}") for i in range(300))
    assert 70 < shares[HELDOUT] < 130  # about one in three


def test_pairs_are_deterministic_and_carry_split_and_family(tmp_path, templates):
    rows = promptsource_pairs(templates)
    again = promptsource_pairs(read_templates(_sdist(tmp_path / "again")).templates)
    assert rows == again
    for r in rows:
        assert r["split"] == ps_family_split(r["family"]) and r["task_type"].split("/")[0] == r["family"]


def test_fetch_uses_the_cached_sdist_and_labelled_sources_adds_it(tmp_path):
    path = _sdist(tmp_path)
    assert fetch_promptsource(tmp_path) == path
    assert load_promptsource_pairs(tmp_path) == promptsource_pairs(read_templates(path).templates)
    sources = labelled_sources(peer=False, promptsource=True, promptsource_directory=tmp_path)
    assert set(sources) == {"own", "promptsource"}
    assert set(labelled_sources(peer=False)) == {"own"}  # off by default: fit_combiner never sees it


def test_fetch_offline_names_the_folder_and_the_command(tmp_path, monkeypatch):
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    folder = tmp_path / "empty"
    with pytest.raises(PeerDataError) as err:
        fetch_promptsource(folder)
    message = str(err.value)
    assert str(folder) in message
    assert "`pip download promptsource==0.2.3 --no-deps --no-binary :all: --ignore-requires-python -d DIR`" in message
    assert not list(folder.glob("*.tar.gz"))


def test_a_broken_sdist_is_named(tmp_path):
    (tmp_path / PROMPTSOURCE_SDIST).write_bytes(b"not a tarball")
    with pytest.raises(PeerDataError, match="not a readable promptsource sdist"):
        read_templates(tmp_path / PROMPTSOURCE_SDIST)


def test_a_pair_repeated_by_another_subset_counts_once(tmp_path):
    datasets = {"orchard/early": DATASETS["orchard"], "orchard/late": DATASETS["orchard"]}
    rows = promptsource_pairs(read_templates(_sdist(tmp_path, datasets)).templates)
    assert [(r["kind"], r["task_type"]) for r in rows] == [("same_task", "orchard/early")]
