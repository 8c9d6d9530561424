"""PEFT LoRA: each adapter's lora_dropout + lora_A runs as dropkit's dropout_linear.

A LoRA Linear computes lora_B(lora_A(lora_dropout(x))) per adapter, and lora_A
keeps its input for the weight gradient: a dropped copy of x per adapted
projection. The route goes through the per-adapter ModuleDicts PEFT itself
builds (no PEFT class changed, no forward patched): lora_A[adapter] becomes a
dropkit.nn.DropoutLinear over the same parameters (state_dict keys unchanged)
carrying the adapter's rate, and lora_dropout[adapter] becomes nn.Identity,
which is how PEFT itself writes "no dropout here". The adapter then keeps x,
which the base layer and the other adapters keep already. Merging, unmerging,
adapter switching, disabling adapters and saving/loading adapter weights touch
only the parameters, so they work as before; an adapter loaded or added later is
routed by calling dropkit.replace_dropout again. Adapters with a LoRA variant
(DoRA and others, whose forward reads the dropout differently) keep their dropout
module, which replace_dropout makes dropkit's.

Example:
    >>> route(torch.nn.Linear(2, 2))
    ([], {})
"""

from __future__ import annotations

from typing import cast

import torch
from peft.tuners.lora import layer as lora

from ... import nn as dnn

__all__ = ["route"]


def _routable(module: lora.Linear, adapter: str) -> bool:
    """A vanilla adapter whose dropout is torch's or dropkit's plain Dropout in front of a plain Linear lora_A."""
    dropout = module.lora_dropout[adapter]
    exact = type(dropout) is torch.nn.Dropout or (type(dropout) is dnn.Dropout and dropout.backward == "recompute")
    return (
        exact
        and not dropout.inplace
        and adapter not in module.lora_variant
        and adapter in module.lora_A
        and type(module.lora_A[adapter]) is torch.nn.Linear
    )


def route(model: torch.nn.Module) -> tuple[list[str], dict[str, str]]:
    """Fuse each vanilla LoRA adapter's dropout into its lora_A, in place.

    Returns:
        (names of the fused lora_A modules, e.g. "...q_proj.lora_A.default"; nothing that
        stays torch's: every other adapter's dropout is a plain dropout module that
        replace_dropout converts).
    """
    routed = []
    for name, module in model.named_modules():
        if type(module) is not lora.Linear:  # subclasses (quantized, tensor-parallel) have forwards of their own
            continue
        for adapter in list(module.lora_dropout):
            if not _routable(module, adapter):
                continue
            # _routable checked both types
            dropout = cast(torch.nn.Dropout, module.lora_dropout[adapter])
            linear = cast(torch.nn.Linear, module.lora_A[adapter])
            fused = dnn.DropoutLinear.from_linear(linear, dropout.p, generator=getattr(dropout, "generator", None))
            module.lora_A[adapter] = fused
            module.lora_dropout[adapter] = torch.nn.Identity().train(dropout.training)
            routed.append(f"{name}.lora_A.{adapter}" if name else f"lora_A.{adapter}")
    return routed, {}
