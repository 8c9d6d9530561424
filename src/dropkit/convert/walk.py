"""Walking a model's submodules with their parents, as the rewrites need (they set a child on its parent).

Examples:
    >>> import torch.nn as nn
    >>> [qualified for _, _, qualified, _ in children(nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.ReLU())))]
    ['0', '1', '1.0']
"""

from __future__ import annotations

from collections.abc import Iterator

from torch import nn

__all__ = ["children"]


def children(model: nn.Module) -> Iterator[tuple[nn.Module, str, str, nn.Module]]:
    """(parent, attribute name, qualified name, child) for every submodule, in registration order."""
    for parent_name, parent in model.named_modules(remove_duplicate=False):
        for name, child in parent.named_children():
            yield parent, name, f"{parent_name}.{name}" if parent_name else name, child
