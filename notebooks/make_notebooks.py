"""Write the notebooks' source cells (outputs are added by executing them; see README).

    python notebooks/make_notebooks.py      # rewrites 01_build_dataset.ipynb without outputs

Keeping the cells here makes notebook diffs reviewable as plain Python.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).parent

BUILD = [
    new_markdown_cell(
        "# 01 · Build a contrastive instruction dataset\n\n"
        "This notebook builds the CoIN dataset from the embedded default corpus, offline, and looks at what "
        "came out: the rows, the verdict of every candidate paraphrase, the similarity scores, and the hard "
        "negatives. The same build from a shell is `coin-data build`."
    ),
    new_code_cell(
        "# Parameters: the test suite runs this notebook with COIN_NB_SMALL=1 (two tasks, k=1).\n"
        "import os\n"
        "SMALL = os.environ.get('COIN_NB_SMALL') == '1'\n"
        "TASKS = ('sentiment', 'nli') if SMALL else None   # None: all 12 embedded tasks\n"
        "K = 1 if SMALL else 2                             # candidate paraphrases per template\n"
        "SEED = 0\n"
        "OUT = 'coin-flan-paraphrased-notebook'"
    ),
    new_code_cell(
        "import json, shutil, tempfile, warnings\n"
        "warnings.filterwarnings('ignore', message='IProgress not found')  # no ipywidgets needed\n"
        "from pathlib import Path\n"
        "import datasets, pandas as pd\n"
        "import matplotlib.pyplot as plt\n"
        "from coin_data.build import BuildConfig, run_build\n"
        "from coin_data.layout import write_dataset\n"
        "datasets.disable_progress_bars()\n"
        "pd.set_option('display.max_colwidth', 90)\n"
        "\n"
        "result = run_build(BuildConfig(tasks=TASKS, paraphrases_per_template=K, seed=SEED))\n"
        "workdir = Path(tempfile.mkdtemp())\n"
        "folder = write_dataset(result, workdir / OUT)\n"
        "stats = result.stats\n"
        "print(f'{stats.tasks} tasks, {stats.templates} templates, {stats.paraphrase_calls} paraphrase calls, '\n"
        "      f'{stats.embedding_strings} strings embedded')\n"
        "print('rows:', stats.rows)"
    ),
    new_markdown_cell("## The rows\n\nEach row pairs a prompt with the same input under a verified paraphrase of its template, "
                      "plus a hard negative: the same template with another input whose answer differs."),
    new_code_cell(
        "pairs = datasets.load_dataset(str(folder))\n"
        "train = pairs['train'].to_pandas()\n"
        "row = train.iloc[0]\n"
        "for column in ('original_instruction', 'paraphrased_instruction', 'targets', 'negative_instruction', 'negative_targets'):\n"
        "    print(f'--- {column}\\n{row[column]}')"
    ),
    new_code_cell("train[['task', 'template_id', 'paraphrase_id', 'targets', 'negative_targets', 'similarity', 'negative_similarity']].head(8)"),
    new_markdown_cell("## Every candidate has a verdict\n\nNothing is dropped silently: the `templates` config lists each "
                      "candidate paraphrase with its verdict and reason."),
    new_code_cell(
        "candidates = datasets.load_dataset(str(folder), 'templates')['train'].to_pandas()\n"
        "verdicts = candidates['verdict'].value_counts()\n"
        "print(verdicts.to_string())\n"
        "ax = verdicts.plot.barh(figsize=(6, 2.5), title='candidate verdicts')\n"
        "ax.set_xlabel('candidates'); plt.tight_layout(); plt.show()"
    ),
    new_code_cell("candidates.loc[candidates.verdict == 'kept', ['task', 'original_template', 'candidate', 'similarity']].head(6)"),
    new_code_cell("candidates.loc[candidates.verdict != 'kept', ['task', 'template_id', 'verdict', 'reason']].head(10)"),
    new_markdown_cell("## Scores\n\nLeft: embedding cosine between each template and its candidates (kept vs rejected). "
                      "Right: cosine between the anchor's input and its hard negative's input: low values mean the "
                      "negative really is another input."),
    new_code_cell(
        "fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3))\n"
        "scored = candidates.dropna(subset=['similarity'])\n"
        "for verdict, group in scored.groupby(scored.verdict == 'kept'):\n"
        "    left.hist(group.similarity, bins=20, range=(0.4, 1.0), alpha=0.7, label='kept' if verdict else 'rejected')\n"
        "left.axvline(result.config.verify.threshold, color='k', ls='--', lw=1)\n"
        "left.set_title('template vs candidate cosine'); left.legend()\n"
        "right.hist(train.negative_similarity.dropna(), bins=30, color='tab:red')\n"
        "right.set_title('anchor input vs negative input cosine')\n"
        "plt.tight_layout(); plt.show()"
    ),
    new_markdown_cell("## Hard negatives per task"),
    new_code_cell(
        "summary = train.groupby('task').agg(rows=('id', 'size'), negatives=('negative_source', lambda s: (s == 'same_template').sum()),\n"
        "                                     mean_similarity=('similarity', 'mean'), mean_negative_similarity=('negative_similarity', 'mean'))\n"
        "summary.round(3)"
    ),
    new_code_cell("shutil.rmtree(workdir)"),
]


def main() -> None:
    notebook = new_notebook(cells=BUILD, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nbformat.write(notebook, HERE / "01_build_dataset.ipynb")


if __name__ == "__main__":
    main()
