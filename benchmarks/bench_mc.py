"""mc_predict with T = 50 samples vs 50 plain eval forwards of the same batch (the speed target: <= 1.2x).

Both sides run in this process on the seed network (784-256-128-10, dropout 0.5
and 0.3 after the hidden activations), interleaved, and each figure is the
median of --repeats timings. Prints a markdown table and writes JSON.

Usage: python benchmarks/bench_mc.py [--quick] [--batches 1 32 256] [--repeats 11] [--threads N] [--out benchmarks/results/mc.json]
"""

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

import dropkit

T = 50


def seed_network(dropout_cls) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(784, 256),
        nn.ReLU(),
        dropout_cls(0.5),
        nn.Linear(256, 128),
        nn.ReLU(),
        dropout_cls(0.3),
        nn.Linear(128, 10),
    ).eval()


def plain(model: nn.Module, x: torch.Tensor) -> None:
    with torch.no_grad():
        for _ in range(T):
            model(x)


def timings(fns: dict, repeats: int) -> dict:
    """All wall times of each callable, run in interleaved rounds so drift hits all alike."""
    times = {name: [] for name in fns}
    for fn in fns.values():
        fn()  # warm-up: numba dispatch, allocator
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def run(batches, repeats: int, progress=None) -> dict:
    rows = []
    for layer_name, cls in (("dropkit.nn.Dropout", dropkit.Dropout), ("torch.nn.Dropout", nn.Dropout)):
        model = seed_network(cls)
        for b in batches:
            x = torch.randn(b, 784)
            default_chunk = dropkit.mc.predict._default_chunk(T, x)
            fns = {"plain": lambda: plain(model, x), "mc": lambda: dropkit.mc_predict(model, x, T, seed=0)}
            for chunk in sorted({10, T} - {default_chunk}):
                fns[f"mc chunk={chunk}"] = lambda c=chunk: dropkit.mc_predict(model, x, T, chunk=c, seed=0)
            times = timings(fns, repeats)
            t = {name: statistics.median(ts) for name, ts in times.items()}
            # min is kept too: on a machine shared with other jobs it is the steadier of the two.
            best = {name: min(ts) for name, ts in times.items()}
            row = {
                "layer": layer_name,
                "batch": b,
                "default_chunk": default_chunk,
                "plain_s": t.pop("plain"),
                "mc_s": t.pop("mc"),
            }
            row["ratio"] = row["mc_s"] / row["plain_s"]
            row["ratio_of_min"] = best["mc"] / best["plain"]
            row["other_chunks"] = {k.split("=")[1]: v / row["plain_s"] for k, v in t.items()}
            rows.append(row)
            if progress:
                progress(f"{layer_name} B={b}: mc/plain {row['ratio']:.2f}x")
    return {
        "samples": T,
        "repeats": repeats,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "dropkit": dropkit.__version__,
        "machine": platform.processor() or platform.machine(),
        "rows": rows,
    }


def format_table(result: dict) -> str:
    lines = [
        f"mc_predict(T={result['samples']}) vs {result['samples']} plain eval forwards, seed network 784-256-128-10, "
        f"{result['threads']} threads, median of {result['repeats']}",
        "",
        "| dropout layer | batch | chunk (default) | 50 plain forwards (ms) | mc_predict (ms) | ratio | ratio of minima | other chunks (ratio) |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in result["rows"]:
        others = ", ".join(f"{c}: {v:.2f}x" for c, v in r["other_chunks"].items())
        lines.append(
            f"| {r['layer']} | {r['batch']} | {r['default_chunk']} | {1e3 * r['plain_s']:.2f} | {1e3 * r['mc_s']:.2f} | {r['ratio']:.2f}x | {r['ratio_of_min']:.2f}x | {others} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="two small batches, 3 repeats: a smoke run, not numbers")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32, 256])
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch and numba threads (0: their defaults); 1 is steadier on a busy machine",
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/mc.json"))
    args = parser.parse_args()
    batches, repeats = ([1, 32], 3) if args.quick else (args.batches, args.repeats)
    if args.threads:
        import numba  # dropkit's CPU kernels run on numba's thread pool, torch's matmuls on torch's

        torch.set_num_threads(args.threads)
        numba.set_num_threads(args.threads)
    result = run(batches, repeats, progress=lambda msg: print(msg, file=sys.stderr, flush=True))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(format_table(result))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
