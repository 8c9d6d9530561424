"""Wall time of one `dropkit tune` study of 8 trials run by two workers vs by one (target: <= 0.7x).

Each side is a fresh study in the same PostgreSQL database (the URL in $DROPKIT_TEST_POSTGRES, which
.ci/with-postgres sets, or --storage), every worker a separate `dropkit tune` process. Both sides use
the whole machine, as a user would: one worker with a thread per core (--threads-one, default all
cores), or two workers with half the cores each (--threads-each). The default trial is the issue's:
Fashion-MNIST, the seed network, `dropkit tune`'s 10 epochs, no pruning (so both sides train the same
80 epochs). With --side-by-side both studies run at the same time, so that a shared machine's changing
load hits both alike. Besides the wall times it reports, from the study, when the first trial began
(process start-up: imports, data) and the mean trial time (so contention shows apart from start-up).
Prints a table and writes JSON.

Usage: .ci/with-postgres python benchmarks/bench_tune_workers.py [--trials 8] [--epochs 10] [--dataset digits] [--side-by-side] [--out FILE]
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path
from tempfile import TemporaryDirectory

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from dropkit.lab.tune import _driver_url  # noqa: E402


def start(args, workers: int, threads: int, folder: Path) -> dict:
    """Start `workers` processes on a new study of args.trials trials, split evenly (--trials is per worker)."""
    name = f"bench-{workers}w-{uuid.uuid4().hex[:8]}"
    command = [
        sys.executable,
        "-m",
        "dropkit.cli",
        "tune",
        "--dataset",
        args.dataset,
        "--epochs",
        str(args.epochs),
        "--trials",
        str(args.trials // workers),
        "--storage",
        args.storage,
        "--study",
        name,
        "--no-prune",
        "--no-retrain",
        "--threads",
        str(threads),
        "--quiet",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    side = {"study": name, "workers": workers, "threads": threads, "started": time.time(), "t0": time.perf_counter()}
    side["procs"] = [
        subprocess.Popen([*command, "--out", str(folder / f"{name}-{i}")], env=env, stdout=subprocess.DEVNULL)
        for i in range(workers)
    ]
    return side


def finish(args, side: dict) -> dict:
    """Wait for a side's workers; its wall time and, from the study, start-up and mean trial seconds."""
    import optuna

    if any(p.wait(timeout=3600) for p in side["procs"]):
        raise SystemExit("a worker failed")
    wall = time.perf_counter() - side["t0"]
    trials = optuna.load_study(study_name=side["study"], storage=_driver_url(args.storage)).get_trials()
    first = min(t.datetime_start for t in trials)
    return {
        "workers": side["workers"],
        "threads_each": side["threads"],
        "wall_s": wall,
        "trials": len(trials),
        "first_trial_after_s": (
            first - datetime.fromtimestamp(side["started"])
        ).total_seconds(),  # Optuna: naive local time
        "mean_trial_s": statistics.mean((t.datetime_complete - t.datetime_start).total_seconds() for t in trials),
    }


def main() -> None:
    cpus = os.cpu_count() or 1
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", default=os.environ.get("DROPKIT_TEST_POSTGRES"))
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument(
        "--threads-one", type=int, default=cpus, help="--threads of the one worker (default: all cores)."
    )
    parser.add_argument(
        "--threads-each", type=int, default=max(1, cpus // 2), help="--threads of each of the two (default: half)."
    )
    parser.add_argument("--side-by-side", action="store_true", help="Run both studies at the same time.")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "tune_workers.json")
    args = parser.parse_args()
    if args.trials < 2 or args.trials % 2:
        raise SystemExit(f"--trials must be even and at least 2 (the two workers run half each), got {args.trials}")
    if not args.storage:
        raise SystemExit("no storage: pass --storage postgresql://... or run under .ci/with-postgres")
    with TemporaryDirectory() as tmp:
        if args.side_by_side:
            a, b = start(args, 1, args.threads_one, Path(tmp)), start(args, 2, args.threads_each, Path(tmp))
            two, one = finish(args, b), finish(args, a)
        else:
            one = finish(args, start(args, 1, args.threads_one, Path(tmp)))
            two = finish(args, start(args, 2, args.threads_each, Path(tmp)))
    ratio = two["wall_s"] / one["wall_s"]
    result = {
        "trials": args.trials,
        "epochs": args.epochs,
        "dataset": args.dataset,
        "side_by_side": args.side_by_side,
        "one": one,
        "two": two,
        "ratio": ratio,
        "target": 0.7,
        "cpus": cpus,
        "load_average": os.getloadavg(),
        "python": platform.python_version(),
        "machine": platform.processor() or platform.machine(),
    }
    print("| workers | threads each | wall s | first trial after s | mean trial s |\n|---|---|---|---|---|")
    for side in (one, two):
        print(
            f"| {side['workers']} | {side['threads_each']} | {side['wall_s']:.1f} | {side['first_trial_after_s']:.1f} | {side['mean_trial_s']:.1f} |"
        )
    print(f"\nratio {ratio:.2f} (target <= 0.7), load average {os.getloadavg()[0]:.1f} on {cpus} CPUs")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
