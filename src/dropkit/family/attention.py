"""Attention dropout on the mask spec: scaled dot-product attention whose probability dropout is dropkit's.

torch.nn.functional.scaled_dot_product_attention's arguments and semantics, plus
the family's `training`, `seed`, `offset` and `generator`. The mask indexes the
logical (..., L_q, L_k) probability tensor: element index + offset is its stream
index (docs/mask-spec.md), so it is the same on every backend and layout, and a
shard of batch-heads or query rows can pass its own offset. Backward regenerates
the mask from (seed, offset) and keeps only the row log-sum-exp (FlashAttention-2,
Dao 2023): nothing of size L_q x L_k is saved.

Examples:
    >>> q = torch.randn(2, 4, 8, 16)
    >>> y = scaled_dot_product_attention(q, q, q, dropout_p=0.1, seed=3)
"""

from __future__ import annotations

import math
from typing import cast

import torch
from torch import Tensor

from .. import _validate, ops, rng
from ._common import DropoutBase, active, resolve_seed

__all__ = ["scaled_dot_product_attention", "attention_keep_mask", "ScaledDotProductAttention"]


def _shapes(query: Tensor, key: Tensor, value: Tensor, enable_gqa: bool) -> tuple[Tensor, Tensor]:
    """key and value with their heads repeated for grouped-query attention; checks the shapes torch checks."""
    for name, t in (("query", query), ("key", key), ("value", value)):
        _validate.float_tensor(t, name)
        if t.dim() < 2:
            raise ValueError(
                f"scaled_dot_product_attention expects {name} of at least 2 dimensions (..., L, E), got shape {tuple(t.shape)}"
            )
    if key.shape[-1] != query.shape[-1] or key.shape[-2] != value.shape[-2]:
        raise ValueError(
            "scaled_dot_product_attention expects query (..., L, E), key (..., S, E) and value (..., S, Ev), "
            f"got shapes {tuple(query.shape)}, {tuple(key.shape)} and {tuple(value.shape)}"
        )
    if enable_gqa and query.dim() >= 3 and key.shape[-3] != query.shape[-3]:
        hq, hk = query.shape[-3], key.shape[-3]
        if hk == 0 or hq % hk or value.shape[-3] != hk:
            raise ValueError(
                f"enable_gqa needs query heads ({hq}) to be a multiple of key and value heads ({hk}, {value.shape[-3]})"
            )
        key, value = key.repeat_interleave(hq // hk, -3), value.repeat_interleave(hq // hk, -3)
    return key, value


def _batch(query: Tensor, key: Tensor, value: Tensor) -> torch.Size:
    try:
        # torch.broadcast_shapes is unannotated; it returns a torch.Size
        return cast(torch.Size, torch.broadcast_shapes(query.shape[:-2], key.shape[:-2], value.shape[:-2]))  # type: ignore[no-untyped-call]
    except RuntimeError:
        raise ValueError(
            "scaled_dot_product_attention expects batch dimensions of query, key and value that broadcast, "
            f"got shapes {tuple(query.shape)}, {tuple(key.shape)} and {tuple(value.shape)}"
        ) from None


def scaled_dot_product_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_mask: Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
    *,
    training: bool = True,
    seed: int | None = None,
    offset: int = 0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """softmax(query key^T * scale + mask) value, the probabilities dropped on the mask spec.

    Without dropout (dropout_p = 0, or training=False outside dropkit.mc_dropout) this is
    torch's scaled_dot_product_attention itself: its fastest kernel, unchanged numerics.

    Args:
        query: (..., L_q, E), (..., L_k, E), (..., L_k, E_v)
        key: (..., L_q, E), (..., L_k, E), (..., L_k, E_v)
        value: (..., L_q, E), (..., L_k, E), (..., L_k, E_v); batch dims broadcast.
        attn_mask: bool (True takes part) or additive float, broadcastable to (..., L_q, L_k).
        dropout_p: probability of an attention probability being zeroed.
        is_causal: query i attends to keys j <= i (top-left aligned, as torch); excludes attn_mask.
        scale: score scale; default 1/sqrt(E).
        enable_gqa: repeat key/value heads (dim -3) to the query's head count.
        training: as in dropkit.functional.dropout (torch's SDPA has no such flag: it drops always).
        seed: as in dropkit.functional.dropout.
        offset: as in dropkit.functional.dropout; probability element i of the logical (..., L_q, L_k) tensor has stream index offset + i.
        generator: as in dropkit.functional.dropout.

    Shape:
        Output: (..., L_q, E_v).

    Examples:
        >>> q, k = torch.randn(1, 2, 4, 8), torch.randn(1, 2, 6, 8)
        >>> scaled_dot_product_attention(q, k, k, dropout_p=0.2, seed=1).shape
        torch.Size([1, 2, 4, 8])
    """
    p = _validate.p(dropout_p, "dropout_p")
    seed = _validate.seed(seed)
    offset = _validate.offset(offset)
    if is_causal and attn_mask is not None:
        raise ValueError("scaled_dot_product_attention takes attn_mask or is_causal=True, not both")
    if not active(training) or p == 0.0:
        return torch.nn.functional.scaled_dot_product_attention(
            query, key, value, attn_mask, 0.0, is_causal, scale=scale, enable_gqa=enable_gqa
        )
    key, value = _shapes(query, key, value, enable_gqa)
    batch = _batch(query, key, value)
    lq, lk = query.shape[-2], key.shape[-2]
    query = query.expand(*batch, *query.shape[-2:])
    key = key.expand(*batch, *key.shape[-2:])
    value = value.expand(*batch, *value.shape[-2:])
    if attn_mask is not None:
        if attn_mask.dtype != torch.bool:
            _validate.float_tensor(attn_mask, "attn_mask")
        attn_mask = attn_mask.expand(*batch, lq, lk)
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else float(scale)
    resolved, offset = resolve_seed(seed, offset, generator, (*batch, lq, lk))
    seed_t = ops.seed_tensor(resolved)
    # a custom op's call is untyped; its schema returns (output, log-sum-exp)
    return cast(
        Tensor, ops.attention(query, key, value, attn_mask, seed_t, rng.to_int64(offset), p, bool(is_causal), scale)[0]
    )


def attention_keep_mask(query: Tensor, key: Tensor, dropout_p: float, *, seed: int, offset: int = 0) -> Tensor:
    """The boolean keep mask scaled_dot_product_attention(query, key, ..., dropout_p, seed=seed, offset=offset) uses.

    Shape:
        (*batch, L_q, L_k): the probability tensor's shape, batch dims broadcast as in attention.

    Examples:
        >>> q = torch.randn(1, 2, 3, 4)
        >>> attention_keep_mask(q, q, 0.5, seed=7).shape
        torch.Size([1, 2, 3, 3])
    """
    key, value = _shapes(query, key, key, enable_gqa=True)
    batch = _batch(query, key, value)
    return ops.keep_mask(
        torch.Size((*batch, query.shape[-2], key.shape[-2])),
        _validate.p(dropout_p, "dropout_p"),
        _validate.offset(seed, "seed"),
        _validate.offset(offset),
        query.device,
    )


class ScaledDotProductAttention(DropoutBase):
    """Scaled dot-product attention with dropout p on its probabilities, on the mask spec.

    Its `training` flag switches the dropout, so mc_dropout and set_dropout find it
    like any dropout module.

    Args:
        p: attention dropout rate. Default: 0.0
        generator: torch.Generator the per-call seeds are drawn from (default: torch's; eager only).

    Shape:
        As dropkit.functional.scaled_dot_product_attention.

    Examples:
        >>> attn = ScaledDotProductAttention(0.1)
        >>> attn(torch.randn(2, 4, 8, 16), torch.randn(2, 4, 8, 16), torch.randn(2, 4, 8, 16)).shape
        torch.Size([2, 4, 8, 16])
    """

    def __init__(self, p: float = 0.0, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.p = _validate.p(p)
        self.generator = generator

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        attn_mask: Tensor | None = None,
        is_causal: bool = False,
        scale: float | None = None,
        enable_gqa: bool = False,
    ) -> Tensor:
        return scaled_dot_product_attention(
            query,
            key,
            value,
            attn_mask,
            self.p,
            is_causal,
            scale,
            enable_gqa,
            training=self.training,
            generator=self.generator,
        )

    def extra_repr(self) -> str:
        return f"p={self.p}"
