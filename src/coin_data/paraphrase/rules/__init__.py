"""The ``rules`` backend: offline, seeded rewordings of instruction templates.

The package is split by role:

* :mod:`.lexical`: word lists and token helpers (WordNet lookups, synonyms, part of speech and inflection
  are the shared :class:`coin_data.text.lexicon.Lexicon`);
* :mod:`.syntactic`: sentence rewrites (yes/no question <-> directive, polite <-> imperative, lead-ins,
  question wrappers, deixis and label rewrites) and the template layout they rely on;
* :mod:`.line_rewrites` and :mod:`.question_rewrites`: whole-line rewrites for short templates (the latter
  only in the fourth pass: question frames, "Please ..." commands, command labels such as "Simplify:");
* :mod:`.generator`: synonym substitution, the acceptance checks and :class:`RulesParaphraser`.

Example:
    >>> RulesParaphraser(use_wordnet=False).name
    'rules'
"""

from coin_data.paraphrase.rules.generator import RulesParaphraser, candidate_problem, nothing_to_reword

__all__ = ["RulesParaphraser", "candidate_problem", "nothing_to_reword"]
