"""Paraphrase yield of the offline ``rules`` paraphraser: templates that get at least one kept paraphrase.

    python benchmarks/yield.py                       # embedded corpus + fresh FLAN-style templates; JSON
    python benchmarks/yield.py --k 2 --seed 0        # the build's defaults (what the numbers below use)
    python benchmarks/yield.py --details             # also every template without a kept paraphrase
    python benchmarks/yield.py --flan-templates flan_templates.py   # also FLAN's own published templates

FLAN's template list is not shipped (its text is FLAN's); fetch it once with
``curl -L -o flan_templates.py https://raw.githubusercontent.com/google-research/FLAN/main/flan/templates.py``.

Each template is paraphrased exactly as ``coin-data build`` does it (one request, k candidates, the
task's label words protected) and every candidate goes through the build's default verifier
(:func:`coin_data.verify.verify_candidates`, thresholds untouched). Sources:

- ``embedded``: the training templates of the embedded corpus (72 templates, 12 tasks);
- ``flan_tune``: fresh FLAN-style templates (``benchmarks/data/flan_style_templates.yaml``) of the task
  families the rules were developed against;
- ``flan_tune2``: six more families, written later to look for general rewordings on (tuning too);
- ``flan_heldout``: the same kind of templates for task families never looked at while developing;
- ``flan_heldout2``: six more families written before the later rewordings, never looked at (the
  families of ``flan_heldout`` had been measured once by then);
- ``flan_heldout3``: eight more families (issue 15 item 3), written and committed before that item's
  rules changes and measured only once they were final;
- ``flan_published_fit`` / ``flan_published_heldout`` (only with ``--flan-templates``): every inputs
  pattern of FLAN's published ``templates.py`` (read with :func:`~coin_data.sources.flan_patterns.load_patterns_file`,
  never imported), its tasks split by a stable hash of the task name, one in three held out
  (:func:`flan_published_part`). The file names no label words, so nothing is protected.
  Without the flag both are listed under ``skipped`` with the command that fetches the file.

Per source: templates, templates with >= 1 kept paraphrase and their share, and for the others why
(the backend's failure, or the verdicts of their candidates). ``nothing_to_reword`` counts the templates
with no word at all outside their slots (``{question}?``, ``{context}\n{options_}``: no backend can reword
them); they stay in ``share``, and ``share_with_words`` is the share among the others. Templates whose only
words are field labels ("Premise: {premise}\nAnswer:") are not among them: the rules reword some labels.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import sys
import time
from collections import Counter
from pathlib import Path

import yaml
from tqdm import tqdm

from coin_data.build import BuildConfig, paraphrase_requests
from coin_data.embed import EmbeddingCache, SentenceTransformerEmbedder
from coin_data.paraphrase import ParaphraseRequest, get_paraphraser
from coin_data.paraphrase.rules import nothing_to_reword
from coin_data.negatives import stable_seed
from coin_data.sources import load_embedded_corpus
from coin_data.sources.flan_patterns import load_patterns_file
from coin_data.templates import TemplateError, parse_template
from coin_data.verify import KEPT, VerifyConfig, verify_candidates
from coin_data.views import label_words

FLAN_STYLE = Path(__file__).resolve().parent / "data" / "flan_style_templates.yaml"
FLAN_TEMPLATES_URL = "https://raw.githubusercontent.com/google-research/FLAN/main/flan/templates.py"
FLAN_PUBLISHED = ("flan_published_fit", "flan_published_heldout")


def flan_style_requests(k: int, seed: int, path: Path = FLAN_STYLE) -> dict[str, list[ParaphraseRequest]]:
    """Requests for the fresh FLAN-style templates, grouped by split (``flan_tune``, ``flan_heldout``)."""
    groups: dict[str, list[ParaphraseRequest]] = {}
    for task in yaml.safe_load(path.read_text(encoding="utf-8"))["tasks"]:
        protected = label_words(task["options"])
        for index, text in enumerate(task["templates"]):
            template = parse_template(text, task["name"], f"t{index}")
            request_seed = stable_seed(seed, task["name"], template.template_id) % (2**31)
            groups.setdefault(f"flan_{task['split']}", []).append(ParaphraseRequest(template, k, protected, request_seed))
    return groups


def flan_published_part(task: str) -> str:
    """``flan_published_heldout`` for one task in three (by SHA-256 of its name), else ``flan_published_fit``.

    Example:
        >>> flan_published_part("gamma"), flan_published_part("delta")
        ('flan_published_fit', 'flan_published_heldout')
    """
    return FLAN_PUBLISHED[int(hashlib.sha256(task.encode("utf-8")).hexdigest(), 16) % 3 == 0]


def flan_published_requests(path: str | Path, k: int, seed: int) -> tuple[dict[str, list[ParaphraseRequest]], int]:
    """Requests for every inputs pattern of a FLAN ``templates.py`` (template ids ``p0``, ``p1``, ... per task),
    grouped by :func:`flan_published_part`; also how many patterns are not valid templates (skipped)."""
    groups: dict[str, list[ParaphraseRequest]] = {name: [] for name in FLAN_PUBLISHED}
    unusable = 0
    for task, patterns in load_patterns_file(path).items():
        for index, pattern in enumerate(patterns):
            try:
                template = parse_template(pattern.inputs, task, f"p{index}")
            except TemplateError:
                unusable += 1
                continue
            request_seed = stable_seed(seed, task, template.template_id) % (2**31)
            groups[flan_published_part(task)].append(ParaphraseRequest(template, k, (), request_seed))
    return groups, unusable


def measure(name: str, requests: list[ParaphraseRequest], paraphraser, cache, details: bool) -> dict:
    """Paraphrase and verify ``requests``; count templates with a kept paraphrase and why the others have none."""
    start, cpu = time.perf_counter(), time.process_time()
    with tqdm(total=len(requests), desc=name, unit="template", file=sys.stderr) as bar:
        results = paraphraser.paraphrase(requests, progress=bar.update)
    paraphrase_seconds, paraphrase_cpu = time.perf_counter() - start, time.process_time() - cpu
    pairs = [(r.request.template, c) for r in results for c in r.candidates]
    verdicts = iter(verify_candidates(pairs, cache, VerifyConfig()))
    with_kept, causes, per_task, missing = 0, Counter(), {}, []
    wordless = sum(nothing_to_reword(r.template.text) for r in requests)
    candidate_verdicts = Counter()
    for result in results:
        mine = [next(verdicts) for _ in result.candidates]
        candidate_verdicts.update(v.verdict for v in mine)
        task = per_task.setdefault(result.request.template.task, {"templates": 0, "without": 0})
        task["templates"] += 1
        if any(v.verdict == KEPT for v in mine):
            with_kept += 1
            continue
        task["without"] += 1
        cause = result.failure or "all rejected: " + ", ".join(sorted({v.verdict for v in mine}))
        causes[cause] += 1
        if details:
            missing.append({"where": result.request.template.where, "cause": cause,
                            "nothing_to_reword": nothing_to_reword(result.request.template.text),
                            "template": result.request.template.text,
                            "candidates": [[c, v.verdict, v.reason] for c, v in zip(result.candidates, mine)]})
    out = {
        "templates": len(requests),
        "with_kept_paraphrase": with_kept,
        "share": round(with_kept / max(1, len(requests)), 4),
        "nothing_to_reword": wordless,
        # templates with instruction words only (none of the wordless ones can get a rewording)
        "share_with_words": round(with_kept / max(1, len(requests) - wordless), 4),
        "candidates": len(pairs),
        "candidate_verdicts": dict(sorted(candidate_verdicts.items())),
        "without_paraphrase_by_cause": dict(sorted(causes.items())),
        "without_paraphrase_by_task": {t: c["without"] for t, c in sorted(per_task.items()) if c["without"]},
        "paraphrase_seconds": round(paraphrase_seconds, 2),
        # CPU time of this process: on a shared machine, closer to what the run takes alone than the wall time
        # (an openai: run's server works in another process and is not counted).
        "paraphrase_cpu_seconds": round(paraphrase_cpu, 2),
        "seconds": round(time.perf_counter() - start, 2),
    }
    if details:
        out["missing"] = missing
    return out


def overall(report: dict[str, dict]) -> dict:
    """The sources' counts added up, with the share with and without the templates that have nothing to reword."""
    total = sum(r["templates"] for r in report.values())
    kept = sum(r["with_kept_paraphrase"] for r in report.values())
    wordless = sum(r["nothing_to_reword"] for r in report.values())
    return {"templates": total, "with_kept_paraphrase": kept, "share": round(kept / max(1, total), 4),
            "nothing_to_reword": wordless, "share_with_words": round(kept / max(1, total - wordless), 4)}


def backend_options(args: argparse.Namespace) -> dict:
    """The paraphraser options the command line asks for (no answer cache: every run generates)."""
    options = {"cache_dir": ""} if args.paraphraser != "rules" else {}
    if args.base_url:
        options.update(base_url=args.base_url, concurrency=1, timeout=300.0)  # one local server: one call at a time
    if args.paraphraser.startswith("hf:"):
        chosen = {"threads": args.threads, "samples": args.samples, "batch_size": args.batch_size}
        options.update({name: value for name, value in chosen.items() if value})
    return options


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--k", type=int, default=2, help="Candidates per template (the build's default).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--details", action="store_true", help="List every template without a kept paraphrase.")
    parser.add_argument("--paraphraser", default="rules", help="Backend spec, e.g. hf:smollm2 or openai:smollm2.")
    parser.add_argument("--base-url", help="Server of an openai: backend, e.g. http://127.0.0.1:8080/v1.")
    parser.add_argument("--llama-python", help="openai: start llama-cpp-python's server on the bundled SmolLM2 GGUF with "
                        "this interpreter (e.g. .venv-llama/bin/python) and use it; its CPU time is reported.")
    parser.add_argument("--llama-threads", type=int, default=2, help="--llama-python: the server's threads.")
    parser.add_argument("--threads", type=int, default=0, help="hf: torch threads while generating (0: default).")
    parser.add_argument("--samples", type=int, default=0, help="hf: answers sampled per template (0: default).")
    parser.add_argument("--batch-size", type=int, default=0, help="hf: templates generated together (0: default).")
    parser.add_argument("--tasks", help="Comma-separated embedded tasks (default: all).")
    parser.add_argument("--sources", default="embedded,flan_tune,flan_tune2,flan_heldout,flan_heldout2,flan_heldout3,"
                        + ",".join(FLAN_PUBLISHED), help="Which template sets to run.")
    parser.add_argument("--flan-templates", help="FLAN's templates.py (adds flan_published_fit/_heldout); "
                        f"fetch it with: curl -L -o flan_templates.py {FLAN_TEMPLATES_URL}")
    args = parser.parse_args()
    config = BuildConfig(paraphrases_per_template=args.k, seed=args.seed)
    tasks = tuple(args.tasks.split(",")) if args.tasks else None
    groups = {"embedded": paraphrase_requests(load_embedded_corpus(tasks), config)}
    groups.update(flan_style_requests(args.k, args.seed))
    skipped, unusable = {}, 0
    if args.flan_templates:
        published, unusable = flan_published_requests(args.flan_templates, args.k, args.seed)
        groups.update(published)
    else:
        skipped = {name: f"no --flan-templates; fetch with: curl -L -o flan_templates.py {FLAN_TEMPLATES_URL}"
                   for name in FLAN_PUBLISHED if name in args.sources.split(",")}
    groups = {name: reqs for name, reqs in groups.items() if name in args.sources.split(",")}
    with contextlib.ExitStack() as stack:
        server = None
        if args.llama_python:
            sys.path.insert(0, str(Path(__file__).resolve().parent))
            from llama_server import serve_smollm2

            server = stack.enter_context(serve_smollm2(args.llama_python, args.llama_threads))
            args.base_url = server.url
        paraphraser = get_paraphraser(args.paraphraser, **backend_options(args))
        cache = EmbeddingCache(SentenceTransformerEmbedder())
        report = {}
        for name, requests in groups.items():
            before = server.cpu_seconds() if server else 0.0
            report[name] = measure(name, requests, paraphraser, cache, args.details)
            if server:
                report[name]["server_cpu_seconds"] = round(server.cpu_seconds() - before, 2)
    report["all"] = overall(report)
    if skipped:
        report["skipped"] = skipped
    if args.flan_templates:
        report["flan_published_patterns_not_templates"] = unusable
    report["settings"] = {"k": args.k, "seed": args.seed, "paraphraser": args.paraphraser, "tasks": args.tasks,
                          "options": {k: v for k, v in backend_options(args).items() if k != "base_url"},
                          "llama_threads": args.llama_threads if args.llama_python else None,
                          "verifier": "default VerifyConfig()", "python": platform.python_version(),
                          "load_average": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count()}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
