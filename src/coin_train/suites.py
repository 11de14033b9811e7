"""Robustness suites: tasks x instructions x perturbation levels, with a fixed set of examples per task.

=============  ==========================================================================================
suite          what it holds
=============  ==========================================================================================
``default``    every classification task of the embedded corpus; the clean instructions are the task's
               ``heldout_templates`` (never used for training); examples are the task's validation-split
               instances first, then the others, capped at ``max_examples``. Runs offline.
``glue``       GLUE validation splits from the Hub (``nyu-mll/glue``), up to 300 examples per task, with
               the 6 instructions per task of ``coin_train/suites/glue.yaml`` (3 task-, 3 role-oriented).
               ``--instructions promptbench`` swaps in the first 3 task- and 3 role-oriented instructions
               (and label words) of an installed ``promptbench`` package, for comparable numbers.
``PATH.yaml``  any suite file in the ``glue.yaml`` format (a Hub dataset or local JSON/CSV files).
=============  ==========================================================================================

Each clean instruction gets one variant per perturbation level, made by :mod:`coin_data.perturb` under
a fixed seed (variant ``i`` for instruction ``i``), never touching slots, the options block or label
words. A variant that cannot be made is recorded in :attr:`SuiteTask.skipped`, never dropped silently.

Example:
    >>> suite = build_suite(SuiteConfig(tasks="sentiment", levels="clean,sentence", max_examples=4))
    >>> task = suite.tasks[0]
    >>> task.name, task.options, len(task.examples), [v.id for v in task.variants("sentence")][:2]
    ('sentiment', ('positive', 'negative'), 4, ['h0@sentence', 'h1@sentence'])
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coin_data.perturb import CLEAN, LEVELS, PerturbConfig, Perturber
from coin_data.templates import Template, TemplateError, parse_template

BUILTIN_SUITES = ("default", "glue")
SUITES_DIR = Path(__file__).parent / "suites"
DEFAULT_MAX_EXAMPLES = 32


class SuiteError(ValueError):
    """A suite cannot be built: unknown name, a task without labels, no instructions, bad suite file."""


# --- data model ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    """One input of a task: its fields (the template slots) and its gold answer (one of the options)."""

    id: str
    fields: Mapping[str, str]
    label: str


@dataclass(frozen=True)
class InstructionVariant:
    """One instruction at one level.

    Attributes:
        id: ``<source_id>`` for clean instructions, ``<source_id>@<level>`` for perturbed ones.
        source_id: the clean instruction it was made from.
        level: ``clean``, ``character``, ``word``, ``sentence`` or ``semantic``.
        template: the instruction template (slots filled per example).
        method: how it was made (``original``, ``typo``, ``synonym``, ``checklist``, ...).
        edits: what changed versus the clean instruction.
    """

    id: str
    source_id: str
    level: str
    template: Template
    method: str = "original"
    edits: tuple[str, ...] = ()

    def render(self, example: Example, options: Sequence[str]) -> str:
        """The instruction with the example's fields and the options block filled in."""
        return self.template.render(example.fields, options=options)


@dataclass
class SuiteTask:
    """A task of a suite: options, fixed examples, and the instruction variants of every level."""

    name: str
    options: tuple[str, ...]
    examples: list[Example]
    instructions: list[InstructionVariant]
    skipped: list[dict] = field(default_factory=list)

    def variants(self, level: str) -> list[InstructionVariant]:
        """The instructions of one level, in clean-instruction order."""
        return [v for v in self.instructions if v.level == level]


@dataclass
class Suite:
    """A robustness suite: tasks, the levels evaluated, and how the perturbations were made."""

    name: str
    levels: tuple[str, ...]
    tasks: list[SuiteTask]
    perturbation: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready description (the ``suite`` block of ``report.json``; instruction texts included)."""
        return {
            "name": self.name,
            "levels": list(self.levels),
            "perturbation": self.perturbation,
            "tasks": {
                task.name: {
                    "options": list(task.options),
                    "examples": len(task.examples),
                    "example_ids": [e.id for e in task.examples],
                    "instructions": {
                        level: [{"id": v.id, "source": v.source_id, "method": v.method, "edits": list(v.edits),
                                 "text": v.template.text} for v in task.variants(level)]
                        for level in self.levels
                    },
                    "skipped": task.skipped,
                }
                for task in self.tasks
            },
        }  # fmt: skip


# --- configuration -------------------------------------------------------------------------------


@dataclass
class SuiteConfig:
    """Which suite to build and how.

    Command: ``coin-train eval --model out/coin --suite default --out eval/coin --max-examples 32``
    """

    # --- what ----------------------------------------------------------------------------------
    suite: str = field(default="default", metadata={"help": "default, glue, or the path of a suite YAML file."})
    tasks: Sequence[str] | str | None = field(
        default=None, metadata={"help": "Task names to keep (comma-separated or a list); default: all."}
    )
    levels: Sequence[str] | str = field(
        default=LEVELS, metadata={"help": "Levels to evaluate: clean, character, word, sentence, semantic."}
    )
    max_examples: int | None = field(
        default=None,
        metadata={"help": f"Examples per task (default: the suite's own cap; {DEFAULT_MAX_EXAMPLES} for default)."},
    )
    max_instructions: int | None = field(
        default=None, metadata={"help": "Keep only the first N clean instructions per task (quick runs)."}
    )
    # --- perturbations -----------------------------------------------------------------------------
    seed: int = field(default=0, metadata={"help": "Perturbation seed (the examples do not depend on it)."})
    paraphraser: str = field(default="rules", metadata={"help": "Paraphraser for the semantic level."})
    instructions: str = field(
        default="suite",
        metadata={"help": "glue only: 'suite' (the suite file's instructions) or 'promptbench' (the first 3 task- "
                  "and 3 role-oriented instructions of an installed promptbench package, with its label words)."},
    )

    def __post_init__(self) -> None:
        if isinstance(self.tasks, str):
            self.tasks = tuple(t.strip() for t in self.tasks.split(",") if t.strip())
        if self.tasks is not None:
            self.tasks = tuple(self.tasks)
        if isinstance(self.levels, str):
            self.levels = tuple(t.strip() for t in self.levels.split(",") if t.strip())
        unknown = [level for level in self.levels if level not in LEVELS]
        if unknown:
            raise SuiteError(f"unknown level(s) {', '.join(unknown)} (choose from {', '.join(LEVELS)})")
        self.levels = tuple(level for level in LEVELS if level in self.levels)  # canonical order
        if not self.levels:
            raise SuiteError(f"levels must name at least one of {', '.join(LEVELS)}")
        if self.instructions not in ("suite", "promptbench"):
            raise SuiteError(f"instructions must be 'suite' or 'promptbench', got {self.instructions!r}")
        if self.max_examples is not None and self.max_examples < 1:
            raise ValueError(f"max_examples must be >= 1, got {self.max_examples}")
        if self.max_instructions is not None and self.max_instructions < 1:
            raise ValueError(f"max_instructions must be >= 1, got {self.max_instructions}")


# --- building ------------------------------------------------------------------------------------


def build_suite(config: SuiteConfig | None = None, perturber: Perturber | None = None) -> Suite:
    """Build the suite named by ``config.suite``, with every perturbed instruction made.

    Args:
        config: suite name, tasks, levels, caps and the perturbation seed.
        perturber: a ready :class:`coin_data.perturb.Perturber` (default: one seeded by ``config.seed``).

    Returns:
        The :class:`Suite`.

    Raises:
        SuiteError: unknown suite or task, a task without a label set, an empty instruction list, or a
            suite file that does not parse; the message says which.

    Example:
        >>> build_suite(SuiteConfig(suite="nope"))
        Traceback (most recent call last):
        ...
        coin_train.suites.SuiteError: unknown suite 'nope': use default, glue, or the path of a suite YAML file
    """
    config = config or SuiteConfig()
    if config.instructions == "promptbench" and config.suite != "glue":
        raise SuiteError("--instructions promptbench applies to the glue suite only")
    if config.suite == "default":
        name, raw_tasks = "default", _default_tasks(config)
    elif config.suite in BUILTIN_SUITES or config.suite.endswith((".yaml", ".yml")):
        path = SUITES_DIR / f"{config.suite}.yaml" if config.suite in BUILTIN_SUITES else Path(config.suite)
        name, raw_tasks = _yaml_tasks(path, config)
    else:
        raise SuiteError(f"unknown suite {config.suite!r}: use {', '.join(BUILTIN_SUITES)}, or the path of a suite YAML file")
    perturber = perturber or shared_perturber(config.seed, config.paraphraser)
    tasks = [_with_perturbations(task, config.levels, perturber) for task in raw_tasks]
    info = {"seed": perturber.config.seed, "paraphraser": perturber.config.paraphraser,
            "sentence_methods": list(perturber.config.sentence_methods)}  # fmt: skip
    return Suite(name=name, levels=tuple(config.levels), tasks=tasks, perturbation=info)


@functools.lru_cache(maxsize=4)
def shared_perturber(seed: int = 0, paraphraser: str = "rules") -> Perturber:
    """One :class:`Perturber` per (seed, paraphraser) in this process.

    WordNet, the embedding model and the embeddings already computed are loaded once, so building
    several suites (or evaluating again in a notebook) does not pay for them twice. Perturbations only
    depend on (seed, level, variant, text), so sharing cannot change any result.
    """
    return Perturber(PerturbConfig(seed=seed, paraphraser=paraphraser))


def _with_perturbations(task: SuiteTask, levels: Sequence[str], perturber: Perturber) -> SuiteTask:
    clean = task.instructions
    variants = list(clean) if CLEAN in levels else []
    for level in levels:
        if level == CLEAN:
            continue
        results = perturber.perturb_all([v.template for v in clean], level, task.options)
        for source, result in zip(clean, results):
            if result.ok:
                template = parse_template(result.text, task.name, f"{source.id}@{level}")
                variants.append(InstructionVariant(f"{source.id}@{level}", source.id, level, template,
                                                   result.method, result.edits))  # fmt: skip
            else:
                task.skipped.append({"instruction": source.id, "level": level, "reason": result.reason})
    return SuiteTask(task.name, task.options, task.examples, variants, task.skipped)


def _select_tasks(available: Sequence[str], wanted: Sequence[str] | None, where: str) -> list[str]:
    if wanted is None:
        return list(available)
    unknown = [name for name in wanted if name not in available]
    if unknown:
        raise SuiteError(f"{where}: unknown task(s) {', '.join(unknown)} (available: {', '.join(available)})")
    return list(dict.fromkeys(wanted))


def _clean_variants(templates: Sequence[Template], task: str, max_instructions: int | None) -> list[InstructionVariant]:
    if not templates:
        raise SuiteError(f"task {task!r} has an empty instruction list: a suite needs at least one instruction per task")
    templates = list(templates)[:max_instructions] if max_instructions else list(templates)
    return [InstructionVariant(t.template_id, t.template_id, CLEAN, t) for t in templates]


def _default_tasks(config: SuiteConfig) -> list[SuiteTask]:
    """The embedded corpus: held-out templates as instructions, validation-split instances first."""
    from coin_data.build import split_instances
    from coin_data.sources import CLASSIFICATION, load_embedded_corpus

    corpus = load_embedded_corpus()
    classification = [name for name, spec in corpus.tasks.items() if spec.kind == CLASSIFICATION]
    if config.tasks is not None:
        generation = [name for name in config.tasks if name in corpus.tasks and name not in classification]
        if generation:
            raise SuiteError(f"suite 'default': task {generation[0]!r} has no label set (it is a generation task); "
                             f"tasks with labels: {', '.join(classification)}")  # fmt: skip
    cap = config.max_examples or DEFAULT_MAX_EXAMPLES
    tasks = []
    for name in _select_tasks(classification, config.tasks, "suite 'default'"):
        spec = corpus.tasks[name]
        splits = split_instances(corpus.instances[name], fraction=0.1)
        ordered = splits["validation"] + splits["train"]
        examples = [Example(inst.id, dict(inst.fields), inst.target) for inst in ordered[:cap]]
        tasks.append(SuiteTask(name, spec.options, examples, _clean_variants(spec.heldout_templates, name, config.max_instructions)))
    return tasks


# --- suite files ---------------------------------------------------------------------------------


def read_suite_file(path: str | Path) -> dict:
    """Read and check a suite YAML file (see ``coin_train/suites/glue.yaml`` for the format).

    Raises:
        SuiteError: missing file, invalid YAML, a task without ``labels`` or ``fields``, an empty
            instruction list, or an instruction whose slots do not match the task's fields.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise SuiteError(f"{path}: suite file not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise SuiteError(f"{path}: invalid YAML: {err}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("tasks"), dict) or not raw["tasks"]:
        raise SuiteError(f"{path}: expected a mapping with a non-empty 'tasks' mapping")
    for name, task in raw["tasks"].items():
        where = f"{path}: task {name!r}"
        if not isinstance(task, dict):
            raise SuiteError(f"{where}: expected a mapping")
        labels = task.get("labels")
        if not labels or not isinstance(labels, (list, dict)) or len(labels) < 2:
            raise SuiteError(f"{where}: no label set: 'labels' must list at least two answer words "
                             "(rank classification and answer parsing need a fixed label set)")  # fmt: skip
        if not isinstance(task.get("fields"), list) or not task["fields"]:
            raise SuiteError(f"{where}: 'fields' must list the input columns")
        instructions = task.get("instructions")
        if not isinstance(instructions, list) or not instructions:
            raise SuiteError(f"{where}: empty instruction list: 'instructions' must list at least one {{id, text}}")
        for index, entry in enumerate(instructions):
            if not isinstance(entry, dict) or not isinstance(entry.get("id"), str) or not isinstance(entry.get("text"), str):
                raise SuiteError(f"{where}: instructions[{index}] needs string fields 'id' and 'text'")
            try:
                parse_template(entry["text"], name, entry["id"], allowed_fields=task["fields"], require_all_fields=True)
            except TemplateError as err:
                raise SuiteError(f"{path}: {err}") from None
    return raw


def _yaml_tasks(path: Path, config: SuiteConfig) -> tuple[str, list[SuiteTask]]:
    raw = read_suite_file(path)
    name = str(raw.get("name") or path.stem)
    tasks = []
    for task_name in _select_tasks(list(raw["tasks"]), config.tasks, f"suite {name!r}"):
        entry = {**{k: v for k, v in raw.items() if k != "tasks"}, **raw["tasks"][task_name]}
        if config.instructions == "promptbench":
            entry["labels"], entry["instructions"] = promptbench_task(task_name)
        labels = entry["labels"]
        options = tuple(labels.values()) if isinstance(labels, dict) else tuple(labels)
        templates = [parse_template(i["text"], task_name, i["id"]) for i in entry["instructions"]]
        examples = _load_examples(task_name, entry, path.parent, config.max_examples or int(entry.get("max_examples", 300)))
        tasks.append(SuiteTask(task_name, tuple(str(o) for o in options), examples,
                               _clean_variants(templates, task_name, config.max_instructions)))  # fmt: skip
    return name, tasks


def _load_examples(task: str, entry: Mapping, base: Path, cap: int) -> list[Example]:
    """Read a task's rows with ``datasets.load_dataset`` and keep a fixed sample of at most ``cap``.

    The sample depends only on the dataset and ``sample_seed`` (default 0), so every level and every
    model sees the same examples.
    """
    import datasets

    dataset, split = entry.get("dataset"), entry.get("split", "validation")
    if not dataset:
        raise SuiteError(f"task {task!r}: no 'dataset' (a Hub id, or json/csv with data_files)")
    data_files = entry.get("data_files")
    if isinstance(data_files, str):
        data_files = str(base / data_files)
    elif isinstance(data_files, dict):
        data_files = {k: str(base / v) for k, v in data_files.items()}
    try:
        rows = datasets.load_dataset(dataset, entry.get("config"), split=split, data_files=data_files)
    except Exception as err:  # noqa: BLE001 - offline machines, missing configs: say which dataset failed
        hint = " (suites on the Hub need network access; the 'default' suite runs offline)" if not data_files else ""
        raise SuiteError(f"task {task!r}: cannot load {dataset}/{entry.get('config')} split {split!r}{hint}: {err}") from None
    labels, label_column = entry["labels"], entry.get("label_column", "label")
    for column in [*entry["fields"], label_column]:
        if column not in rows.column_names:
            raise SuiteError(f"task {task!r}: column {column!r} not in {dataset} (columns: {', '.join(rows.column_names)})")
    order = list(range(len(rows)))
    random.Random(int(entry.get("sample_seed", 0))).shuffle(order)
    examples = []
    for index in order:
        row = rows[index]
        label = _label_word(row[label_column], labels)
        if label is None:  # unlabelled rows (GLUE test-style -1)
            continue
        examples.append(Example(str(row.get("idx", index)), {f: str(row[f]) for f in entry["fields"]}, label))
        if len(examples) == cap:
            break
    if not examples:
        raise SuiteError(f"task {task!r}: no labelled rows in {dataset} split {split!r}")
    return examples


def _label_word(value, labels) -> str | None:
    if isinstance(labels, dict):
        return str(labels[value]) if value in labels else None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(labels[value]) if 0 <= value < len(labels) else None
    return str(value) if str(value) in map(str, labels) else None


# --- PromptBench instruction lists -------------------------------------------------------------------

# How PromptBench lays out each GLUE task's input in place of its {content} slot, and its label words
# (label id 0, 1, ...): needed for numbers comparable with published PromptBench results.
PROMPTBENCH_CONTENT = {
    "sst2": "{sentence}", "cola": "{sentence}",
    "qqp": "Question 1: {question1} Question 2: {question2}",
    "mnli": "Premise: {premise} Hypothesis: {hypothesis}",
    "qnli": "Question: {question} Context: {sentence}",
    "rte": "Sentence 1: {sentence1} Sentence 2: {sentence2}",
    "mrpc": "Sentence 1: {sentence1} Sentence 2: {sentence2}",
    "wnli": "Sentence 1: {sentence1} Sentence 2: {sentence2}",
}  # fmt: skip
PROMPTBENCH_LABELS = {
    "sst2": ["negative", "positive"], "cola": ["unacceptable", "acceptable"],
    "qqp": ["not_equivalent", "equivalent"], "mrpc": ["not_equivalent", "equivalent"],
    "mnli": ["entailment", "neutral", "contradiction"], "qnli": ["entailment", "not_entailment"],
    "rte": ["entailment", "not_entailment"], "wnli": ["not_entailment", "entailment"],
}  # fmt: skip
_PROMPTBENCH_FILES = (("t", "task_oriented.py", "TASK_ORIENTED_PROMPTS"), ("r", "role_oriented.py", "ROLE_ORIENTED_PROMPTS"))


def promptbench_task(task: str, per_kind: int = 3) -> tuple[list[str], list[dict]]:
    """Label words and instructions of a GLUE task from an installed ``promptbench`` package's data files.

    The package is never imported (it pins old versions of transformers and openai): its prompt lists
    are Python literals, read with ``ast``. Install the files with ``pip install --no-deps promptbench``.

    Args:
        task: a GLUE task name.
        per_kind: instructions taken from the task-oriented and from the role-oriented list (first N each).

    Returns:
        ``(labels, [{"id": "t0" | "r0" ..., "text": template}])``; ``{content}`` becomes the task's slots.

    Raises:
        SuiteError: promptbench is not installed, or has no prompts for ``task``.
    """
    spec = importlib.util.find_spec("promptbench")
    if spec is None or not spec.submodule_search_locations:
        raise SuiteError("--instructions promptbench needs the promptbench package's files: pip install --no-deps promptbench")
    if task not in PROMPTBENCH_CONTENT:
        raise SuiteError(f"promptbench instructions exist for GLUE tasks only, not {task!r}")
    folder = Path(next(iter(spec.submodule_search_locations))) / "prompts"
    instructions = []
    for prefix, filename, variable in _PROMPTBENCH_FILES:
        prompts = _literal_assignment(folder / filename, variable).get(task) or []
        if not prompts:
            raise SuiteError(f"{folder / filename}: no {variable}[{task!r}] list")
        for index, prompt in enumerate(prompts[:per_kind]):
            text = prompt.replace("{", "{{").replace("}", "}}").replace("{{content}}", PROMPTBENCH_CONTENT[task])
            instructions.append({"id": f"{prefix}{index}", "text": text})
    return PROMPTBENCH_LABELS[task], instructions


def _literal_assignment(path: Path, variable: str) -> dict:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError) as err:
        raise SuiteError(f"{path}: cannot read promptbench prompts: {err}") from None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == variable for t in node.targets):
            return ast.literal_eval(node.value)
    raise SuiteError(f"{path}: no {variable} = {{...}} assignment")
