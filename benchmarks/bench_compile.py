"""torch.compile with dropkit: the seed network's compile time, and a compiled BERT step, against torch.

Compile time: the first compiled SGD step of the seed network (784-256-128-10)
less a warm step, for no dropout, torch.nn.Dropout, dropkit.nn.Dropout and
dropkit fused (ReLUDropout). Each compile runs cold, in a fresh process with an
empty Inductor cache directory (Dynamo, AOTAutograd and the C++ compiler all
run); kinds take turns round after round, median of --rounds.

BERT: a compiled training step of BERT 4x256 (4 heads, batch 8, seq 128,
dropout 0.1, AdamW), stock (torch's dropout and SDPA) against converted
(dropkit.replace_dropout: dropout modules, functional calls and attention on
dropkit), both compiled in this process, medians of interleaved rounds.
Writes JSON.

Usage: python benchmarks/bench_compile.py [--rounds 3] [--repeats 15] [--threads 1] [--out benchmarks/results/compile.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
from bench_intercept import bert, steppers  # also installs the torchvision shim transformers may need
from bench_step import KINDS, _model, _step, interleaved

from dropkit.lab import bench, report


def cold_compile(kind: str, batch: int = 128, warm: int = 5) -> dict:
    """Seconds of the first compiled step of `kind` and the median of `warm` steps after it (run in a child)."""
    x, y = torch.randn(batch, 784), torch.randint(0, 10, (batch,))
    step = _step(torch.compile(_model(kind)), x, y)
    start = time.perf_counter()
    step()
    first = time.perf_counter() - start
    times = []
    for _ in range(warm):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return {"first_s": first, "warm_s": statistics.median(times)}


def compile_times(rounds: int, threads: int, progress) -> dict:
    """Compile seconds per kind: each compile in a fresh process with an empty Inductor cache, kinds in turn."""
    seconds: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for r in range(rounds):
        for kind in KINDS:
            progress(f"compile round {r + 1}/{rounds}: {kind}")
            with tempfile.TemporaryDirectory() as cache:
                env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=cache)
                cmd = [sys.executable, __file__, "--child", kind, "--threads", str(threads)]
                out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
            t = json.loads(out.strip().splitlines()[-1])
            seconds[kind].append(t["first_s"] - t["warm_s"])
    base = statistics.median(seconds["no dropout"])
    return {
        kind: {"seconds": s, "median_s": statistics.median(s), "vs_no_dropout": statistics.median(s) / base}
        for kind, s in seconds.items()
    }


def bert_steps(repeats: int, progress) -> dict:
    """Compiled BERT step, stock vs converted, interleaved (ms)."""
    models = {variant: bert(variant) for variant in ("stock", "converted")}
    fns = {}
    for name, model in models.items():
        progress(f"BERT {name}: compiling")
        fns[name] = steppers(torch.compile(model))["step"]
        fns[name]()
    progress("BERT: timing")
    t = interleaved(fns, repeats)
    return {"ms": {k: 1e3 * v for k, v in t.items()}, "ratio": t["converted"] / t["stock"]}


def format_table(r: dict) -> str:
    lines = [f"{r['date']}: {r['machine']}, torch {r['torch']}", ""]
    lines += ["| seed net, batch 128 | compile s (median) | vs no dropout | rounds |", "|---|---|---|---|"]
    for kind, c in r["compile"].items():
        rounds = ", ".join(f"{s:.1f}" for s in c["seconds"])
        lines.append(f"| {kind} | {c['median_s']:.1f} | {c['vs_no_dropout']:.2f}x | {rounds} |")
    b = r["bert"]
    lines += ["", "| compiled BERT 4x256 step, batch 8, seq 128 | stock ms | converted ms | converted / stock |"]
    lines += [
        "|---|---|---|---|",
        f"| AdamW step | {b['ms']['stock']:.1f} | {b['ms']['converted']:.1f} | {b['ratio']:.3f}x |",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="cold compiles per kind")
    parser.add_argument("--repeats", type=int, default=15, help="interleaved BERT steps per side")
    parser.add_argument("--threads", type=int, default=1, help="torch threads, here and in the compile children")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/compile.json"))
    parser.add_argument("--child", choices=list(KINDS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.child:
        print(json.dumps(cold_compile(args.child)))
        return
    progress = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    result = dict(
        date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        machine=f"{bench._cpu_name()}, {torch.get_num_threads()} threads",
        python=platform.python_version(),
        torch=torch.__version__,
        load_average_before=os.getloadavg(),
    )
    result["compile"] = compile_times(args.rounds, args.threads, progress)
    result["bert"] = bert_steps(args.repeats, progress)
    result["load_average_after"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report.write_json(args.out, result)
    print(format_table(result))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
