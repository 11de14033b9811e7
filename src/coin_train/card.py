"""The model card (``README.md``) and the run's settings (``coin_config.json``) of a trained model.

Every folder a :class:`~coin_train.trainer.CoinTrainer` saves (the final model and each
``checkpoint-*``) gets both files, full model or LoRA adapter alike:

* ``coin_config.json``: every field of the four settings dataclasses (model, LoRA, data, CoIN +
  ``TrainingArguments``; ``*_token`` fields masked) and the versions of the libraries that trained it.
* ``README.md``: YAML metadata as the Hub, ``transformers`` and TRL write it (``base_model``,
  ``datasets``, ``library_name`` = ``peft`` for adapters, ``license``, ``tags`` ...), then the base model,
  the training data with its own card's figures, the CoIN settings, the final losses, and a results
  section that ``coin-train eval --model FOLDER`` fills with its robustness table
  (:func:`update_eval_section`).

Only Hub ids go into the YAML ``base_model`` / ``datasets`` keys (the Hub rejects other values); local
paths are named in the body.

Example:
    >>> split_front_matter("---\\nlicense: mit\\n---\\n# Title\\n")
    ({'license': 'mit'}, '# Title\\n')
    >>> hub_id("HuggingFaceTB/SmolLM2-135M-Instruct"), hub_id("./no/such/folder/here")
    ('HuggingFaceTB/SmolLM2-135M-Instruct', None)
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import re
from importlib import metadata
from pathlib import Path

import yaml

CARD_FILE = "README.md"
SETTINGS_FILE = "coin_config.json"
SETTINGS_SCHEMA_VERSION = 1
EVAL_START, EVAL_END = "<!-- coin-eval:start -->", "<!-- coin-eval:end -->"
CARD_MARKER = "<!-- coin-toolkit model card -->"  # tells our cards from other READMEs
BASE_TAGS = ["coin", "contrastive-instruction-tuning", "generated_from_trainer"]
LIBRARIES = ("coin-toolkit", "torch", "transformers", "peft", "datasets", "accelerate", "huggingface_hub")
FINAL_METRICS = ("loss", "gen_loss", "contrastive_loss", "contrastive_accuracy")

# The bundled model (coin_train.modeling.smollm2_path): its Hub id and license, known without the Hub.
SMOLLM2 = {"alias": "smollm2", "folder": "SmolLM2-135M-Instruct",
           "hub_id": "HuggingFaceTB/SmolLM2-135M-Instruct", "license": "apache-2.0"}

_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")


# --- names and front matter ------------------------------------------------------------------------------
def hub_id(name_or_path: str | os.PathLike | None) -> str | None:
    """The Hub id a model or dataset name stands for, or ``None`` for a local path.

    ``smollm2`` and the bundled SmolLM2 folder map to ``HuggingFaceTB/SmolLM2-135M-Instruct``.

    Example:
        >>> hub_id("smollm2")
        'HuggingFaceTB/SmolLM2-135M-Instruct'
    """
    if name_or_path is None:
        return None
    name = str(name_or_path)
    if name == SMOLLM2["alias"] or (Path(name).is_dir() and Path(name).name == SMOLLM2["folder"]):
        return SMOLLM2["hub_id"]
    if Path(name).exists() or not _HUB_ID.fullmatch(name):
        return None
    return name


def split_front_matter(text: str) -> tuple[dict, str]:
    """``(YAML metadata, body)`` of a card; ``({}, text)`` when it has no parseable front matter."""
    match = re.match(r"---\r?\n(.*?)\r?\n---\r?\n", text, flags=re.DOTALL)
    if not match:
        return {}, text
    try:
        meta = yaml.safe_load(match.group(1))
    except yaml.YAMLError:
        return {}, text
    return (meta if isinstance(meta, dict) else {}), text[match.end():]


def _read_local_card(name_or_path: str | os.PathLike, repo_type: str) -> str | None:
    """README.md of a local folder, else of a Hub repo already in the local cache (never downloads)."""
    local = Path(name_or_path) / CARD_FILE
    if local.is_file():
        return local.read_text(encoding="utf-8")
    repo = hub_id(name_or_path)
    if repo is None:
        return None
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(repo, CARD_FILE, repo_type=repo_type)
    except (OSError, ValueError):  # an odd cache or id must never break a finished training run
        return None
    return Path(cached).read_text(encoding="utf-8") if isinstance(cached, str) else None


# --- the run's settings ------------------------------------------------------------------------------------
def library_versions() -> dict[str, str | None]:
    """Installed versions of the libraries that shape a run (``None`` when not installed), and Python's."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def run_settings(config, model_args=None, lora_args=None, data_args=None) -> dict:
    """Every setting of a run as JSON-ready data (the content of ``coin_config.json``).

    Args:
        config: the :class:`~coin_train.config.CoinConfig` (its ``*_token`` fields are masked).
        model_args, lora_args, data_args: the other settings dataclasses, when known.

    Returns:
        ``{"schema_version", "model", "lora", "data", "training", "versions"}``; unknown sections are ``null``.

    Example:
        >>> from coin_train.config import CoinConfig
        >>> settings = run_settings(CoinConfig(output_dir="out", hub_token="hf_secret"))
        >>> settings["training"]["temperature"], settings["training"]["hub_token"], settings["model"]
        (0.05, '<HUB_TOKEN>', None)
    """
    def section(args):
        return None if args is None else json.loads(json.dumps(dataclasses.asdict(args), default=str))

    return {
        "schema_version": SETTINGS_SCHEMA_VERSION,
        "model": section(model_args),
        "lora": section(lora_args),
        "data": section(data_args),
        "training": json.loads(json.dumps(config.to_dict(), default=str)),
        "versions": library_versions(),
    }


# --- what the card reports ----------------------------------------------------------------------------------
def final_metrics(log_history: list[dict]) -> dict:
    """The last logged value of each training metric, the run's mean loss, and the last eval metrics.

    Example:
        >>> final_metrics([{"loss": 2.0, "gen_loss": 1.5, "step": 1}, {"loss": 1.0, "step": 2},
        ...                {"train_loss": 1.5, "step": 2}])
        {'loss': 1.0, 'gen_loss': 1.5, 'train_loss': 1.5}
    """
    found: dict = {}
    for entry in log_history:
        for name in FINAL_METRICS:
            if name in entry:
                found[name] = entry[name]
        if "train_loss" in entry:
            found["train_loss"] = entry["train_loss"]
        for name, value in entry.items():
            if name.startswith("eval_") and isinstance(value, (int, float)):
                found[name] = value
    ordered = [*FINAL_METRICS, "train_loss"]
    return {name: found[name] for name in ordered if name in found} | {
        name: value for name, value in found.items() if name not in ordered}


def dataset_figures(name_or_path: str | None) -> dict:
    """What the dataset's own card says: license, rows per split, source, paraphraser, kept-paraphrase similarity.

    Reads ``README.md`` of a local dataset folder (or of a Hub dataset already in the local cache); any
    figure the card lacks is left out.

    Example:
        >>> dataset_figures("coin-flan-paraphrased")["rows"]  # doctest: +SKIP
        {'train': 215, 'validation': 25}
    """
    text = _read_local_card(name_or_path, "dataset") if name_or_path else None
    if text is None:
        return {}
    meta, body = split_front_matter(text)
    figures: dict = {}
    if meta.get("pretty_name"):
        figures["name"] = meta["pretty_name"]
    if meta.get("license"):
        figures["license"] = meta["license"]
    for info in meta.get("dataset_info") or []:
        if isinstance(info, dict) and info.get("config_name", "default") == "default":
            figures["rows"] = {s["name"]: s["num_examples"] for s in info.get("splits") or []
                               if isinstance(s, dict) and "name" in s and "num_examples" in s}
    for key, label in (("source", "Source"), ("paraphraser", "Paraphraser")):
        match = re.search(rf"^- {label}: (.+)$", body, flags=re.MULTILINE)
        if match:
            figures[key] = match.group(1).strip()
    match = re.search(r"^## Similarity of kept paraphrases\s*\n\s*\n(n=.+)$", body, flags=re.MULTILINE)
    if match:
        figures["similarity"] = match.group(1).strip()
    return figures


def base_model_info(model, model_args=None) -> dict:
    """Name, Hub id, license and kind (adapter or full model) of what was trained.

    Args:
        model: the trained model (a ``PreTrainedModel`` or a ``peft.PeftModel``).
        model_args: the run's :class:`~coin_train.config.ModelArguments`, when known.
    """
    peft_config = getattr(model, "peft_config", None)
    is_adapter = bool(peft_config)
    if is_adapter:
        name = next(iter(peft_config.values())).base_model_name_or_path
    else:
        name = model_args.model_name_or_path if model_args is not None else None
        name = name or getattr(getattr(model, "config", None), "_name_or_path", None)
    info = {"name": str(name) if name else None, "hub_id": hub_id(name), "is_adapter": is_adapter}
    if info["hub_id"] == SMOLLM2["hub_id"]:
        info["license"] = SMOLLM2["license"]
    elif name:
        meta, _ = split_front_matter(_read_local_card(name, "model") or "")
        if isinstance(meta.get("license"), str):
            info["license"] = meta["license"]
    return info


# --- rendering ------------------------------------------------------------------------------------------------
def card_metadata(base: dict, dataset: str | None, model_name: str, license_id: str | None) -> dict:
    """The YAML front matter, with the keys and tags ``transformers``/TRL/peft cards use.

    Example:
        >>> meta = card_metadata({"hub_id": "org/base", "is_adapter": True}, "org/data", "coin", None)
        >>> meta["library_name"], meta["datasets"], meta["tags"][:2]
        ('peft', ['org/data'], ['base_model:adapter:org/base', 'lora'])
    """
    tags = list(BASE_TAGS)
    if base.get("is_adapter"):
        tags = (["base_model:adapter:" + base["hub_id"]] if base.get("hub_id") else []) + ["lora"] + tags
    meta: dict = {}
    if base.get("hub_id"):
        meta["base_model"] = base["hub_id"]
    if hub_id(dataset):
        meta["datasets"] = [hub_id(dataset)]
    meta["library_name"] = "peft" if base.get("is_adapter") else "transformers"
    if license_id:
        meta["license"] = license_id
    meta.update({"model_name": model_name, "pipeline_tag": "text-generation", "tags": tags})
    return meta


def _table(rows: list[tuple[str, object]], header: tuple[str, str] = ("setting", "value")) -> list[str]:
    lines = [f"| {header[0]} | {header[1]} |", "|---|---|"]
    return lines + [f"| {key} | {_cell(value)} |" for key, value in rows]


def _cell(value) -> str:
    if isinstance(value, float):
        value = f"{value:.4g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _name(path_or_id: str | None) -> str:
    repo = hub_id(path_or_id)
    return f"[{repo}](https://huggingface.co/{repo})" if repo and path_or_id != SMOLLM2["alias"] else f"`{path_or_id}`"


def _settings_rows(settings: dict) -> list[tuple[str, object]]:
    training, lora, data = settings["training"], settings.get("lora") or {}, settings.get("data") or {}
    objective = ("L_gen + min(w * L_ctr, L_gen) (the paper's cap)" if training["balance"] == "cap"
                 else "L_gen + w * L_ctr") if training["contrastive"] else "L_gen only (baseline, --no-contrastive)"
    rows: list[tuple[str, object]] = [
        ("objective", objective),
        ("contrastive_weight (w)", training["contrastive_weight"]),
        ("temperature", training["temperature"]),
        ("pooling", training["pooling"]),
        ("balance", training["balance"]),
        ("hard_negatives", training["hard_negatives"]),
        ("negative_gen_loss", training["negative_gen_loss"]),
    ]
    if lora.get("use_lora"):
        targets = ",".join(lora["lora_target_modules"])
        rows.append(("LoRA", (f"r={lora['lora_r']}, alpha={lora['lora_alpha']}, dropout={lora['lora_dropout']}, "
                              f"targets {targets}")))
    elif settings.get("lora") is not None:
        rows.append(("LoRA", "no (all weights trained)"))
    if data:
        rows += [("max_length", data["max_length"]),
                 ("prompt format", "tokenizer chat template" if data["chat_template"] else f"`{data['prompt_template'].encode('unicode_escape').decode()}`")]
    rows += [("learning_rate", training["learning_rate"]),
             ("per_device_train_batch_size", training["per_device_train_batch_size"]),
             ("gradient_accumulation_steps", training["gradient_accumulation_steps"]),
             ("num_train_epochs / max_steps", f"{training['num_train_epochs']} / {training['max_steps']}"),
             ("seed", training["seed"])]
    return rows


def _dataset_lines(dataset: str | None, figures: dict) -> list[str]:
    if not dataset:
        return ["The training data is not recorded (the trainer was built without DataArguments)."]
    rows: list[tuple[str, object]] = [("dataset", _name(dataset))]
    if "name" in figures:
        rows.append(("name", figures["name"]))
    if "rows" in figures:
        rows.append(("rows", ", ".join(f"{split} {n}" for split, n in figures["rows"].items())))
    for key in ("source", "paraphraser", "similarity", "license"):
        if key in figures:
            rows.append(({"similarity": "kept paraphrase similarity"}.get(key, key), figures[key]))
    lines = _table(rows, ("", ""))
    if len(rows) == 1:
        lines.append("")
        lines.append("No dataset card was found locally, so no figures are shown.")
    return lines


def render_model_card(settings: dict, metrics: dict, base: dict, model_name: str, steps: int,
                      eval_section: str | None = None) -> str:  # fmt: skip
    """The complete ``README.md`` of a trained model.

    Args:
        settings: :func:`run_settings` of the run.
        metrics: :func:`final_metrics` of its log history.
        base: :func:`base_model_info` of the trained model.
        model_name: the folder (or repo) name.
        steps: optimizer steps taken.
        eval_section: the results section to keep (from an earlier ``coin-train eval``), else a placeholder.

    Returns:
        The card text: YAML front matter, then markdown.
    """
    data = settings.get("data") or {}
    dataset = data.get("dataset_name_or_path")
    figures = dataset_figures(dataset)
    license_id = base.get("license")
    meta = card_metadata(base, dataset, model_name, license_id)
    kind = "a LoRA adapter (peft) for" if base.get("is_adapter") else "a fine-tuned version of"
    load = ("from peft import AutoPeftModelForCausalLM\nmodel = AutoPeftModelForCausalLM.from_pretrained(MODEL)"
            if base.get("is_adapter") else
            "from transformers import AutoModelForCausalLM\nmodel = AutoModelForCausalLM.from_pretrained(MODEL)")
    body = [
        f"# {model_name}", "", CARD_MARKER, "",
        (f"This model is {kind} {_name(base.get('name'))}, trained with Contrastive Instruction Tuning (CoIN) on "
         f"{_name(dataset) if dataset else 'an unrecorded dataset'} by `coin-train train` (coin-toolkit): next-token "
         "loss on an original and a paraphrased instruction, plus an InfoNCE term that pulls the two views' "
         "representations together and pushes other instructions (in-batch and hard negatives) away."),
        "",
        "## Quick start", "",
        "```python",
        f'MODEL = "{model_name}"  # this folder, or OWNER/NAME on the Hub',
        load,
        "# or, with the prompt format it was trained with (coin_prompt.json):",
        "from coin_train import load_for_inference",
        "model, tokenizer, prompt_format = load_for_inference(MODEL)",
        "```", "",
        "## Training data", "",
        *_dataset_lines(dataset, figures), "",
        "## CoIN settings", "",
        *_table(_settings_rows(settings)), "",
        f"All settings and library versions: `{SETTINGS_FILE}` in this folder.", "",
        "## Final losses", "",
        (f"Last logged values after {steps} optimizer steps (`contrastive_accuracy`: in-batch top-1 retrieval of "
         "the paired view, both directions; `train_loss`: mean over the run)."), "",
        *(_table(list(metrics.items()), ("metric", "value")) if metrics else ["No metrics were logged."]), "",
        "## Robustness evaluation", "",
        eval_section or _no_eval_section(), "",
        "## Framework versions", "",
        *[f"- {name}: {version}" for name, version in settings["versions"].items() if version], "",
    ]
    if license_id:
        body += ["## License", "", f"`{license_id}`, the license of the base model."
                 + (f" The training data's card says `{figures['license']}`." if figures.get("license") else ""), ""]
    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n\n" + "\n".join(body)


def _no_eval_section() -> str:
    return (f"{EVAL_START}\nNot evaluated yet: `coin-train eval --model FOLDER --suite default --out eval/` "
            f"writes its table here.\n{EVAL_END}")


def _current_eval_section(folder: Path) -> str | None:
    card = folder / CARD_FILE
    if not card.is_file():
        return None
    text = card.read_text(encoding="utf-8")
    start, end = text.find(EVAL_START), text.find(EVAL_END)
    return text[start:end + len(EVAL_END)] if CARD_MARKER in text and 0 <= start < end else None


# --- writing --------------------------------------------------------------------------------------------------
def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)  # a reader never sees half a card


def write_model_outputs(folder: str | os.PathLike, trainer, run_args: tuple | None = None) -> None:
    """Write ``coin_config.json`` and ``README.md`` for the model ``trainer`` just saved in ``folder``.

    Args:
        folder: the saved model's folder (final output or a checkpoint).
        trainer: the :class:`~coin_train.trainer.CoinTrainer` (its args, log history and model are read).
        run_args: ``(ModelArguments, LoraArguments, DataArguments)`` of the run, when known.

    Example:
        >>> write_model_outputs("out/coin", trainer, (model_args, lora_args, data_args))  # doctest: +SKIP
    """
    folder = Path(folder)
    model_args, lora_args, data_args = run_args or (None, None, None)
    settings = run_settings(trainer.args, model_args, lora_args, data_args)
    _write_atomic(folder / SETTINGS_FILE, json.dumps(settings, indent=2, ensure_ascii=False) + "\n")
    name = (trainer.args.hub_model_id or "").split("/")[-1] or Path(trainer.args.output_dir).resolve().name
    base = base_model_info(trainer.accelerator.unwrap_model(trainer.model), model_args)
    card = render_model_card(settings, final_metrics(trainer.state.log_history), base, name,
                             trainer.state.global_step, _current_eval_section(folder))
    _write_atomic(folder / CARD_FILE, card)


def is_coin_card(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` holds a model card written by :func:`write_model_outputs`."""
    card = Path(folder) / CARD_FILE
    return card.is_file() and CARD_MARKER in card.read_text(encoding="utf-8")


def eval_section(report: dict, entry: dict) -> str:
    """The card's results section for one model of a ``coin-train eval`` report.

    Args:
        report: the report (:func:`coin_train.report.build_report`).
        entry: the model's entry in ``report["models"]``.

    Returns:
        Markdown between the card's eval markers: accuracy per level (mean ± std over instructions,
        worst instruction, drop versus clean, flip rate) and the overall means of the models compared.
    """
    suite, settings = report["suite"], report.get("settings", {})

    def pct(value: float | None) -> str:
        return "–" if value is None else f"{100 * value:.1f}"

    lines = [EVAL_START,
             (f"`coin-train eval` on suite `{suite['name']}` ({len(suite.get('tasks', {}))} tasks, scoring "
              f"`{settings.get('mode')}`): accuracy in %, mean ± population std over instructions; drop = clean − "
              "level; flip = share of examples whose prediction changes across the level's instructions."), "",
             "| level | accuracy | worst | drop | flip |", "|---|---|---|---|---|"]
    for level in [*suite["levels"], "overall"]:
        s = entry["overall"] if level == "overall" else entry["levels"][level]
        lines.append(f"| {level} | {pct(s['mean'])} ± {pct(s['std'])} | {pct(s['worst'])} | {pct(s['drop'])} | "
                     f"{pct(s['flip_rate'])} |")
    others = [m for m in report["models"] if m is not entry]
    if others:
        lines += ["", "Compared in the same run (overall accuracy %): " + "; ".join(
            f"`{m['name']}` {pct(m['overall']['mean'])}" for m in [entry, *others])]
    lines.append(EVAL_END)
    return "\n".join(lines)


def update_eval_section(folder: str | os.PathLike, report: dict, entry: dict) -> bool:
    """Put ``coin-train eval``'s table into the card of a model folder trained here.

    Returns:
        True if the card was updated; False when ``folder`` has no coin-toolkit card (another model, a
        Hub id): nothing is written then.

    Example:
        >>> update_eval_section("out/coin", report, report["models"][0])  # doctest: +SKIP
        True
    """
    folder = Path(folder)
    if not is_coin_card(folder):
        return False
    text = (folder / CARD_FILE).read_text(encoding="utf-8")
    start, end = text.find(EVAL_START), text.find(EVAL_END)
    if not 0 <= start < end:
        return False
    _write_atomic(folder / CARD_FILE, text[:start] + eval_section(report, entry) + text[end + len(EVAL_END):])
    return True
