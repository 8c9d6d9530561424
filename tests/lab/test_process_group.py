"""distributed.process_group: no rank leaves the group (and closes its connections) before every rank is done."""

import os
import time

import torch.multiprocessing as mp
from _helpers.dist import free_port

from dropkit.lab import distributed


def _leave(rank, world, port, folder):
    # What torchrun sets for a worker, so process_group joins the group itself.
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world)
    )
    with distributed.process_group():
        if rank == 1:
            time.sleep(1.0)  # rank 1 finishes last; the sleep only makes the order certain
            (folder / "rank 1 done").touch()
    if rank == 0:
        assert (folder / "rank 1 done").exists(), "rank 0 left the process group while rank 1 was still in it"


def test_no_rank_leaves_the_group_before_the_others_are_done(tmp_path):
    ctx = mp.start_processes(_leave, args=(2, free_port(), tmp_path), nprocs=2, join=False, start_method="spawn")
    deadline = time.monotonic() + 120
    try:
        while not ctx.join(max(deadline - time.monotonic(), 0)):  # raises if a rank failed
            assert time.monotonic() < deadline, "ranks still running after 120 s"
    finally:
        for p in ctx.processes:
            if p.is_alive():
                p.kill()
