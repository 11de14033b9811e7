"""Fresh FLAN-format fixtures for template recovery (written for issue 15; not the ones induction was tuned on).

Every template and every field value is invented here. The fixtures aim at the cases where a slot boundary
is hard to place from rendered rows alone:

- values quoted by the template (``"{question}"``, ``'{term}'``), set in brackets (``[{q}]``, ``({title})``,
  ``<{term}>``) or between dashes (``-- {passage} --``, ``-{review}-``);
- values that always end with the same character glued to varying text: questions with ``?``, sentences with
  ``.``, film titles with a year ``(1987)``; values with quotes or brackets inside;
- templates of one task that differ only in punctuation.

Not a test module: ``test_flan_edges.py`` and ``benchmarks/induction.py`` load it by path. Seeds below
:data:`HELD_OUT_FIRST_SEED` are for development; the held-out seeds are only ever measured.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from pathlib import Path

from coin_data.templates import parse_template

HELD_OUT_FIRST_SEED = 9000  # seeds >= this were never looked at while developing the method

SYLLABLES = ["bo", "ke", "tran", "mu", "sil", "av", "dre", "no", "ph", "lis", "cor", "un", "ze", "gal", "ri",
             "het", "op", "wa", "fin", "qu", "es", "tal", "ym", "brod"]
NOUNS = ["lantern", "harbour", "meadow", "engine", "letter", "garden", "tower", "market", "violin", "glacier"]
VERBS = ["builds", "paints", "carries", "sells", "repairs", "watches", "hides", "measures", "finds"]
STARTS = ["Which", "What", "Why", "How", "Who", "Where", "When"]

# task -> (options (None: generation), templates). Slots name the field each value comes from.
TASKS: dict[str, tuple[tuple[str, ...] | None, list[str]]] = {
    "askq": (None, [
        "Question: {question}\nPassage: {passage}\nAnswer:",
        "{passage}\n\nAnswer the question \"{question}\" using the passage.",
        "Read the passage -- {passage} -- and answer: {question}",
        "[{question}]\n{passage}\nReply briefly.",
        "Here is a question: {question} A short phrase would answer it.\n\n{passage}",
        "Here is a question: {question} A short phrase would answer it!\n\n{passage}",
    ]),
    "film": (("positive", "negative"), [
        "Film: {title}\nReview: {review}\nIs the review positive or negative?\n{options_}",
        "\"{review}\"\nThis was written about {title}. How did the writer feel?\n{options_}",
        "What did the critic think of {title}?\n\n-{review}-\n\n{options_}",
        "Review of ({title}): {review}\nDid the critic like it?\n{options_}",
        "Review of ({title}): {review}\nDid the critic like it.\n{options_}",
    ]),
    "define": (("yes", "no"), [
        "Does the word \"{term}\" fit in this sentence?\n{sentence}\n{options_}",
        "Sentence: {sentence}\nWord: {term}\nIs the word used correctly?\n{options_}",
        "Is '{term}' used correctly in \"{sentence}\"?\n{options_}",
        "{sentence}\nIn the sentence above, is <{term}> used correctly?\n{options_}",
        "{sentence}\nIn the sentence above: is <{term}> used correctly?\n{options_}",
    ]),
    "headline": (None, [
        "{text}\n\nWrite a headline for the text above.",
        "Text: {text}\nHeadline:",
        "Write a headline for this article -- {text}",
        "Write a headline for this article: \"{text}\"",
        "Write a headline for this article: \"{text}\".",
    ]),
    "pickone": (None, [
        "Answer this question: {question}\n{options_}",
        "Pick the right answer -- {question}\n\n{options_}",
        "Q: \"{question}\"\nChoose one:\n{options_}",
        "Q: \"{question}\"\nChoose one!\n{options_}",
    ]),
}

NOISE = [
    "Answr this qestion: {question}",
    "{passage} ?? {question}",
    "Translate into Spanish: the lantern is bright.",
    "",
]


def _word(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3)))


def _sentence(rng: random.Random) -> str:
    """A sentence ending with '.', sometimes with a quotation or a bracket inside."""
    kind = rng.random()
    if kind < 0.3:
        return f"The {_word(rng)} {rng.choice(VERBS)} a {rng.choice(NOUNS)} near {_word(rng).title()}."
    if kind < 0.5:
        return f"{_word(rng).title()} said \"{_word(rng)} {_word(rng)}\" to the {rng.choice(NOUNS)}."
    if kind < 0.7:
        return f"A {rng.choice(NOUNS)} ({_word(rng)}) {rng.choice(VERBS)} the {_word(rng)}."
    return f"{_word(rng).title()} {rng.choice(VERBS)} {_word(rng)} and {_word(rng)} every {rng.choice(NOUNS)}."


def _question(rng: random.Random) -> str:
    """A question: always ends with '?' glued to a varying word; sometimes quotes a word."""
    if rng.random() < 0.2:
        return f"What does \"{_word(rng)}\" mean in {_word(rng).title()}?"
    return f"{rng.choice(STARTS)} {rng.choice(VERBS)} the {_word(rng)} of {_word(rng).title()}?"


def _title(rng: random.Random) -> str:
    """A film title with its year: always ends with ')'."""
    return f"{_word(rng).title()} {_word(rng).title()} ({rng.randint(1950, 2024)})"


def field_value(field: str, rng: random.Random) -> str:
    if field == "question":
        return _question(rng)
    if field == "passage":
        return " ".join(_sentence(rng) for _ in range(rng.randint(2, 4)))
    if field == "title":
        return _title(rng)
    if field == "review":
        return " ".join(_sentence(rng) for _ in range(rng.randint(1, 3)))
    if field == "term":
        return _word(rng)
    if field == "sentence":
        return _sentence(rng)
    if field == "text":
        return " ".join(_sentence(rng) for _ in range(rng.randint(3, 5)))
    raise ValueError(field)


def _fields_of(template: str) -> list[str]:
    return [name for name in re.findall(r"\{(\w+)\}", template) if name != "options_"]


def make_rows(seed: int, rows_per_template: tuple[int, int] = (10, 18), noise: int = 4) -> list[dict]:
    """Rows of every task in :data:`TASKS` (each template a random number of rows) plus noise rows, shuffled.

    Returns:
        Dicts with ``inputs``, ``targets``, ``task`` and ``truth`` (``{"template": i, "fields": {...}}``
        or ``{"noise": True}``).
    """
    return _fixture_rows(TASKS, random.Random(seed), field_value, rows_per_template, noise)


def _fixture_rows(tasks: dict, rng: random.Random, value_of, rows_per_template: tuple[int, int], noise: int,
                  always: tuple[str, int] | None = None) -> list[dict]:  # fmt: skip
    """The rows of ``tasks`` (see :func:`make_rows`), field values drawn by ``value_of(name, rng)``.

    ``always``: ``(task, template index)`` whose first field is drawn again until it carries a stock phrase.
    """
    rows: list[dict] = []
    for task, (options, templates) in tasks.items():
        fields = list(dict.fromkeys(name for text in templates for name in _fields_of(text)))
        task_rows = []
        for index, text in enumerate(templates):
            template = parse_template(text, task, f"t{index}")
            for _ in range(rng.randint(*rows_per_template)):
                values = {name: value_of(name, rng) for name in fields}
                while always == (task, index) and not _carries_stock(values[fields[0]]):
                    values[fields[0]] = value_of(fields[0], rng)
                row_options = options or tuple(dict.fromkeys(_word(rng) for _ in range(3)))
                target = rng.choice(row_options) if options or "{options_}" in text else _word(rng)
                inputs = template.render(values, row_options)
                used = {name: values[name] for name in template.field_slots}
                task_rows.append({"inputs": inputs, "targets": target, "task": task,
                                  "truth": {"template": index, "fields": used}})
        for n in range(noise):
            values = {"question": _question(rng), "passage": _sentence(rng)}
            inputs = NOISE[n % len(NOISE)].format(**values)
            task_rows.append({"inputs": inputs, "targets": _word(rng), "task": task, "truth": {"noise": True}})
        rng.shuffle(task_rows)
        rows.extend(task_rows)
    return rows


# --- stock phrases: text that many (not all) values of a field carry --------------------------------------
# Written after held-out seed 9007 showed the kind (a stock phrase of the field text read as a template);
# these tasks, templates and phrases are new, and their seeds are tuning seeds (see make_stock_rows).

STOCK_TASKS: dict[str, tuple[tuple[str, ...] | None, list[str]]] = {
    "recipe": (None, [
        "Recipe: {recipe}\nWhat is the main ingredient?",
        "{recipe}\n\nName the main ingredient of this dish.",
        "Which ingredient matters most here? [{recipe}]",
        "Read this recipe -- {recipe} -- then name its main ingredient.",
    ]),
    "almanac": (("true", "false"), [
        "Claim: {claim}\nTrue or false?\n{options_}",
        "Is it so that {claim}\n\n{options_}",
        "\"{claim}\" -- is this statement correct?\n{options_}",
        "Decide whether this holds ({claim}) and answer.\n{options_}",
        "Decide whether this holds ({claim}) and answer!\n{options_}",
    ]),
    "riddle": (None, [
        "Riddle: {riddle}\nClue: {clue}\nSolve it:",
        "{clue}\n\nWith that clue, solve: \"{riddle}\"",
        "Solve the riddle <{riddle}> using this clue: {clue}",
    ]),
}
FOODS = ["barley", "lentils", "saffron", "walnuts", "quince", "fennel", "rye", "plums"]


def _recipe_sentence(rng: random.Random) -> str:
    """A recipe sentence; a third of them carry the stock phrase ``as the old cookbook says``."""
    if rng.random() < 0.33:
        return f"Stir the {rng.choice(FOODS)} into the {_word(rng)} as the old cookbook says."
    return f"{rng.choice(['Chop', 'Boil', 'Roast', 'Soak'])} the {rng.choice(FOODS)} with {_word(rng)}."


def stock_value(field: str, rng: random.Random) -> str:
    """Field text of :data:`STOCK_TASKS`; many values share a stock phrase at their start or inside."""
    if field == "recipe":
        text = " ".join(_recipe_sentence(rng) for _ in range(rng.randint(2, 4)))
        return ("In a large bowl, " + text[0].lower() + text[1:]) if rng.random() < 0.4 else text
    if field == "claim":
        claim = f"the {_word(rng)} {rng.choice(VERBS)} {rng.randint(2, 90)} {rng.choice(NOUNS)}s"
        if rng.random() < 0.45:
            return f"it is well known that {claim}."
        if rng.random() < 0.4:
            return f"{claim}, as the almanac says."
        return claim[0].upper() + claim[1:] + "."
    if field == "riddle":
        if rng.random() < 0.5:
            return f"What has a {rng.choice(NOUNS)} but cannot {_word(rng)}?"
        return f"Why does the {_word(rng)} {rng.choice(VERBS)} the {rng.choice(NOUNS)}?"
    if field == "clue":
        return f"Think of {_word(rng)}." if rng.random() < 0.5 else f"It rhymes with {_word(rng)}."
    raise ValueError(field)


def make_stock_rows(seed: int, always: tuple[str, int] | None = None) -> list[dict]:
    """Rows of :data:`STOCK_TASKS` (same layout as :func:`make_rows`); seeds are tuning seeds.

    Args:
        seed: the random seed.
        always: ``(task, template index)`` whose rows all carry the stock phrase of their first field
            (values drawn again until they do): the rows alone cannot tell the phrase from template text.
    """
    return _fixture_rows(STOCK_TASKS, random.Random(seed), stock_value, (10, 18), 4, always)


def _carries_stock(value: str) -> bool:
    return any(p in value for p in ("as the old cookbook says", "it is well known that", "as the almanac says",
                                    "What has a "))


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "truth"}) + "\n" for r in rows))
    return path


def shape(text: str) -> str:
    """A template with its slot names blanked (names are not scored) and ``{options}`` as ``{options_}``."""
    return re.sub(r"\{[a-z_0-9]+\}", "{}", text)


def score(rows_by_task: dict, truth: dict, corpus, tasks: dict | None = None) -> dict:
    """Exact recovery of templates and rows, and whether every miss was reported.

    Args:
        rows_by_task: what ``read_flan_files`` returned.
        truth: ``where -> truth`` of each row.
        corpus: the built corpus (``corpus.induction`` is the report).
        tasks: the fixture's tasks (:data:`TASKS` by default, :data:`STOCK_TASKS` for :func:`make_stock_rows`).

    Returns:
        counts: ``templates`` (true templates recovered with exactly their text, slot names aside),
        ``templates_total``, ``templates_extra`` (recovered templates that are no true one),
        ``templates_flagged`` (recovered templates reported as ambiguous), ``rows`` (clean rows that became
        an instance with exactly their true values under exactly their true template), ``rows_total``,
        ``misses_unreported`` (clean rows recovered wrongly under a template not reported as ambiguous, or
        clean rows missing from the report), ``noise_reported``, ``noise_total``.
    """
    report = corpus.induction
    tasks = TASKS if tasks is None else tasks
    true = {(task, shape(text)) for task, (_, templates) in tasks.items() for text in templates}
    recovered_templates = {}
    flagged = set()
    for info in report.tasks.values():
        for entry in info.templates:
            key = (info.task, shape(entry.text.replace("{options}", "{options_}")))
            recovered_templates[(entry.task, entry.template_id)] = key
            if entry.ambiguous:
                flagged.add((entry.task, entry.template_id))
    by_where = {}
    for task, instances in corpus.instances.items():
        for inst in instances:
            base = report.base_task(task)
            index = int(inst.id.rsplit("-", 1)[1])
            by_where[rows_by_task[base][index].where] = (task, inst, report.template_of(inst.id))
    rows = misses_unreported = 0
    clean = {w: t for w, t in truth.items() if not t.get("noise")}
    for where, t in clean.items():
        if where not in by_where:
            continue  # unrecovered: counted in the report with a reason
        task, inst, template_id = by_where[where]
        got_shape = recovered_templates.get((task, template_id), (None, None))[1]
        true_text = tasks[report.base_task(task)][1][t["template"]]
        got_values = sorted(v for k, v in inst.fields.items() if k != "options")
        if got_shape == shape(true_text) and got_values == sorted(t["fields"].values()):
            rows += 1
        elif (task, template_id) not in flagged:
            misses_unreported += 1
    noise = [w for w, t in truth.items() if t.get("noise")]
    found = set(recovered_templates.values())
    return {
        "templates": len(true & found), "templates_total": len(true), "templates_extra": len(found - true),
        "templates_flagged": len(flagged), "rows": rows, "rows_total": len(clean),
        "misses_unreported": misses_unreported,
        "noise_reported": sum(1 for w in noise if w not in by_where), "noise_total": len(noise),
    }


def true_counts(rows: list[dict]) -> Counter:
    """Rows per (task, template index) in a fixture."""
    return Counter((r["task"], r["truth"]["template"]) for r in rows if "template" in r["truth"])
