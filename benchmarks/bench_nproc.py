"""`dropkit train --nproc 2` (one thread per rank) vs one process with 2 threads: per-epoch accuracy and time.

Both train the seed network on the same data with sample-addressed masks
(`--masks addressed`), so they see the same batches and the same masks and
differ only in where the gradient sums happen (DDP's gloo all-reduce). Each
command runs once, one after the other; epoch times are metrics.jsonl's
epoch_seconds (training only, evaluation excluded). Prints a markdown table and
writes JSON.

Usage: python benchmarks/bench_nproc.py [--epochs 5] [--dataset auto] [--out benchmarks/results/nproc.json]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def train(args: list[str], folder: Path, env: dict) -> list[dict]:
    subprocess.run(
        [sys.executable, "-m", "dropkit", "train", *args, "--out", str(folder), "--quiet"], check=True, env=env
    )
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--dataset", default="auto")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/nproc.json"))
    a = ap.parse_args()
    common = ["--dataset", a.dataset, "--epochs", str(a.epochs), "--masks", "addressed"]
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
        two = train([*common, "--nproc", "2", "--threads", "1"], Path(tmp) / "two", env)
        env2 = {**os.environ, "OMP_NUM_THREADS": "2", "NUMBA_NUM_THREADS": "2"}
        one = train([*common, "--threads", "2"], Path(tmp) / "one", env2)
    rows = [
        {
            "epoch": o["epoch"],
            "test_acc_one": o["test_acc"],
            "test_acc_nproc2": t["test_acc"],
            "seconds_one": o["epoch_seconds"],
            "seconds_nproc2": t["epoch_seconds"],
        }
        for o, t in zip(one, two)
    ]
    ratio = statistics.median(r["seconds_nproc2"] / r["seconds_one"] for r in rows)
    gap = max(abs(r["test_acc_one"] - r["test_acc_nproc2"]) * 100 for r in rows)
    print(
        "| epoch | test acc, 1 process x 2 threads | test acc, --nproc 2 x 1 thread | epoch s (1 x 2) | epoch s (2 x 1) |"
    )
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['epoch']} | {r['test_acc_one']:.2%} | {r['test_acc_nproc2']:.2%} | {r['seconds_one']:.2f} | {r['seconds_nproc2']:.2f} |"
        )
    print(f"\nmax per-epoch accuracy gap {gap:.3f} pp; epoch time ratio (median) {ratio:.2f}x")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(
        json.dumps(
            {
                "epochs": rows,
                "max_acc_gap_pp": gap,
                "epoch_time_ratio": ratio,
                "dataset": a.dataset,
                "cpus": os.cpu_count(),
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
