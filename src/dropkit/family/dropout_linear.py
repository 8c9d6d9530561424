"""Dropout followed by a linear layer, at the memory of the linear layer alone: linear(dropout(x)).

The layer after a dropout keeps its input for the weight gradient, so the
pair Dropout -> Linear keeps a dropped copy of x. Masks are a pure function
of (seed, offset, index), so this op keeps x itself (which the previous layer,
or the other adapters of a LoRA projection, keep already) and the seed, and
rebuilds the dropped input in backward. Outputs and gradients equal those of
dropkit.nn.Dropout followed by nn.Linear with the same seed, bit for bit where
both run the same matmul shapes.

Examples:
    >>> dropout_linear(torch.ones(1, 4), torch.ones(2, 4), None, 0.5, seed=7)
    tensor([[4., 4.]])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import _mode, _validate
from ..ops import consistent
from ..ops.dropout_linear import apply_dropout_linear
from ._common import DropoutBase, active, check, resolve_seed

__all__ = ["dropout_linear", "DropoutLinear"]


def dropout_linear(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    p: float = 0.5,
    training: bool = True,
    *,
    seed: int | None = None,
    offset: int = 0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """F.linear(dropout(input, p), weight, bias), saving input and the seed instead of the dropped input.

    Args:
        input: (*, in_features), floating.
        weight: (out_features, in_features), input's dtype and device.
        bias: (out_features,) or None.
        p: probability of an input element being zeroed, in [0, 1].
        training: apply dropout if True; if False (and not inside dropkit.mc_dropout)
            return F.linear(input, weight, bias).
        seed: 64-bit seed of the mask over input's elements; None draws one from
            `generator` or torch's default (or, inside dropkit.sample_addressed, the addressed one).
        offset: index of input's first element in the random stream.
        generator: torch.Generator to draw the seed from when seed is None.

    Shape:
        Input: (*, in_features). Output: (*, out_features).

    Saved for backward: input, weight and the seed; nothing else of input's size.

    Examples:
        >>> import dropkit
        >>> x, w = torch.randn(8, 16), torch.randn(4, 16)
        >>> y = dropout_linear(x, w, None, 0.1, seed=3)
        >>> torch.equal(y, torch.nn.functional.linear(dropkit.dropout(x, 0.1, seed=3), w))
        True
    """
    p, seed, offset = check(input, p, seed, offset)
    weight, bias = _validate.linear_weights(weight, bias, input)
    if not active(training) or p == 0.0:
        return F.linear(input, weight, bias)  # no mask: draw nothing, as dropout at p = 0 draws nothing
    if _mode.consistent_replicas() is not None:  # mc_predict(consistent=True): inference, the replica masks
        return F.linear(consistent.dropout(input, p, inplace=False), weight, bias)
    resolved, offset = resolve_seed(seed, offset, generator, input.shape)
    return apply_dropout_linear(input, weight, bias, p, resolved, offset)


class DropoutLinear(torch.nn.Linear, DropoutBase):
    """nn.Dropout(p) followed by nn.Linear in one module that keeps no dropped copy of its input.

    A drop-in for the pair: same parameters and state_dict keys as the Linear,
    same outputs and gradients as dropkit.nn.Dropout(p) then the Linear for the
    same seeds. `from_linear` wraps an existing Linear, sharing its parameters.
    dropkit.fuse_dropout_linear and dropkit.replace_dropout (PEFT LoRA adapters)
    build these; set_dropout, mc_dropout and sample_addressed reach them (addressed
    by the module's own name, the Linear's: another draw than the unfused pair's).

    Args:
        in_features: as torch.nn.Linear.
        out_features: as torch.nn.Linear.
        bias: as torch.nn.Linear.
        p: probability of an input element being zeroed. Default: 0.5
        device: as torch.nn.Linear.
        dtype: as torch.nn.Linear.
        generator: torch.Generator the per-call seeds are drawn from (default: torch's; eager only).

    Shape:
        Input: (*, in_features). Output: (*, out_features).

    Examples:
        >>> DropoutLinear(8, 4, p=0.1)
        DropoutLinear(in_features=8, out_features=4, bias=True, p=0.1)
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        p: float = 0.5,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(in_features, out_features, bias, device, dtype)
        self.p = _validate.p(p)
        self.generator = generator

    @classmethod
    def from_linear(
        cls, linear: torch.nn.Linear, p: float, *, generator: torch.Generator | None = None
    ) -> DropoutLinear:
        """A DropoutLinear over `linear`'s own parameters (shared, not copied), in its mode.

        Examples:
            >>> lin = torch.nn.Linear(4, 2)
            >>> DropoutLinear.from_linear(lin, 0.1).weight is lin.weight
            True
        """
        _validate.module_type(linear, (torch.nn.Linear,), "linear")
        new = cls.__new__(cls)
        torch.nn.Module.__init__(new)
        new.in_features, new.out_features = linear.in_features, linear.out_features
        new._parameters = dict(linear._parameters)
        new.p = _validate.p(p)
        new.generator = generator
        return new.train(linear.training)

    def forward(self, input: Tensor) -> Tensor:
        return dropout_linear(input, self.weight, self.bias, self.p, self.training, generator=self.generator)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, p={self.p}"
