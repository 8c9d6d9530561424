"""Drop-in nn.Module layers: each holds its options and calls one functional.

Example:
    >>> import torch.nn as nn, dropkit
    >>> model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), dropkit.nn.Dropout(p=0.5), nn.Linear(256, 10))
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import _validate
from . import functional as F

__all__ = ["Dropout"]


class Dropout(torch.nn.Dropout):
    """Inverted dropout with counter-based masks; a drop-in for torch.nn.Dropout.

    Zeroes each element with probability p in train() mode and scales the rest by
    1/(1-p); identity in eval() mode (Srivastava et al. 2014). It subclasses
    torch.nn.Dropout, so code that looks for torch's dropout layers finds it.

    Args:
        p: probability of an element being zeroed. Default: 0.5
        inplace: overwrite the input. Default: False
        backward: "recompute" (0 bytes saved per element) or "bitpacked" (1 bit).
        generator: torch.Generator the per-call seeds are drawn from (default: torch's).

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
