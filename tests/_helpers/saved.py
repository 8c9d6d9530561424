"""Bytes autograd keeps for backward, counted once per storage (a tensor saved by two layers counts once).

Example:
    >>> import torch
    >>> x = torch.ones(4, requires_grad=True)
    >>> saved_bytes(lambda: (x * x).sum())
    16
"""

from __future__ import annotations

import torch

__all__ = ["saved_storages", "saved_bytes"]


def saved_storages(fn) -> dict[int, int]:
    """{storage data pointer: nbytes} of every tensor saved for backward while fn() runs."""
    storages: dict[int, int] = {}

    def pack(t):
        s = t.untyped_storage()
        storages[s.data_ptr()] = max(storages.get(s.data_ptr(), 0), s.nbytes())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    del out  # the graph dies here; what it kept was counted while it was built
    return storages


def saved_bytes(fn) -> int:
    """Total bytes of the distinct storages saved for backward while fn() runs."""
    return sum(saved_storages(fn).values())
