"""Fused bias + activation + dropout + residual add, the end of a transformer sublayer.

residual + dropout(activation(x + bias)) in one pass over memory, where torch
runs one pass per operation (Megatron-LM's bias_dropout_add, xformers' fused
dropout). The mask is the spec's mask over x's logical elements: the same
elements are kept as by dropkit.functional.dropout(x, p, seed=seed, offset=offset).

What is computed, on every backend: in float32 and float64, every step in the
tensor's type; in float16 and bfloat16, every step in float32 and one rounding
at the end: out = round(float32(residual) + keep * float32(scale) * a),
a = activation(float32(x) + float32(bias)). Without activation or with relu the
result is bit-identical across backends. gelu uses each backend's erf (torch's,
libm's, CUDA's), which agree to about one float32 ulp, so gelu outputs agree to
that rounding; its mask is identical.

Examples:
    >>> import torch
    >>> from dropkit.functional import bias_dropout_add
    >>> x, b, r = torch.ones(2, 4), torch.ones(4), torch.zeros(2, 4)
    >>> bias_dropout_add(x, b, r, 0.5, activation="relu", seed=7)
    tensor([[4., 4., 0., 0.],
            [0., 4., 0., 4.]])
"""

from __future__ import annotations

import torch
from torch import Tensor

from .. import _validate
from ._common import DropoutBase, active, resolve_seed
from ..ops.fused import apply_bias_dropout_add

__all__ = ["bias_dropout_add", "BiasDropoutAdd", "FUSED_ACTIVATIONS"]

# The activations the fused op computes, by name (control.ACTIVATIONS holds module classes).
FUSED_ACTIVATIONS = (None, "relu", "gelu")


def bias_dropout_add(
    x: Tensor,
    bias: Tensor | None,
    residual: Tensor,
    p: float,
    training: bool = True,
    *,
    activation: str | None = None,
    seed: int | None = None,
    offset: int = 0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """residual + dropout(activation(x + bias), p) in one fused pass; backward recomputes the mask.

    Args:
        x: a floating tensor of shape (..., H).
        bias: a tensor of shape (H,) added along x's last dimension, or None.
        residual: a tensor of x's shape, added after dropout.
        p: probability of an element being zeroed, in [0, 1].
        training: apply dropout if True; if False (and not inside dropkit.mc_dropout)
            return residual + activation(x + bias), still in one pass.
        activation: None, "relu" or "gelu" (the exact erf form, torch's default).
        seed: 64-bit seed of the mask; None draws one from `generator` or torch's default.
        offset: index of x's first element in the random stream.
        generator: torch.Generator to draw the seed from when seed is None.

    Shape:
        x, residual, output: (..., H); bias: (H,). The output has x's memory format.

    Saved for backward: the seed; with relu or gelu also x and bias (the inputs
    themselves, no copy). No mask and no activation output is stored.

    Examples:
        >>> h = bias_dropout_add(torch.randn(8, 64), torch.zeros(64), torch.randn(8, 64), 0.1, activation="gelu")
    """
    _validate.float_tensor(x, "x")
    bias = _validate.bias_for(bias, x)
    residual = _validate.same_as(residual, x, "residual")
    p = _validate.p(p)
    _validate.choice(activation, FUSED_ACTIVATIONS, "activation")
    seed = _validate.seed(seed)
    offset = _validate.offset(offset)
    if not active(training):
        p = 0.0
    # No mask at p = 0: draw nothing and address nothing, as dropout does.
    seed, offset = resolve_seed(0 if p == 0.0 else seed, offset, generator, x.shape)
    return apply_bias_dropout_add(x, bias, residual, p, seed, offset, activation)


class BiasDropoutAdd(DropoutBase):
    """residual + dropout(activation(x + bias)) in one fused pass; the layer holds the bias.

    The end of a transformer sublayer (Megatron-LM's bias_dropout_add): follow a
    bias-free projection with it, nn.Linear(d, H, bias=False) then BiasDropoutAdd(H),
    and the bias add, activation, dropout and residual add cost one pass over
    memory instead of four. Backward recomputes the mask (no mask is stored).
    To pass a bias from elsewhere, call dropkit.functional.bias_dropout_add.

    Args:
        features: size H of the last dimension (and of the bias).
        p: probability of an element being zeroed. Default: 0.5
        activation: None, "relu" or "gelu" (exact erf form). Default: None
        bias: hold a learnable bias of shape (H,), initialised to zeros. Default: True
        generator: torch.Generator the per-call seeds are drawn from (default: torch's; eager only).

    Shape:
        x, residual, output: (..., H).

    Examples:
        >>> m = BiasDropoutAdd(64, p=0.1, activation="gelu")
        >>> m
        BiasDropoutAdd(64, p=0.1, activation='gelu', bias=True)
        >>> y = m(torch.randn(8, 64), torch.randn(8, 64))
    """

    def __init__(
        self,
        features: int,
        p: float = 0.5,
        activation: str | None = None,
        *,
        bias: bool = True,
        generator: torch.Generator | None = None,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        self.features = _validate.positive_int(features, "features")
        self.p = _validate.p(p)
        self.activation = _validate.choice(activation, FUSED_ACTIVATIONS, "activation")
        if bias:
            self.bias = torch.nn.Parameter(torch.zeros(features, device=device, dtype=dtype))
        else:
            self.register_parameter("bias", None)  # as torch.nn.Linear: the name exists, holding no parameter
        self.generator = generator

    def forward(self, x: Tensor, residual: Tensor) -> Tensor:
        return bias_dropout_add(
            x, self.bias, residual, self.p, self.training, activation=self.activation, generator=self.generator
        )

    def extra_repr(self) -> str:
        return f"{self.features}, p={self.p}, activation={self.activation!r}, bias={self.bias is not None}"
