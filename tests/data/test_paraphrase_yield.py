"""Paraphrase yield of the rules backend under the build's default verifier (issue 15, item 3).

Runs ``benchmarks/yield.py``'s measurement (imported by path: benchmarks are not a package) on the
embedded corpus and on the hand-written FLAN-style templates, tune and held-out families alike.
"""

from __future__ import annotations

from coin_data.build import BuildConfig, paraphrase_requests
from coin_data.embed import EmbeddingCache, SentenceTransformerEmbedder
from coin_data.paraphrase import get_paraphraser
from coin_data.sources import load_embedded_corpus


def test_rules_yield_on_fresh_flan_style_templates_and_embedded_corpus(yield_module):
    groups = {"embedded": paraphrase_requests(load_embedded_corpus(None), BuildConfig())}
    groups.update(yield_module.flan_style_requests(k=2, seed=0))
    assert sorted(groups) == ["embedded", "flan_heldout", "flan_heldout2", "flan_heldout3", "flan_tune", "flan_tune2"]
    paraphraser, cache = get_paraphraser("rules"), EmbeddingCache(SentenceTransformerEmbedder())
    report = {name: yield_module.measure(name, reqs, paraphraser, cache, details=True) for name, reqs in groups.items()}
    assert report["embedded"]["templates"] == 72
    assert report["embedded"]["share"] >= 0.95, report["embedded"]["missing"]
    for name in ("flan_tune", "flan_tune2"):  # the families the rules were developed on
        assert report[name]["share"] >= 0.95, report[name]["missing"]
    # the sets that existed before flan_heldout3, together (measured 109 of 112)
    flan = [report[name] for name in ("flan_tune", "flan_tune2", "flan_heldout", "flan_heldout2")]
    flan_share = sum(r["with_kept_paraphrase"] for r in flan) / sum(r["templates"] for r in flan)
    assert flan_share >= 0.95, [r["missing"] for r in flan]
    for name in ("flan_heldout", "flan_heldout2"):  # families never tuned on (measured 30/32 and 23/24)
        assert report[name]["share"] >= 0.9, report[name]["missing"]
    # issue 15 item 3's fresh families, measured once after that item's changes: 26/32, below the 95 % target
    # (23/32 before them); the bound only guards against a regression
    assert report["flan_heldout3"]["share"] >= 0.8, report["flan_heldout3"]["missing"]
    for result in report.values():
        # every template without a kept paraphrase is counted under a cause, per task
        assert sum(result["without_paraphrase_by_cause"].values()) == result["templates"] - result["with_kept_paraphrase"]
        assert sum(result["without_paraphrase_by_task"].values()) == result["templates"] - result["with_kept_paraphrase"]
        assert all(m["cause"] for m in result["missing"])
        assert result["nothing_to_reword"] == sum(m["nothing_to_reword"] for m in result["missing"])


# A tiny file in FLAN's templates.py format (invented tasks and sentences): "delta" falls in the held-out
# third by the SHA-256 split, "gamma" and "epsilon" in the fit part.
_FLAN_FORMAT = '''
PATTERNS = {
    "gamma": [
        ("{story}\\n\\nWhich colour did the story mention most often?", "{answer}"),
        ("Read the story and name the colour it mentions most often.\\n\\n{story}", "{answer}"),
        ("{story}", "{answer}"),
    ],
    "delta": [
        ("{label}?\\n{options_}", "{answer}"),
        ("Is the tide " + "coming in? {report}", "{answer}"),
    ],
    "epsilon": [
        ("Count the birds in {field}.", "{count}"),
        ("Count the birds in {field}.", "{count}"),
        ("Compare {field} with {field} again.", "{count}"),
    ],
}
'''


def test_flan_published_sources_split_tasks_by_hash_and_count_templates(yield_module, tmp_path):
    path = tmp_path / "templates.py"
    path.write_text(_FLAN_FORMAT, encoding="utf-8")
    groups, unusable = yield_module.flan_published_requests(path, k=2, seed=0)
    fit, heldout = groups["flan_published_fit"], groups["flan_published_heldout"]
    assert [(r.template.task, r.template.template_id) for r in fit] == [
        ("gamma", "p0"), ("gamma", "p1"), ("gamma", "p2"), ("epsilon", "p0")]  # the exact duplicate is dropped
    assert [r.template.text for r in heldout] == ["{label}?\n{options_}", "Is the tide coming in? {report}"]
    assert unusable == 0  # the loader already leaves out the pattern with a slot used twice
    assert all(r.protected_words == () and r.k == 2 for r in fit + heldout)
    paraphraser, cache = get_paraphraser("rules"), EmbeddingCache(SentenceTransformerEmbedder())
    report = {name: yield_module.measure(name, reqs, paraphraser, cache, details=True) for name, reqs in groups.items()}
    assert report["flan_published_fit"]["templates"] == 4
    assert report["flan_published_heldout"]["templates"] == 2
    # no word outside the slots ("{story}", "{label}?"): nothing to reword, in ``share`` but not in ``share_with_words``
    assert report["flan_published_fit"]["nothing_to_reword"] == 1
    assert report["flan_published_heldout"]["nothing_to_reword"] == 1
    for result in report.values():
        worded = result["templates"] - result["nothing_to_reword"]
        assert result["share_with_words"] == round(result["with_kept_paraphrase"] / worded, 4)
    wordless = [m for result in report.values() for m in result["missing"] if m["nothing_to_reword"]]
    assert sorted(m["template"] for m in wordless) == ["{label}?\n{options_}", "{story}"]
    assert {m["cause"] for m in wordless} == {"rules: nothing to reword (no words outside slots)"}
    total = yield_module.overall(report)
    assert (total["templates"], total["nothing_to_reword"]) == (6, 2)
