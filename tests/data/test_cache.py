"""The SQLite answer cache: content keys, persistence across connections and processes, call log."""

import sqlite3
import subprocess
import sys

from coin_data.paraphrase.answer_cache import CACHE_FILE, AnswerCache, CachedAnswer, CallRecord, cache_key


def test_key_is_content_addressed():
    parts = {"backend": "openai", "model": "m", "template": "Q: {q}", "k": 2, "sampling": {"temperature": 0.7}}
    assert cache_key(parts) == cache_key(dict(reversed(list(parts.items()))))
    assert len(cache_key(parts)) == 64
    for change in ({"model": "n"}, {"k": 3}, {"template": "Q: {q}?"}, {"sampling": {"temperature": 0.0}}):
        assert cache_key({**parts, **change}) != cache_key(parts)


def test_answers_survive_reopening_and_count(tmp_path):
    with AnswerCache(tmp_path) as cache:
        cache.put("a", CachedAnswer(["Question: {q}", "Ask: {q}"], prompt_tokens=7, completion_tokens=3, cost=0.5,
                                    requests=1, request={"k": 2}))
        cache.put("b", CachedAnswer([], "refusal", "I'm sorry", requests=2))
    with AnswerCache(tmp_path) as cache:
        assert len(cache) == 2 and "a" in cache and "c" not in cache
        hit = cache.get("a")
        assert hit.candidates == ["Question: {q}", "Ask: {q}"]
        assert (hit.failure, hit.prompt_tokens, hit.completion_tokens, hit.cost, hit.request) == (None, 7, 3, 0.5, {"k": 2})
        miss = cache.get("b")
        assert (miss.candidates, miss.failure, miss.detail, miss.requests) == ([], "refusal", "I'm sorry", 2)
        assert cache.get("c") is None


def test_put_replaces_and_calls_are_logged(tmp_path):
    with AnswerCache(tmp_path) as cache:
        cache.put("a", CachedAnswer([], "malformed_json"))
        cache.put("a", CachedAnswer(["x {q}"]))
        cache.log_call(CallRecord("a", "429"))
        cache.log_call(CallRecord("a", "ok", prompt_tokens=10, completion_tokens=4, cost=0.25))
        assert cache.get("a").candidates == ["x {q}"] and len(cache) == 1
        assert cache.spending() == {"calls": 2, "ok_calls": 1, "prompt_tokens": 10, "completion_tokens": 4, "cost": 0.25}


def test_wal_mode_and_commit_visible_to_another_process(tmp_path):
    cache = AnswerCache(tmp_path)
    cache.put("k", CachedAnswer(["P: {p}"]))
    # Another process reads it while this connection is still open: every put is committed at once.
    code = ("import sys; from coin_data.paraphrase.answer_cache import AnswerCache; "
            "print(AnswerCache(sys.argv[1]).get('k').candidates[0])")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "P: {p}"
    mode = sqlite3.connect(str(tmp_path / CACHE_FILE)).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    cache.close()


def test_unicode_and_braces_round_trip(tmp_path):
    text = "Résumé {text} — {{literal}} «?»\n{options_}"
    with AnswerCache(tmp_path / "nested" / "dir") as cache:
        cache.put("u", CachedAnswer([text]))
        assert cache.get("u").candidates == [text]
