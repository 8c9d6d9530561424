"""Wall time of one `dropkit tune` study of 8 trials run by two workers vs by one (target: <= 0.7x).

Each side is a fresh study in the same PostgreSQL database (the URL in $DROPKIT_TEST_POSTGRES, which
.ci/with-postgres sets, or --storage), every worker a separate `dropkit tune` process with --threads 1
(the one-worker side gets the same per-process settings). With --side-by-side both studies run at
the same time, so that a shared machine's changing load hits both alike; the one worker speeds up
once the two are done, so that ratio errs against the two. Each process pays its imports (seconds),
so trials must be long against them: the default is 40 epochs of digits per trial. Prints a table and
writes JSON.

Usage: .ci/with-postgres python benchmarks/bench_tune_workers.py [--trials 8] [--epochs 40] [--side-by-side] [--out FILE]
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


def start(storage: str, workers: int, trials: int, epochs: int, folder: Path) -> tuple[float, list]:
    """Start `workers` processes on a new study: (start time, processes)."""
    name = f"bench-{workers}w-{uuid.uuid4().hex[:8]}"
    command = [sys.executable, "-m", "dropkit.cli", "tune", "--dataset", "digits", "--epochs", str(epochs),
               "--trials", str(trials), "--storage", storage, "--study", name, "--no-prune", "--no-retrain",
               "--threads", "1", "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    started = time.perf_counter()
    return started, [subprocess.Popen([*command, "--out", str(folder / f"{name}-{i}")], env=env, stdout=subprocess.DEVNULL) for i in range(workers)]


def finish(started: float, procs: list) -> float:
    """Seconds from `started` until the last of `procs` exits."""
    if any(p.wait(timeout=3600) for p in procs):
        raise SystemExit("a worker failed")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", default=os.environ.get("DROPKIT_TEST_POSTGRES"))
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--side-by-side", action="store_true", help="Run both studies at the same time.")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "tune_workers.json")
    args = parser.parse_args()
    if not args.storage:
        raise SystemExit("no storage: pass --storage postgresql://... or run under .ci/with-postgres")
    with TemporaryDirectory() as tmp:
        sides = (args.storage, args.trials, args.epochs, Path(tmp))
        if args.side_by_side:
            a, b = start(sides[0], 1, *sides[1:]), start(sides[0], 2, *sides[1:])
            two, one = finish(*b), finish(*a)
        else:
            one = finish(*start(sides[0], 1, *sides[1:]))
            two = finish(*start(sides[0], 2, *sides[1:]))
    result = {"trials": args.trials, "epochs": args.epochs, "dataset": "digits", "side_by_side": args.side_by_side,
              "one_worker_s": one, "two_workers_s": two,
              "ratio": two / one, "target": 0.7, "cpus": os.cpu_count(), "load_average": os.getloadavg(), "python": platform.python_version()}
    print(f"| workers | wall s |\n|---|---|\n| 1 | {one:.1f} |\n| 2 | {two:.1f} |\n\nratio {two / one:.2f} (target <= 0.7), "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
