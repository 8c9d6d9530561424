"""Run a function in N real gloo processes that stop by themselves: a hung rank fails the test."""

import os
import socket
import time

import torch.distributed as dist
import torch.multiprocessing as mp


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _entry(rank, fn, world, port, args):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        fn(rank, world, *args)
    finally:
        dist.destroy_process_group()


def run_ranks(fn, world: int = 2, *args, timeout: float = 60.0) -> None:
    """fn(rank, world, *args) in `world` spawned processes joined by gloo; raises if one fails or hangs.

    fn must be a module-level function (spawn pickles it by name).
    """
    ctx = mp.start_processes(
        _entry, args=(fn, world, free_port(), args), nprocs=world, join=False, start_method="spawn"
    )
    deadline = time.monotonic() + timeout
    try:
        # join returns False each time one rank exits while others still run; it raises if one failed.
        while not ctx.join(max(deadline - time.monotonic(), 0)):
            if time.monotonic() >= deadline:
                raise TimeoutError(f"ranks still running after {timeout} s")
    finally:
        for p in ctx.processes:
            if p.is_alive():
                p.kill()
