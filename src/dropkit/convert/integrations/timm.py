"""timm: DropPath and DropBlock2d become dropkit's, and timm's Attention runs its dropout in dropkit's SDPA.

timm has no registry for attention functions, so each timm.layers.Attention is
replaced (as replace_dropout replaces a dropout module) by `Attention`, a subclass
that shares the instance's parameters and submodules and differs only in calling
dropkit.functional.scaled_dot_product_attention. Its attention dropout follows
the mode of its `attn_drop` module, so dropkit.mc_dropout turns it on.

Example:
    >>> import timm
    >>> model = timm.layers.Mlp(4)  # any timm module
    >>> route(model)
    ([], [], set())
"""

from __future__ import annotations

import torch
from timm import layers

from ... import nn as dnn
from ...family.attention import scaled_dot_product_attention

__all__ = ["Attention", "CONVERTERS", "route"]


class Attention(layers.Attention):
    """timm.layers.Attention whose attention dropout is dropkit's (same parameters, state_dict and options).

    Example:
        >>> attn = Attention.from_timm(layers.Attention(8, num_heads=2, attn_drop=0.1))
        >>> attn(torch.randn(2, 5, 8)).shape
        torch.Size([2, 5, 8])
    """

    @classmethod
    def from_timm(cls, module: layers.Attention) -> "Attention":
        """The same module, its forward on dropkit's SDPA: parameters and buffers are shared, not copied."""
        new = cls.__new__(cls)
        new.__dict__ = dict(module.__dict__)
        new._modules = dict(module._modules)
        new._parameters = dict(module._parameters)
        new._buffers = dict(module._buffers)
        return new

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None, is_causal: bool = False) -> torch.Tensor:
        B, N, _ = x.shape
        gate = self.gate(x).sigmoid() if self.gate is not None else None
        q, k, v = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        q, k = self.q_norm(q), self.k_norm(k)
        x = scaled_dot_product_attention(
            q, k, v, attn_mask, self.attn_drop.p, is_causal, self.scale, training=self.attn_drop.training
        )
        x = self.norm(x.transpose(1, 2).reshape(B, N, self.attn_dim))
        if gate is not None:
            x = x * gate
        return self.proj_drop(self.proj(x))


def _drop_path(module: layers.DropPath) -> dnn.DropPath:
    return dnn.DropPath(module.drop_prob, module.scale_by_keep)


def _drop_block_convertible(module: layers.DropBlock2d) -> bool:
    # dropkit's DropBlock2d draws one mask per channel and scales kept units; timm's other
    # options (one mask shared by all channels, noise, gamma_scale) have no dropkit form.
    return not module.couple_channels and not module.with_noise and module.gamma_scale == 1.0 and module.scale_by_keep


def _drop_block(module: layers.DropBlock2d) -> dnn.DropBlock2d | None:
    return dnn.DropBlock2d(module.drop_prob, module.block_size) if _drop_block_convertible(module) else None


CONVERTERS = {layers.DropPath: _drop_path, layers.DropBlock2d: _drop_block}


def _set_child(model: torch.nn.Module, name: str, new: torch.nn.Module) -> None:
    parent, _, attr = name.rpartition(".")
    setattr(model.get_submodule(parent), attr, new)


def route(model: torch.nn.Module) -> tuple[list[str], list[str], set[int]]:
    """Swap every timm.layers.Attention in `model` for `Attention`; name the timm modules dropkit cannot take.

    A timm Attention that is `model` itself has no parent to be swapped in and is named unrouted.

    Returns:
        (names of the routed attention modules, names of the timm modules whose dropout stays
        timm's: other attention classes with attn_drop > 0, DropBlock2d with options dropkit lacks,
        ids of the attention dropout modules that only hold a rate).
    """
    routed, unrouted, holders = [], [], set()
    for name, module in list(model.named_modules()):
        if type(module) is layers.Attention and name:
            _set_child(model, name, Attention.from_timm(module))
            routed.append(name)
            holders.add(id(module.attn_drop))
        elif type(module) is layers.DropBlock2d and not _drop_block_convertible(module):
            unrouted.append(name)
        elif type(module) is not Attention and getattr(getattr(module, "attn_drop", None), "p", 0) > 0:
            unrouted.append(name)
    return routed, unrouted, holders
