"""Choosing ``--rescore-margin``: how far bfloat16 moves rank scoring's margins, on prompts the benchmark never scores.

    OMP_NUM_THREADS=1 python benchmarks/rescore_margin.py --model smollm2 --threads 1 \
        > benchmarks/results/eval_rescore_margin_tuning.json

The tuning part is disjoint from ``benchmarks/eval.py``'s prompts (the default suite: held-out instructions,
the first examples): every classification task of the embedded corpus, its *training* instructions (the
first ``--max-instructions``, clean and sentence level), and the instances after the default suite's 32
(``--max-examples`` of them). Each prompt is scored with the float32 model and with a bfloat16 copy (rank
scoring, ``normalize=sum``); for each prompt the margin is how far the best option's score leads the
second's. A prediction can differ from float32's only where bfloat16 moved the margin by more than the
margin itself, so the report gives, per prompt: the margin error ``|bf16 margin - float32 margin|``, its
quantiles and maximum, the bfloat16 margins of the prompts whose predictions differ, and for candidate
thresholds the share of prompts that would be rescored and the disagreements left.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform

import torch

from coin_train.evaluate import ScoringConfig, rank_scores, resolve_model, score_margins
from coin_train.suites import (
    CLEAN,
    Example,
    Suite,
    SuiteTask,
    _clean_variants,
    _with_perturbations,
    shared_perturber,
)

SUITE_EXAMPLES = 32  # the default suite's examples per task (coin_train.suites.DEFAULT_MAX_EXAMPLES)
CANDIDATES = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)


def tuning_suite(max_examples: int, max_instructions: int, levels: tuple[str, ...]) -> Suite:
    """Training instructions and later instances of every classification task (no prompt of the default suite)."""
    from coin_data.build import split_instances
    from coin_data.sources import CLASSIFICATION, load_embedded_corpus

    corpus = load_embedded_corpus()
    tasks = []
    for name, spec in corpus.tasks.items():
        if spec.kind != CLASSIFICATION:
            continue
        splits = split_instances(corpus.instances[name], fraction=0.1)
        later = (splits["validation"] + splits["train"])[SUITE_EXAMPLES : SUITE_EXAMPLES + max_examples]
        examples = [Example(inst.id, dict(inst.fields), inst.target) for inst in later]
        task = SuiteTask(name, spec.options, examples, _clean_variants(spec.templates, name, max_instructions))
        tasks.append(_with_perturbations(task, levels, shared_perturber(0)))
    return Suite(name="tuning", levels=levels, tasks=tasks)


def margins(model, half, tokenizer, fmt, suite, batch_size: int) -> list[dict]:
    """Per prompt: the float32 and bfloat16 margins and whether their predictions agree."""
    rows = []
    config = ScoringConfig(batch_size=batch_size)
    for task in suite.tasks:
        texts = [variant.render(e, task.options) for variant in task.instructions for e in task.examples]
        groups = [n for n, _ in enumerate(task.instructions) for _ in task.examples]
        prompts = fmt.encode_prompts(tokenizer, texts)
        options = fmt.encode_targets(tokenizer, list(task.options))
        pad = tokenizer.pad_token_id
        full, screen = (rank_scores(m, prompts, options, pad, config, groups) for m in (model, half))
        for f32, b16, m32, m16 in zip(full, screen, score_margins(full).tolist(), score_margins(screen).tolist()):
            rows.append({"task": task.name, "float32": m32, "bfloat16": m16, "same": int(f32.argmax()) == int(b16.argmax())})
    return rows


def summary(rows: list[dict]) -> dict:
    errors = torch.tensor([abs(r["bfloat16"] - r["float32"]) for r in rows])
    flips = sorted(r["bfloat16"] for r in rows if not r["same"])
    quantiles = {q: round(float(errors.quantile(q)), 4) for q in (0.5, 0.9, 0.99)}
    return {
        "prompts": len(rows), "disagreements": len(flips), "agreement": round(1 - len(flips) / len(rows), 4),
        "margin_error": {"median": quantiles[0.5], "q90": quantiles[0.9], "q99": quantiles[0.99],
                         "max": round(float(errors.max()), 4)},
        "bfloat16_margins_of_disagreements": [round(m, 4) for m in flips],
        "candidates": {str(t): {"rescored_share": round(sum(r["bfloat16"] < t for r in rows) / len(rows), 4),
                                "disagreements_left": sum(m >= t for m in flips)} for t in CANDIDATES},
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--max-examples", type=int, default=16)
    parser.add_argument("--max-instructions", type=int, default=2)
    parser.add_argument("--levels", default="clean,sentence")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from coin_train.modeling import load_for_inference

    levels = tuple(args.levels.split(","))
    assert levels[0] == CLEAN, "the clean level comes first"
    suite = tuning_suite(args.max_examples, args.max_instructions, levels)
    model, tokenizer, fmt = load_for_inference(resolve_model(args.model))
    half = copy.deepcopy(model).to(torch.bfloat16)
    rows = margins(model, half, tokenizer, fmt, suite, args.batch_size)
    print(json.dumps({
        "benchmark": "rescore_margin_tuning", "model": args.model,
        "suite": {"tasks": [t.name for t in suite.tasks], "levels": list(levels), "examples_per_task": args.max_examples,
                  "instructions": "training templates", "examples": f"instances {SUITE_EXAMPLES}.. of each task"},
        "overall": summary(rows),
        "per_task": {task.name: summary([r for r in rows if r["task"] == task.name]) for task in suite.tasks},
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads(),
                    "load_average_1min_5min_15min": [round(x, 2) for x in os.getloadavg()]},
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
