"""coin_train: Contrastive Instruction Tuning on datasets built by coin_data.

Names are imported on first use, so ``import coin_train.losses`` needs only torch, while
``from coin_train import CoinTrainer`` loads transformers.

Example:
    >>> from coin_train import CoinConfig, CoinTrainer, info_nce, PromptFormat
    >>> PromptFormat().render_prompt("Is it spam?")
    'Is it spam?\\n\\n### Response:\\n'
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "coin_train.config": ("CoinConfig", "DataArguments", "LoraArguments", "ModelArguments"),
    "coin_train.data": ("CoinCollator", "encode_dataset", "load_coin_dataset"),
    "coin_train.lora_dropout": ("DropoutLinear", "fuse_lora_dropout"),
    "coin_train.losses": ("CoinLoss", "CoinLossOutput", "balance_contrastive", "contrastive_logits",
                          "generation_loss", "info_nce", "symmetric_info_nce"),
    "coin_train.modeling": ("attach_lora", "labelled_forward", "load_for_inference", "load_model",
                            "load_tokenizer", "smollm2_path"),
    "coin_train.packing": ("PackedViews", "pack_views", "packing_matches_padding"),
    "coin_train.pooling": ("last_token_pool", "mean_pool", "pool"),
    "coin_train.prompt_format": ("DEFAULT_TEMPLATE", "PromptFormat"),
    "coin_train.trainer": ("CoinTrainer", "run_training"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [  # the names _EXPORTS provides
    "DEFAULT_TEMPLATE",
    "CoinCollator",
    "CoinConfig",
    "CoinLoss",
    "CoinLossOutput",
    "CoinTrainer",
    "DataArguments",
    "DropoutLinear",
    "LoraArguments",
    "ModelArguments",
    "PackedViews",
    "PromptFormat",
    "attach_lora",
    "balance_contrastive",
    "contrastive_logits",
    "encode_dataset",
    "fuse_lora_dropout",
    "generation_loss",
    "info_nce",
    "labelled_forward",
    "last_token_pool",
    "load_coin_dataset",
    "load_for_inference",
    "load_model",
    "load_tokenizer",
    "mean_pool",
    "pack_views",
    "packing_matches_padding",
    "pool",
    "run_training",
    "smollm2_path",
    "symmetric_info_nce",
]


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'coin_train' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
