"""Memory format of an op's output: the one rule every op that computes on a contiguous copy follows.

Kernels take and return contiguous tensors; an op's output keeps its input's memory
format (channels_last stays channels_last), as torch's elementwise ops do.

Examples:
    >>> x = torch.ones(1, 2, 2, 2).to(memory_format=torch.channels_last)
    >>> like(x, x.contiguous() * 2).is_contiguous(memory_format=torch.channels_last)
    True
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["like"]


def like(x: Tensor, y: Tensor) -> Tensor:
    """y (contiguous, x's shape) laid out in x's memory format, as empty_like(x) would be."""
    if x.is_contiguous():
        return y
    return torch.empty_like(x).copy_(y)
