"""Helpers shared by the dropout-family tests."""

from __future__ import annotations

import torch

from _helpers.stats import four_sigma
from dropkit import rng


def assert_rate(kept: torch.Tensor, p: float) -> None:
    """The kept fraction of a boolean tensor lies within 4 sigma of 1 - p."""
    n = kept.numel()
    frac = kept.double().mean().item()
    tol = four_sigma(p, n)
    assert abs(frac - (1 - p)) <= tol, f"kept {frac:.5f}, expected {1 - p} +- 4 sigma = {tol:.5f} (n={n})"


def reference_keep(shape, p: float, seed: int, offset: int = 0) -> torch.Tensor:
    """The spec's keep mask from the numpy reference."""
    return torch.from_numpy(rng.keep_mask(tuple(shape), p, seed, offset).copy())


def saved_numels(fn) -> list[int]:
    """numel of every tensor autograd saves while fn() runs (scalars included)."""
    saved = []

    def pack(t):
        saved.append(t.numel())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return saved
