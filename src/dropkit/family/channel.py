"""Channel dropout: zero whole channels (Tompson et al. 2015, "Efficient Object Localization Using
Convolutional Networks").

Rank rules are torch's, so a model moved from torch.nn.functional keeps its behaviour:
- dropout1d: (N, C, L) or (C, L); any other rank raises RankError (a ValueError and a
  RuntimeError, as torch's is).
- dropout2d: (N, C, H, W). A 3-D input is (N, C, L), with torch's warning, unless
  unbatched=True says it is one (C, H, W) image. Other ranks of at least 2 warn, as torch
  does, and drop channels of dim 1 per sample of dim 0.
- dropout3d: (N, C, D, H, W) or (C, D, H, W). Other ranks of at least 1 warn, as torch
  does, and are treated as unbatched: channels along dim 0.
One draw per (sample, channel): the spec mask of the (N, C) grid, broadcast over the rest.

Examples:
    >>> y = dropout2d(torch.ones(2, 3, 4, 4), 0.5, seed=1)
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

from .. import _validate
from ._common import DropoutBase, active, apply_small_mask, check, init_rate, resolve_seed

__all__ = ["dropout1d", "dropout2d", "dropout3d", "Dropout1d", "Dropout2d", "Dropout3d"]

_SPATIAL = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


def _warn_rank(input: Tensor, fn: str, expected: str) -> None:
    warnings.warn(
        f"{fn}: Received a {input.dim()}-D input to {fn} of shape {_validate.shape_str(input)}, which is "
        f"deprecated in torch and will be an error there in a future release; {fn} expects {expected}. "
        "dropkit follows torch's result for now; use dropkit.functional.dropout for element-wise dropout.",
        UserWarning,
        stacklevel=4,
    )


# Ranks torch runs with a warning: spatial dims -> (lowest such rank, leading dims that get one draw each).
_TORCH_LENIENT = {2: (2, 2), 3: (1, 1)}


def _mask_shape(input: Tensor, spatial: int, fn: str, unbatched: bool) -> tuple[tuple[int, ...], bool]:
    """The per-channel mask's shape, (N, C, 1, ...) or (C, 1, ...), by torch's rank rules, and
    whether it is batched: one draw per (sample, channel), dim 0 the samples."""
    names = ", ".join(_SPATIAL[spatial])
    layouts = {spatial + 1: f"(C, {names})", spatial + 2: f"(N, C, {names})"}
    rank = input.dim()
    if unbatched:
        _validate.rank(input, {3: layouts[3]}, f"{fn}(unbatched=True)")
        channels = 1
    elif spatial == 2 and rank == 3:
        warnings.warn(
            "dropout2d: Received a 3D input to dropout2d and assuming that channel-wise 1D dropout behavior "
            "is desired - input is interpreted as shape (N, C, L), as torch does. Pass unbatched=True for one "
            "(C, H, W) image, or use dropout1d for (N, C, L) input.",
            UserWarning,
            stacklevel=4,
        )
        channels = 2
    elif rank in layouts:
        channels = rank - spatial
    elif spatial in _TORCH_LENIENT and rank >= _TORCH_LENIENT[spatial][0]:
        _warn_rank(input, fn, " or ".join(f"{r}-D {layout}" for r, layout in layouts.items()))
        channels = _TORCH_LENIENT[spatial][1]
    else:
        _validate.rank(input, layouts, fn)  # raises
    return tuple(input.shape[:channels]) + (1,) * (rank - channels), channels == 2


def _channel_dropout(
    input: Tensor,
    p: float,
    training: bool,
    inplace: bool,
    seed: int | None,
    offset: int,
    generator: torch.Generator | None,
    spatial: int,
    fn: str,
    unbatched: bool = False,
) -> Tensor:
    p, seed, offset = check(input, p, seed, offset)
    shape, batched = _mask_shape(input, spatial, fn, unbatched)
    if not active(training) or p == 0.0:
        return input
    resolved, offset = resolve_seed(seed, offset, generator, shape, 0 if batched else None)
    return apply_small_mask(input, shape, p, inplace, resolved, offset)


def dropout1d(
    input: Tensor,
    p: float = 0.5,
    training: bool = True,
    inplace: bool = False,
    *,
    seed: int | None = None,
    offset: int = 0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Zero whole channels of (N, C, L) or (C, L) input with probability p; scale the rest by 1/(1-p).

    Args:
        input: (N, C, L) or (C, L) floating tensor.
        p: as in dropkit.functional.dropout.
        training: as in dropkit.functional.dropout.
        inplace: as in dropkit.functional.dropout.
        seed: as in dropkit.functional.dropout.
        offset: as in dropkit.functional.dropout; the mask is the spec mask of the (N, C) grid, element (n, c) at offset + n*C + c.
        generator: as in dropkit.functional.dropout.

    Examples:
        >>> dropout1d(torch.ones(2, 3, 5), 0.5, seed=1).shape
        torch.Size([2, 3, 5])
    """
    return _channel_dropout(input, p, training, inplace, seed, offset, generator, 1, "dropout1d")


def dropout2d(
    input: Tensor,
    p: float = 0.5,
    training: bool = True,
    inplace: bool = False,
    *,
    seed: int | None = None,
    offset: int = 0,
    generator: torch.Generator | None = None,
    unbatched: bool = False,
) -> Tensor:
    """Zero whole channels of (N, C, H, W) input with probability p; scale the rest by 1/(1-p).

    Args:
        input: (N, C, H, W) floating tensor; a 3-D input is (N, C, L), with torch's warning,
            unless `unbatched` is set.
        p: as in dropkit.functional.dropout.
        training: as in dropkit.functional.dropout.
        inplace: as in dropkit.functional.dropout.
        seed: as in dropkit.functional.dropout.
        offset: as in dropkit.functional.dropout.
        generator: as in dropkit.functional.dropout.
        unbatched: the input is one (C, H, W) image (3-D only); no warning.

    Examples:
        >>> dropout2d(torch.ones(2, 3, 4, 4), 0.5, seed=1).shape
        torch.Size([2, 3, 4, 4])
        >>> dropout2d(torch.ones(3, 4, 4), 0.5, seed=1, unbatched=True).shape
        torch.Size([3, 4, 4])
    """
    return _channel_dropout(input, p, training, inplace, seed, offset, generator, 2, "dropout2d", unbatched)


def dropout3d(
    input: Tensor,
    p: float = 0.5,
    training: bool = True,
    inplace: bool = False,
    *,
    seed: int | None = None,
    offset: int = 0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Zero whole channels of (N, C, D, H, W) or (C, D, H, W) input with probability p; scale the rest.

    Examples:
        >>> dropout3d(torch.ones(2, 3, 2, 2, 2), 0.5, seed=1).shape
        torch.Size([2, 3, 2, 2, 2])
    """
    return _channel_dropout(input, p, training, inplace, seed, offset, generator, 3, "dropout3d")


class Dropout1d(torch.nn.Dropout1d, DropoutBase):
    """Zero whole channels of (N, C, L) or (C, L) input; a drop-in for torch.nn.Dropout1d.

    Args:
        p: probability of a channel being zeroed. Default: 0.5
        inplace: overwrite the input. Default: False
        generator: torch.Generator the per-call seeds are drawn from (default: torch's; eager only).

    Shape:
        Input: (N, C, L) or (C, L); any other rank raises dropkit's RankError, a ValueError
        and a RuntimeError (torch raises RuntimeError). Output: same shape.

    Examples:
        >>> Dropout1d(p=0.2)(torch.randn(4, 3, 10)).shape
        torch.Size([4, 3, 10])
    """

    kind = "dropout1d"
    mask_unit = "channel"

    def __init__(self, p: float = 0.5, inplace: bool = False, *, generator: torch.Generator | None = None) -> None:
        init_rate(self, torch.nn.Dropout1d, p, inplace, generator)

    def forward(self, input: Tensor) -> Tensor:
        return dropout1d(input, self.p, self.training, self.inplace, generator=self.generator)


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

    Examples:
        >>> Dropout2d(p=0.2)(torch.randn(4, 3, 8, 8)).shape
        torch.Size([4, 3, 8, 8])
    """

    kind = "dropout2d"
    mask_unit = "channel"

    def __init__(
        self,
        p: float = 0.5,
        inplace: bool = False,
        *,
        unbatched: bool = False,
        generator: torch.Generator | None = None,
    ) -> None:
        init_rate(self, torch.nn.Dropout2d, p, inplace, generator)
        self.unbatched = unbatched

    def forward(self, input: Tensor) -> Tensor:
        return dropout2d(input, self.p, self.training, self.inplace, generator=self.generator, unbatched=self.unbatched)

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

    Examples:
        >>> Dropout3d(p=0.2)(torch.randn(2, 3, 4, 4, 4)).shape
        torch.Size([2, 3, 4, 4, 4])
    """

    kind = "dropout3d"
    mask_unit = "channel"

    def __init__(self, p: float = 0.5, inplace: bool = False, *, generator: torch.Generator | None = None) -> None:
        init_rate(self, torch.nn.Dropout3d, p, inplace, generator)

    def forward(self, input: Tensor) -> Tensor:
        return dropout3d(input, self.p, self.training, self.inplace, generator=self.generator)
