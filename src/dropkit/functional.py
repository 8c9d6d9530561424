"""Dropout as pure functions (Hinton et al. 2012; Srivastava et al. 2014).

Inverted dropout: in training each element is kept with probability 1-p and
scaled by 1/(1-p), so expectations match eval mode, where nothing changes.
Which elements are kept is a pure function of (seed, offset, index): see
docs/mask-spec.md.

Example:
    >>> import torch, dropkit.functional as DF
    >>> DF.dropout(torch.ones(6), 0.5, seed=7)
    tensor([2., 2., 0., 0., 0., 2.])
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import _mode, _validate, addressing, ops, sharding
from .family.alpha import alpha_dropout as alpha_dropout
from .family.attention import attention_keep_mask as attention_keep_mask
from .family.attention import scaled_dot_product_attention as scaled_dot_product_attention
from .family.alpha import feature_alpha_dropout as feature_alpha_dropout
from .family.block import drop_block2d as drop_block2d
from .family.channel import dropout1d as dropout1d
from .family.channel import dropout2d as dropout2d
from .family.channel import dropout3d as dropout3d
from .family.concrete import concrete_dropout as concrete_dropout
from .family.connect import drop_connect as drop_connect
from .family.connect import drop_connect_linear as drop_connect_linear
from .family.embedding import embedding_dropout as embedding_dropout
from .family.gaussian import gaussian_dropout as gaussian_dropout
from .family.gaussian import gaussian_noise as gaussian_noise
from .family.locked import locked_dropout as locked_dropout
from .family.path import drop_path as drop_path
from .fused import bias_dropout_add as bias_dropout_add

__all__ = [
    "dropout",
    "bias_dropout_add",
    "keep_mask",
    "BACKWARD_MODES",
    "alpha_dropout",
    "feature_alpha_dropout",
    "drop_block2d",
    "dropout1d",
    "dropout2d",
    "dropout3d",
    "concrete_dropout",
    "drop_connect",
    "drop_connect_linear",
    "embedding_dropout",
    "gaussian_dropout",
    "gaussian_noise",
    "locked_dropout",
    "drop_path",
    "scaled_dot_product_attention",
    "attention_keep_mask",
]

BACKWARD_MODES = ("recompute", "bitpacked")


def dropout(
    input: Tensor,
    p: float = 0.5,
    training: bool = True,
    inplace: bool = False,
    *,
    seed: int | None = None,
    offset: int = 0,
    generator: torch.Generator | None = None,
    backward: str = "recompute",
) -> Tensor:
    """Inverted dropout: zero each element with probability p, scale the rest by 1/(1-p).

    Args:
        input: a floating tensor of any shape, layout and device.
        p: probability of an element being zeroed, in [0, 1].
        training: apply dropout if True; return `input` unchanged if False
            (unless inside dropkit.mc_dropout, which keeps dropout on).
        inplace: overwrite `input` with the result.
        seed: 64-bit seed of the mask; None draws one from `generator`, or from
            torch's default generator, so torch.manual_seed makes runs reproducible.
        offset: index of the first element in the random stream; a shard that
            starts at element k of a batch passes offset + k to get its slice of the mask.
            A DTensor input (any placements) needs an explicit seed and gets its block of
            the unsharded mask (dropkit.sharding).
        generator: torch.Generator to draw the seed from when seed is None.
        backward: "recompute" (default) saves only the seed and recomputes the mask
            in backward: 0 bytes per element. "bitpacked" saves the mask at 1 bit per
            element (0.125 bytes) and skips the recompute.

    Shape:
        Output has the shape and memory format of `input`.

    Example:
        >>> y = dropout(torch.randn(8, 16), p=0.3, seed=1)
    """
    _validate.float_tensor(input)
    p = _validate.p(p)
    seed = _validate.seed(seed)
    offset = _validate.offset(offset)
    _validate.choice(backward, BACKWARD_MODES, "backward")
    if not (training or _mode.mc_active()) or p == 0.0:
        return input
    if type(input) is not Tensor and sharding.is_dtensor(input):
        return sharding.dtensor_dropout(input, p, training, seed=seed, offset=offset)
    if inplace:
        _validate.inplace_target(input)
    seed, offset = addressing.resolve(seed, offset, input.shape)
    return ops.apply_dropout(input, p, seed, offset, generator, inplace=inplace, bitpacked=backward == "bitpacked")


def keep_mask(shape, p: float, *, seed: int, offset: int = 0, device=None) -> Tensor:
    """The boolean keep mask that dropout(x, p, seed=seed, offset=offset) uses for x of `shape`.

    Example:
        >>> keep_mask((2, 3), 0.5, seed=7)
        tensor([[ True,  True, False],
                [False, False,  True]])
    """
    p = _validate.p(p)
    seed = _validate.seed(seed)
    if seed is None:
        raise TypeError("seed must be an int in [0, 2**64), got None: keep_mask needs an explicit seed")
    offset = _validate.offset(offset)
    device = torch.get_default_device() if device is None else torch.device(device)
    return ops.keep_mask(torch.Size(shape), p, seed, offset, device)
