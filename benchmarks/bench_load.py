"""`dropkit train` under load: one epoch alone, beside one and beside two CPU-bound competitors.

The measured command is `dropkit train --epochs E` with the default threads and with
`--threads 1`; its time is metrics.jsonl's epoch_seconds (training only: imports, data
loading and evaluation excluded). Competitors run for the whole measurement and are
killed after it:
  numpy  a single-threaded numpy matmul loop (one core's worth of demand);
  train  another `dropkit train` with the default threads (the lab beside itself).
Scenarios: alone, beside numpy, beside numpy + train. Each round runs every
(scenario, threads) pair once, rounds alternate their order, and the figures are
medians over rounds. Ratios: each scenario's time over the same threads' time alone
(fair share on 2 cores: 2x beside one competitor, 3x beside two), and default threads
over --threads 1 in the same scenario.

The load average before and after is recorded: on a machine busy with other work, every
figure is a figure under load. `--env K=V` passes a variable to the measured command,
e.g. `--env GOMP_SPINCOUNT=300000` brings back libgomp's default spinning (3 ms per
wait) that the lab turns off (src/dropkit/_threads.py).

Usage: python benchmarks/bench_load.py [--quick] [--rounds 3] [--epochs 1] [--env K=V ...]
                                       [--out benchmarks/results/load.json]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# One core's worth of CPU-bound work: BLAS held to one thread, run until killed.
NUMPY_LOOP = """
import numpy as np
a = np.random.default_rng(0).standard_normal((384, 384))
while True:
    a = np.tanh(a @ a.T / 384)
"""
SINGLE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
SCENARIOS = {"alone": (), "beside numpy": ("numpy",), "beside numpy + train": ("numpy", "train")}
WARMUP_SECONDS = {"numpy": 1.0, "train": 8.0}  # until the competitor is past its imports and data loading


def _start(kind: str, folder: Path) -> subprocess.Popen:
    if kind == "numpy":
        cmd, env = [sys.executable, "-c", NUMPY_LOOP], {**os.environ, **SINGLE_THREAD}
    else:
        cmd = [
            sys.executable,
            "-m",
            "dropkit",
            "train",
            "--epochs",
            "1000",
            "--quiet",
            "--out",
            str(folder),
            "--overwrite",
        ]
        env = dict(os.environ)
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def measure(scenario: str, threads: int | None, a: argparse.Namespace, tmp: Path) -> float:
    """Median epoch seconds of one `dropkit train` run in `scenario`."""
    competitors = [_start(kind, tmp / f"competitor-{i}") for i, kind in enumerate(SCENARIOS[scenario])]
    try:
        time.sleep(max((WARMUP_SECONDS[k] for k in SCENARIOS[scenario]), default=0.0))
        out = tmp / "measured"
        cmd = [
            sys.executable,
            "-m",
            "dropkit",
            "train",
            "--dataset",
            a.dataset,
            "--epochs",
            str(a.epochs),
            "--quiet",
            "--out",
            str(out),
            "--overwrite",
        ]
        if threads is not None:
            cmd += ["--threads", str(threads)]
        subprocess.run(cmd, check=True, env={**os.environ, **dict(kv.split("=", 1) for kv in a.env)})
        records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        return statistics.median(r["epoch_seconds"] for r in records)
    finally:
        for p in competitors:
            p.kill()
            p.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one round: 6 runs of one epoch each")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--dataset", default="auto")
    ap.add_argument("--env", action="append", default=[], metavar="K=V", help="set for the measured command")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/load.json"))
    a = ap.parse_args()
    rounds = 1 if a.quick else a.rounds
    pairs = [(s, t) for s in SCENARIOS for t in (None, 1)]
    times: dict[tuple, list[float]] = {p: [] for p in pairs}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        for r in range(rounds):
            for s, t in pairs if r % 2 == 0 else reversed(pairs):
                times[(s, t)].append(measure(s, t, a, Path(tmp)))
                print(f"round {r + 1}: {s:<22} threads {t or 'default':<8} {times[(s, t)][-1]:7.2f} s", flush=True)
    load_after = os.getloadavg()
    med = {p: statistics.median(v) for p, v in times.items()}
    rows = [
        {
            "scenario": s,
            "threads": t or "default",
            "epoch_seconds": med[(s, t)],
            "runs": times[(s, t)],
            "vs_alone": med[(s, t)] / med[("alone", t)],
            "default_vs_threads_1": med[(s, None)] / med[(s, 1)],
        }
        for s, t in pairs
    ]
    print(
        f"\nload average before {load_before[0]:.2f}, after {load_after[0]:.2f} ({os.cpu_count()} cores); env {a.env or 'as is'}"
    )
    print("| scenario | threads | epoch s (median) | vs alone | default / --threads 1 |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['scenario']} | {row['threads']} | {row['epoch_seconds']:.2f} | {row['vs_alone']:.2f}x | "
            f"{row['default_vs_threads_1']:.2f}x |"
        )
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(
        json.dumps(
            {
                "rows": rows,
                "rounds": rounds,
                "epochs": a.epochs,
                "dataset": a.dataset,
                "env": a.env,
                "cpus": os.cpu_count(),
                "loadavg_before": load_before,
                "loadavg_after": load_after,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
