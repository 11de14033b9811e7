"""Where tasks come from: the embedded corpus format, external rows, a templates file, Alpaca, FLAN.
"""

from __future__ import annotations

from coin_data.sources.embedded import (  # noqa: F401
    CLASSIFICATION, Corpus, CorpusError, GENERATION, Instance, ScaledInstances, TASK_NAME, TaskSpec, corpus_template,
    embedded_corpus_dir, instances_from_rows, load_corpus_dir, load_embedded_corpus, load_instances,
    load_task_spec, parse_task_spec, read_corpus_text, read_yaml
)

from coin_data.sources.rows import (  # noqa: F401
    ALPACA_DATASET, ROW_FILE_TYPES, Row, apply_column_map, expand_data_files, external_rows, parse_column_map,
    read_hub_rows, read_rows
)

from coin_data.sources.templates_file import (  # noqa: F401
    load_templates_file, templates_corpus
)

from coin_data.sources.alpaca import (  # noqa: F401
    alpaca_corpus
)
