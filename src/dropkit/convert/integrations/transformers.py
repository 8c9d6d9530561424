"""Hugging Face transformers: hidden, embedding and attention dropout of a PreTrainedModel through dropkit.

Attention goes through transformers' documented extension point: `attention_forward`
is registered in AttentionInterface (and sdpa's mask builder in AttentionMaskInterface)
as "dropkit" and selected with `set_attn_implementation`, so no model class is changed.
Inside dropkit.mc_dropout the attention module stays in eval mode and passes rate 0;
`attention_forward` then uses the rate the module was configured with.

Example:
    >>> from transformers import BertConfig, BertModel
    >>> model = BertModel(BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64))
    >>> report = apply(model)
    >>> model.config._attn_implementation, report.routed
    ('dropkit', ['encoder.layer.0.attention.self'])
"""

from __future__ import annotations

import inspect

import torch
from torch import Tensor
from transformers import AttentionInterface, PreTrainedModel
from transformers.integrations.sdpa_attention import create_position_bias_mask
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

from ... import _mode
from ...family.attention import scaled_dot_product_attention

__all__ = ["IMPLEMENTATION", "apply", "attention_forward", "attention_rate", "register", "route"]

IMPLEMENTATION = "dropkit"
# Where transformers' attention modules keep their rate: a dropout module they only read
# `.p` from (BERT, RoBERTa, DistilBERT: `dropout`; GPT-2: `attn_dropout`), or a float (ViT, Llama).
_RATE_MODULES = ("attn_dropout", "dropout")
_RATE_FLOAT = "attention_dropout"


def attention_rate(module: torch.nn.Module) -> float:
    """The attention dropout rate `module` was configured with (0.0 where it has none)."""
    for name in _RATE_MODULES:
        holder = getattr(module, name, None)
        if isinstance(holder, torch.nn.Module) and isinstance(getattr(holder, "p", None), float):
            return holder.p
    rate = getattr(module, _RATE_FLOAT, 0.0)
    return float(rate) if isinstance(rate, (int, float)) else 0.0


def attention_forward(
    module: torch.nn.Module,
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attention_mask: Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    is_causal: bool | None = None,
    position_bias: Tensor | None = None,
    **kwargs,
) -> tuple[Tensor, None]:
    """transformers' sdpa attention with dropkit's scaled_dot_product_attention: (B, H, L, E) in, (B, L, H, E) out.

    Follows transformers' sdpa_attention_forward (causal flag, cache cropping,
    position bias); the dropout rate is `dropout` in training and the module's
    configured rate inside dropkit.mc_dropout.
    """
    if not module.training and _mode.mc_active():
        dropout = attention_rate(module)
    q_length = query.shape[2]
    is_causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
    is_causal = q_length > 1 and attention_mask is None and is_causal
    if is_causal and key.shape[2] > q_length:  # prefill of a longer static cache: torch's causal mask is top-left
        key, value = key[:, :, :q_length], value[:, :, :q_length]
        position_bias = None if position_bias is None else position_bias[..., :q_length]
    if position_bias is not None:
        attention_mask = create_position_bias_mask(position_bias, attention_mask, is_causal, query, key)
        is_causal = False
    out = scaled_dot_product_attention(
        query, key, value, attention_mask, dropout, is_causal, scaling,
        enable_gqa=getattr(module, "num_key_value_groups", 1) > 1,
    )
    return out.transpose(1, 2).contiguous(), None


def register() -> None:
    """Register "dropkit" in transformers' AttentionInterface and AttentionMaskInterface (idempotent)."""
    AttentionInterface.register(IMPLEMENTATION, attention_forward)
    AttentionMaskInterface.register(IMPLEMENTATION, sdpa_mask)


def _uses_interface(module: torch.nn.Module) -> bool:
    # The attention modules that dispatch through AttentionInterface name it in their forward.
    code = getattr(inspect.unwrap(type(module).forward), "__code__", None)
    return code is not None and "ALL_ATTENTION_FUNCTIONS" in code.co_names


def route(model: torch.nn.Module) -> tuple[list[str], list[str], set[int]]:
    """Select "dropkit" attention in every PreTrainedModel inside `model`.

    Returns:
        (qualified names of the attention modules now on dropkit's SDPA,
        names of the PreTrainedModels that cannot be routed (their attention does not use
        AttentionInterface), ids of the dropout modules that only hold a routed attention's rate).
    """
    register()
    routed, unrouted, holders = [], [], set()
    done: set[int] = set()
    for name, sub in model.named_modules():
        if not isinstance(sub, PreTrainedModel) or id(sub.config) in done:
            continue
        done.add(id(sub.config))
        if not sub._can_set_attn_implementation():
            unrouted.append(name or type(sub).__name__)
            continue
        sub.set_attn_implementation(IMPLEMENTATION)
    for name, sub in model.named_modules():
        config = getattr(sub, "config", None)
        if _uses_interface(sub) and getattr(config, "_attn_implementation", None) == IMPLEMENTATION:
            routed.append(name)
            holders.update(id(h) for h in (getattr(sub, n, None) for n in _RATE_MODULES) if isinstance(h, torch.nn.Module))
    return routed, unrouted, holders


def apply(model: torch.nn.Module):
    """Make every dropout of a transformers model dropkit's: dropout modules replaced, attention routed.

    The same as dropkit.replace_dropout(model) (which recognises transformers models);
    returns its report.
    """
    from ..replace import replace_dropout

    return replace_dropout(model)[1]
