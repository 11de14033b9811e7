"""Verification of candidate paraphrases: the verifier, its file interface and its benchmark.

The embedding cache, lexical diff, combiner and optional signals live in sibling modules.
"""

from __future__ import annotations

from coin_data.verify.verifier import (  # noqa: F401
    DEFAULT_SIGNALS, EQUIVALENT_VERDICTS, KEPT, NOT_EQUIVALENT, PARAPHRASE_FAILED, VERDICTS, Verdict,
    VerifyConfig, default_lexical_diff, surface_verdict, usefulness_verdict, verify_candidates
)

from coin_data.verify.files import (  # noqa: F401
    CHANGED_LABEL, EQUIVALENT_LABEL, KIND_KEY, LABEL_KEY, ORIGINAL_KEY, PARAPHRASE_KEY,
    VerifyInputError, read_pairs, verify_file, write_verdicts
)

from coin_data.verify.benchmark import (  # noqa: F401
    VerifyReport, labelled_pairs_path, report_file, score_verdicts
)
