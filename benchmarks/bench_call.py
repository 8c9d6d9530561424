"""Eager per-call time of dropkit.functional.dropout on one small tensor, for two source trees.

Each round starts one process per tree (alternating, so a busy shared machine hits both alike); a process
times dropkit and torch.nn.functional.dropout interleaved on the same (128, 256) float32 tensor and reports
the median of its repeats. The table gives the median over rounds of each tree's time and of its ratio to
torch measured in the same process.

Usage: python benchmarks/bench_call.py BEFORE_SRC AFTER_SRC [--rounds 7] [--out results.json]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

_WORKER = r"""
import json, statistics, sys, time
import torch
import dropkit.functional as DF

torch.set_num_threads(1)
x = torch.randn(128, 256)
calls, repeats = int(sys.argv[1]), int(sys.argv[2])

def per_call(fn):
    start = time.perf_counter()
    for _ in range(calls):
        fn(x, 0.5, True)
    return (time.perf_counter() - start) / calls

ours, theirs = [], []
for _ in range(3):  # warm-up: numba compile or cache load, dispatcher caches
    per_call(DF.dropout), per_call(torch.nn.functional.dropout)
for _ in range(repeats):
    ours.append(per_call(DF.dropout))
    theirs.append(per_call(torch.nn.functional.dropout))
print(json.dumps({"dropkit_s": statistics.median(ours), "torch_s": statistics.median(theirs)}))
"""


def measure(src: Path, calls: int, repeats: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(src))
    out = subprocess.run(
        [sys.executable, "-c", _WORKER, str(calls), str(repeats)], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("trees", nargs=2, type=Path, help="the src/ folders to compare: before, after")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    runs: dict[str, list[dict]] = {str(t): [] for t in args.trees}
    for r in range(args.rounds):
        for tree in args.trees if r % 2 == 0 else args.trees[::-1]:
            runs[str(tree)].append(measure(tree, args.calls, args.repeats))
    rows = {}
    print("| tree | dropkit us/call | torch us/call | dropkit / torch |\n|---|---|---|---|")
    for tree, results in runs.items():
        rows[tree] = {
            "dropkit_us": statistics.median(r["dropkit_s"] for r in results) * 1e6,
            "torch_us": statistics.median(r["torch_s"] for r in results) * 1e6,
            "ratio": statistics.median(r["dropkit_s"] / r["torch_s"] for r in results),
        }
        row = rows[tree]
        print(f"| {tree} | {row['dropkit_us']:.2f} | {row['torch_us']:.2f} | {row['ratio']:.3f} |")
    if args.out:
        args.out.write_text(json.dumps({"rounds": runs, "summary": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
