"""batch_bald k = 10 over 1,000 candidates, T = 50, C = 10 (issue 14's speed target: <= 5 s on 2 cores).

The probabilities are softmaxes of random logits (a shared per-candidate part
plus per-pass noise), as MC dropout gives them; the cost does not depend on
their values, only on T, N, C, k and joint_samples. Each figure is the median
of --repeats runs, wall time and this process's CPU time; BALD top-k over the same probabilities is timed alongside
as the baseline. Prints a markdown table and writes JSON.

Usage: python benchmarks/bench_acquisition.py [--repeats 3] [--threads N] [--samples 1024 4096] [--out benchmarks/results/acquisition.json]
"""

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from dropkit.mc import acquisition


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument(
        "--samples", type=int, nargs="+", default=[acquisition.JOINT_SAMPLES], help="joint_samples values"
    )
    parser.add_argument("--candidates", type=int, default=1000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/acquisition.json"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    logits = 3 * torch.randn(1, args.candidates, 10, generator=g) + 2 * torch.randn(
        50, args.candidates, 10, generator=g
    )
    probs = torch.softmax(logits, 2)
    rows = []
    start = time.perf_counter()
    acquisition.bald(probs).topk(args.k)
    bald_seconds = time.perf_counter() - start
    for m in args.samples:
        times, cpu = [], []
        for r in range(args.repeats):
            start, start_cpu = time.perf_counter(), time.process_time()
            acquisition.batch_bald(probs, args.k, joint_samples=m, generator=torch.Generator().manual_seed(r))
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        rows.append(
            {
                "joint_samples": m,
                "median_seconds": statistics.median(times),
                "seconds": times,
                "median_cpu_seconds": statistics.median(cpu),
            }
        )
    result = {
        "candidates": args.candidates,
        "T": 50,
        "C": 10,
        "k": args.k,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "bald_topk_seconds": bald_seconds,
        "batch_bald": rows,
    }
    # CPU seconds count what this process computed whatever else runs on the machine: divided by
    # the thread count they approximate the wall time on otherwise idle cores.
    print(
        f"| joint_samples | wall s | CPU s | CPU s / threads |  (batch_bald k={args.k}, N={args.candidates}, T=50, C=10, median of {args.repeats})"
    )
    print("|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['joint_samples']} | {row['median_seconds']:.2f} | {row['median_cpu_seconds']:.2f} | {row['median_cpu_seconds'] / torch.get_num_threads():.2f} |"
        )
    print(
        f"BALD top-{args.k} on the same probabilities: {bald_seconds * 1000:.1f} ms; torch threads {torch.get_num_threads()}"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2))
    tmp.replace(args.out)


if __name__ == "__main__":
    main()
