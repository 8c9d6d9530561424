"""Drop-in nn.Module layers: each holds its options and calls one functional.

Example:
    >>> import torch.nn as nn, dropkit
    >>> model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), dropkit.nn.Dropout(p=0.5), nn.Linear(256, 10))
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from . import _validate
from . import functional as F
from .fused import FUSED_ACTIVATIONS

__all__ = [
    "Dropout",
    "DropoutBase",
    "is_dropout",
    "Dropout1d",
    "Dropout2d",
    "Dropout3d",
    "AlphaDropout",
    "FeatureAlphaDropout",
    "GaussianDropout",
    "GaussianNoise",
    "DropConnectLinear",
    "WeightDropout",
    "DropPath",
    "DropBlock2d",
    "LockedDropout",
    "EmbeddingDropout",
    "ConcreteDropout",
    "DROPOUT_KINDS",
    "make_dropout",
    "BiasDropoutAdd",
    "ScaledDotProductAttention",
]


from .family._common import DropoutBase as DropoutBase
from .family.attention import ScaledDotProductAttention as ScaledDotProductAttention


class Dropout(torch.nn.Dropout, DropoutBase):
    """Inverted dropout with counter-based masks; a drop-in for torch.nn.Dropout.

    Zeroes each element with probability p in train() mode and scales the rest by
    1/(1-p); identity in eval() mode (Srivastava et al. 2014). It subclasses
    torch.nn.Dropout, so code that looks for torch's dropout layers finds it.

    Args:
        p: probability of an element being zeroed. Default: 0.5
        inplace: overwrite the input. Default: False
        backward: "recompute" (0 bytes saved per element) or "bitpacked" (1 bit).
        generator: torch.Generator the per-call seeds are drawn from (default: torch's; eager only).

    Shape:
        Input: any shape. Output: same shape and memory format.

    Example:
        >>> m = Dropout(p=0.2)
        >>> m
        Dropout(p=0.2, inplace=False)
        >>> y = m(torch.randn(20, 16))
    """

    def __init__(
        self,
        p: float = 0.5,
        inplace: bool = False,
        *,
        backward: str = "recompute",
        generator: torch.Generator | None = None,
    ) -> None:
        torch.nn.Module.__init__(self)
        self.p = _validate.p(p)
        self.inplace = inplace
        self.backward = _validate.choice(backward, F.BACKWARD_MODES, "backward")
        self.generator = generator

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout(input, self.p, self.training, self.inplace, generator=self.generator, backward=self.backward)

    def extra_repr(self) -> str:
        extra = "" if self.backward == "recompute" else f", backward={self.backward!r}"
        return f"p={self.p}, inplace={self.inplace}{extra}"


# --- the dropout family ---


def is_dropout(module: torch.nn.Module) -> bool:
    """True for every dropout-family module: dropkit's (all variants) and torch's (Dropout*, AlphaDropout ...).

    The wrappers (EmbeddingDropout, ConcreteDropout, DropConnectLinear) count too;
    switching their mode with .train() also switches the layer they hold.

    Example:
        >>> is_dropout(torch.nn.Dropout2d()), is_dropout(DropPath(0.1)), is_dropout(torch.nn.ReLU())
        (True, True, False)
    """
    return isinstance(module, (DropoutBase, torch.nn.modules.dropout._DropoutNd))


def _init_rate(module: torch.nn.Module, p: float, inplace: bool, generator: torch.Generator | None) -> None:
    # torch's _DropoutNd.__init__ checks p with its own message; dropkit's checks live in _validate
    torch.nn.Module.__init__(module)
    module.p = _validate.p(p)
    module.inplace = inplace
    module.generator = generator


class Dropout1d(torch.nn.Dropout1d, DropoutBase):
    """Zero whole channels of (N, C, L) or (C, L) input; a drop-in for torch.nn.Dropout1d.

    Args:
        p: probability of a channel being zeroed. Default: 0.5
        inplace: overwrite the input. Default: False
        generator: torch.Generator the per-call seeds are drawn from (default: torch's; eager only).

    Shape:
        Input: (N, C, L) or (C, L); any other rank raises dropkit's RankError, a ValueError
        and a RuntimeError (torch raises RuntimeError). Output: same shape.

    Example:
        >>> Dropout1d(p=0.2)(torch.randn(4, 3, 10)).shape
        torch.Size([4, 3, 10])
    """

    def __init__(self, p: float = 0.5, inplace: bool = False, *, generator: torch.Generator | None = None) -> None:
        _init_rate(self, p, inplace, generator)

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout1d(input, self.p, self.training, self.inplace, generator=self.generator)


class Dropout2d(torch.nn.Dropout2d, DropoutBase):
    """Zero whole channels of (N, C, H, W) input; a drop-in for torch.nn.Dropout2d.

    Ranks as torch: a 3-D input is (N, C, L), with torch's warning, unless unbatched=True
    says it is one (C, H, W) image; other ranks warn as torch's do and drop channels of
    dim 1. Tompson et al. 2015, "Efficient Object Localization Using Convolutional Networks".

    Args:
        p: probability of a channel being zeroed. Default: 0.5
        inplace: overwrite the input. Default: False
        unbatched: 3-D input is one (C, H, W) image, not (N, C, L). Default: False
        generator: torch.Generator the per-call seeds are drawn from (default: torch's; eager only).

    Shape:
        Input: (N, C, H, W), or (C, H, W) with unbatched=True. Output: same shape.

    Example:
        >>> Dropout2d(p=0.2)(torch.randn(4, 3, 8, 8)).shape
        torch.Size([4, 3, 8, 8])
    """

    def __init__(
        self, p: float = 0.5, inplace: bool = False, *, unbatched: bool = False, generator: torch.Generator | None = None
    ) -> None:
        _init_rate(self, p, inplace, generator)
        self.unbatched = unbatched

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout2d(input, self.p, self.training, self.inplace, generator=self.generator, unbatched=self.unbatched)

    def extra_repr(self) -> str:
        return super().extra_repr() + (", unbatched=True" if self.unbatched else "")


class Dropout3d(torch.nn.Dropout3d, DropoutBase):
    """Zero whole channels of (N, C, D, H, W) or (C, D, H, W) input; a drop-in for torch.nn.Dropout3d.

    Args:
        p: probability of a channel being zeroed. Default: 0.5
        inplace: overwrite the input. Default: False
        generator: torch.Generator the per-call seeds are drawn from (default: torch's; eager only).

    Shape:
        Input: (N, C, D, H, W) or (C, D, H, W); other ranks warn as torch's do and are read as
        unbatched, channels along dim 0. Output: same shape.

    Example:
        >>> Dropout3d(p=0.2)(torch.randn(2, 3, 4, 4, 4)).shape
        torch.Size([2, 3, 4, 4, 4])
    """

    def __init__(self, p: float = 0.5, inplace: bool = False, *, generator: torch.Generator | None = None) -> None:
        _init_rate(self, p, inplace, generator)

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout3d(input, self.p, self.training, self.inplace, generator=self.generator)


class AlphaDropout(torch.nn.AlphaDropout, DropoutBase):
    """Alpha dropout for SELU networks (Klambauer et al. 2017); a drop-in for torch.nn.AlphaDropout.

    Keeps a SELU activation's zero mean and unit variance; p = 1 gives zeros.

    Args:
        p: probability of an element being dropped. Default: 0.5
        inplace: overwrite the input. Default: False
        generator: torch.Generator the per-call seeds are drawn from (default: torch's; eager only).

    Shape:
        Input: any shape. Output: same shape.

    Example:
        >>> AlphaDropout(p=0.2)(torch.randn(20, 16)).shape
        torch.Size([20, 16])
    """

    def __init__(self, p: float = 0.5, inplace: bool = False, *, generator: torch.Generator | None = None) -> None:
        _init_rate(self, p, inplace, generator)

    def forward(self, input: Tensor) -> Tensor:
        return F.alpha_dropout(input, self.p, self.training, self.inplace, generator=self.generator)


class FeatureAlphaDropout(torch.nn.FeatureAlphaDropout, DropoutBase):
    """Alpha dropout of whole channels; a drop-in for torch.nn.FeatureAlphaDropout.

    Args:
        p: probability of a channel being dropped. Default: 0.5
        inplace: overwrite the input. Default: False
        generator: torch.Generator the per-call seeds are drawn from (default: torch's; eager only).

    Shape:
        Input: (N, C, *), one draw per (n, c). Output: same shape.

    Example:
        >>> FeatureAlphaDropout(p=0.2)(torch.randn(2, 3, 4, 4)).shape
        torch.Size([2, 3, 4, 4])
    """

    def __init__(self, p: float = 0.5, inplace: bool = False, *, generator: torch.Generator | None = None) -> None:
        _init_rate(self, p, inplace, generator)

    def forward(self, input: Tensor) -> Tensor:
        return F.feature_alpha_dropout(input, self.p, self.training, self.inplace, generator=self.generator)


class GaussianDropout(DropoutBase):
    """Multiplicative Gaussian noise of mean 1 and variance p/(1-p) (Srivastava et al. 2014; Keras GaussianDropout).

    Args:
        p: rate; the noise has the variance Bernoulli dropout at rate p has. p = 1 gives zeros.
        generator: torch.Generator the per-call seeds are drawn from (default: torch's; eager only).

    Shape:
        Input: any shape. Output: same shape.

    Example:
        >>> GaussianDropout(0.1)
        GaussianDropout(p=0.1)
    """

    def __init__(self, p: float = 0.5, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.p = _validate.p(p)
        self.generator = generator

    def forward(self, input: Tensor) -> Tensor:
        return F.gaussian_dropout(input, self.p, self.training, generator=self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class GaussianNoise(DropoutBase):
    """Additive Gaussian noise of standard deviation `stddev` in training (Keras GaussianNoise).

    Args:
        stddev: standard deviation of the noise (finite, >= 0).
        generator: torch.Generator the per-call seeds are drawn from (default: torch's; eager only).

    Shape:
        Input: any shape. Output: same shape.

    Example:
        >>> GaussianNoise(0.1)
        GaussianNoise(stddev=0.1)
    """

    def __init__(self, stddev: float, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.stddev = _validate.non_negative(stddev, "stddev")
        self.generator = generator

    def forward(self, input: Tensor) -> Tensor:
        return F.gaussian_noise(input, self.stddev, self.training, generator=self.generator)

    def extra_repr(self) -> str:
        return f"stddev={self.stddev}"


class DropConnectLinear(torch.nn.Linear, DropoutBase):
    """A Linear layer whose weights (not inputs) are dropped each forward (Wan et al. 2013, DropConnect).

    Args:
        in_features, out_features, bias, device, dtype: as torch.nn.Linear.
        p: probability of a weight being zeroed. Default: 0.5
        generator: torch.Generator the per-call seeds are drawn from (default: torch's; eager only).

    Shape:
        Input: (*, in_features). Output: (*, out_features).

    Example:
        >>> DropConnectLinear(8, 4, p=0.3)
        DropConnectLinear(in_features=8, out_features=4, bias=True, p=0.3)
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        p: float = 0.5,
        device=None,
        dtype=None,
        *,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(in_features, out_features, bias, device, dtype)
        self.p = _validate.p(p)
        self.generator = generator

    def forward(self, input: Tensor) -> Tensor:
        return F.drop_connect_linear(input, self.weight, self.bias, self.p, self.training, generator=self.generator)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, p={self.p}"


class WeightDropout(DropoutBase):
    """Dropout of a parameter, as a parametrization: dropkit.weight_dropout registers it (AWD-LSTM's WeightDrop).

    Args:
        p: probability of a weight being zeroed. Default: 0.5
        generator: torch.Generator the per-call seeds are drawn from (default: torch's; eager only).

    Example:
        >>> import torch.nn.utils.parametrize as P
        >>> lin = torch.nn.Linear(4, 4)
        >>> P.register_parametrization(lin, "weight", WeightDropout(0.3))
        ParametrizedLinear(...)
    """

    def __init__(self, p: float = 0.5, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.p = _validate.p(p)
        self.generator = generator

    def forward(self, weight: Tensor) -> Tensor:
        return F.drop_connect(weight, self.p, self.training, generator=self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class DropPath(DropoutBase):
    """Stochastic depth: drop whole samples of a residual branch (Huang et al. 2016; timm's DropPath).

    Args:
        p: probability of a sample being zeroed. Default: 0.0 (as timm)
        scale_by_keep: scale kept samples by 1/(1-p). Default: True
        generator: torch.Generator the per-call seeds are drawn from (default: torch's; eager only).

    Shape:
        Input: (N, *). Output: same shape.

    Example:
        >>> DropPath(0.1)
        DropPath(p=0.1, scale_by_keep=True)
    """

    def __init__(self, p: float = 0.0, scale_by_keep: bool = True, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.p = _validate.p(p)
        self.scale_by_keep = scale_by_keep
        self.generator = generator

    def forward(self, input: Tensor) -> Tensor:
        return F.drop_path(input, self.p, self.training, self.scale_by_keep, generator=self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}, scale_by_keep={self.scale_by_keep}"


class DropBlock2d(DropoutBase):
    """DropBlock: drop block_size x block_size regions of feature maps (Ghiasi et al. 2018; timm's DropBlock2d).

    Args:
        p: target fraction of dropped units. Default: 0.1
        block_size: side of the square blocks, clipped to the map. Default: 7
        batchwise: one mask shared by the whole batch. Default: False
        generator: torch.Generator the per-call seeds are drawn from (default: torch's; eager only).

    Shape:
        Input: (N, C, H, W) or (C, H, W). Output: same shape.

    Example:
        >>> DropBlock2d(0.1, 5)
        DropBlock2d(p=0.1, block_size=5, batchwise=False)
    """

    def __init__(
        self, p: float = 0.1, block_size: int = 7, *, batchwise: bool = False, generator: torch.Generator | None = None
    ) -> None:
        super().__init__()
        self.p = _validate.p(p)
        self.block_size = _validate.positive_int(block_size, "block_size")
        self.batchwise = batchwise
        self.generator = generator

    def forward(self, input: Tensor) -> Tensor:
        return F.drop_block2d(
            input, self.p, self.block_size, self.training, batchwise=self.batchwise, generator=self.generator
        )

    def extra_repr(self) -> str:
        return f"p={self.p}, block_size={self.block_size}, batchwise={self.batchwise}"


class LockedDropout(DropoutBase):
    """Variational dropout: one mask per sequence, the same at every time step (Gal and Ghahramani 2016).

    Args:
        p: probability of a unit being zeroed. Default: 0.5
        batch_first: input is (N, T, *) rather than (T, N, *). Default: False
        inplace: overwrite the input. Default: False
        generator: torch.Generator the per-call seeds are drawn from (default: torch's; eager only).

    Shape:
        Input: (T, N, *) or (N, T, *) if batch_first. Output: same shape.

    Example:
        >>> LockedDropout(0.3, batch_first=True)
        LockedDropout(p=0.3, batch_first=True, inplace=False)
    """

    def __init__(
        self, p: float = 0.5, batch_first: bool = False, inplace: bool = False, *, generator: torch.Generator | None = None
    ) -> None:
        super().__init__()
        self.p = _validate.p(p)
        self.batch_first = batch_first
        self.inplace = inplace
        self.generator = generator

    def forward(self, input: Tensor) -> Tensor:
        return F.locked_dropout(input, self.p, self.training, self.batch_first, self.inplace, generator=self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}, batch_first={self.batch_first}, inplace={self.inplace}"


class EmbeddingDropout(DropoutBase):
    """Word dropout: wraps an nn.Embedding and drops whole rows of its table each forward (fastai's EmbeddingDropout).

    Args:
        embedding: the nn.Embedding to wrap (its options are honoured).
        p: probability of a row being dropped. Default: 0.1, as embedding_dropout
        generator: torch.Generator the per-call seeds are drawn from (default: torch's; eager only).

    Shape:
        Input: indices of any shape. Output: (*, embedding_dim).

    Example:
        >>> m = EmbeddingDropout(torch.nn.Embedding(100, 8), 0.1)
        >>> m(torch.tensor([[1, 2, 3]])).shape
        torch.Size([1, 3, 8])
    """

    def __init__(self, embedding: torch.nn.Embedding, p: float = 0.1, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.embedding = _validate.module_type(embedding, torch.nn.Embedding, "embedding")
        self.p = _validate.p(p)
        self.generator = generator

    def forward(self, input: Tensor) -> Tensor:
        e = self.embedding
        return F.embedding_dropout(
            input, e.weight, self.p, self.training, e.padding_idx, e.max_norm, e.norm_type,
            e.scale_grad_by_freq, e.sparse, generator=self.generator,
        )

    def extra_repr(self) -> str:
        return f"p={self.p}"


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

    Example:
        >>> m = ConcreteDropout(torch.nn.Linear(8, 4))
        >>> loss = m(torch.randn(16, 8)).pow(2).mean() + m.regularization()
    """

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
        self.input_features: int | None = None

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
        self.input_features = input[0].numel() if input.dim() > 1 else input.numel()
        dropped = F.concrete_dropout(
            input, torch.sigmoid(self.p_logit), self.temperature, self.training, generator=self.generator
        )
        return self.layer(dropped)

    def regularization(self) -> Tensor:
        """The paper's regulariser for this layer, a differentiable scalar to add to the loss."""
        if self.input_features is None:
            raise RuntimeError("ConcreteDropout.regularization() needs the input size: call the module on a batch first")
        p = torch.sigmoid(self.p_logit)
        squares = sum((w.pow(2).sum() for w in self.layer.parameters()), torch.zeros((), device=p.device))
        entropy = torch.special.xlogy(p, p) + torch.special.xlogy(1 - p, 1 - p)
        return self.weight_regularizer * squares / (1 - p) + self.dropout_regularizer * self.input_features * entropy

    def extra_repr(self) -> str:
        return (
            f"p={self.p:.4g}, temperature={self.temperature}, "
            f"weight_regularizer={self.weight_regularizer}, dropout_regularizer={self.dropout_regularizer}"
        )


_KINDS: dict[str, type[torch.nn.Module]] = {
    "dropout": Dropout,
    "dropout1d": Dropout1d,
    "dropout2d": Dropout2d,
    "dropout3d": Dropout3d,
    "alpha": AlphaDropout,
    "feature_alpha": FeatureAlphaDropout,
    "gaussian": GaussianDropout,
    "gaussian_noise": GaussianNoise,
    "drop_path": DropPath,
    "drop_block": DropBlock2d,
    "locked": LockedDropout,
}
DROPOUT_KINDS = tuple(_KINDS)
"""Names make_dropout takes: the variants that act on activations and are built from one rate."""


def make_dropout(kind: str, p: float) -> torch.nn.Module:
    """A dropout module of `kind` (one of DROPOUT_KINDS) at rate p; for "gaussian_noise", p is the stddev.

    Example:
        >>> make_dropout("drop_path", 0.1)
        DropPath(p=0.1, scale_by_keep=True)
    """
    return _KINDS[_validate.choice(kind, DROPOUT_KINDS, "kind")](p)


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

    Example:
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
        self.bias = torch.nn.Parameter(torch.zeros(features, device=device, dtype=dtype)) if bias else None
        self.generator = generator

    def forward(self, x: Tensor, residual: Tensor) -> Tensor:
        return F.bias_dropout_add(
            x, self.bias, residual, self.p, self.training, activation=self.activation, generator=self.generator
        )

    def extra_repr(self) -> str:
        return f"{self.features}, p={self.p}, activation={self.activation!r}, bias={self.bias is not None}"
