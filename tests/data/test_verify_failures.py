"""The verifier's failure kinds from issue 15, each with cases written for this test (not from any dataset).

Kept although the task changed: one task-defining content word swapped, a criterion added, the roles
reversed with high word overlap. Rejected although only the wording changed: other vocabulary for the
same thing ("keywords" / "key terms", "spam" / "junk mail", "topic" / "category"), a persona clause, a
count of the inputs, answer words defined with a negation.
"""

import pytest

from coin_data.templates import parse_template
from coin_data.verify import verify_candidates

SWAPPED_WORD = [
    ("Is this product review favourable? {review}", "Is this product review short? {review}"),
    ("Name the composer of the piece described in {text}.", "Name the performer of the piece described in {text}."),
    ("What is the sentiment of the following tweet? {tweet}", "What is the topic of the following tweet? {tweet}"),
    ("Find the author of the quotation: {quote}", "Find the publisher of the quotation: {quote}"),
]
ADDED_CRITERION = [
    ("Does the reply answer the customer's question? {reply}", "Does the reply answer the customer's question politely? {reply}"),
    ("Pick the best title for the story: {story}", "Pick the best title for the story that a child would understand: {story}"),
    ("Which of the two answers is correct? {a} {b}", "Which of the two answers is correct and easier to read? {a} {b}"),
]
REVERSED = [
    ("Write a question that {fact} answers.", "Answer the question using {fact}."),
    ("Compose a question whose answer is {answer}.", "Answer the question with {answer}."),
    ("Rewrite the question as a statement: {text}", "Rewrite the statement as a question: {text}"),
    ("Does the context support the answer? {context} {answer}", "Does the answer support the context? {context} {answer}"),
]
REWORDED = [
    ("List the keywords of {text}.", "Give the key terms in {text}."),
    ("Is the following email spam? {email}", "Is the following email unsolicited junk mail? {email}"),
    ("What is the topic of this news story? {story}", "Which category does this news story belong to? {story}"),
    ("As an experienced copy editor, fix the grammar of {sentence}.", "Fix the grammar of {sentence}."),
    ("Compare the two given sentences and decide whether they mean the same: {a} {b}",
     "Do {a} and {b} have the same meaning?"),
    ("Label the pair 'entailment' or 'not_entailment'. {premise} {hypothesis}",
     "Answer 'entailment' if {premise} implies {hypothesis}, or 'not_entailment' if there is no such implication."),
    ("In your role as a grammar checker, judge whether {sentence} is 'acceptable' or 'unacceptable'.",
     "Is {sentence} grammatically 'acceptable' or 'unacceptable'?"),
]


def _verdicts(cache, cases):
    return verify_candidates([(parse_template(a), b) for a, b in cases], cache)


@pytest.mark.parametrize("cases", [SWAPPED_WORD, ADDED_CRITERION, REVERSED], ids=["swapped_word", "added_criterion",
                                                                               "reversed_roles"])
def test_task_changes_are_rejected(cache, cases):
    for (original, candidate), verdict in zip(cases, _verdicts(cache, cases)):
        assert verdict.verdict == "not_equivalent", (original, candidate, verdict.reason)
        assert verdict.deciding in ("lexdiff", "combiner", "embedding")


def test_rewordings_with_other_vocabulary_are_kept(cache):
    for (original, candidate), verdict in zip(REWORDED, _verdicts(cache, REWORDED)):
        assert verdict.verdict == "kept", (original, candidate, verdict.reason)


def test_reversal_names_its_cause(cache):
    verdict = _verdicts(cache, REVERSED[:1])[0]
    assert verdict.deciding == "lexdiff" and "direction" in verdict.reason


def test_swap_in_a_near_copy_is_decided_by_the_combiner(cache):
    verdict = _verdicts(cache, SWAPPED_WORD[:1])[0]
    assert verdict.deciding == "combiner" and verdict.signals["combiner"] < 0.5
    assert "favourable" in verdict.reason and "short" in verdict.reason
