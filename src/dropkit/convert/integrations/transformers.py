"""Hugging Face transformers: hidden, embedding and attention dropout of a PreTrainedModel through dropkit.

Attention goes through transformers' documented extension point: `attention_forward`
is registered in AttentionInterface (and sdpa's mask builder in AttentionMaskInterface)
as "dropkit" and selected with `set_attn_implementation`, so no model class is changed.
Models whose attention cannot be selected run their eager attention, whose dropout
calls dropkit.convert.integrations.intercept catches. Inside dropkit.mc_dropout the attention
module stays in eval mode and passes rate 0; `attention_forward` then runs at the rate
its call site had in training (dropkit.convert.integrations.intercept.call_rate).

Example:
    >>> from transformers import BertConfig, BertModel
    >>> model = BertModel(BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64))
    >>> report = apply(model)
    >>> model.config._attn_implementation, report.routed
    ('dropkit', ['encoder.layer.0.attention.self'])
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor
from transformers import AttentionInterface, PreTrainedModel
from transformers.integrations.sdpa_attention import create_position_bias_mask
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

from ...family.attention import scaled_dot_product_attention
from .intercept import call_rate

if TYPE_CHECKING:  # replace imports this package: imported where used
    from ..replace import Replaced

__all__ = ["IMPLEMENTATION", "apply", "attention_forward", "example_input", "register", "route"]

IMPLEMENTATION = "dropkit"


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
    **kwargs: Any,
) -> tuple[Tensor, None]:
    """transformers' sdpa attention with dropkit's scaled_dot_product_attention: (B, H, L, E) in, (B, L, H, E) out.

    Follows transformers' sdpa_attention_forward (causal flag, cache cropping,
    position bias); the dropout rate is `dropout` in training and the module's
    training rate inside dropkit.mc_dropout.
    """
    dropout = call_rate(dropout, module.training)
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
        query,
        key,
        value,
        attention_mask,
        dropout,
        is_causal,
        scaling,
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


def route(model: torch.nn.Module) -> tuple[list[str], dict[str, str]]:
    """Select "dropkit" attention in every PreTrainedModel inside `model` that can select an implementation.

    Returns:
        (qualified names of the attention modules now on dropkit's SDPA, {}: the eager attention
        of the other models calls torch's dropout, which the interceptor runs on dropkit).
    """
    register()
    done: set[int] = set()
    for sub in model.modules():
        if isinstance(sub, PreTrainedModel) and id(sub.config) not in done and sub._can_set_attn_implementation():
            done.add(id(sub.config))
            sub.set_attn_implementation(IMPLEMENTATION)
    routed = [
        name for name, sub in model.named_modules()
        if _uses_interface(sub) and getattr(getattr(sub, "config", None), "_attn_implementation", None) == IMPLEMENTATION
    ]  # fmt: skip
    return routed, {}


def example_input(model: torch.nn.Module) -> dict[str, Tensor] | None:
    """Inputs for one forward of the first PreTrainedModel in `model`, built from its config (batch 2, 8 tokens).

    Token models get input_ids (and decoder_input_ids where the model is an encoder-decoder),
    image models pixel_values of the config's image size; other inputs (speech) give None.
    """
    pretrained = next((m for m in model.modules() if isinstance(m, PreTrainedModel)), None)
    if pretrained is None:
        return None
    config, g = pretrained.config, torch.Generator().manual_seed(0)
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    name = pretrained.main_input_name
    if name == "input_ids":
        ids = torch.randint(0, min(getattr(text, "vocab_size", 2) or 2, 100), (2, 8), generator=g)
        example = {"input_ids": ids}
        if getattr(config, "is_encoder_decoder", False):
            example["decoder_input_ids"] = ids
        return example
    if name == "pixel_values" and isinstance(getattr(config, "image_size", None), int):
        channels = getattr(config, "num_channels", 3)
        return {"pixel_values": torch.randn(2, channels, config.image_size, config.image_size, generator=g)}
    return None


def apply(model: torch.nn.Module) -> Replaced:
    """Make every dropout of a transformers model dropkit's: dropout modules replaced, attention routed.

    The same as dropkit.replace_dropout(model) (which recognises transformers models);
    returns its report.
    """
    from ..replace import replace_dropout

    return replace_dropout(model)[1]


register()  # importing the glue makes attn_implementation="dropkit" known (dropkit's import hook relies on it)
