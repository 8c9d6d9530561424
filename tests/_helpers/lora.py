"""Tiny Llama models with PEFT LoRA adapters, from a config (no downloads), and one training step's loss.

Example:
    >>> from _helpers import torchvision_shim; torchvision_shim.install()
    >>> model = tiny_llama_lora(hidden=32, layers=1, lora_dropout=0.1)
    >>> type(model).__name__
    'PeftModel'
"""

from __future__ import annotations

import torch

__all__ = ["TARGETS", "tiny_llama", "tiny_llama_lora", "unfused", "tokens", "loss"]

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
VOCAB = 1000


def tiny_llama(hidden: int = 256, layers: int = 2, seed: int = 0) -> torch.nn.Module:
    """A LlamaForCausalLM with `hidden` units (Llama's 2.6875x MLP width, 64-dim heads), fp32."""
    import transformers

    torch.manual_seed(seed)
    config = transformers.LlamaConfig(
        hidden_size=hidden, intermediate_size=hidden * 43 // 16, num_hidden_layers=layers,
        num_attention_heads=max(1, hidden // 64), num_key_value_heads=max(1, hidden // 64),
        vocab_size=VOCAB, max_position_embeddings=4096,
    )  # fmt: skip
    return transformers.LlamaForCausalLM(config)


def tiny_llama_lora(
    hidden: int = 256, layers: int = 2, lora_dropout: float = 0.1, r: int = 8, adapters=("default",), seed: int = 0
) -> torch.nn.Module:
    """tiny_llama with one LoRA adapter per name in `adapters` on every projection (TARGETS); the first is active."""
    import peft

    config = peft.LoraConfig(r=r, lora_alpha=2 * r, lora_dropout=lora_dropout, target_modules=TARGETS)
    model = peft.get_peft_model(tiny_llama(hidden, layers, seed), config, adapter_name=adapters[0])
    for name in adapters[1:]:
        model.add_adapter(name, config)
    for lora_b in (m for n, m in model.named_modules() if ".lora_B." in n):
        torch.nn.init.normal_(lora_b.weight, std=0.02)  # B starts at zero; nonzero B makes every gradient nonzero
    return model


def unfused(model: torch.nn.Module) -> torch.nn.Module:
    """The LoRA adapters' torch Dropout made dropkit's, nothing fused (replace_dropout before the fused route), in place."""
    from peft.tuners.lora import layer as lora

    import dropkit

    for module in model.modules():
        if isinstance(module, lora.Linear):
            for name, drop in module.lora_dropout.items():
                if type(drop) is torch.nn.Dropout:
                    module.lora_dropout[name] = dropkit.nn.Dropout(drop.p).train(drop.training)
    return model


def tokens(batch: int = 4, seq: int = 256, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, VOCAB, (batch, seq), generator=torch.Generator().manual_seed(seed))


def loss(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """The causal LM loss of one forward on ids (labels = ids)."""
    return model(input_ids=ids, labels=ids).loss
