"""Training on several processes with PyTorch's own engine: torchrun launches, DDP averages the gradients.

`dropkit train --nproc N` starts `python -m torch.distributed.run` with N
workers that each run the same `dropkit train` command; `torchrun
--nproc-per-node N -m dropkit train ...` does the same by hand. Each worker
joins the process group that torchrun describes in its environment (gloo on
CPU, nccl when CUDA is present). A step's global batch (--batch-size rows)
is cut into N contiguous parts, one per rank, and each part into --accumulate
micro-batches; masks are sample-addressed (dropkit.scale.addressing), so the
result does not depend on N or K.

Example:
    >>> part_bounds(10, rank=1, world=2, micro=0, accumulate=2)   # rows 5..6 of a 10-row batch
    (5, 7)
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import tempfile
from pathlib import Path

import torch
import torch.distributed as dist

__all__ = [
    "lead",
    "rank",
    "world_size",
    "is_worker",
    "process_group",
    "barrier",
    "from_rank0",
    "part_bounds",
    "all_sum",
    "record_crash",
    "launch",
]


def is_worker() -> bool:
    """True inside a process that torchrun started (it sets WORLD_SIZE and the rendezvous variables)."""
    return "TORCHELASTIC_RUN_ID" in os.environ or "LOCAL_RANK" in os.environ


def lead() -> bool:
    """True in the process that owns the run folder and the terminal: rank 0, or the only process."""
    return rank() == 0 if dist.is_initialized() else int(os.environ.get("RANK", "0")) == 0


def rank() -> int:
    """This process's rank (0 outside a process group)."""
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    """The number of processes training together (1 outside a process group)."""
    return dist.get_world_size() if dist.is_initialized() else 1


@contextlib.contextmanager
def process_group():
    """Join the process group torchrun set up for this worker, if any, and leave it at the end."""
    if not is_worker() or int(os.environ.get("WORLD_SIZE", "1")) == 1 or dist.is_initialized():
        yield
        return
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    try:
        yield
        # No rank closes its connections while a peer may still be inside a collective on them: the
        # rank that finished first would leave, and the peer's transport would see its socket go.
        # Not after an error: the peers may be gone, and a barrier would wait for them.
        dist.barrier()
    finally:
        dist.destroy_process_group()


def part_bounds(n: int, *, rank: int, world: int, micro: int, accumulate: int) -> tuple[int, int]:
    """Rows [lo, hi) of an n-row global batch that micro-batch `micro` of rank `rank` trains on.

    Ranks take contiguous parts in rank order, micro-batches contiguous parts of those,
    as equal as integer division allows (a part may be empty when n is small).
    """
    lo, hi = rank * n // world, (rank + 1) * n // world
    size = hi - lo
    return lo + micro * size // accumulate, lo + (micro + 1) * size // accumulate


def all_sum(values: list[float]) -> list[float]:
    """Element-wise sum of `values` over every process (the values themselves outside a process group)."""
    if not dist.is_initialized():
        return values
    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t)
    return t.tolist()


def barrier() -> None:
    """Wait until every process gets here (nothing outside a process group)."""
    if dist.is_initialized():
        dist.barrier()


def from_rank0(value):
    """Rank 0's `value` on every process: decisions that read a clock (a time budget) must agree."""
    if not dist.is_initialized():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def record_crash(error: BaseException) -> None:
    """Hand an unexpected error of a worker to the launcher (torchrun's error file) instead of printing it.

    The launcher then prints one line for the rank that failed first; the others'
    errors (their peers went away) and every traceback stay in the error files.
    """
    from torch.distributed.elastic.multiprocessing.errors.error_handler import ErrorHandler

    ErrorHandler().record_exception(error)


def _torchrun_args(nproc: int, argv: list[str], log_dir: Path) -> list[str]:
    # Rank 0 writes to this terminal (its progress, its errors); the others to log files.
    redirects = ",".join(f"{r}:3" for r in range(1, nproc))
    args = ["--standalone", f"--nproc-per-node={nproc}", "--log-dir", str(log_dir)]
    if redirects:
        args += ["--redirects", redirects]
    return args + ["-m", "dropkit", *argv]


def _failure_line(failure) -> str:
    """One line for a failed rank: its error, or the signal that killed it."""
    if failure.exitcode < 0:
        return f"rank {failure.local_rank} was killed by {signal.Signals(-failure.exitcode).name}"
    if failure.message and failure.message != "<N/A>":
        return f"rank {failure.local_rank}: {failure.message}"
    return f"rank {failure.local_rank} exited with status {failure.exitcode}"


def _root_cause(failures: dict):
    """The failure that caused the others, not a rank that lost its peers (DistBackendError) or was stopped (SIGTERM)."""

    def victim(f) -> bool:
        return f.exitcode == -signal.SIGTERM or (f.exitcode > 0 and "DistBackendError" in str(f.message))

    return min(failures.values(), key=lambda f: (victim(f), f.timestamp))


def launch(nproc: int, argv: list[str]) -> int:
    """Run `dropkit <argv>` in nproc torchrun workers; return the exit status (0, 1, 2 for known errors, 130 on Ctrl-C).

    torchrun starts each worker in its own session, so a Ctrl-C reaches the workers once,
    forwarded by torchrun: each stops at the same step boundary, and rank 0 saves the
    checkpoints and prints how to resume. Rank 0's output is shown, the other ranks' goes
    to log files; a rank that fails any other way becomes one line here.
    """
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    threads = str(max(1, (os.cpu_count() or 1) // nproc))
    os.environ.setdefault("OMP_NUM_THREADS", threads)  # a share of the cores each, not one thread per core each
    os.environ.setdefault("NUMBA_NUM_THREADS", threads)
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)  # failures: one line, below
    with tempfile.TemporaryDirectory(prefix="dropkit-ranks-") as logs:
        try:
            run(get_args_parser().parse_args(_torchrun_args(nproc, argv, Path(logs))))
        except SignalException:
            return 130
        except ChildFailedError as e:
            codes = {f.exitcode for f in e.failures.values()}
            if codes & {2, 130}:
                return 2 if 2 in codes else 130  # known error or Ctrl-C: rank 0 has said why, in one line
            print(f"error: training process failed: {_failure_line(_root_cause(e.failures))}", file=sys.stderr)
            return 1
    return 0
