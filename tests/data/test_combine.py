"""The combined verdict: rule order, the fitted combiner, the labelled set, and the optional signals.

The held-out test is the issue's acceptance figure: with offline defaults, balanced accuracy >= 0.90 on
the held-out split of ``verify_data/pairs.jsonl`` and true rewordings kept >= 0.85 of the time.
"""

import http.server
import json
import math
import threading
from collections import Counter

import numpy as np
import pytest

from coin_data.verify.combine import (
    FEATURES,
    SIGNS,
    Combiner,
    combiner_features,
    fit_combiner,
    fit_logistic,
    fit_signed_logistic,
)
from coin_data.verify.lexdiff import Finding, LexDiff
from coin_data.verify.signals import BehaviourSignal, JudgeSignal, NLISignal, parse_judgement
from coin_data.templates import parse_template
from coin_data.verify import VerifyConfig, labelled_pairs_path, score_verdicts, verify_candidates


@pytest.fixture(scope="module")
def labelled():
    return [json.loads(line) for line in labelled_pairs_path().read_text(encoding="utf-8").splitlines()]


# --- the rules ----------------------------------------------------------------------------------------


def test_rules_decide_in_order():
    c = Combiner.load()
    flipped = LexDiff(findings=[Finding("negation", "negation added: 'not'")], overlap=0.95)
    assert c.decide(0.99, flipped).deciding == "lexdiff"
    assert "negation added" in c.decide(0.99, flipped).reason
    assert c.decide(0.3, LexDiff(overlap=0.2)).deciding == "embedding"
    assert c.decide(0.3, LexDiff(overlap=0.2), min_similarity=0.2).deciding == "combiner"
    vetoed = c.decide(0.95, LexDiff(overlap=0.5), vetoes=[("nli", "entailment 0.10 < 0.5")])
    assert (vetoed.equivalent, vetoed.deciding, vetoed.reason) == (False, "nli", "nli entailment 0.10 < 0.5")
    kept = c.decide(0.93, LexDiff(overlap=0.9))
    assert kept.equivalent and kept.deciding == "combiner" and kept.probability > 0.5
    swapped = c.decide(0.97, LexDiff(overlap=0.9, dropped=("sentiment",), added=("topic",)))
    assert not swapped.equivalent and swapped.probability < 0.5  # one content word swapped in a near copy
    assert "added ['topic']" in swapped.reason


def test_unmatched_words_never_raise_the_probability():
    c = Combiner.load()
    for weight_name, sign in SIGNS.items():
        assert sign * c.weights[weight_name] >= 0, weight_name
    base = c.probability(combiner_features(0.8, LexDiff(overlap=0.4)))
    more = c.probability(combiner_features(0.8, LexDiff(overlap=0.4, dropped=("a",), added=("b", "c"))))
    assert more < base


def test_features_are_capped():
    diff = LexDiff(dropped=tuple("abcdefg"), added=("x",), overlap=0.5)
    f = combiner_features(0.7, diff)
    assert list(f) == list(FEATURES)
    assert f["dropped"] == 4.0 and f["added"] == 1.0 and f["overlap_x_unmatched"] == 1.5


# --- fitting -----------------------------------------------------------------------------------------


def test_fit_logistic_reaches_the_optimum():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    y = (x @ np.array([1.5, -2.0, 0.0]) + 0.3 + rng.normal(scale=0.5, size=200) > 0).astype(float)
    w, b = fit_logistic(x, y, l2=1.0)
    p = 1 / (1 + np.exp(-(x @ w + b)))
    gradient = np.append(x.T @ (p - y) + 1.0 * w, np.sum(p - y))
    assert np.max(np.abs(gradient)) < 1e-6
    assert w[0] > 1 and w[1] < -1


def test_signed_fit_respects_signs():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(100, 2))
    y = (x[:, 0] - x[:, 1] > 0).astype(float)
    free = fit_signed_logistic(x, y, [0, 0], l2=0.1)
    assert free[1] < 0
    forced = fit_signed_logistic(x, y, [0, 1], l2=0.1)
    assert forced[1] == 0.0 and forced[0] > 0


def test_fit_skips_rows_an_earlier_rule_decides():
    rows = [(0.9, LexDiff(overlap=0.3), True), (0.9, LexDiff(overlap=0.9, added=("x",)), False),
            (0.9, LexDiff(findings=[Finding("negation", "x")]), False), (0.2, LexDiff(), True)]
    combiner = fit_combiner(rows, l2=1.0, min_similarity=0.5)
    assert combiner.meta["rows_fitted"] == 2
    with pytest.raises(ValueError, match="no rows left"):
        fit_combiner(rows[2:], l2=1.0)


def test_coefficients_round_trip(tmp_path):
    c = Combiner.load()
    path = tmp_path / "c.json"
    path.write_text(c.to_json())
    again = Combiner.load(path)
    assert again.weights == pytest.approx(c.weights, abs=1e-6) and again.intercept == pytest.approx(c.intercept)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"weights": {"similarity": 1.0}, "intercept": 0.0}))
    with pytest.raises(ValueError, match="lack feature"):
        Combiner.load(bad)


# --- the labelled set ------------------------------------------------------------------------------------


def test_labelled_set_shape(labelled):
    assert len(labelled) >= 200
    assert {r["label"] for r in labelled} == {"equivalent", "changed"}
    labels = Counter(r["label"] for r in labelled)
    assert abs(labels["equivalent"] - labels["changed"]) <= 0.1 * len(labelled)
    assert {r["split"] for r in labelled} == {"fit", "heldout"}
    split_of = {}
    for r in labelled:  # a fixed split by original: no original on both sides
        assert split_of.setdefault(r["original"], r["split"]) == r["split"]
    kinds = {r["kind"] for r in labelled}
    assert {"negation", "antonym", "quantity", "ordinal", "argument_swap", "label_change", "scope",
            "politeness", "format", "reword", "restructure"} <= kinds
    assert len({r["task_type"] for r in labelled}) >= 20


@pytest.fixture(scope="module")
def source_signals(embedder):
    """Every labelled source (PromptBench downloaded from PyPI into the cache on first use) with the
    verifier's signals per row: ``{source: [(row, (similarity, diff, equivalent)), ...]}``."""
    from coin_data.verify.embedding import EmbeddingCache
    from coin_data.verify.peer_pairs import labelled_sources
    from coin_data.verify.benchmark import pair_signals

    cache = EmbeddingCache(embedder)
    return {name: list(zip(rows, pair_signals(rows, cache))) for name, rows in labelled_sources(peer=True).items()}


def test_shipped_coefficients_record_their_data():
    meta = Combiner.load().meta
    assert set(meta["data"]) == {"own", "promptbench"} and meta["command"] == "python scripts/fit_combiner.py --write"
    assert meta["l2"] in (0.3, 1.0, 3.0, 10.0) and str(meta["l2"]) in meta["cross_validation"]


@pytest.mark.slow
def test_shipped_coefficients_reproduce_from_the_fit_parts(source_signals):
    shipped = Combiner.load()
    names = [name for name, pairs in source_signals.items() for row, _ in pairs if row["split"] == "fit"]
    data = [signals for pairs in source_signals.values() for row, signals in pairs if row["split"] == "fit"]
    refit = fit_combiner(data, l2=shipped.meta["l2"], min_similarity=shipped.min_similarity, groups=names)
    assert refit.meta["rows_fitted"] == shipped.meta["rows_fitted"]
    assert refit.weights == pytest.approx(shipped.weights, abs=1e-4)
    assert refit.intercept == pytest.approx(shipped.intercept, abs=1e-4)


@pytest.mark.slow
def test_peer_heldout_meets_the_targets(source_signals):
    """Issue 15's bars on the held-out PromptBench families (no fit has seen them)."""
    combiner = Combiner.load()
    rates: dict[str, list[bool]] = {}
    for row, (similarity, diff, equivalent) in source_signals["promptbench"]:
        if row["split"] != "heldout":
            continue
        judged = similarity >= 0 and combiner.decide(similarity, diff).equivalent
        kind = row["kind"] if row["kind"] in ("rewording", "other_task") else "minimal_edit"
        rates.setdefault(kind, []).append(judged == equivalent)
    share = {kind: sum(v) / len(v) for kind, v in rates.items()}
    assert share["rewording"] >= 0.85 and share["other_task"] >= 0.95 and share["minimal_edit"] >= 0.90, share
    assert (share["rewording"] + (sum(rates["other_task"]) + sum(rates["minimal_edit"])) /
            (len(rates["other_task"]) + len(rates["minimal_edit"]))) / 2 >= 0.90, share


def test_heldout_split_meets_the_bar(labelled, cache):
    rows = [r for r in labelled if r["split"] == "heldout"]
    assert len(rows) >= 100
    verdicts = verify_candidates([(parse_template(r["original"]), r["paraphrase"]) for r in rows], cache)
    report = score_verdicts(rows, verdicts)
    baseline = score_verdicts(rows, verify_candidates(
        [(parse_template(r["original"]), r["paraphrase"]) for r in rows], cache,
        VerifyConfig(signals=("embedding",), threshold=0.75)))
    assert report.balanced_accuracy >= 0.90, report.format()
    assert report.recall >= 0.85, report.format()
    assert baseline.balanced_accuracy < 0.65  # the single cosine threshold cannot tell them apart


# --- optional signals ------------------------------------------------------------------------------------


def test_nli_takes_the_weaker_direction():
    # Stub scorer: entailment is high unless the hypothesis mentions "least".
    def scorer(pairs):
        return np.array([[0.1, 0.85, 0.05] if "least" not in h else [0.7, 0.1, 0.2] for _, h in pairs])

    nli = NLISignal("stub", threshold=0.5, scorer=scorer, labels=("contradiction", "entailment", "neutral"))
    same, changed = nli.check([None, None], ["", ""], ["Use at most 3 words.", "Use at most 3 words."],
                              ["Keep it to 3 words or fewer.", "Use at least 3 words."])
    assert same.agrees and same.score == pytest.approx(0.85)
    assert not changed.agrees and changed.score == pytest.approx(0.1)
    with pytest.raises(ValueError, match="no 'entailment' label"):
        NLISignal("stub", scorer=scorer, labels=("a", "b", "c")).check([None], [""], ["x"], ["y"])


def test_nli_loads_a_real_cross_encoder(tmp_path):
    """A tiny random-init BERT classifier saved to disk, loaded through sentence-transformers' CrossEncoder."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + "use at most least three words keep it to or fewer".split()
    (tmp_path / "vocab.txt").write_text("\n".join(words) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(tmp_path / "vocab.txt"))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(words), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, num_labels=3,
                        id2label={0: "contradiction", 1: "entailment", 2: "neutral"},
                        label2id={"contradiction": 0, "entailment": 1, "neutral": 2})
    BertForSequenceClassification(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    nli = NLISignal(str(tmp_path), threshold=0.0)
    results = nli.check([None], [""], ["use at most three words"], ["use at least three words"])
    assert nli.entailment_index() == 1
    assert results[0].agrees and 0.0 < results[0].score < 1.0


class _JudgeHandler(http.server.BaseHTTPRequestHandler):
    """A loopback OpenAI-compatible server whose judge says DIFFERENT when instruction B mentions 'least'."""

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = body["messages"][-1]["content"]
        instruction_b = prompt.split("Instruction B:")[1]
        answer = "DIFFERENT" if "least" in instruction_b else "SAME"
        payload = json.dumps({
            "id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": answer}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11},
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def judge_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _JudgeHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def test_judge_over_http(judge_server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    judge = JudgeSignal("openai:judge-model", base_url=judge_server)
    same, changed = judge.check([None, None], ["", ""], ["Use at most 3 words."] * 2,
                                ["Keep it to 3 words or fewer.", "Use at least 3 words."])
    assert (same.agrees, same.score) == (True, 1.0)
    assert (changed.agrees, changed.score) == (False, 0.0)
    assert parse_judgement("Different.") is False and parse_judgement("") is None
    with pytest.raises(ValueError, match="openai:MODEL"):
        JudgeSignal("judge-model")


def test_optional_signal_vetoes_through_verify(judge_server, monkeypatch, cache):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    t = parse_template("Answer in at most three words: {question}")
    # The lexdiff catches this one first; with lexdiff off the judge must.
    candidate = "Answer in at least three words: {question}"
    config = VerifyConfig(signals=("embedding",), threshold=0.1, judge="openai:judge-model",
                          judge_base_url=judge_server)
    verdict = verify_candidates([(t, candidate)], cache, config)[0]
    assert (verdict.verdict, verdict.deciding) == ("not_equivalent", "judge")
    assert verdict.signals["judge"] == 0.0 and "judge" in config.describe()


def test_behaviour_probes_a_causal_lm(tiny_model_dir, torch_single_thread):
    signal = BehaviourSignal(str(tiny_model_dir), probes=2, max_new_tokens=4)
    t = parse_template("Review: {review}\nIs this review positive or negative?\n{options_}")
    prompts = signal.probe_prompts(t, "{review}\nPositive or negative?\n{options_}")
    assert len(prompts) == 2 and all("OPTIONS:" in a and "OPTIONS:" in b for a, b in prompts)
    assert prompts[0][0] != prompts[1][0]  # different probe inputs
    identical, _ = signal.check([t, t], [t.text, "{review}\nPositive or negative?\n{options_}"], ["", ""], ["", ""])
    assert identical.agrees and identical.score == 1.0
    assert not math.isnan(identical.score)
