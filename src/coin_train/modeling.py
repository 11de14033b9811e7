"""Load a causal LM and its tokenizer, attach LoRA, and run the one-pass forward CoIN needs.

* :func:`load_tokenizer`, :func:`load_model`: any ``AutoModelForCausalLM`` by path or Hub id, optionally
  with fresh LoRA adapters, or a saved PEFT adapter folder (its base model is loaded under it).
* :func:`load_for_inference`: a trained output folder -> (model, tokenizer, prompt format), for evaluation.
* :func:`labelled_forward`: one forward pass that returns the final hidden states of every view and the
  logits at the labelled positions only.
* :func:`smollm2_path`: a local ``from_pretrained`` folder of the bundled SmolLM2-135M-Instruct.

Example:
    >>> from coin_train.config import ModelArguments, LoraArguments
    >>> model = load_model(ModelArguments(model_name_or_path="path/to/model"),   # doctest: +SKIP
    ...                    LoraArguments(use_lora=True, lora_r=8))
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import torch

from coin_data.models import SMOLLM2_NAME, smollm2_path  # noqa: F401  (the bundled model lives in coin_data)
from coin_train.config import LoraArguments, ModelArguments
from coin_train.packing import pack_views
from coin_train.prompt_format import PromptFormat
from coin_train.sources import ModelSource, SourceError, locate_model

logger = logging.getLogger(__name__)

ADAPTER_CONFIG = "adapter_config.json"


# --- loading ---------------------------------------------------------------------
def is_adapter_dir(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a local folder holding a PEFT adapter (``adapter_config.json``)."""
    return (Path(path) / ADAPTER_CONFIG).is_file()


def adapter_base_model(adapter_dir: str | os.PathLike) -> str:
    """The base model of a PEFT adapter folder, with a relative local path made usable from any folder.

    Adapters written before base paths were stored absolute hold the ``--model`` path as typed, relative
    to wherever training ran. That folder is usually the adapter's own folder or one of its parents
    (``--output-dir out/coin`` from the project root), so the path is looked up there first, then in the
    current folder; a Hub id that names no such folder is returned unchanged.

    Raises:
        ValueError: the stored value is a local path (``./``, ``../``, ``~``, or more than one ``/``) found
            nowhere: one line naming the file and what to edit.

    Example:
        >>> adapter_base_model("out/coin")  # adapter_config.json: "base_model_name_or_path": "models/base"  # doctest: +SKIP
        '/home/me/project/models/base'
    """
    config = Path(adapter_dir) / ADAPTER_CONFIG
    base = json.loads(config.read_text(encoding="utf-8"))["base_model_name_or_path"]
    stored = Path(base).expanduser()
    if stored.is_absolute():
        return str(stored)
    folder = Path(adapter_dir).resolve()
    for root in (folder, *folder.parents, Path.cwd()):
        if (root / stored / "config.json").is_file():
            if root != Path.cwd():
                logger.info("%s: base model %r found at %s", config, base, root / stored)
            return str((root / stored).resolve())
    if base.startswith((".", "~")) or base.count("/") > 1 or "\\" in base:
        raise ValueError(f"{config}: base_model_name_or_path {base!r} is a relative folder found neither next to "
                         "the adapter nor here; set it to the base model's absolute path or Hub id")  # fmt: skip
    return base


def load_tokenizer(name_or_path: str | os.PathLike, trust_remote_code: bool = False):
    """Load a tokenizer and make sure it can pad.

    A tokenizer without a pad token pads with EOS: labels come from prompt lengths, never from pad ids, so
    this cannot mask out a real EOS.

    Args:
        name_or_path: Hub id, folder (a model or an adapter folder) or ``smollm2``; located first
            (:func:`coin_train.sources.locate_model`), so a missing folder or an unreachable Hub fails at once.
        trust_remote_code: passed to ``AutoTokenizer``.

    Returns:
        A ``PreTrainedTokenizerBase`` with ``pad_token_id`` set.

    Raises:
        coin_train.sources.SourceError: the model cannot be found, or its tokenizer cannot be loaded.
    """
    from transformers import AutoTokenizer

    source = locate_model(str(name_or_path))
    try:
        tokenizer = AutoTokenizer.from_pretrained(source.name, trust_remote_code=trust_remote_code,
                                                  **source.load_kwargs())
    except (OSError, ValueError) as err:
        raise SourceError(f"{name_or_path}: cannot load its tokenizer ({_first_line(err)}); the folder needs the "
                          "tokenizer files save_pretrained writes (tokenizer.json or tokenizer.model)") from None
    if tokenizer.pad_token_id is None:
        if tokenizer.eos_token_id is None:
            raise ValueError(f"{name_or_path}: the tokenizer has neither a pad nor an eos token")
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _first_line(err: BaseException) -> str:
    text = str(err).strip().strip("'\"")
    return text.splitlines()[0] if text else type(err).__name__


def _from_pretrained(source: ModelSource, given: str, **kwargs):
    """``AutoModelForCausalLM.from_pretrained`` with load errors turned into one line naming ``given``."""
    from transformers import AutoModelForCausalLM

    try:
        return AutoModelForCausalLM.from_pretrained(source.name, **source.load_kwargs(), **kwargs)
    except (OSError, ValueError) as err:
        raise SourceError(f"{given}: cannot load the model ({_first_line(err)})") from None


def adapter_base(path: str | os.PathLike) -> ModelSource:
    """The located base model of the PEFT adapter folder ``path`` (its ``base_model_name_or_path``).

    Raises:
        coin_train.sources.SourceError: the base model cannot be found (an adapter saved with a relative
            base path by an older version, run from another folder, names it).

    Example:
        >>> adapter_base("out/lora").name  # doctest: +SKIP
        '/home/me/models/tiny'
    """
    try:
        return locate_model(adapter_base_model(path))
    except (SourceError, ValueError) as err:
        raise SourceError(f"{path} is a LoRA adapter whose base model cannot be found: {err}") from None


def _dtype(name: str):
    return "auto" if name == "auto" else getattr(torch, name)


def load_model(model_args: ModelArguments, lora_args: LoraArguments | None = None):
    """Load the causal LM to train.

    Args:
        model_args: path or id, dtype, attention kernel. A PEFT adapter folder loads its base model and
            continues training that adapter (like the paper, which continued the Alpaca-LoRA adapter).
        lora_args: with ``use_lora``, wrap the model with fresh LoRA adapters (only they train).

    Returns:
        A ``PreTrainedModel``, or a ``peft.PeftModel`` when LoRA is used.

    Raises:
        coin_train.sources.SourceError: the model (or an adapter's base model) cannot be found or loaded.
    """
    path = model_args.model_name_or_path
    kwargs = {"dtype": _dtype(model_args.dtype), "trust_remote_code": model_args.trust_remote_code}
    if model_args.attn_implementation:
        kwargs["attn_implementation"] = model_args.attn_implementation

    if is_adapter_dir(path):
        from peft import PeftModel

        base = _from_pretrained(adapter_base(path), path, **kwargs)
        if lora_args is not None and lora_args.use_lora:
            logger.warning("%s is an adapter folder: continuing its adapter, the --lora settings are ignored", path)
        model = PeftModel.from_pretrained(base, path, is_trainable=True)
        model = _fuse_dropout(model) if lora_args is None or lora_args.lora_fuse_dropout else model
        return _freeze_trunk(model, model_args.train_top_layers)

    # Loaded by its absolute path (a local folder), so an adapter records a base path valid from any folder.
    model = _from_pretrained(locate_model(path), path, **kwargs)
    if lora_args is not None and lora_args.use_lora:
        model = attach_lora(model, lora_args, top_layers=model_args.train_top_layers)
    return _freeze_trunk(model, model_args.train_top_layers)


def _freeze_trunk(model, n_top: int | None):
    if n_top is not None:
        from coin_train.freezing import freeze_below_top_layers

        frozen, trained = freeze_below_top_layers(model, n_top)
        logger.info("training the top %d decoder layers; the %d below run without gradients", trained, frozen)
    return model


def attach_lora(model, lora_args: LoraArguments, top_layers: int | None = None):
    """Wrap ``model`` with fresh LoRA adapters; the base weights are frozen.

    With ``top_layers`` the adapters go on the top N decoder layers only (:mod:`coin_train.freezing`).

    With ``lora_fuse_dropout`` (the default) each adapter's dropout is fused into its A projection
    (:mod:`coin_train.lora_dropout`): the same computation with less activation memory.

    Example:
        >>> peft_model = attach_lora(model, LoraArguments(use_lora=True, lora_r=8))  # doctest: +SKIP
        >>> peft_model.print_trainable_parameters()                                  # doctest: +SKIP
    """
    from peft import LoraConfig, get_peft_model

    targets = lora_args.lora_target_modules
    config = LoraConfig(
        r=lora_args.lora_r,
        lora_alpha=lora_args.lora_alpha,
        lora_dropout=lora_args.lora_dropout,
        target_modules="all-linear" if targets == ["all-linear"] else list(targets),
        task_type="CAUSAL_LM",
        layers_to_transform=_top_layers(model, top_layers),
    )
    model = get_peft_model(model, config)
    return _fuse_dropout(model) if lora_args.lora_fuse_dropout else model


def _top_layers(model, n_top: int | None) -> list[int] | None:
    if n_top is None:
        return None
    from coin_train.freezing import decoder_layers, top_layer_indices

    return top_layer_indices(len(decoder_layers(model)), n_top)


def _fuse_dropout(model):
    from coin_train.lora_dropout import fuse_lora_dropout

    changed = fuse_lora_dropout(model)
    logger.info("fused dropout into %d LoRA A projections (coin_train.lora_dropout)", changed)
    return model


def load_for_inference(path: str | os.PathLike, dtype: str = "float32"):
    """Load a trained output folder (full model or adapter) for evaluation.

    Args:
        path: a ``coin-train train`` output folder or checkpoint, or any causal LM id/folder.
        dtype: weight dtype name.

    Returns:
        ``(model, tokenizer, prompt_format)`` with the model in eval mode and the prompt format it was
        trained with (the default format for models not trained here).

    Example:
        >>> model, tokenizer, fmt = load_for_inference("out/coin")  # doctest: +SKIP
        >>> ids = fmt.encode_prompt(tokenizer, "Is this spam? ...")  # doctest: +SKIP
    """
    source = locate_model(str(path))
    if is_adapter_dir(source.name):  # the base model first, found wherever the adapter folder now is
        from peft import PeftModel

        base = _from_pretrained(adapter_base(source.name), str(path), dtype=_dtype(dtype))
        model = PeftModel.from_pretrained(base, source.name)
    else:
        model = _from_pretrained(source, str(path), dtype=_dtype(dtype))
    model.eval()
    prompt_format = PromptFormat.load(source.name) if Path(source.name).is_dir() else PromptFormat()
    return model, load_tokenizer(path), prompt_format


# --- the one-pass forward ----------------------------------------------------------------
def _output_head(model):
    from accelerate.utils import extract_model_from_parallel

    inner = extract_model_from_parallel(model)  # DDP, DeepSpeed and FSDP wrappers
    head = inner.get_output_embeddings() if hasattr(inner, "get_output_embeddings") else None
    if head is None:
        raise TypeError(f"{type(inner).__name__} has no output embeddings (lm_head): not a causal LM?")
    return head


def labelled_forward(model, input_ids, attention_mask, position_ids, select,
                     pack: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward pass: final hidden states of all views, logits only where ``select`` is true.

    A pre-hook on the output head (``lm_head``) keeps its input, the final normalized hidden state, and
    hands the head only the selected positions. So no per-layer states are kept, no full-vocabulary
    logits are made, and the call still goes through the model's own ``forward`` (and through the DDP /
    FSDP / DeepSpeed wrapper around it), including any logit post-processing the model does.

    Args:
        model: a causal LM, possibly wrapped by peft or a distributed engine.
        input_ids: ``[views, seq]``.
        attention_mask: ``[views, seq]``.
        position_ids: ``[views, seq]``, counting real tokens only (padding-side independent).
        select: ``[views, seq]`` bool, the positions whose next-token logits are needed (real tokens only).
        pack: run the views packed into fuller rows (:mod:`coin_train.packing`) instead of padded, when
            that saves positions; the results are laid out as if padded.

    Returns:
        ``hidden [views, seq, dim]`` (zeros on padding when packed) and ``logits [select.sum(), vocab]`` in
        row-major order of ``select``.

    Example:
        >>> select = batch["labels"][:, 1:] != -100  # doctest: +SKIP
    """
    captured: dict[str, torch.Tensor] = {}
    packed = pack_views(input_ids, attention_mask) if pack else None
    if packed is not None and bool((select & (packed.index < 0)).any()):
        raise ValueError("select marks padding positions: only real tokens have logits")
    use_packed = packed is not None and packed.input_ids.numel() < input_ids.numel()  # else padding costs no more
    if use_packed:
        inputs = {"input_ids": packed.input_ids, "position_ids": packed.position_ids}  # no mask: see packing
        pick = lambda hidden: packed.gather(hidden, select)  # [rows, row_len, dim] -> [n_selected, dim]
    else:
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask, "position_ids": position_ids}
        pick = lambda hidden: hidden[select]  # [views, seq, dim] -> [n_selected, dim]

    def keep_and_select(module, args):
        captured["hidden"] = args[0]
        return (pick(args[0]).unsqueeze(0), *args[1:])  # [1, n_selected, dim]

    handle = _output_head(model).register_forward_pre_hook(keep_and_select)
    try:
        outputs = model(**inputs, use_cache=False)
    finally:
        handle.remove()
    if "hidden" not in captured:
        raise RuntimeError(f"{type(model).__name__}.forward never called its output head module; "
                           "labelled_forward needs a model that computes logits as lm_head(hidden_states)")
    logits = outputs.logits if hasattr(outputs, "logits") else outputs[0]
    hidden = packed.unpack(captured["hidden"]) if use_packed else captured["hidden"]  # [views, seq, dim]
    return hidden, logits.reshape(-1, logits.shape[-1])  # [views, seq, dim], [n_selected, vocab]
