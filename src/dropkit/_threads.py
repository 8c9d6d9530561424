"""The `dropkit` command's OpenMP wait policy: threads that wait sleep instead of spinning.

OpenMP runtimes read their settings once, when they load, so this runs before
dropkit imports torch (first line of dropkit/__init__.py) and only in the
`dropkit` command (console script, `python -m dropkit` or `dropkit.cli`, so
torchrun workers too); a library user's process is left as it is.

Why: libgomp, torch's OpenMP runtime on Linux (numba's omp layer loads a second
copy), lets a thread that finished its share of a parallel region spin for about
3 ms before it sleeps. A training step runs hundreds of short parallel regions, so
the spinning never stops: alone the process holds every core, and beside other work
it takes their CPU time while the thread it waits for is descheduled. 200 steps of
the seed network in plain torch with 2 threads took 45-60 s spinning and 2.1-4.3 s
passive on 2 cores at load average 9-10 (1 thread: 2.4-3.0 s); one epoch of
`dropkit train` took 517 s spinning and 7.3 s passive at load average 16-18
(--threads 1: 36 s and 27 s); see benchmarks/bench_load.py. An OMP_WAIT_POLICY
already in the environment is kept.
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping, Sequence
from pathlib import Path

__all__ = ["started_as_command", "wait_passively"]

_MODULES = ("dropkit", "dropkit.cli")  # what `python -m` runs as the dropkit command


def started_as_command(argv: Sequence[str], orig_argv: Sequence[str]) -> bool:
    """Whether this process is the `dropkit` command: its console script, or `python [opts] -m dropkit`.

    Examples:
        >>> started_as_command(["/venv/bin/dropkit", "train"], ["python", "/venv/bin/dropkit", "train"])
        True
        >>> started_as_command(["-m"], ["python", "-u", "-m", "dropkit", "train"])
        True
        >>> started_as_command(["-m"], ["python", "-mdropkit.cli", "train"])
        True
        >>> started_as_command(["script.py"], ["python", "script.py", "dropkit"])
        False
    """
    if argv and Path(argv[0]).stem == "dropkit":
        return True
    # `python -m dropkit` (or dropkit.cli): runpy imports the package while sys.argv[0] is still "-m".
    return argv[:1] == ["-m"] and any(a in _MODULES or a[2:] in _MODULES for a in orig_argv)


def wait_passively(environ: MutableMapping[str, str]) -> None:
    """Ask OpenMP runtimes (GNU, LLVM, Intel) loaded after this call to put waiting threads to sleep.

    Examples:
        >>> env = {}
        >>> wait_passively(env); env
        {'OMP_WAIT_POLICY': 'PASSIVE'}
        >>> env = {"OMP_WAIT_POLICY": "ACTIVE"}
        >>> wait_passively(env); env
        {'OMP_WAIT_POLICY': 'ACTIVE'}
    """
    environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


if started_as_command(sys.argv, getattr(sys, "orig_argv", sys.argv)):
    wait_passively(os.environ)
