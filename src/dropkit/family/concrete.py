"""Concrete dropout: dropout whose rate is learned (Gal, Hron and Kendall 2017, "Concrete Dropout").

The Bernoulli mask is relaxed to a concrete (Gumbel-softmax) one so that the
loss is differentiable in p; ConcreteDropout (dropkit.nn) wraps a layer and
adds the paper's regulariser. The uniform noise is the spec's stream, so it
is recomputed in backward (dropkit::concrete_dropout).

Examples:
    >>> p = torch.tensor(0.2, requires_grad=True)
    >>> concrete_dropout(torch.ones(4), p, seed=1).sum().backward()
"""

from __future__ import annotations

import math
from typing import cast

import torch
from torch import Tensor

from .. import _validate, ops, rng
from ._common import DropoutBase, active, resolve_seed

__all__ = ["concrete_dropout", "ConcreteDropout"]


def concrete_dropout(
    input: Tensor,
    p: float | Tensor,
    temperature: float = 0.1,
    training: bool = True,
    *,
    seed: int | None = None,
    offset: int = 0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """x * (1 - d) / (1 - p), d = sigmoid((logit p + logit u) / temperature), u uniform from the spec's stream.

    Args:
        input: floating tensor of any shape.
        p: drop rate, a float in [0, 1] or a one-element tensor (differentiable; its value is not checked).
        temperature: relaxation temperature > 0; as it goes to 0 the mask becomes Bernoulli(1-p).
        training: as in dropkit.functional.dropout. Element i uses u = (r + 0.5) / 2^32 of stream index offset + i.
        seed: as in dropkit.functional.dropout. Element i uses u = (r + 0.5) / 2^32 of stream index offset + i.
        offset: as in dropkit.functional.dropout. Element i uses u = (r + 0.5) / 2^32 of stream index offset + i.
        generator: as in dropkit.functional.dropout. Element i uses u = (r + 0.5) / 2^32 of stream index offset + i.

    Examples:
        >>> concrete_dropout(torch.ones(3), 0.5, seed=1).shape
        torch.Size([3])
    """
    _validate.float_tensor(input)
    if isinstance(p, Tensor):
        p = _validate.p_tensor(p)
    else:
        p = torch.tensor(_validate.p(p), dtype=input.dtype, device=input.device)
    temperature = _validate.positive(temperature, "temperature")
    seed, offset = _validate.seed(seed), _validate.offset(offset)
    if not active(training):
        return input
    resolved, offset = resolve_seed(seed, offset, generator, input.shape)
    seed_t = ops.seed_tensor(resolved)
    # a custom op's call is untyped; its schema returns a Tensor
    return cast(Tensor, ops.concrete_dropout(input, p, seed_t, rng.to_int64(offset), temperature))


class ConcreteDropout(DropoutBase):
    """Wraps a layer and learns the dropout rate of its input (Gal, Hron and Kendall 2017, "Concrete Dropout").

    Add `.regularization()` to the loss: weight_regularizer * sum(w^2) / (1 - p) over the
    layer's parameters plus dropout_regularizer * D * (p log p + (1-p) log(1-p)), D the
    number of input features of the last batch.

    Args:
        layer: the module whose input is dropped.
        p: initial rate, strictly between 0 and 1. Default: 0.1
        weight_regularizer: the paper's l^2/N. Default: 1e-6
        dropout_regularizer: the paper's 2/(tau N). Default: 1e-5
        temperature: concrete relaxation temperature. Default: 0.1
        generator: torch.Generator the per-call seeds are drawn from (default: torch's; eager only).

    Shape:
        Input: what `layer` takes. Output: what `layer` returns.

    Examples:
        >>> m = ConcreteDropout(torch.nn.Linear(8, 4))
        >>> loss = m(torch.randn(16, 8)).pow(2).mean() + m.regularization()
    """

    _features: Tensor  # a buffer: register_buffer types it as Tensor | Module

    def __init__(
        self,
        layer: torch.nn.Module,
        p: float = 0.1,
        *,
        weight_regularizer: float = 1e-6,
        dropout_regularizer: float = 1e-5,
        temperature: float = 0.1,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.layer = _validate.module_type(layer, torch.nn.Module, "layer")
        self.p_logit = torch.nn.Parameter(torch.empty(()))
        self.p = p
        self.weight_regularizer = _validate.non_negative(weight_regularizer, "weight_regularizer")
        self.dropout_regularizer = _validate.non_negative(dropout_regularizer, "dropout_regularizer")
        self.temperature = _validate.positive(temperature, "temperature")
        self.generator = generator
        # Written in place by forward (an attribute write would add a torch.compile guard); 0 = no batch seen.
        self.register_buffer("_features", torch.zeros((), dtype=torch.int64), persistent=False)

    @property
    def p(self) -> float:
        """The current (learned) rate, sigmoid(p_logit)."""
        return float(torch.sigmoid(self.p_logit.detach()))

    @p.setter
    def p(self, value: float) -> None:
        value = _validate.open_p(value)
        with torch.no_grad():
            self.p_logit.fill_(math.log(value) - math.log1p(-value))

    def forward(self, input: Tensor) -> Tensor:
        self._features.fill_(input[0].numel() if input.dim() > 1 else input.numel())
        dropped = concrete_dropout(
            input, torch.sigmoid(self.p_logit), self.temperature, self.training, generator=self.generator
        )
        return cast(Tensor, self.layer(dropped))  # a Module's call is typed Any; the wrapped layer maps tensors

    @property
    def input_features(self) -> int | None:
        """D, the number of input features of the last batch (None before the first forward)."""
        return int(self._features) or None

    def regularization(self) -> Tensor:
        """The paper's regulariser for this layer, a differentiable scalar to add to the loss."""
        if self.input_features is None:
            raise RuntimeError(
                "ConcreteDropout.regularization() needs the input size: call the module on a batch first"
            )
        p = torch.sigmoid(self.p_logit)
        squares = sum((w.pow(2).sum() for w in self.layer.parameters()), torch.zeros((), device=p.device))
        entropy: Tensor = torch.special.xlogy(p, p) + torch.special.xlogy(1 - p, 1 - p)  # xlogy is untyped in torch
        return self.weight_regularizer * squares / (1 - p) + self.dropout_regularizer * self.input_features * entropy

    def extra_repr(self) -> str:
        return (
            f"p={self.p:.4g}, temperature={self.temperature}, "
            f"weight_regularizer={self.weight_regularizer}, dropout_regularizer={self.dropout_regularizer}"
        )
