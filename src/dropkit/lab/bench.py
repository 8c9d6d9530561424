"""The CPU benchmark of the core: dropkit against torch, measured in one process.

Times are medians of repeated runs after warm-up. Every ratio compares two
numbers measured in the same process, one right after the other.

Examples:
    >>> result = run(quick=True)  # doctest: +SKIP
    >>> print(format_table(result))  # doctest: +SKIP
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

import dropkit

__all__ = ["run", "format_table", "save", "seed_network", "SIZES"]

SIZES = (2**16, 2**20, 2**24)
P = 0.5
_FIRST_CALL = (
    "import time, torch; t0 = time.perf_counter(); import dropkit; t1 = time.perf_counter();"
    "dropkit.dropout(torch.ones(1000), 0.5, seed=1); t2 = time.perf_counter();"
    "print(t1 - t0, t2 - t1)"
)


def _median_ms(fn: Callable[[], object], min_seconds: float, min_repeats: int = 5) -> float:
    for _ in range(2):
        fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_repeats or (time.perf_counter() - start < min_seconds and len(times) < 200):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def _saved_bytes_per_element(fn: Callable[[torch.Tensor], torch.Tensor], n: int) -> float:
    x = torch.randn(n, requires_grad=True)
    saved: list[torch.Tensor] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn(x)
    # x itself is not counted: it exists anyway. Scalars (seeds) are counted.
    return sum(t.numel() * t.element_size() for t in saved if t.data_ptr() != x.data_ptr()) / n


def _dropout_variants() -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    compiled = torch.compile(lambda t: F.dropout(t, P, training=True))
    return {
        "dropkit (recompute)": lambda t: dropkit.dropout(t, P),
        "dropkit (bitpacked)": lambda t: dropkit.dropout(t, P, backward="bitpacked"),
        "torch eager": lambda t: F.dropout(t, P, training=True),
        "torch.compile": compiled,
        "x.clone()": lambda t: t.clone(),
    }


def _elementwise(sizes, min_seconds, progress) -> list[dict]:
    rows = []
    variants = _dropout_variants()
    for n in sizes:
        x = torch.randn(n)
        xg = torch.randn(n, requires_grad=True)
        g = torch.randn(n)
        for name, fn in variants.items():
            progress(f"n=2^{n.bit_length() - 1}: {name}")
            fwd = _median_ms(lambda: fn(x), min_seconds)
            fwd_bwd = _median_ms(lambda: fn(xg).backward(g), min_seconds)
            saved = _saved_bytes_per_element(fn, min(n, 2**16))
            rows.append(
                dict(n=n, impl=name, forward_ms=fwd, forward_backward_ms=fwd_bwd, saved_bytes_per_element=saved)
            )
    return rows


def seed_network(dropout: Callable[[float], nn.Module]) -> nn.Sequential:
    """The seed document's 784-256-128-10 network with the given dropout class."""
    return nn.Sequential(
        nn.Linear(784, 256), nn.ReLU(), dropout(0.5),
        nn.Linear(256, 128), nn.ReLU(), dropout(0.3),
        nn.Linear(128, 10),
    )  # fmt: skip


def _training_steps(batches, min_seconds, progress) -> list[dict]:
    rows = []
    kinds: dict[str, Callable[[float], nn.Module]] = {
        "torch.nn.Dropout": nn.Dropout,
        "dropkit.nn.Dropout": dropkit.nn.Dropout,
        "no dropout": lambda p: nn.Identity(),
    }
    for batch in batches:
        x, y = torch.randn(batch, 784), torch.randint(0, 10, (batch,))
        for name, cls in kinds.items():
            progress(f"training step, batch {batch}: {name}")
            torch.manual_seed(0)
            model = seed_network(cls)
            opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

            def step():
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(model(x), y).backward()
                opt.step()

            rows.append(dict(batch=batch, impl=name, step_ms=_median_ms(step, min_seconds, min_repeats=30)))
    return rows


def _first_call_seconds() -> dict:
    """Import and first-call time of dropkit in fresh processes (the second one finds numba's cache warm)."""
    runs = []
    for _ in range(2):
        out = subprocess.run([sys.executable, "-c", _FIRST_CALL], capture_output=True, text=True, check=True)
        runs.append([float(v) for v in out.stdout.split()])
    (_, cold_call), (warm_import, warm_call) = runs
    return dict(first_process_call_s=cold_call, import_s=warm_import, first_call_warm_cache_s=warm_call)


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def _machine() -> dict:
    import numba

    return dict(
        cpu=_cpu_name(),
        cores=os.cpu_count(),
        torch_threads=torch.get_num_threads(),
        torch=torch.__version__,
        numba=numba.__version__,
        python=platform.python_version(),
        platform=platform.platform(),
    )


def run(sizes=SIZES, *, quick: bool = False, progress: Callable[[str], None] | None = None) -> dict:
    """Run the whole benchmark and return its results as a dict (see format_table).

    quick=True uses small sizes and short timings: for smoke tests, not for numbers.
    """
    progress = progress or (lambda _msg: None)
    min_seconds = 0.02 if quick else 0.5
    sizes = (2**10, 2**12) if quick else tuple(sizes)
    return dict(
        machine=_machine(),
        p=P,
        elementwise=_elementwise(sizes, min_seconds, progress),
        training_step=_training_steps((16,) if quick else (128, 1024), min_seconds, progress),
        jit=_first_call_seconds(),
    )


def format_table(result: dict) -> str:
    """The benchmark as markdown tables, with ratios against torch eager and the clone floor."""
    lines = [
        f"p = {result['p']}, float32; times are medians in ms; "
        f"speedup = torch eager time / this time; vs clone = this time / x.clone() time",
        "",
        "| n | impl | forward ms | speedup | vs clone | fwd+bwd ms | speedup | saved bytes/elem |",
        "|---|---|---|---|---|---|---|---|",
    ]
    by = {(r["n"], r["impl"]): r for r in result["elementwise"]}
    for r in result["elementwise"]:
        torch_row, clone = by[(r["n"], "torch eager")], by[(r["n"], "x.clone()")]
        lines.append(
            f"| 2^{r['n'].bit_length() - 1} | {r['impl']} | {r['forward_ms']:.3f} "
            f"| {torch_row['forward_ms'] / r['forward_ms']:.1f}x | {r['forward_ms'] / clone['forward_ms']:.2f}x "
            f"| {r['forward_backward_ms']:.3f} | {torch_row['forward_backward_ms'] / r['forward_backward_ms']:.1f}x "
            f"| {r['saved_bytes_per_element']:.3f} |"
        )
    lines += ["", "| batch | seed network training step | ms | speedup vs torch.nn.Dropout |", "|---|---|---|---|"]
    steps = {(r["batch"], r["impl"]): r["step_ms"] for r in result["training_step"]}
    for r in result["training_step"]:
        ref = steps[(r["batch"], "torch.nn.Dropout")]
        lines.append(f"| {r['batch']} | {r['impl']} | {r['step_ms']:.3f} | {ref / r['step_ms']:.2f}x |")
    jit = result["jit"]
    m = result["machine"]
    lines += [
        "",
        f"first call in a fresh process: {jit['first_call_warm_cache_s']:.3f} s with numba's cache warm "
        f"({jit['first_process_call_s']:.3f} s in the process before it); import dropkit {jit['import_s']:.3f} s",
        f"machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']} ({m['torch_threads']} threads), numba {m.get('numba', 'n/a')}, "
        f"Python {m['python']}, {m['platform']}",
    ]
    return "\n".join(lines)


def save(result: dict, path: Path) -> None:
    """Write the result as JSON atomically (temp file, then rename)."""
    from .report import write_json

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_json(path, result)
