"""Write the notebooks' source cells (outputs are added by executing them; see README).

    python notebooks/make_notebooks.py                          # rewrites both notebooks without outputs
    python notebooks/make_notebooks.py 02_train_and_evaluate    # only this one

Keeping the cells here makes notebook diffs reviewable as plain Python.
"""

from __future__ import annotations

import sys
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
        "from coin_data.hub.layout import write_dataset\n"
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


TRAIN = [
    new_markdown_cell(
        "# 02 · Train and evaluate: does CoIN make a model robust to reworded instructions?\n\n"
        "Three arms with the same base model, data and budget, all scored on the `default` robustness suite "
        "(the embedded tasks under held-out instructions that no training row uses, each at five levels: "
        "clean, character, word, sentence and semantic):\n\n"
        "- **base**: no further training;\n"
        "- **baseline**: continual instruction tuning on the original and paraphrased prompts "
        "(`coin-train train --no-contrastive`);\n"
        "- **coin**: the same plus the contrastive term (`coin-train train`).\n\n"
        "The base model is the bundled SmolLM2-135M-Instruct with LoRA, sized to run on a 2-core CPU. The "
        "parameters below scale it up on a GPU (a larger `MODEL`, more `MAX_STEPS`, more `MAX_EXAMPLES`). "
        "The numbers committed with this notebook are discussed in `docs/results.md`."
    ),
    new_code_cell(
        "# Parameters: the test suite runs this notebook with COIN_NB_SMALL=1 (one task, one step).\n"
        "import os\n"
        "SMALL = os.environ.get('COIN_NB_SMALL') == '1'\n"
        "MODEL = 'smollm2'           # the bundled SmolLM2-135M-Instruct, or any causal LM id/folder\n"
        "SEEDS = (0,) if SMALL else (0, 1, 2)\n"
        "TASKS = ('sentiment',) if SMALL else None         # None: all embedded tasks\n"
        "MAX_STEPS = 1 if SMALL else 30                    # optimizer steps per trained arm\n"
        "BATCH = 2 if SMALL else 8                         # dataset rows per step (each row: 2-3 views)\n"
        "LEARNING_RATE = 5e-4         # higher than the paper's 1e-4: a short run on a small model\n"
        "LORA_R = 16                  # LoRA on q/k/v/o, as in the paper\n"
        "MAX_EXAMPLES = 2 if SMALL else 16                 # evaluation examples per task (fixed across levels)\n"
        "MAX_INSTRUCTIONS = 1 if SMALL else None           # held-out instructions per task (None: all 4)\n"
        "EVAL_SEED = 0                # perturbation seed of the suite\n"
        "RESULTS = None if SMALL else 'results/02_three_arms.json'   # where the summary is saved"
    ),
    new_code_cell(
        "import json, shutil, tempfile, time, warnings\n"
        "warnings.filterwarnings('ignore', message='IProgress not found')  # no ipywidgets needed\n"
        "warnings.filterwarnings('ignore', message='.*pin_memory.*')    # CPU run: nothing to pin memory for\n"
        "warnings.filterwarnings('ignore', category=FutureWarning)    # deprecation notices from peft\n"
        "from pathlib import Path\n"
        "import datasets, pandas as pd, torch, transformers\n"
        "import matplotlib.pyplot as plt\n"
        "from coin_data.build import BuildConfig, run_build\n"
        "from coin_data.hub.layout import write_dataset\n"
        "from coin_train import CoinConfig, DataArguments, LoraArguments, ModelArguments, run_training, smollm2_path\n"
        "from coin_train.evaluate import ScoringConfig, evaluate_models\n"
        "from coin_train.suites import SuiteConfig, build_suite\n"
        "datasets.disable_progress_bars(); transformers.logging.set_verbosity_error(); transformers.logging.disable_progress_bar()\n"
        "base_model = smollm2_path() if MODEL == 'smollm2' else MODEL\n"
        "workdir = Path(tempfile.mkdtemp())\n"
        "result = run_build(BuildConfig(tasks=TASKS, paraphrases_per_template=2, seed=0))\n"
        "dataset_dir = write_dataset(result, workdir / 'coin-flan-paraphrased')\n"
        "print('training rows:', result.stats.rows, '| torch threads:', torch.get_num_threads())"
    ),
    new_markdown_cell(
        "## Train\n\n"
        "Both trained arms see the same rows in the same order for a given seed (the seed also sets the LoRA "
        "initialisation); only the loss differs. With `MAX_STEPS * BATCH` rows per run, a CPU run covers a "
        "small part of one epoch."
    ),
    new_code_cell(
        "def train_arm(arm: str, seed: int) -> Path:\n"
        "    out = workdir / f'{arm}-seed{seed}'\n"
        "    config = CoinConfig(output_dir=str(out), contrastive=(arm == 'coin'), seed=seed, max_steps=MAX_STEPS,\n"
        "                        per_device_train_batch_size=BATCH, learning_rate=LEARNING_RATE, warmup_steps=0,\n"
        "                        logging_steps=max(1, MAX_STEPS // 4), save_strategy='no', report_to=[],\n"
        "                        disable_tqdm=True)\n"
        "    start = time.perf_counter()\n"
        "    trainer = run_training(ModelArguments(base_model), LoraArguments(use_lora=True, lora_r=LORA_R),\n"
        "                           DataArguments(str(dataset_dir)), config)\n"
        "    logged = [e for e in trainer.state.log_history if 'loss' in e]\n"
        "    last = logged[-1] if logged else {}\n"
        "    print(f\"{arm:8s} seed {seed}: {trainer.state.global_step} steps in {time.perf_counter() - start:.0f} s; \"\n"
        "          f\"last logged loss {last.get('loss', float('nan')):.3f}, gen {last.get('gen_loss', float('nan')):.3f}, \"\n"
        "          f\"contrastive {last.get('contrastive_loss', float('nan')):.3f}\")\n"
        "    return out\n"
        "\n"
        "checkpoints = {(arm, seed): train_arm(arm, seed) for seed in SEEDS for arm in ('baseline', 'coin')}"
    ),
    new_markdown_cell(
        "## Evaluate\n\n"
        "Rank classification (the log-likelihood of each label word after the prompt), the same prompt format "
        "as training, on the same examples and instruction variants for every model."
    ),
    new_code_cell(
        "suite = build_suite(SuiteConfig(tasks=TASKS, max_examples=MAX_EXAMPLES, max_instructions=MAX_INSTRUCTIONS,\n"
        "                                seed=EVAL_SEED))\n"
        "models = [base_model] + [str(path) for path in checkpoints.values()]\n"
        "arms = [('base', None)] + list(checkpoints)\n"
        "start = time.perf_counter()\n"
        "report = evaluate_models(models, suite, ScoringConfig(batch_size=16))\n"
        "n_prompts = sum(len(t.instructions) * len(t.examples) for t in suite.tasks)\n"
        "print(f'{len(suite.tasks)} tasks, {n_prompts} prompts per model, {len(models)} models, '\n"
        "      f'{time.perf_counter() - start:.0f} s')"
    ),
    new_code_cell(
        "rows = []\n"
        "for (arm, seed), entry in zip(arms, report['models']):\n"
        "    for level, m in entry['levels'].items():\n"
        "        rows.append({'arm': arm, 'seed': seed, 'level': level, 'accuracy': m['mean'],\n"
        "                     'instruction_std': m['std'], 'flip_rate': m['flip_rate']})\n"
        "    rows.append({'arm': arm, 'seed': seed, 'level': 'all', 'accuracy': entry['overall']['mean'],\n"
        "                 'instruction_std': entry['overall']['std'], 'flip_rate': entry['overall']['flip_rate']})\n"
        "per_seed = pd.DataFrame(rows)\n"
        "levels = list(suite.levels) + ['all']\n"
        "summary = (per_seed.groupby(['arm', 'level'], sort=False)\n"
        "           .agg(accuracy=('accuracy', 'mean'), seed_std=('accuracy', lambda s: s.std(ddof=0)),\n"
        "                instruction_std=('instruction_std', 'mean'), flip_rate=('flip_rate', 'mean'))\n"
        "           .reset_index())\n"
        "table = summary.pivot(index='arm', columns='level', values='accuracy')[levels].loc[['base', 'baseline', 'coin']]\n"
        "print('accuracy % (mean over seeds)'); print((100 * table).round(1).to_string())\n"
        "flips = summary.pivot(index='arm', columns='level', values='flip_rate')[levels].loc[['base', 'baseline', 'coin']]\n"
        "print('\\nflip rate % (mean over seeds)'); print((100 * flips).round(1).to_string())"
    ),
    new_code_cell(
        "fig, (left, right) = plt.subplots(1, 2, figsize=(12, 3.5))\n"
        "width = 0.27\n"
        "for i, arm in enumerate(('base', 'baseline', 'coin')):\n"
        "    part = summary[summary.arm == arm].set_index('level').loc[levels]\n"
        "    x = [j + (i - 1) * width for j in range(len(levels))]\n"
        "    left.bar(x, 100 * part.accuracy, width, yerr=100 * part.instruction_std, capsize=2, label=arm)\n"
        "    right.bar(x, 100 * part.flip_rate, width, label=arm)\n"
        "for ax, title in ((left, 'accuracy % (error bar: std over instructions)'), (right, 'flip rate %')):\n"
        "    ax.set_xticks(range(len(levels)), levels); ax.set_title(title)\n"
        "left.legend(); plt.tight_layout(); plt.show()"
    ),
    new_code_cell(
        "coin_minus_baseline = (per_seed[per_seed.arm == 'coin'].set_index(['seed', 'level']).accuracy\n"
        "                       - per_seed[per_seed.arm == 'baseline'].set_index(['seed', 'level']).accuracy)\n"
        "difference = coin_minus_baseline.unstack('level')[levels]\n"
        "print('coin - baseline, accuracy points per seed'); print((100 * difference).round(1).to_string())\n"
        "if RESULTS:\n"
        "    Path(RESULTS).parent.mkdir(parents=True, exist_ok=True)\n"
        "    Path(RESULTS).write_text(json.dumps({\n"
        "        'parameters': {'model': MODEL, 'seeds': list(SEEDS), 'tasks': TASKS, 'max_steps': MAX_STEPS, 'batch': BATCH,\n"
        "                       'learning_rate': LEARNING_RATE, 'lora_r': LORA_R, 'max_examples': MAX_EXAMPLES,\n"
        "                       'max_instructions': MAX_INSTRUCTIONS,\n"
        "                       'eval_seed': EVAL_SEED, 'threads': torch.get_num_threads()},\n"
        "        'per_seed': rows, 'summary': summary.to_dict(orient='records'),\n"
        "    }, indent=1))\n"
        "    print('saved', RESULTS)"
    ),
    new_code_cell("shutil.rmtree(workdir)"),
    new_markdown_cell(
        "## The powered experiment (`scripts/powered_experiment.py`)\n\n"
        "The run above is far too short to teach the tasks. The powered experiment trains both arms for a full "
        "epoch (3 seeds) and scores 64 held-out examples per task, with paired bootstrap 95% intervals for CoIN "
        "minus baseline. Its metrics were fixed before the run (`docs/results.md`, *pre-registration*): the "
        "primary one is accuracy over the perturbed levels. It takes hours, so it runs outside the notebook, "
        "from the repository root:\n\n"
        "```bash\npython scripts/powered_experiment.py             # saves notebooks/results/powered/units/*.json; "
        "resumable\npython scripts/powered_experiment.py --summarize # the summary of the units saved so far\n```\n\n"
        "The cell below shows its summary when the results are there."
    ),
    new_code_cell(
        "import json\n"
        "from pathlib import Path\n"
        "import matplotlib.pyplot as plt, pandas as pd\n"
        "POWERED = Path('results/powered')   # the runner's --out, seen from notebooks/\n"
        "METRICS = {'primary': 'accuracy, perturbed levels (primary)', 'clean': 'accuracy, clean',\n"
        "           'flips': 'perturbation flip rate', 'divergence': 'label divergence (bits)',\n"
        "           'cosine': 'pooled cosine clean-perturbed'}\n"
        "units = sorted(p.stem for p in (POWERED / 'units').glob('*.json')) if (POWERED / 'units').is_dir() else []\n"
        "if not (POWERED / 'summary.json').is_file():\n"
        "    print(f'not run yet ({len(units)} units saved): python scripts/powered_experiment.py'\n"
        "          + (' --summarize' if units else ''))\n"
        "else:\n"
        "    powered = json.loads((POWERED / 'summary.json').read_text())\n"
        "    rows = []\n"
        "    for metric, label in METRICS.items():\n"
        "        row = {'metric': label, **{arm: m[metric]['mean'] for arm, m in powered['metrics'].items()}}\n"
        "        ci = powered['coin_minus_baseline'].get(metric)\n"
        "        if ci:\n"
        "            row.update({'coin - baseline': ci['estimate'], 'CI low': ci['low'], 'CI high': ci['high']})\n"
        "        rows.append(row)\n"
        "    print(f\"{powered['n_examples']} held-out examples; units: {', '.join(powered['units'])}\")\n"
        "    display(pd.DataFrame(rows).set_index('metric').round(4))\n"
        "    paired = [(METRICS[m], ci) for m, ci in powered['coin_minus_baseline'].items() if m in METRICS]\n"
        "    if paired:\n"
        "        fig, ax = plt.subplots(figsize=(7, 2.8))\n"
        "        for y, (label, ci) in enumerate(paired):\n"
        "            ax.errorbar(ci['estimate'], y, xerr=[[ci['estimate'] - ci['low']], [ci['high'] - ci['estimate']]], fmt='o', capsize=3)\n"
        "        ax.axvline(0, color='grey', lw=0.8); ax.set_yticks(range(len(paired)), [label for label, _ in paired])\n"
        "        ax.set_title('CoIN minus baseline, paired bootstrap 95% interval'); plt.tight_layout(); plt.show()"
    ),
]


NOTEBOOKS = {"01_build_dataset": BUILD, "02_train_and_evaluate": TRAIN}


def main(names: list[str]) -> None:
    metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    for name in names or NOTEBOOKS:
        nbformat.write(new_notebook(cells=NOTEBOOKS[name], metadata=metadata), HERE / f"{name}.ipynb")


if __name__ == "__main__":
    main(sys.argv[1:])
