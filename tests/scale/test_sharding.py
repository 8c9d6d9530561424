"""Tensor parallelism: each rank's block of the mask, over 2 real gloo processes, equals the unsharded mask.

All comparisons are torch.equal: the same mask bits and the same elementwise op.
"""

import pytest
import torch
import torch.distributed as dist
from _helpers.dist import run_ranks

import dropkit.functional as DF
from dropkit.scale import sharding

SEED, P = 2**63 + 5, 0.4


@pytest.mark.parametrize(
    "local,full,start,expected",
    [
        ((4, 2), (4, 6), (0, 2), (2, [2, 8, 14, 20])),
        ((2, 6), (4, 6), (2, 0), (12, [12])),
        ((2, 1, 3), (2, 3, 3), (0, 1, 0), (3, [3, 12])),
        ((), (), (), (1, [0])),
    ],
)
def test_run_offsets_walk_the_row_major_stream(local, full, start, expected):
    assert sharding.run_offsets(local, full, start) == expected


def test_run_offsets_reject_a_block_outside_the_tensor():
    with pytest.raises(ValueError, match=r"dimension 1 covers \[4, 7\) of 6"):
        sharding.run_offsets((4, 3), (4, 6), (0, 4))


@pytest.mark.parametrize("dim", [0, 1, 2])
def test_shard_blocks_concatenate_to_the_unsharded_dropout(dim):
    x = torch.randn(3, 5, 7, requires_grad=True)
    whole = DF.dropout(x, P, seed=SEED, offset=9)
    cuts = [0, 1, x.shape[dim]]  # uneven shards
    blocks = []
    for a, b in zip(cuts, cuts[1:]):
        start = [0, 0, 0]
        start[dim] = a
        blocks.append(
            sharding.shard_dropout(x.narrow(dim, a, b - a), P, seed=SEED, full_shape=x.shape, start=start, offset=9)
        )
    assert torch.equal(torch.cat(blocks, dim), whole)
    g = torch.randn_like(x)
    (grad_whole,) = torch.autograd.grad(whole, x, g)
    (grad_blocks,) = torch.autograd.grad(torch.cat(blocks, dim), x, g)
    assert torch.equal(grad_blocks, grad_whole)


def test_shard_dropout_needs_a_seed():
    with pytest.raises(TypeError, match="seed must be an int in .*got None: every rank must use the same seed"):
        sharding.shard_dropout(torch.ones(2, 2), P, seed=None, full_shape=(2, 4), start=(0, 0))


def _tensor_parallel(rank, world):
    torch.manual_seed(0)
    x = torch.randn(8, 10)  # the same full activation on both ranks
    whole = DF.dropout(x, P, seed=SEED)
    # Features [a, b) of a (B, F) activation: rank r holds 10 // 2 columns.
    a, b = rank * 5, (rank + 1) * 5
    local = sharding.shard_dropout(x[:, a:b].contiguous(), P, seed=SEED, full_shape=x.shape, start=(0, a))
    gathered = [torch.empty_like(local) for _ in range(world)]
    dist.all_gather(gathered, local)
    assert torch.equal(torch.cat(gathered, 1), whole)
    # Replicated: every rank the whole mask.
    replicated = DF.dropout(x, P, seed=SEED)
    others = [torch.empty_like(replicated) for _ in range(world)]
    dist.all_gather(others, replicated)
    assert all(torch.equal(o, whole) for o in others)


def _dtensor(rank, world):
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Partial, Replicate, Shard, distribute_tensor

    mesh = init_device_mesh("cpu", (world,))
    torch.manual_seed(0)
    x = torch.randn(3, 5, 7)
    whole = DF.dropout(x, P, seed=SEED, offset=3)
    for placement in (Shard(0), Shard(1), Shard(2), Replicate()):
        dx = distribute_tensor(x, mesh, [placement]).requires_grad_()
        y = DF.dropout(dx, P, seed=SEED, offset=3)
        assert y.placements == (placement,)
        assert torch.equal(y.full_tensor(), whole), placement
        y.sum().backward()
        assert torch.equal(dx.grad.full_tensor(), (whole != 0) / (1 - P)), placement
    # A partial sum: each rank masks its term, the sum is the masked whole (up to float addition order).
    part = torch.distributed.tensor.DTensor.from_local(x / world, mesh, [Partial()])
    torch.testing.assert_close(DF.dropout(part, P, seed=SEED, offset=3).full_tensor(), whole)


def _ranks(rank, world):
    _tensor_parallel(rank, world)
    _dtensor(rank, world)


def test_two_gloo_ranks_reproduce_the_unsharded_mask():
    run_ranks(_ranks, 2, timeout=180)  # one launch for both checks: starting a process is most of the cost
