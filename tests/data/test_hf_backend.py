"""The hf:MODEL backend: shown instruction, sampled answers, checks, cache; hf:smollm2 in the slow suite."""

import json
import shutil

import pytest

from coin_data.paraphrase.answer_cache import AnswerCache
from coin_data.paraphrase import ParaphraseRequest, get_paraphraser
from coin_data.paraphrase.hf import Generation, HFParaphraser
from coin_data.paraphrase import prompt
from coin_data.paraphrase.prompt import SYSTEM_PROMPT
from coin_data.templates import parse_template, slot_lock_violation

FAILURES = {"malformed_json", "wrong_count", "refusal", "executed_instruction", "slot_changed"}


def requests_for(n: int, k: int = 2) -> list[ParaphraseRequest]:
    return [ParaphraseRequest(parse_template(f"Review: {{review}}\nIs review {i} positive or negative?\n{{options_}}",
                                             "sentiment", f"t{i}"), k, ("positive", "negative"), seed=i)
            for i in range(n)]


class Spy:
    """Wraps ``HFParaphraser.generate`` to record the batches and sample counts it was given."""

    def __init__(self, backend):
        self.batches, self.samples, self._generate = [], [], backend.generate
        backend.generate = self

    def __call__(self, conversations, samples=1, **options):
        self.batches.append(list(conversations))
        self.samples.append(samples)
        return self._generate(conversations, samples, **options)


def test_tiny_model_samples_k_answers_shows_only_the_instruction(tiny_model_dir, tmp_path, torch_single_thread):
    backend = HFParaphraser(str(tiny_model_dir), batch_size=2, max_new_tokens=6, cache_dir=str(tmp_path))
    spy = Spy(backend)
    requests = requests_for(3)
    progress = []
    results = backend.paraphrase(requests, progress=progress.append)
    assert progress == [1, 1, 1]  # the bar moves as each template's answers are generated, batched or not
    # A random-init model writes noise: every template fails with a reason.
    assert [r.request for r in results] == requests
    for result in results:
        assert result.candidates == [] and result.failure in FAILURES and result.source == f"hf:{tiny_model_dir}"
        # one call per template, k=2 sampled answers of at most 6 tokens each
        assert result.usage.requests == 1 and 0 < result.usage.completion_tokens <= 12 and result.usage.prompt_tokens
    assert [len(batch) for batch in spy.batches] == [2, 1] and spy.samples == [[2, 2], [2]]
    text = backend.prompt_text(spy.batches[0][0])
    assert text.startswith(SYSTEM_PROMPT)
    # the worked example, then the request showing only the instruction line (no {review}, no options)
    assert "<|user|>Write exactly 1 paraphrase of this instruction. Do not answer it." in text
    assert "<template>\nIs review 0 positive or negative?\n</template>" in text
    assert "{review}" not in text.split("</template>")[-2] and text.endswith("<|assistant|>")
    # A rerun is answered from the cache without generating.
    again = backend.paraphrase(requests)
    assert len(spy.batches) == 2 and all(r.usage.cached for r in again)
    assert [r.failure for r in again] == [r.failure for r in results]
    assert len(AnswerCache(tmp_path)) == 3


def test_a_seed_gives_the_same_answers_in_any_batch(tiny_model_dir, torch_single_thread):
    """Each answer is drawn with its own seed: the same seed twice, or in another batch, gives the same text."""
    backend = HFParaphraser(str(tiny_model_dir), max_new_tokens=8, cache_dir=None)
    conversations = [prompt.build_messages(r, count=1) for r in requests_for(3)]
    first = backend.generate(conversations, 2, seeds=[7, 8, 9])
    assert backend.generate(conversations, 2, seeds=[7, 8, 9]) == first
    assert backend.generate(conversations[1:2], 2, seeds=[8]) == first[1:2]
    assert len({g.text for g in first[0]}) == 2  # the two samples of one template differ
    assert backend.generate(conversations[1:2], 2, seeds=[80]) != first[1:2]


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
    backend = HFParaphraser(str(plain), cache_dir=None)
    assert not backend.has_chat_template
    text = backend.prompt_text([{"role": "system", "content": "S"}, {"role": "user", "content": "U"}])
    assert text == "system: S\nuser: U\nassistant: "


def test_sampled_answers_are_checked_one_by_one_and_put_back(monkeypatch):
    backend = get_paraphraser("hf:unused", cache_dir="")
    answers = [
        # template 0: both samples are usable plain-text rewordings (one with a preamble and quotes)
        [Generation("Would you call review 0 positive or negative?", 10, 5),
         Generation('Sure! Here is a rewording:\n"Does review 0 sound positive or negative?"', 10, 9)],
        # template 1: one sample carries the task out, the other rewords it
        [Generation("The review is positive.", 10, 4), Generation("Is the tone of review 1 positive or negative?", 10, 6)],
        # template 2: every sample answers instead of rewording
        [Generation("Positive", 10, 1), Generation("The answer is negative.", 10, 5)],
    ]
    monkeypatch.setattr(backend, "generate", lambda conversations, samples=1, **_: answers[:len(conversations)])
    monkeypatch.setattr(backend.options, "batch_size", 3)
    first, second, third = backend.paraphrase(requests_for(3))
    assert first.candidates == [
        "Review: {review}\nWould you call review 0 positive or negative?\n{options_}",
        "Review: {review}\nDoes review 0 sound positive or negative?\n{options_}",
    ]
    assert second.candidates == ["Review: {review}\nIs the tone of review 1 positive or negative?\n{options_}"]
    assert third.candidates == [] and third.failure == "executed_instruction"
    assert first.usage.requests == 1 and first.usage.completion_tokens == 14
    for result in (first, second):
        assert all(slot_lock_violation(result.request.template, c) is None for c in result.candidates)


@pytest.mark.slow
def test_smollm2_keeps_a_paraphrase_for_half_the_corpus_within_budget(yield_module, cache):
    """The bundled SmolLM2-135M-Instruct on the whole embedded corpus (72 templates), the build's settings
    (k=2, seed 0) and its default verifier: at least half the templates keep a paraphrase (issue 15, item 4),
    in under 15 minutes of CPU time (measured: 49 of 72, about 100 s of CPU).

    Whole corpus rather than one task: one task's 6 templates swing with the seed (sentiment keeps 0-4).
    """
    from coin_data.build import BuildConfig, paraphrase_requests
    from coin_data.sources import load_embedded_corpus

    requests = paraphrase_requests(load_embedded_corpus(), BuildConfig())
    paraphraser = get_paraphraser("hf:smollm2", cache_dir="", threads=1)
    report = yield_module.measure("embedded", requests, paraphraser, cache, details=False)
    print(json.dumps(report))
    assert report["templates"] == 72
    assert report["with_kept_paraphrase"] >= 36, report
    assert report["paraphrase_cpu_seconds"] < 900, report
