"""Labelled instruction pairs from promptsource's templates, built at run time and never committed.

A third labelled source for the verifier, written by neither this project nor PromptBench: the prompt
templates of BigScience's promptsource (Apache-2.0), about 2,000 templates for 270 datasets. Its sdist
is downloaded once into a cache folder (:func:`fetch_promptsource`) and every ``templates.yaml`` is read
straight from the tarball (:func:`read_templates`); the package is never installed or imported.

A template's prompt (its jinja before ``|||``) becomes a project template only when it is plain text with
``{{field}}`` slots and quoted literals (``{{"..."}}``); anything else (filters, loops, conditions,
attribute access) is skipped and counted. Two kinds of pair, with labels that hold by construction:

==============  ========================================================================================
kind            pair (label)
==============  ========================================================================================
``same_task``   two templates of one dataset (and subset), both marked ``original_task``, with the same
                non-empty answer choices, the same target (the jinja after ``|||``, spaces normalised)
                and the same slots: the same input and the same answer function (``equivalent``)
``other_task``  two templates of different dataset families (the dataset name before ``/``) whose answer
                choices are disjoint, slots renamed by position (``{x1}``, ``{x2}``) (``changed``)
==============  ========================================================================================

Pairs per dataset are capped so that no dataset dominates, and every choice is seeded by
:func:`coin_data.seeds.stable_seed`. The split is fixed per dataset family by a stable hash
(:func:`ps_family_split`): an ``other_task`` pair joins two families of the same split, and the
``heldout`` part is never looked at while the verifier is tuned. Nothing here reaches
``scripts/fit_combiner.py``.

Example:
    >>> sdist = fetch_promptsource()                               # doctest: +SKIP
    >>> rows = promptsource_pairs(read_templates(sdist).templates)  # doctest: +SKIP
    >>> sorted({r["kind"] for r in rows})                           # doctest: +SKIP
    ['other_task', 'same_task']
"""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
from collections import Counter
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

import yaml

from coin_data.seeds import stable_seed
from coin_data.templates import TemplateError, parse_template
from coin_data.verify.peer_common import SLOT_PATTERN, PeerDataError, by_position, cache_folder, hashed_split

PROMPTSOURCE = "promptsource"
PROMPTSOURCE_VERSION = "0.2.3"
PROMPTSOURCE_REQUIREMENT = f"promptsource=={PROMPTSOURCE_VERSION}"
PROMPTSOURCE_SDIST = f"promptsource-{PROMPTSOURCE_VERSION}.tar.gz"
PROMPTSOURCE_CACHE_ENV = "COIN_PROMPTSOURCE_DIR"
DEFAULT_PROMPTSOURCE_CACHE = Path("~/.cache/coin-toolkit/promptsource")
DOWNLOAD_COMMAND = (f"pip download {PROMPTSOURCE_REQUIREMENT} --no-deps --no-binary :all: "
                    "--ignore-requires-python -d DIR")
# At most this many pairs of each kind per dataset (and subset).
SAME_TASK_PER_DATASET = 4
OTHER_TASK_PER_DATASET = 4
# One family in three is held out (the same share as PromptBench's split, a different salt).
_HELDOUT_SHARE = 3
_TEMPLATES_FILE = re.compile(r"^promptsource-[^/]+/promptsource/templates/(.+)/templates\.yaml$")


@dataclass(frozen=True)
class PsTemplate:
    """One promptsource template, its prompt converted (``text``) or ``None`` with ``skipped`` saying why."""

    dataset: str  # "glue/rte": dataset and subset
    name: str
    text: str | None
    skipped: str | None
    choices: tuple[str, ...]  # answer choices, in order; () when the template has none
    target: str  # the jinja after "|||", whitespace normalised
    original_task: bool
    english: bool

    @property
    def family(self) -> str:
        """The dataset family: the dataset name before ``/`` ("super_glue/rte" -> "super_glue")."""
        return self.dataset.split("/")[0]

    @property
    def slots(self) -> tuple[str, ...]:
        """The slot names of the converted prompt, in order."""
        return tuple(SLOT_PATTERN.findall(self.text or ""))


@dataclass
class PsTemplates:
    """Every template read from the sdist, and how many were skipped, by reason."""

    templates: list[PsTemplate] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)


def ps_family_split(family: str) -> str:
    """``heldout`` or ``fit`` for a promptsource dataset family, by a stable hash.

    Example:
        >>> ps_family_split("super_glue") in ("fit", "heldout")
        True
    """
    return hashed_split("verify-promptsource-split", family, _HELDOUT_SHARE)


# --- download and read ---------------------------------------------------------------------------------


def promptsource_cache_dir(path: str | Path | None = None) -> Path:
    """Where the sdist is kept: ``path``, else ``$COIN_PROMPTSOURCE_DIR``, else ``~/.cache/coin-toolkit/promptsource``."""
    return cache_folder(path, PROMPTSOURCE_CACHE_ENV, DEFAULT_PROMPTSOURCE_CACHE)


def fetch_promptsource(directory: str | Path | None = None) -> Path:
    """The promptsource sdist in the cache folder, downloaded from PyPI on first use.

    Raises:
        PeerDataError: the download failed (offline); the message names the folder and the command.
    """
    folder = promptsource_cache_dir(directory)
    sdist = folder / PROMPTSOURCE_SDIST
    if sdist.is_file():
        return sdist
    folder.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", PROMPTSOURCE_REQUIREMENT, "--no-deps", "--no-binary", ":all:",
               "--ignore-requires-python", "--quiet", "-d", str(folder)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not sdist.is_file():
        last = (result.stderr.strip().splitlines() or ["no sdist was saved"])[-1]
        raise PeerDataError(
            f"could not download {PROMPTSOURCE_REQUIREMENT} into {folder} ({last}). Offline: on a machine with "
            f"PyPI access run `{DOWNLOAD_COMMAND}`, copy {PROMPTSOURCE_SDIST} into {folder} (or set "
            f"${PROMPTSOURCE_CACHE_ENV}=DIR), and rerun; or skip the peer sources with --no-peer."
        )
    return sdist


class _TagLoader(yaml.SafeLoader):
    """A safe loader that reads promptsource's ``!Template`` and ``!TemplateMetadata`` tags as mappings."""


_TagLoader.add_multi_constructor("!", lambda loader, _suffix, node: loader.construct_mapping(node, deep=True))


def read_templates(sdist: str | Path) -> PsTemplates:
    """Every template of every ``templates.yaml`` in the sdist, in path order, read with a safe YAML loader.

    Raises:
        PeerDataError: the file is not a readable tarball, or holds no templates.
    """
    out = PsTemplates()
    try:
        with tarfile.open(sdist, "r:gz") as archive:
            members = sorted((m for m in archive.getmembers() if m.isfile() and _TEMPLATES_FILE.match(m.name)),
                             key=lambda m: m.name)
            for member in members:
                data = yaml.load(archive.extractfile(member).read().decode("utf-8"), Loader=_TagLoader) or {}
                dataset = _TEMPLATES_FILE.match(member.name).group(1)
                for _, raw in sorted((data.get("templates") or {}).items()):
                    template = _template(dataset, raw)
                    out.templates.append(template)
                    if template.skipped:
                        out.skipped[template.skipped] += 1
    except (tarfile.TarError, OSError, EOFError, yaml.YAMLError) as err:
        raise PeerDataError(f"{sdist}: not a readable promptsource sdist ({err}); delete it and rerun") from None
    if not out.templates:
        raise PeerDataError(f"{sdist}: no promptsource/templates/**/templates.yaml inside; delete it and rerun")
    return out


def _template(dataset: str, raw: dict) -> PsTemplate:
    metadata = raw.get("metadata") or {}
    jinja = str(raw.get("jinja") or "")
    prompt, bar, target = jinja.partition("|||")
    text, skipped = convert_prompt(prompt) if bar else (None, "no_target")
    languages = metadata.get("languages")
    english = ("en" in languages) if languages else _looks_english(text or prompt)
    return PsTemplate(dataset=dataset, name=str(raw.get("name") or ""), text=text, skipped=skipped,
                      choices=split_choices(raw.get("answer_choices")), target=normalise_jinja(target),
                      original_task=bool(metadata.get("original_task")), english=english)


def normalise_jinja(expression: str) -> str:
    """Jinja with runs of whitespace made one space, and none just inside ``{{ }}`` and ``{% %}``.

    Example:
        >>> normalise_jinja("  {{ answer_choices[label] }}\\n")
        '{{answer_choices[label]}}'
    """
    text = " ".join(expression.split())
    return re.sub(r"(\{[{%])\s+|\s+([%}]\})", lambda m: m.group(1) or m.group(2), text)


def split_choices(choices: str | None) -> tuple[str, ...]:
    """Answer choices as a tuple (``"No ||| Yes"`` -> ``('No', 'Yes')``); ``()`` for none.

    Example:
        >>> split_choices("No ||| Yes")
        ('No', 'Yes')
    """
    return tuple(c.strip() for c in str(choices).split("|||")) if choices else ()


def _looks_english(text: str) -> bool:
    """At most a tenth of the letters outside ASCII (promptsource 0.2.3 records no language)."""
    letters = [c for c in text if c.isalpha()]
    return sum(not c.isascii() for c in letters) * 10 <= len(letters)


# --- jinja prompts as templates ------------------------------------------------------------------------

_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
_FIELD = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_LITERAL = re.compile(r"\{\{\s*(?:\"([^\"\\{}]*)\"|'([^'\\{}]*)')\s*\}\}")


def convert_prompt(prompt: str) -> tuple[str | None, str | None]:
    """A jinja prompt as a project template, or ``(None, reason)`` when it is not simple.

    Simple means: literal text, ``{{field}}`` (a slot ``{field}``) and ``{{"quoted"}}`` (its text); literal
    braces are escaped. Reasons: ``complex_jinja`` (any other expression or tag), ``no_slot``,
    ``repeated_slot`` (a field used twice: a project slot appears once), ``empty``.

    Example:
        >>> convert_prompt('Is "{{text}}" about drugs? {{"Yes"}} or {{"No"}}?')
        ('Is "{text}" about drugs? Yes or No?', None)
        >>> convert_prompt("{{ answer_choices | join(', ') }} {{text}}")
        (None, 'complex_jinja')
    """
    parts, last = [], 0
    literals = _JINJA.split(prompt)
    if any(mark in literal for literal in literals for mark in ("{{", "{%", "{#")):
        return None, "complex_jinja"  # an unterminated expression or tag
    for match in _JINJA.finditer(prompt):
        parts.append(_escape(prompt[last:match.start()]))
        field_ = _FIELD.fullmatch(match.group(0))
        literal = _LITERAL.fullmatch(match.group(0))
        if field_:
            parts.append("{" + field_.group(1) + "}")
        elif literal:
            parts.append(_escape(literal.group(1) if literal.group(1) is not None else literal.group(2)))
        else:
            return None, "complex_jinja"
        last = match.end()
    parts.append(_escape(prompt[last:]))
    text = "".join(parts).strip()
    if not text:
        return None, "empty"
    if not SLOT_PATTERN.search(text):
        return None, "no_slot"
    try:
        parse_template(text)
    except TemplateError:
        return None, "repeated_slot"
    return text, None


def _escape(literal: str) -> str:
    return literal.replace("{", "{{").replace("}", "}}")


def usable(templates: list[PsTemplate]) -> list[PsTemplate]:
    """Templates that can form pairs: converted, marked ``original_task``, English."""
    return [t for t in templates if t.text and t.original_task and t.english]


def same_task_pairs(templates: list[PsTemplate], per_dataset: int = SAME_TASK_PER_DATASET) -> list[dict]:
    """``equivalent`` pairs: same dataset, same choices (non-empty), same target and the same slot set."""
    groups: dict[tuple, list[PsTemplate]] = {}
    for t in usable(templates):
        if t.choices:
            groups.setdefault((t.dataset, t.choices, t.target, frozenset(t.slots)), []).append(t)
    per: dict[str, list[tuple[PsTemplate, PsTemplate]]] = {}
    for key, group in sorted(groups.items(), key=lambda item: _group_key(item[0])):
        per.setdefault(key[0], []).extend((a, b) for a, b in combinations(group, 2) if a.text != b.text)
    rows = []
    for dataset, pairs in sorted(per.items()):
        pairs.sort(key=lambda p: stable_seed("ps-same", dataset, p[0].name, p[1].name))
        rows += [_row(a.text, b.text, "equivalent", "same_task", a) for a, b in pairs[:per_dataset]]
    return rows


def _group_key(key: tuple) -> tuple:
    dataset, choices, target, slots = key
    return dataset, choices, target, tuple(sorted(slots))


def other_task_pairs(templates: list[PsTemplate], per_dataset: int = OTHER_TASK_PER_DATASET) -> list[dict]:
    """``changed`` pairs: an original template against one of another family of the same split, with
    disjoint answer choices and as many slots, both renamed by position."""
    pool = [t for t in usable(templates) if t.choices]
    by_dataset: dict[str, list[PsTemplate]] = {}
    for t in pool:
        by_dataset.setdefault(t.dataset, []).append(t)
    rows = []
    for dataset, own in sorted(by_dataset.items()):
        own = sorted(own, key=lambda t: stable_seed("ps-other", dataset, t.name))
        made = 0
        for a in own:
            if made >= per_dataset:
                break
            partner = _partner(a, pool)
            if partner is not None:
                rows.append(_row(by_position(a.text), by_position(partner.text), "changed", "other_task", a))
                made += 1
    return rows


def _partner(a: PsTemplate, pool: list[PsTemplate]) -> PsTemplate | None:
    """A template of another family of the same split, with disjoint choices and as many slots (seeded)."""
    choices = {c.lower() for c in a.choices}
    split = ps_family_split(a.family)
    candidates = [b for b in pool if b.family != a.family and ps_family_split(b.family) == split
                  and choices.isdisjoint(c.lower() for c in b.choices) and len(b.slots) == len(a.slots)]
    return candidates[stable_seed("ps-partner", a.dataset, a.name) % len(candidates)] if candidates else None


def promptsource_pairs(templates: list[PsTemplate]) -> list[dict]:
    """Both kinds of pair (see the module table), each with ``split`` and ``family``, in a fixed order;
    a pair of texts already made (in either order) is not made again.

    Returns:
        Rows with ``original``, ``paraphrase``, ``label``, ``kind``, ``split``, ``task_type`` (the
        dataset) and ``family``.
    """
    rows, seen = [], set()
    # Subsets often repeat their dataset's templates ("anli/r1", "anli/r2"): a pair of texts counts once.
    for row in same_task_pairs(templates) + other_task_pairs(templates):
        key = frozenset((row["original"], row["paraphrase"]))
        if key not in seen and len(key) == 2:
            seen.add(key)
            rows.append(row)
    return rows


def _row(original: str, paraphrase: str, label: str, kind: str, template: PsTemplate) -> dict:
    return {"original": original, "paraphrase": paraphrase, "label": label, "kind": kind,
            "split": ps_family_split(template.family), "task_type": template.dataset, "family": template.family}


def load_promptsource_pairs(directory: str | Path | None = None) -> list[dict]:
    """The promptsource pairs, from the sdist in (or downloaded into) ``directory``.

    Raises:
        PeerDataError: the sdist can neither be found nor downloaded, or is unreadable.
    """
    return promptsource_pairs(read_templates(fetch_promptsource(directory)).templates)
