"""Wall time of one `dropkit tune` study of 8 trials run by two workers vs by one (target: <= 0.7x).

Each side is a fresh study in the same PostgreSQL database (the URL in $DROPKIT_TEST_POSTGRES, which
.ci/with-postgres sets, or --storage), every worker a separate `dropkit tune` process with --threads 1
so two workers use two cores; the one-worker side gets the same per-process settings. Prints a table
and writes JSON.

Usage: .ci/with-postgres python benchmarks/bench_tune_workers.py [--trials 8] [--epochs 6] [--out benchmarks/results/tune_workers.json]
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import uuid
from pathlib import Path
from tempfile import TemporaryDirectory

ROOT = Path(__file__).resolve().parents[1]


def study(storage: str, workers: int, trials: int, epochs: int, folder: Path) -> float:
    """Seconds from starting `workers` processes on a new study until the last one exits."""
    name = f"bench-{workers}w-{uuid.uuid4().hex[:8]}"
    command = [sys.executable, "-m", "dropkit.cli", "tune", "--dataset", "digits", "--epochs", str(epochs),
               "--trials", str(trials), "--storage", storage, "--study", name, "--no-prune", "--no-retrain",
               "--threads", "1", "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    started = time.perf_counter()
    procs = [subprocess.Popen([*command, "--out", str(folder / f"{name}-{i}")], env=env, stdout=subprocess.DEVNULL) for i in range(workers)]
    if any(p.wait(timeout=1800) for p in procs):
        raise SystemExit(f"a worker of {name} failed")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", default=os.environ.get("DROPKIT_TEST_POSTGRES"))
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "tune_workers.json")
    args = parser.parse_args()
    if not args.storage:
        raise SystemExit("no storage: pass --storage postgresql://... or run under .ci/with-postgres")
    with TemporaryDirectory() as tmp:
        one = study(args.storage, 1, args.trials, args.epochs, Path(tmp))
        two = study(args.storage, 2, args.trials, args.epochs, Path(tmp))
    result = {"trials": args.trials, "epochs": args.epochs, "dataset": "digits", "one_worker_s": one, "two_workers_s": two,
              "ratio": two / one, "target": 0.7, "cpus": os.cpu_count(), "load_average": os.getloadavg(), "python": platform.python_version()}
    print(f"| workers | wall s |\n|---|---|\n| 1 | {one:.1f} |\n| 2 | {two:.1f} |\n\nratio {two / one:.2f} (target <= 0.7), "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
