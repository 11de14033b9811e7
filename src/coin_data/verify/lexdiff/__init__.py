"""Lexical-semantic diff of two instructions: the small edits that change what is asked.

An embedding scores "at most three words" and "at least three words" as near-identical. This module
compares the two texts word by word instead (offline: nltk's WordNet, no model) and reports
*findings*, each a kind of meaning change with the words that show it:

==================  =====================================================================================
finding             what it catches (original -> candidate)
==================  =====================================================================================
``negation``        a negation appears or disappears ("can be answered" -> "cannot be answered";
                    "contains errors" -> "is free of errors"; "based on" -> "ignoring")
``antonym``         a word is replaced by its opposite (true/false, most/least, cheap/expensive, ...)
``quantity``        numbers or bounds differ ("three" -> "five", "at most 20" -> "at least 20")
``ordinal``         positions differ ("first sentence" -> "second sentence", "last", "final" ...)
``argument_swap``   two arguments trade places around the same words ("from English to French" ->
                    "from French to English", "{a} minus {b}" -> "{b} minus {a}")
``direction``       what is produced turns around: writing a question vs answering one ("write a question
                    whose answer is X" -> "answer the question in X")
``label_change``    the answer words listed in the text differ ("yes or no" -> "true or false";
                    "positive, negative, or neutral" -> "positive or negative")
``scope``           the extent changes: "only" added or dropped; "all" -> "some"
``contrast``        a content word is replaced by a sibling concept that is not a synonym
                    (French -> German, haiku -> limerick, mammal -> bird)
==================  =====================================================================================

Besides findings, :class:`LexDiff` counts content words dropped or added without a synonym on the
other side, and a word-order overlap; :mod:`coin_data.verify.combine` weighs those with the embedding score.

The package is split by role:

* :mod:`.words`: the word lists (negations, comparators, numbers, framing words ...) and the token pattern;
* :mod:`.reading`: one instruction read into a :class:`~.reading.Side` (tokens, quantities, labels, negations);
* :mod:`.relations`: :class:`~.relations.WordRelations`, the WordNet tests (synonym, antonym, more general,
  sibling, definition) on top of the shared :class:`coin_data.text.lexicon.Lexicon`;
* :mod:`.findings`: the rules, one detector per kind of finding;
* :mod:`.alignment`: which content words of each side have no counterpart on the other;
* :mod:`.diff`: :class:`LexicalDiff`, which composes them, and its result :class:`LexDiff`.

Allowed differences never count: politeness ("please", "could you"), formatting and punctuation,
instruction framing ("tell me whether", "your task:", "based on the text below"), the direction words
"above"/"below" (they flip when an instruction moves past its input), inflection, and WordNet synonyms.

Texts are compared as given; for templates pass ``Template.masked_text()`` so that ``{slots}`` appear by
name (they act as arguments) and the options block is gone.

Example:
    >>> d = LexicalDiff().diff("Answer in at most three words.", "Answer in at least three words.")  # doctest: +SKIP
    >>> [f.kind for f in d.findings]                                                                   # doctest: +SKIP
    ['quantity']
"""

from coin_data.verify.lexdiff.diff import LexDiff, LexicalDiff
from coin_data.verify.lexdiff.findings import FINDING_KINDS, Finding

__all__ = ["FINDING_KINDS", "Finding", "LexDiff", "LexicalDiff"]
