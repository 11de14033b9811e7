"""What the LLM backends show the model and how plain-text answers are read (issue 15, item 4)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from chat_server import ChatServer  # noqa: E402

from coin_data.paraphrase import ParaphraseRequest, get_paraphraser, prompt  # noqa: E402
from coin_data.templates import parse_template, slot_lock_violation  # noqa: E402


def _request(text: str, k: int = 2, labels=("positive", "negative")) -> ParaphraseRequest:
    return ParaphraseRequest(parse_template(text, "t", "t0"), k, labels)


@pytest.mark.parametrize("text, shown, restored_from, restored", [
    # input lines and the options block stay out of view
    ("Review: {review}\nIs this review positive or negative?\n{options_}", "Is this review positive or negative?",
     "Does this review sound positive or negative?",
     "Review: {review}\nDoes this review sound positive or negative?\n{options_}"),
    # quotes around an inline slot are removed, then put back even if the model adds its own
    ('Is "{sentence}" a grammatical sentence?\n{options_}', "Is {sentence} a grammatical sentence?",
     'Is the sentence "{sentence}" grammatical?', 'Is the sentence "{sentence}" grammatical?\n{options_}'),
    # a slot that ends the instruction after a colon is cut off and appended again
    ("Make this sentence easier to understand: {sentence}", "Make this sentence easier to understand.",
     "Rewrite this sentence so it is simpler.", "Rewrite this sentence so it is simpler: {sentence}"),
    # ... after a question, with a space
    ("{premise}\nGiven that, is this also true? {hypothesis}\n{options_}", "Given that, is this also true?",
     "If so, does this hold too?", "{premise}\nIf so, does this hold too? {hypothesis}\n{options_}"),
    # a question rewrite of a colon-ended command keeps the slot after the question mark
    ("Summarize this article: {article}", "Summarize this article.", "Can you sum up this article?",
     "Can you sum up this article? {article}"),
])
def test_shown_instruction_and_restore(text, shown, restored_from, restored):
    template = parse_template(text)
    view = prompt.show_template(template)
    assert view.shown == shown
    assert "OPTIONS" not in view.shown and "{options_}" not in view.shown
    assert view.restore(restored_from) == restored
    assert slot_lock_violation(template, restored) is None


def test_label_only_template_shows_nothing_and_the_longest_instruction_run_is_chosen():
    assert prompt.show_template(parse_template("Context: {context}\nQuestion: {question}\nAnswer:")) is None
    view = prompt.show_template(parse_template("Read this.\n{text}\nWhich of the topics below fits the text best?"))
    assert view.shown == "Which of the topics below fits the text best?" and view.head == ("Read this.", "{text}")


@pytest.mark.parametrize("answer, failure, first", [
    ("Does this review express a good or a bad opinion?", None,
     "Review: {review}\nDoes this review express a good or a bad opinion?\n{options_}"),
    ('Sure! Here are two paraphrases:\n1. "Is the review positive or negative?"\n2. Would you say it is positive '
     "or negative?", None, "Review: {review}\nIs the review positive or negative?\n{options_}"),
    ("The review is positive.", "executed_instruction", None),  # carried out, not reworded
    ("Positive", "executed_instruction", None),
    ("Yes, it is positive.", "executed_instruction", None),
    ("The answer is negative.", "executed_instruction", None),
    ("I'm sorry, I can't help with that.", "refusal", None),
    ("Is this review positive or negative?", "unchanged", None),  # copied
    ("Which subject is this article mostly about?", "unchanged", None),  # the worked example copied
    ("", "malformed_json", None),
    ('{"paraphrases": ["Is it', "malformed_json", None),
])
def test_plain_text_answers(answer, failure, first):
    request = _request("Review: {review}\nIs this review positive or negative?\n{options_}")
    parsed = prompt.parse_answer(answer, request)
    assert parsed.failure == failure, parsed
    if first is not None:
        assert parsed.candidates[0] == first
        assert all(slot_lock_violation(request.template, c) is None for c in parsed.candidates)


def test_placeholders_must_come_back_and_long_answers_are_carried_out():
    request = _request('Is "{sentence}" grammatical?\n{options_}', k=1, labels=())
    assert prompt.parse_answer("Is this sentence grammatical?", request).failure == "slot_changed"
    assert prompt.parse_answer("Is {sentence} {sentence} fine?", request).failure == "slot_changed"
    summary = _request("Summarize the text above in one sentence.", k=1, labels=())
    essay = "The text describes how a small town rebuilt its library after a flood. " * 3
    assert prompt.parse_answer(essay, summary).failure == "executed_instruction"
    assert prompt.parse_answer("Give a one-sentence summary of the preceding text.", summary).failure is None


def test_one_bad_rewording_does_not_sink_the_good_one():
    request = _request("Review: {review}\nIs this review positive or negative?\n{options_}")
    parsed = prompt.parse_answer("1. It is positive.\n2. Is the opinion in this review positive or negative?", request)
    assert parsed.failure is None and len(parsed.candidates) == 1 and "left out 1: executed_instruction" in parsed.detail


def test_strong_model_answers_k_at_once_without_top_up(tmp_path):
    """The scripted loopback model answers k rewordings of the shown instruction in one call: k candidates,
    one call per template, inputs and options put back."""
    requests = [_request(f"Review: {{review}}\nIs review {i} positive or negative?\n{{options_}}") for i in range(3)]
    with ChatServer() as server:
        backend = get_paraphraser("openai:fake", base_url=server.url, cache_dir=str(tmp_path))
        results = backend.paraphrase(requests)
        assert len(server.calls) == 3
        assert all(c.template.startswith("Is review") and "{review}" not in c.template for c in server.calls)
    for result in results:
        assert result.failure is None and len(result.candidates) == 2
        for candidate in result.candidates:
            assert candidate.startswith("Review: {review}\n") and candidate.endswith("\n{options_}")
            assert slot_lock_violation(result.request.template, candidate) is None


@pytest.mark.parametrize("answer, failure, candidate", [
    # the line that brings the input in was dropped: kept as written, the rest reworded
    ("Is this sentence grammatically correct?", None,
     'Read this sentence carefully: "{sentence}"\nIs this sentence grammatically correct?\n{options_}'),
    # ... or reworded with its placeholder: used as it is
    ("Look closely at {sentence}. Is it grammatical English?", None,
     'Look closely at "{sentence}". Is it grammatical English?\n{options_}'),
    # the input line copied alone: the instruction was dropped
    ("Read this sentence carefully: {sentence}", "unchanged", None),
    # echoed tags around the rewording are not part of it
    ("<template>\nIs the grammar of this sentence right?\n</template>", None,
     'Read this sentence carefully: "{sentence}"\nIs the grammar of this sentence right?\n{options_}'),
    # noise that happens to hold a question mark is no rewording
    ("?3Q\\u", "malformed_json", None),
])
def test_small_model_answers_to_a_two_line_instruction(answer, failure, candidate):
    request = _request('Read this sentence carefully: "{sentence}"\nGrammatically speaking, is it acceptable?\n{options_}',
                       labels=("acceptable", "unacceptable"))
    parsed = prompt.parse_answer(answer, request)
    assert parsed.failure == failure, parsed
    if candidate is not None:
        assert parsed.candidates == [candidate]
        assert slot_lock_violation(request.template, candidate) is None


def test_a_placeholder_inside_the_instruction_is_not_repaired():
    request = _request("{premise}\nDoes {hypothesis} follow from it?\n{options_}", k=1)
    assert prompt.parse_answer("Does it follow?", request).failure == "slot_changed"


def test_answer_token_limit_follows_the_shown_instruction():
    short = _request("Review: {review}\nPositive?\n{options_}")
    long = _request("Review: {review}\n" + "Read the review and say whether the writer liked it. " * 4 + "\n{options_}")
    assert prompt.answer_token_limit(short, 1) == 24  # the floor
    assert prompt.answer_token_limit(long, 2) > 2 * prompt.answer_token_limit(long, 1) - 16
    assert prompt.answer_token_limit(long, 2, ceiling=100) == 100
    assert prompt.answer_token_limit(short, 2, structured=True) > prompt.answer_token_limit(short, 2)
