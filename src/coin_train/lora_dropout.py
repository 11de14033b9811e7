"""LoRA dropout fused into the adapter's A projection, so training keeps a 1-byte mask, not a copy.

peft computes ``lora_B(lora_A(dropout(x)))``. For the backward pass autograd then keeps, for every adapted
layer, the dropped-out copy of ``x`` (the input of ``lora_A``) and, on CPU, a float mask as large as
``x``. With adapters on q/k/v/o that is eight hidden-size tensors per token and layer: on SmolLM2-135M
about a third of all activation memory. :class:`DropoutLinear` replaces ``lora_A`` and the dropout with
one operation that keeps ``x`` itself (one tensor shared by q, k and v, which read the same input) and a
boolean mask, and recomputes the dropped-out copy in the backward pass. The result is the same
computation: the same dropout rate, the same scaling, the same gradients for a given mask.

Example:
    >>> import torch
    >>> layer = DropoutLinear(4, 2, p=0.5)
    >>> x = torch.ones(3, 4, requires_grad=True)
    >>> layer(x).shape
    torch.Size([3, 2])
    >>> layer.eval()(x).equal(x @ layer.weight.T)   # no dropout in eval mode
    True
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn

logger = logging.getLogger(__name__)


class _DropoutThenLinear(torch.autograd.Function):
    """``y = (x * keep / (1 - p)) @ weight.T`` that saves ``x`` and the bool ``keep``, not the product."""

    @staticmethod
    def forward(ctx, x, weight, keep, scale: float):
        ctx.save_for_backward(x, weight, keep)
        ctx.scale = scale
        return F.linear(x.masked_fill(~keep, 0) * scale, weight)  # [..., out]

    @staticmethod
    def backward(ctx, grad_out):
        x, weight, keep = ctx.saved_tensors
        grad_x = grad_weight = None
        if ctx.needs_input_grad[0]:
            grad_x = (grad_out @ weight).masked_fill(~keep, 0) * ctx.scale  # [..., in]
        if ctx.needs_input_grad[1]:
            dropped = x.masked_fill(~keep, 0) * ctx.scale  # recomputed: [..., in]
            grad_weight = grad_out.reshape(-1, grad_out.shape[-1]).T @ dropped.reshape(-1, dropped.shape[-1])
        return grad_x, grad_weight, None, None


class DropoutLinear(nn.Linear):
    """A bias-free ``nn.Linear`` that applies dropout to its input first, keeping only a bool mask.

    It has the same parameter (``weight``) as the ``lora_A`` it replaces, so state dicts, saved adapters
    and merging are unchanged.

    Args:
        in_features: input size.
        out_features: output size (the LoRA rank).
        p: dropout probability, applied in training mode only.

    Attributes:
        fused: ``False`` runs peft's unfused ``linear(dropout(x))`` instead (for comparisons).
    """

    def __init__(self, in_features: int, out_features: int, p: float, device=None, dtype=None):
        super().__init__(in_features, out_features, bias=False, device=device, dtype=dtype)
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p
        self.fused = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return F.linear(x, self.weight)
        if not self.fused:
            return F.linear(F.dropout(x, self.p, training=True), self.weight)
        weight = self.weight
        if torch.is_autocast_enabled(x.device.type):  # what F.linear would do under autocast
            dtype = torch.get_autocast_dtype(x.device.type)
            x, weight = x.to(dtype), weight.to(dtype)
        keep = torch.rand(x.shape, device=x.device) >= self.p  # [..., in] bool
        with torch.autocast(x.device.type, enabled=False):
            return _DropoutThenLinear.apply(x, weight, keep, 1.0 / (1.0 - self.p))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, p={self.p}"


def fuse_lora_dropout(model) -> int:
    """Replace ``dropout`` + ``lora_A`` of every plain LoRA ``Linear`` layer with a :class:`DropoutLinear`.

    Layers without dropout, with a LoRA variant (DoRA ...) or of another kind are left as they are.

    Args:
        model: a peft model (or any module containing peft LoRA layers); changed in place.

    Returns:
        The number of adapters changed.

    Example:
        >>> fuse_lora_dropout(peft_model)  # doctest: +SKIP
        120
    """
    from peft.tuners.lora import Linear as LoraLinear

    changed = 0
    for module in model.modules():
        if not isinstance(module, LoraLinear):
            continue
        for name, dropout in list(module.lora_dropout.items()):
            old = module.lora_A[name]
            plain = type(old) is nn.Linear and old.bias is None and name not in getattr(module, "lora_variant", {})
            if not (plain and isinstance(dropout, nn.Dropout) and dropout.p > 0):
                continue
            new = DropoutLinear(old.in_features, old.out_features, dropout.p, device="meta")
            new.weight = old.weight  # the same Parameter: optimizer, state dict and saving are unchanged
            new.train(old.training)
            module.lora_A[name] = new
            module.lora_dropout[name] = nn.Identity()
            changed += 1
    return changed


def set_fused(model, fused: bool) -> int:
    """Switch every :class:`DropoutLinear` in ``model`` between the fused and peft's unfused computation.

    Returns:
        The number of layers switched.
    """
    layers = [m for m in model.modules() if isinstance(m, DropoutLinear)]
    for layer in layers:
        layer.fused = fused
    return len(layers)
