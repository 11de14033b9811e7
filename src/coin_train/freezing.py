"""Train only the top N decoder layers: the layers below run without gradients.

On a CPU most of a step is the backward pass through every layer. With ``--train_top_layers N`` the
embeddings and the layers below the top N are frozen. Nothing below the top N then requires a gradient,
so autograd records no graph there: the trunk's forward keeps no activations and the backward stops at
layer ``L - N``. With LoRA the adapters are attached to the top N layers only (peft's
``layers_to_transform``); in full fine-tuning the top N layers, the final norm and an untied output head
train.

Example:
    >>> layers = decoder_layers(model)            # doctest: +SKIP
    >>> freeze_below_top_layers(model, 4)         # doctest: +SKIP
    (26, 4)
"""

from __future__ import annotations

import logging

from torch import nn

logger = logging.getLogger(__name__)


def _base(model) -> nn.Module:
    """The transformers model under a peft wrapper (or the model itself)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def decoder_layers(model) -> nn.ModuleList:
    """The model's stack of decoder layers (``model.model.layers`` for Llama-style models).

    Raises:
        TypeError: no ``nn.ModuleList`` of layers is found (the message names the model class).
    """
    base = _base(model)
    decoder = base.get_decoder() if hasattr(base, "get_decoder") else None
    for owner in (decoder, getattr(base, "model", None), base):
        layers = getattr(owner, "layers", None) if owner is not None else None
        if isinstance(layers, nn.ModuleList):
            return layers
    raise TypeError(f"{type(base).__name__}: no decoder layer stack (.layers) found; --train_top_layers "
                    "supports models whose decoder keeps its layers in a ModuleList named 'layers'")


def top_layer_indices(num_layers: int, n_top: int) -> list[int]:
    """Indices of the top ``n_top`` of ``num_layers`` layers.

    Example:
        >>> top_layer_indices(30, 4)
        [26, 27, 28, 29]
    """
    if not 1 <= n_top <= num_layers:
        raise ValueError(f"train_top_layers must be between 1 and the model's {num_layers} layers, got {n_top}")
    return list(range(num_layers - n_top, num_layers))


def freeze_below_top_layers(model, n_top: int) -> tuple[int, int]:
    """Freeze the input embeddings and every decoder layer below the top ``n_top``.

    A tied output head shares the input embedding's weight and is frozen with it (training it would make
    every layer's input require a gradient, undoing the saving).

    Args:
        model: a causal LM, possibly wrapped by peft.
        n_top: how many of the top layers keep their trainable parameters.

    Returns:
        ``(frozen layers, trained layers)``.
    """
    layers = decoder_layers(model)
    keep = set(top_layer_indices(len(layers), n_top))
    base = _base(model)
    base.get_input_embeddings().requires_grad_(False)
    for index, layer in enumerate(layers):
        if index not in keep:
            layer.requires_grad_(False)
    head = base.get_output_embeddings()
    if head is not None and head.weight is base.get_input_embeddings().weight:
        logger.info("the output head is tied to the input embeddings: both stay frozen")
    return len(layers) - len(keep), len(keep)
