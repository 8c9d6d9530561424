"""timm: DropPath and DropBlock2d become dropkit's, and timm's Attention runs its dropout in dropkit's SDPA.

DropBlock2d in every configuration but with_noise=True (which is named in replace_dropout's
report and warning) becomes `DropBlock2d` here, on dropkit's block masks.

timm has no registry for attention functions, so each timm.layers.Attention is
replaced (as replace_dropout replaces a dropout module) by `Attention`, a subclass
that shares the instance's parameters and submodules and differs only in calling
dropkit.functional.scaled_dot_product_attention. Its attention dropout follows
the mode of its `attn_drop` module, so dropkit.mc_dropout turns it on.

Example:
    >>> import timm
    >>> model = timm.layers.Mlp(4)  # any timm module
    >>> route(model)
    ([], {})
"""

from __future__ import annotations

from typing import cast

import torch
from timm import layers

from ... import nn as dnn
from ...family._common import DropoutBase, active
from ...family.attention import scaled_dot_product_attention
from ...family.block import drop_block2d

__all__ = ["Attention", "DropBlock2d", "CONVERTERS", "example_input", "route"]


class Attention(layers.Attention):
    """timm.layers.Attention whose attention dropout is dropkit's (same parameters, state_dict and options).

    Example:
        >>> attn = Attention.from_timm(layers.Attention(8, num_heads=2, attn_drop=0.1))
        >>> attn(torch.randn(2, 5, 8)).shape
        torch.Size([2, 5, 8])
    """

    @classmethod
    def from_timm(cls, module: layers.Attention) -> Attention:
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
        return cast(torch.Tensor, self.proj_drop(self.proj(x)))  # a Module's call is typed Any


def _drop_path(module: layers.DropPath) -> dnn.DropPath:
    return dnn.DropPath(module.drop_prob, module.scale_by_keep)


def _drop_block_refusal(module: layers.DropBlock2d) -> str | None:
    """Why timm's `module` cannot run on dropkit, or None where it can."""
    if module.with_noise:
        return (
            "timm DropBlock2d(with_noise=True) fills dropped blocks with gaussian noise, which dropkit has no form of"
        )
    if not 0.0 <= module.gamma_scale * module.drop_prob <= 1.0:
        return f"timm DropBlock2d's gamma_scale * drop_prob = {module.gamma_scale * module.drop_prob} is not a rate in [0, 1]"
    return None


class DropBlock2d(DropoutBase):
    """timm's DropBlock2d on dropkit's block masks: couple_channels, gamma_scale and scale_by_keep as timm has them.

    couple_channels=True (timm's default, the paper's) draws one (H, W) mask per sample for
    all channels; False one per (sample, channel). gamma_scale multiplies the seed rate, as
    it does in timm; scale_by_keep scales kept units by the inverse kept fraction of the
    batch's mask. timm >= 1.0.23 ignores its old `batchwise` and `fast` arguments, and so does this.

    Example:
        >>> DropBlock2d(0.1, 3)
        DropBlock2d(p=0.1, block_size=3, couple_channels=True)
    """

    mask_unit = "block"

    def __init__(
        self,
        p: float = 0.1,
        block_size: int = 7,
        *,
        gamma_scale: float = 1.0,
        couple_channels: bool = True,
        scale_by_keep: bool = True,
        inplace: bool = False,
    ) -> None:
        super().__init__()
        self.p, self.block_size, self.gamma_scale = p, block_size, gamma_scale
        self.couple_channels, self.scale_by_keep, self.inplace = couple_channels, scale_by_keep, inplace

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not active(self.training) or self.p == 0.0:
            return x
        n, c, h, w = x.shape
        ones = x.new_ones(n, 1 if self.couple_channels else c, h, w)
        mask = drop_block2d(ones, self.p * self.gamma_scale, self.block_size, True)
        if not self.scale_by_keep:
            mask = (mask != 0).to(x.dtype)
        out = x.mul_(mask) if self.inplace else x * mask
        return out.masked_fill_(mask == 0, 0.0)  # 0 * inf is NaN; a dropped element is exactly 0 (docs/mask-spec.md)

    def extra_repr(self) -> str:
        extra = "" if self.gamma_scale == 1.0 else f", gamma_scale={self.gamma_scale}"
        extra += "" if self.scale_by_keep else ", scale_by_keep=False"
        return f"p={self.p}, block_size={self.block_size}, couple_channels={self.couple_channels}{extra}"


def _drop_block(module: layers.DropBlock2d) -> DropBlock2d | None:
    if _drop_block_refusal(module):
        return None
    return DropBlock2d(
        module.drop_prob,
        module.block_size,
        gamma_scale=module.gamma_scale,
        couple_channels=module.couple_channels,
        scale_by_keep=module.scale_by_keep,
        inplace=module.inplace,
    )


CONVERTERS = {layers.DropPath: _drop_path, layers.DropBlock2d: _drop_block}


def _set_child(model: torch.nn.Module, name: str, new: torch.nn.Module) -> None:
    parent, _, attr = name.rpartition(".")
    setattr(model.get_submodule(parent), attr, new)


def route(model: torch.nn.Module) -> tuple[list[str], dict[str, str]]:
    """Swap every timm.layers.Attention in `model` for `Attention`; name the timm modules dropkit cannot take.

    Other attention classes (Swin's WindowAttention, ...) call torch's SDPA or their attn_drop
    module, both of which run on dropkit once converted (dropkit.convert.integrations.intercept).

    Returns:
        (names of the routed attention modules, {name: why} of the DropBlock2d whose options dropkit lacks).
    """
    routed: list[str] = []
    unrouted: dict[str, str] = {}
    for name, module in list(model.named_modules()):
        if type(module) is layers.Attention and name:
            _set_child(model, name, Attention.from_timm(module))
            routed.append(name)
        elif type(module) is layers.DropBlock2d and (why := _drop_block_refusal(module)):
            unrouted[name] = why
    return routed, unrouted


def example_input(model: torch.nn.Module) -> torch.Tensor | None:
    """A batch of 2 random images of the size its patch embedding was built for (else its pretrained_cfg's), or None."""
    size = (getattr(model, "pretrained_cfg", None) or {}).get("input_size")
    embed = getattr(model, "patch_embed", None)
    if (
        embed is not None
        and isinstance(getattr(embed, "img_size", None), tuple)
        and hasattr(getattr(embed, "proj", None), "in_channels")
    ):
        size = (embed.proj.in_channels, *embed.img_size)
    return None if size is None else torch.randn(2, *size, generator=torch.Generator().manual_seed(0))
