"""Seeded perturbations of templates (character, word, sentence levels), the Perturber, file interface.
"""

from __future__ import annotations

from coin_data.perturb.levels import (  # noqa: F401
    CHARACTER, CHAR_OPERATIONS, CLEAN, EditableWord, FUNCTION_WORDS, LEVELS, PERTURBATION_LEVELS,
    PerturbConfig, Perturbation, PerturbationError, SEMANTIC, SENTENCE, SENTENCE_METHODS, WORD,
    check_level, editable_words, perturb_character, perturb_sentence, perturbation_rng, replace_spans,
    typo
)

from coin_data.perturb.perturber import (  # noqa: F401
    Perturber, perturb_instruction
)

from coin_data.perturb.files import (  # noqa: F401
    INSTRUCTION_KEY, OPTIONS_KEY, perturb_file, read_instructions
)
from coin_data.text.words import label_word_set as protected_word_set  # noqa: F401  (its old name)
