"""The hf:MODEL backend: batching, chat template, answer checks, cache; hf:smollm2 in the slow suite."""

import json
import shutil

import pytest

from coin_data.paraphrase.answer_cache import AnswerCache
from coin_data.paraphrase import ParaphraseRequest, get_paraphraser
from coin_data.paraphrase.hf import ANSWER_PREFIX, Generation, HFParaphraser
from coin_data.paraphrase.prompt import SYSTEM_PROMPT
from coin_data.templates import parse_template, slot_lock_violation

FAILURES = {"malformed_json", "wrong_count", "refusal", "executed_instruction", "slot_changed"}


def requests_for(n: int, k: int = 2) -> list[ParaphraseRequest]:
    return [ParaphraseRequest(parse_template(f"Review {i}: {{review}}\nPositive or negative?\n{{options_}}",
                                             "sentiment", f"t{i}"), k, ("positive", "negative"), seed=i)
            for i in range(n)]


class Spy:
    """Wraps ``HFParaphraser.generate`` to record the batches it was given."""

    def __init__(self, backend):
        self.batches, self._generate = [], backend.generate
        backend.generate = self

    def __call__(self, conversations):
        self.batches.append(list(conversations))
        return self._generate(conversations)


def test_tiny_model_batches_uses_chat_template_and_reports_failures(tiny_model_dir, tmp_path, torch_single_thread):
    backend = HFParaphraser(str(tiny_model_dir), batch_size=2, max_new_tokens=6, cache_dir=str(tmp_path))
    spy = Spy(backend)
    requests = requests_for(3)
    results = backend.paraphrase(requests)
    # A random-init model writes noise: every template fails with a reason, after one batched re-ask.
    assert [r.request for r in results] == requests
    for result in results:
        assert result.candidates == [] and result.failure in FAILURES and result.source == f"hf:{tiny_model_dir}"
        assert result.usage.requests == 2 and 0 < result.usage.completion_tokens <= 12 and result.usage.prompt_tokens
    first_pass = [len(batch) for batch in spy.batches if len(batch[0]) == 2]
    reasks = [len(batch) for batch in spy.batches if len(batch[0]) == 4]
    assert first_pass == [2, 1] and reasks == [2, 1]  # batches of 2; re-asks batched the same way
    text = backend.prompt_text(spy.batches[0][0])
    assert text.startswith(SYSTEM_PROMPT) and "<|user|>Write exactly 2" in text
    assert text.endswith("<|assistant|>" + ANSWER_PREFIX)
    # A rerun is answered from the cache without generating.
    again = backend.paraphrase(requests)
    assert len(spy.batches) == 4 and all(r.usage.cached for r in again)
    assert [r.failure for r in again] == [r.failure for r in results]
    assert len(AnswerCache(tmp_path)) == 3


def test_plain_transcript_without_chat_template(tiny_model_dir, tmp_path):
    plain = tmp_path / "plain"
    shutil.copytree(tiny_model_dir, plain)
    for name in ("chat_template.jinja", "tokenizer_config.json"):
        path = plain / name
        if name.endswith(".jinja"):
            path.unlink(missing_ok=True)
        else:
            config = json.loads(path.read_text())
            config.pop("chat_template", None)
            path.write_text(json.dumps(config))
    backend = HFParaphraser(str(plain), cache_dir=None, prefill=False)
    assert not backend.has_chat_template
    text = backend.prompt_text([{"role": "system", "content": "S"}, {"role": "user", "content": "U"}])
    assert text == "system: S\nuser: U\nassistant: "


def test_valid_answers_pass_and_a_reask_recovers(monkeypatch):
    backend = get_paraphraser("hf:unused", cache_dir="")
    good = ANSWER_PREFIX + 'Review 0: {review}\\nIs it positive or negative?\\n{options_}", ' \
        '"{review}\\nReview 0 - positive or negative?\\n{options_}"]}'
    answers = iter([[Generation(good, 10, 5), Generation(ANSWER_PREFIX + "noise", 10, 5)],  # first pass
                    [Generation(good.replace("Review 0", "Review 1"), 20, 5)]])  # the re-ask of the second
    monkeypatch.setattr(backend, "generate", lambda conversations: next(answers))
    first, second = backend.paraphrase(requests_for(2))
    assert first.failure is None and first.usage.requests == 1 and len(first.candidates) == 2
    assert second.failure is None and second.usage.requests == 2 and second.usage.prompt_tokens == 30
    assert all(slot_lock_violation(second.request.template, c) is None for c in second.candidates)


@pytest.mark.slow
def test_smollm2_paraphrases_offline(tmp_path):
    """The bundled SmolLM2-135M-Instruct: each template ends paraphrased or failed with a reason."""
    backend = get_paraphraser("hf:smollm2", cache_dir=str(tmp_path), max_new_tokens=64, batch_size=2)
    requests = requests_for(2, k=1)
    results = backend.paraphrase(requests)
    assert backend.has_chat_template
    for result in results:
        assert bool(result.candidates) != bool(result.failure)
        assert result.failure is None or result.failure in FAILURES
        assert result.usage.completion_tokens > 0
