"""Consistent MC dropout: replica t of an MC run is one thinned network, the same for every input.

In mc_predict's default mode each row of the replicated batch draws its own
mask, so a point's samples depend on the batch it came in. In consistent mode
(`mc_predict(..., consistent=True)`) the masks are addressed by (replica,
call, feature) alone, on the mask spec:

    the c-th dropout call of a forward, on an input of shape (copies * B, *F),
    gives replica t (t counted over the whole MC run) the spec keep mask of
    shape F with the run's seed at offset c * CALL_STRIDE + t * prod(F),
    broadcast over the B rows of that replica.

So replica t applies the same mask to every input whatever the batch size,
batch composition and chunking, and the T replicas of one call are
consecutive slices of one stream. Masks drawn on a small shape (channel
dropout's (N, C, 1, 1), DropPath's (N, 1, ...), LockedDropout's (N, 1, H)
with batch_first) follow the same rule, so a replica drops the same channels,
paths or units for every input. BatchBALD needs exactly this: pass t must be
the same network for every candidate (Kirsch et al. 2019). Nothing is stored:
baal's ConsistentDropout keeps a mask per layer and needs batch size 1.

Example:
    >>> import torch, dropkit
    >>> model = torch.nn.Sequential(dropkit.Dropout(0.5))
    >>> a = dropkit.mc_predict(model, torch.ones(3, 4), samples=2, seed=5, consistent=True).samples
    >>> b = dropkit.mc_predict(model, torch.ones(1, 4), samples=2, seed=5, consistent=True, chunk=1).samples
    >>> torch.equal(a[:, 0], b[:, 0]), torch.equal(a[:, 0], a[:, 2])   # whatever the batch; every row alike
    (True, True)
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import Tensor

from .. import _mode, kernels

__all__ = ["Replicas", "dropout", "CALL_STRIDE", "MAX_CALLS"]

CALL_STRIDE = 2**48  # stream elements per dropout call: T * prod(F) must stay below it
MAX_CALLS = 2**16  # dropout calls per forward (CALL_STRIDE * MAX_CALLS = 2^64)


@dataclasses.dataclass
class Replicas:
    """The replicas one forward of a consistent MC run holds.

    Attributes:
        seed: the run's 64-bit seed.
        start: index of this forward's first replica in the run.
        copies: replicas stacked along the batch dimension.
        rows: copies * B, the leading dimension of every dropout input.
        calls: dropout calls made so far in this forward.
    """

    seed: int
    start: int
    copies: int
    rows: int
    calls: int = 0


def dropout(x: Tensor, p: float, *, inplace: bool = False) -> Tensor:
    """Spec dropout of x under the consistent masks of the current forward (_mode.consistent_replicas()).

    Shape:
        x: (copies * B, *F), batch first, as every dropout input of the model must be here.
    """
    replicas = _mode.consistent_replicas()
    assert isinstance(replicas, Replicas)  # dropout routes here only inside _mode.consistent_enabled(Replicas(...))
    if x.dim() == 0 or x.shape[0] != replicas.rows:
        raise ValueError(
            f"consistent MC dropout needs every dropout input batch-first: a dropout call got shape {tuple(x.shape)}, "
            f"whose first dimension is not the replicated batch of {replicas.rows} rows "
            "(sequence-first layers such as LockedDropout(batch_first=False) cannot be consistent)"
        )
    call = replicas.calls
    replicas.calls += 1
    features = x.shape[1:]
    n = math.prod(features)
    if call >= MAX_CALLS or (replicas.start + replicas.copies) * n > CALL_STRIDE:
        raise ValueError(
            f"consistent MC dropout addresses at most {MAX_CALLS} calls per forward and T * prod(F) <= 2^48 elements, got call {call} with F = {tuple(features)}"
        )
    ones = torch.ones((replicas.copies, *features), dtype=x.dtype, device=x.device)
    # the spec's dropout of ones: 0 or the scale, rounded as the spec rounds it in x's dtype
    mask = kernels.for_tensor(ones).dropout_fwd(ones, replicas.seed, call * CALL_STRIDE + replicas.start * n, p)
    # a view: splitting one dimension always is (torch leaves Tensor.unflatten unannotated)
    per_replica: Tensor = x.unflatten(0, (replicas.copies, -1))  # type: ignore[no-untyped-call]
    mask = mask.unsqueeze(1)
    if inplace:
        per_replica.mul_(mask)
        return x
    return (per_replica * mask).flatten(0, 1)
