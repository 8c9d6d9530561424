"""torch.nn.MultiheadAttention (and so nn.TransformerEncoderLayer / DecoderLayer) with dropkit's attention dropout.

Each nn.MultiheadAttention with dropout > 0 is replaced by `MultiheadAttention`, a
subclass sharing its parameters, whose dropping forward runs dropkit's SDPA (or,
with need_weights=True, dropkit's dropout on the probability tensor: the same spec
mask). Without dropout it is torch's forward, fast path included. Inside
dropkit.mc_dropout it drops at its configured rate although the module is in eval.
Options it does not reimplement (bias_k/bias_v, add_zero_attn) leave a module
torch's, named with the reason: its dropout runs inside torch's
multi_head_attention_forward, which dropkit's interceptor sees only as a whole.

Example:
    >>> mha = MultiheadAttention.from_torch(torch.nn.MultiheadAttention(8, 2, dropout=0.1, batch_first=True))
    >>> out, weights = mha(torch.randn(2, 5, 8), torch.randn(2, 5, 8), torch.randn(2, 5, 8))
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ... import functional as DF
from ...family._common import active
from .intercept import call_rate

__all__ = ["MultiheadAttention", "route"]


class MultiheadAttention(torch.nn.MultiheadAttention):
    """nn.MultiheadAttention whose attention dropout is dropkit's (same parameters, state_dict and options)."""

    @classmethod
    def from_torch(cls, module: torch.nn.MultiheadAttention) -> MultiheadAttention:
        """The same module, its dropout on dropkit: parameters and buffers are shared, not copied."""
        new = cls.__new__(cls)
        new.__dict__ = dict(module.__dict__)
        new._modules, new._parameters, new._buffers = (
            dict(module._modules),
            dict(module._parameters),
            dict(module._buffers),
        )
        return new

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        key_padding_mask: Tensor | None = None,
        need_weights: bool = True,
        attn_mask: Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        if not active(self.training) or self.dropout == 0.0 or query.dim() != 3:
            return super().forward(
                query, key, value, key_padding_mask, need_weights, attn_mask, average_attn_weights, is_causal
            )
        if self.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        (length, batch, embed), source = query.shape, key.shape[0]
        heads, head_dim = self.num_heads, embed // self.num_heads
        if self._qkv_same_embed_dim:
            q, k, v = F._in_projection_packed(  # type: ignore[attr-defined]  # torch's own forward uses these private helpers
                query, key, value, self.in_proj_weight, self.in_proj_bias
            )
        else:
            b = (None, None, None) if self.in_proj_bias is None else self.in_proj_bias.chunk(3)
            q, k, v = F._in_projection(  # type: ignore[attr-defined]
                query, key, value, self.q_proj_weight, self.k_proj_weight, self.v_proj_weight, *b
            )
        q, k, v = (t.reshape(t.shape[0], batch, heads, head_dim).permute(1, 2, 0, 3) for t in (q, k, v))
        causal = is_causal and key_padding_mask is None and not need_weights
        mask = None if causal else _merged_mask(attn_mask, key_padding_mask, batch, heads, length, source, query.dtype)
        if need_weights:
            scores = q @ k.transpose(-2, -1) * head_dim**-0.5
            probs = torch.softmax(scores if mask is None else scores + mask, -1)
            probs = DF.dropout(probs, call_rate(self.dropout, self.training), self.training)
            out, weights = probs @ v, probs.mean(1) if average_attn_weights else probs
        else:
            rate = call_rate(self.dropout, self.training)
            out = DF.scaled_dot_product_attention(q, k, v, mask, rate, causal, training=self.training)
            weights = None
        out = F.linear(out.permute(2, 0, 1, 3).reshape(length, batch, embed), self.out_proj.weight, self.out_proj.bias)
        return (out.transpose(0, 1) if self.batch_first else out), weights


def _merged_mask(
    attn_mask: Tensor | None,
    key_padding_mask: Tensor | None,
    batch: int,
    heads: int,
    length: int,
    source: int,
    dtype: torch.dtype,
) -> Tensor | None:
    """torch's two masks (True = masked out, or additive) as one additive (B, H, L, S)-broadcastable mask."""
    mask = None
    if attn_mask is not None:
        mask = _additive(attn_mask, "attn_mask", dtype)
        mask = mask.view(batch, heads, length, source) if mask.dim() == 3 else mask
    if key_padding_mask is not None:
        kpm = _additive(key_padding_mask, "key_padding_mask", dtype).view(batch, 1, 1, source)
        mask = kpm if mask is None else mask + kpm
    return mask


def route(model: torch.nn.Module) -> tuple[list[str], dict[str, str]]:
    """Swap every nn.MultiheadAttention with dropout > 0 in `model` for `MultiheadAttention`.

    Returns:
        (names of the swapped modules, {name: why} of those left torch's: bias_k/bias_v or
        add_zero_attn, or `model` itself, which has no parent to be swapped in).
    """
    routed: list[str] = []
    unrouted: dict[str, str] = {}
    for name, module in list(model.named_modules()):
        if type(module) is not torch.nn.MultiheadAttention or module.dropout == 0.0:
            continue
        if not name or module.bias_k is not None or module.add_zero_attn:
            why = "is the model itself (no parent to swap it in)" if not name else "has bias_k/bias_v or add_zero_attn"
            unrouted[name] = (
                f"nn.MultiheadAttention {why}: its attention dropout runs inside torch's multi_head_attention_forward"
            )
            continue
        parent, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent), attr, MultiheadAttention.from_torch(module))
        routed.append(name)
    return routed, unrouted


def _additive(mask: Tensor, name: str, dtype: torch.dtype) -> Tensor:
    """torch's mask (True = masked out, or already additive) as an additive float mask."""
    out = F._canonical_mask(mask, name, None, "", dtype, check_other=False)
    assert out is not None, "a mask that is not None stays one"
    return out
