"""Activation + dropout in one pass over memory, with or without bias and residual add.

activation_dropout (ReLUDropout, GELUDropout): dropout(activation(x)), the
pattern of the seed network (Linear -> ReLU -> Dropout), fused; relu's backward
draws no random numbers (the output's sign carries the mask). Masks and
outputs equal those of the unfused pair for the same seed: relu bit for bit;
gelu to about one float32 ulp (the kernels' erf is libm's, not torch's), with
the identical mask.

bias_dropout_add (BiasDropoutAdd): residual + dropout(activation(x + bias)),
the end of a transformer sublayer (Megatron-LM's bias_dropout_add, xformers'
fused dropout), where torch runs one pass per operation. The mask is the
spec's mask over x's logical elements: the same elements are kept as by
dropkit.functional.dropout(x, p, seed=seed, offset=offset). In float32 and
float64 every step is in the tensor's type; in float16 and bfloat16 every step
is in float32 with one rounding at the end: out = round(float32(residual) +
keep * float32(scale) * a), a = activation(float32(x) + float32(bias)).
Without activation or with relu the result is bit-identical across backends;
gelu uses each backend's erf (torch's, libm's, CUDA's), which agree to about
one float32 ulp, so gelu outputs agree to that rounding; its mask is identical.

The activations are those of dropkit.kernels.ACTIVATIONS, the one table.

Examples:
    >>> activation_dropout(torch.tensor([1.0, -1.0, 1.0, 1.0]), 0.5, seed=7)
    tensor([2., 0., 0., 0.])
    >>> x, b, r = torch.ones(2, 4), torch.ones(4), torch.zeros(2, 4)
    >>> bias_dropout_add(x, b, r, 0.5, activation="relu", seed=7)
    tensor([[4., 4., 0., 0.],
            [0., 4., 0., 4.]])
"""

from __future__ import annotations

import torch
from torch import Tensor

from .. import _validate
from ..kernels import ACTIVATIONS
from ..ops.fused import apply_activation_dropout, apply_bias_dropout_add
from ._common import DropoutBase, active, check, resolve_seed

__all__ = [
    "activation_dropout",
    "ActivationDropout",
    "ReLUDropout",
    "GELUDropout",
    "bias_dropout_add",
    "BiasDropoutAdd",
]


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
    _validate.choice(activation, tuple(ACTIVATIONS), "activation")
    if not active(training) or p == 0.0:
        return ACTIVATIONS[activation].function(input)  # no mask: draw nothing, as dropout at p = 0 draws nothing
    resolved, offset = resolve_seed(seed, offset, generator, input.shape)
    return apply_activation_dropout(input, p, resolved, offset, activation)


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

    @staticmethod
    def computing(activation: str) -> type[ActivationDropout]:
        """The subclass that fuses `activation` (a name in dropkit.kernels.ACTIVATIONS).

        Examples:
            >>> ActivationDropout.computing("gelu")
            <class 'dropkit.family.fused.GELUDropout'>
        """
        subclasses = {cls.activation: cls for cls in ActivationDropout.__subclasses__()}
        return subclasses[_validate.choice(activation, tuple(subclasses), "activation")]

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
    _validate.choice(activation, (None, *ACTIVATIONS), "activation")
    seed = _validate.seed(seed)
    offset = _validate.offset(offset)
    if not active(training):
        p = 0.0
    # No mask at p = 0: draw nothing and address nothing, as dropout does.
    resolved, offset = resolve_seed(0 if p == 0.0 else seed, offset, generator, x.shape)
    return apply_bias_dropout_add(x, bias, residual, p, resolved, offset, activation)


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
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.features = _validate.positive_int(features, "features")
        self.p = _validate.p(p)
        self.activation = _validate.choice(activation, (None, *ACTIVATIONS), "activation")
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
