"""Activation + dropout in one pass: dropout(relu(x)) and dropout(gelu(x)).

The pattern of the seed network (Linear -> ReLU -> Dropout), fused: forward is
one pass over memory, and relu's backward draws no random numbers (the
output's sign carries the mask). Masks and outputs equal those of the unfused
pair for the same seed: relu bit for bit; gelu to about one float32 ulp (the
kernels' erf is libm's, not torch's), with the identical mask.

Examples:
    >>> activation_dropout(torch.tensor([1.0, -1.0, 1.0, 1.0]), 0.5, seed=7)
    tensor([2., 0., 0., 0.])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import _validate
from ..ops.activation import apply_activation_dropout
from ._common import DropoutBase, active, check, resolve_seed

__all__ = ["activation_dropout", "FUSED_ACTIVATIONS", "ActivationDropout", "ReLUDropout", "GELUDropout"]

FUSED_ACTIVATIONS = ("relu", "gelu")
_PLAIN = {"relu": torch.relu, "gelu": F.gelu}


def activation_dropout(
    input: Tensor,
    p: float = 0.5,
    training: bool = True,
    *,
    activation: str = "relu",
    seed: int | None = None,
    offset: int = 0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """dropout(activation(input), p) in one pass; the mask is the one dropout(activation(input)) would draw.

    Args:
        input: a floating tensor of any shape.
        p: probability of an element being zeroed, in [0, 1].
        training: apply dropout if True; if False (and not inside dropkit.mc_dropout)
            return activation(input) alone.
        activation: "relu" or "gelu" (the exact erf form, torch's default).
        seed: 64-bit seed of the mask; None draws one from `generator` or torch's default.
        offset: index of input's first element in the random stream.
        generator: torch.Generator to draw the seed from when seed is None.

    Shape:
        Output has the shape and memory format of `input`.

    Saved for backward: relu keeps the output (as torch's relu does), gelu the input
    (as torch's gelu does); no mask.

    Examples:
        >>> y = activation_dropout(torch.randn(8, 16), 0.3, activation="gelu", seed=1)
    """
    p, seed, offset = check(input, p, seed, offset)
    _validate.choice(activation, FUSED_ACTIVATIONS, "activation")
    if not active(training) or p == 0.0:
        return _PLAIN[activation](input)  # no mask: draw nothing, as dropout at p = 0 draws nothing
    seed, offset = resolve_seed(seed, offset, generator, input.shape)
    return apply_activation_dropout(input, p, seed, offset, activation)


class ActivationDropout(DropoutBase):
    """dropout(activation(x)) in one pass: the fused form of an activation followed by Dropout.

    Same outputs and masks as the pair activation -> dropkit.nn.Dropout(p) drawing
    from the same generator (gelu to about one float32 ulp, the mask identical);
    eval() gives the activation alone. dropkit.fuse_activation_dropout turns such
    pairs of a built model into these. Subclasses name the activation.

    Args:
        p: probability of an element being zeroed. Default: 0.5
        generator: torch.Generator the per-call seeds are drawn from (default: torch's; eager only).

    Shape:
        Input: any shape. Output: same shape and memory format.
    """

    activation: str

    def __init__(self, p: float = 0.5, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.p = _validate.p(p)
        self.generator = generator

    def forward(self, input: Tensor) -> Tensor:
        return activation_dropout(input, self.p, self.training, activation=self.activation, generator=self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class ReLUDropout(ActivationDropout):
    """dropout(relu(x)) in one pass; backward reads the mask off the output's sign (no random numbers).

    Examples:
        >>> ReLUDropout(0.5)(torch.randn(4, 8)).shape
        torch.Size([4, 8])
    """

    activation = "relu"


class GELUDropout(ActivationDropout):
    """dropout(gelu(x)) in one pass (exact erf gelu); backward recomputes the mask.

    Examples:
        >>> GELUDropout(0.1)(torch.randn(4, 8)).shape
        torch.Size([4, 8])
    """

    activation = "gelu"
