"""DropConnect: drop weights, not activations (Wan et al. 2013, "Regularization of Neural Networks
using DropConnect"; Merity et al. 2017, AWD-LSTM's WeightDrop).

The weight matrix gets a fresh spec mask each forward (inverted scaling, so
eval uses the weights as they are); the bias is kept.

Examples:
    >>> y = drop_connect_linear(torch.randn(4, 3), torch.randn(5, 3), None, 0.5, seed=1)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import _validate, ops
from ._common import DropoutBase, active, check, resolve_seed

__all__ = ["drop_connect", "drop_connect_linear", "DropConnectLinear", "WeightDropout"]


def drop_connect(
    weight: Tensor,
    p: float = 0.5,
    training: bool = True,
    *,
    seed: int | None = None,
    offset: int = 0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Spec dropout of a weight tensor (what every DropConnect layer applies before its op).

    Examples:
        >>> drop_connect(torch.ones(2, 2), 0.5, seed=1).shape
        torch.Size([2, 2])
    """
    p, seed, offset = check(weight, p, seed, offset, "weight")
    if not active(training) or p == 0.0:
        return weight
    resolved, offset = resolve_seed(seed, offset, generator, weight.shape, None)  # one weight mask for the whole batch
    return ops.apply_dropout(weight, p, resolved, offset, inplace=False, bitpacked=False)


def drop_connect_linear(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    p: float = 0.5,
    training: bool = True,
    *,
    seed: int | None = None,
    offset: int = 0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """F.linear(input, drop_connect(weight, p), bias): one weight mask shared by the whole batch.

    Args:
        input: (*, in_features). weight: (out_features, in_features). bias: (out_features,) or None.
        p: probability of a weight being zeroed.
        training: as in dropkit.functional.dropout (the mask is over the weight's elements)
        seed: as in dropkit.functional.dropout (the mask is over the weight's elements)
        offset: as in dropkit.functional.dropout (the mask is over the weight's elements)
        generator: as in dropkit.functional.dropout (the mask is over the weight's elements)

    Examples:
        >>> drop_connect_linear(torch.ones(4, 3), torch.ones(2, 3), p=0.5, seed=1).shape
        torch.Size([4, 2])
    """
    return F.linear(input, drop_connect(weight, p, training, seed=seed, offset=offset, generator=generator), bias)


class DropConnectLinear(torch.nn.Linear, DropoutBase):
    """A Linear layer whose weights (not inputs) are dropped each forward (Wan et al. 2013, DropConnect).

    Args:
        in_features: as torch.nn.Linear.
        out_features: as torch.nn.Linear.
        bias: as torch.nn.Linear.
        device: as torch.nn.Linear.
        dtype: as torch.nn.Linear.
        p: probability of a weight being zeroed. Default: 0.5
        generator: torch.Generator the per-call seeds are drawn from (default: torch's; eager only).

    Shape:
        Input: (*, in_features). Output: (*, out_features).

    Examples:
        >>> DropConnectLinear(8, 4, p=0.3)
        DropConnectLinear(in_features=8, out_features=4, bias=True, p=0.3)
    """

    mask_unit = "weight"
    shares_mask_across_batch = True

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

    def forward(self, input: Tensor) -> Tensor:
        return drop_connect_linear(input, self.weight, self.bias, self.p, self.training, generator=self.generator)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, p={self.p}"


class WeightDropout(DropoutBase):
    """Dropout of a parameter, as a parametrization: dropkit.weight_dropout registers it (AWD-LSTM's WeightDrop).

    Args:
        p: probability of a weight being zeroed. Default: 0.5
        generator: torch.Generator the per-call seeds are drawn from (default: torch's; eager only).

    Examples:
        >>> import torch.nn.utils.parametrize as P
        >>> lin = torch.nn.Linear(4, 4)
        >>> P.register_parametrization(lin, "weight", WeightDropout(0.3))
        ParametrizedLinear(...)
    """

    mask_unit = "weight"
    shares_mask_across_batch = True

    def __init__(self, p: float = 0.5, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.p = _validate.p(p)
        self.generator = generator

    def forward(self, weight: Tensor) -> Tensor:
        return drop_connect(weight, self.p, self.training, generator=self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}"
