"""Hard negatives: same-template picks, mined nearest templates of other tasks, their guard and plan.
"""

from __future__ import annotations

from coin_data.negatives.same_template import (  # noqa: F401
    NONE_ALL_SAME_TARGET, NegativePicker, SAME_TEMPLATE
)

from coin_data.negatives.search import (  # noqa: F401
    AUTO, EXACT, FAISS, INDEXES, MINED, MineConfig, MinedNegatives, NONE_ALL_REJECTED,
    NONE_NO_CANDIDATE, choose_index, faiss_available, mine_negatives, search_exact, search_faiss
)

from coin_data.negatives.guard import (  # noqa: F401
    CrossEncoderRescorer, REJECT_CROSS_ENCODER, REJECT_MARGIN, REJECT_PARAPHRASE_LEVEL, RescoreTexts,
    Rescorer, rescore
)

from coin_data.negatives.plan import (  # noqa: F401
    MINED_OTHER_INSTANCE, MINED_SAME_INSTANCE, NONE_NO_INSTANCE, TemplateNegative, fill_mined_columns,
    mined_row_values, plan_template_negatives
)
from coin_data.seeds import stable_seed  # noqa: F401  (its old home)
