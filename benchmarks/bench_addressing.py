"""Sample-addressed dropout vs the default mode: per-call cost of dropkit.Dropout on (128, 256) float32.

Both sides call the same module (held by a parent, so it has a layer name),
in this process, interleaved; each figure is the median over --repeats rounds
of --calls calls. "addressed" sets the step once per round, as a training loop
sets it once per step for every layer; "addressed, new step each call" also
derives a fresh seed per call (the worst case: one dropout layer per step).
Prints a markdown table and writes JSON.

Usage: python benchmarks/bench_addressing.py [--repeats 21] [--calls 200] [--threads N] [--out benchmarks/results/addressing.json]
"""

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch
from torch import nn

import dropkit


def per_call(fn, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=21)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/addressing.json"))
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model = nn.Sequential(dropkit.Dropout(0.5))
    x = torch.randn(128, 256)
    addr = dropkit.sample_addressed(model, seed=1)
    rows = {"default": [], "addressed": [], "addressed, new step each call": []}

    def new_step():
        addr.set_step(addr.step + 1)
        model(x)

    with torch.no_grad():
        for _ in range(3):
            model(x)
        for _ in range(args.repeats):
            rows["default"].append(per_call(lambda: model(x), args.calls))
            with addr:
                addr.set_step(0)
                rows["addressed"].append(per_call(lambda: model(x), args.calls))
                rows["addressed, new step each call"].append(per_call(new_step, args.calls))
    base = statistics.median(rows["default"])
    result = {
        "shape": [128, 256],
        "dtype": "float32",
        "threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "us_per_call": {k: statistics.median(v) * 1e6 for k, v in rows.items()},
        "ratio_vs_default": {k: statistics.median(v) / base for k, v in rows.items()},
    }
    print("| mode | us per call | vs default |\n|---|---|---|")
    for k in rows:
        print(f"| {k} | {result['us_per_call'][k]:.1f} | {result['ratio_vs_default'][k]:.3f}x |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
