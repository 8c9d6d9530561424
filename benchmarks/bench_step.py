"""Dropout in a training step, side by side in one process: every row of the step-time target table.

Rows: the seed network's SGD step (784-256-128-10, dropout 0.5 / 0.3) eager and
under torch.compile at batch 128 and 1024 with no dropout, torch.nn.Dropout,
dropkit.nn.Dropout and dropkit fused (control.fuse_activation_dropout:
ReLUDropout); one F.dropout-style call on a (1, 16) tensor, dropkit vs torch;
mc_predict T = 50 vs 50 plain eval forwards; a 2^24 float32 forward vs torch and
vs x.clone(). Every figure is the median of interleaved repeats (all methods of
a row run in turn, round after round, so a neighbour's load hits them alike).
Per-call rows also give CPU time of the calling thread (time.thread_time), which
a busy machine disturbs less than wall time. `dropkit demo` prints the epoch-time
ratio, the remaining target. Takes 1-3 minutes; writes JSON.

Usage: python benchmarks/bench_step.py [--quick] [--repeats 31] [--threads N] [--out benchmarks/results/step.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numba
import torch
import torch.nn.functional as F
from torch import nn

import dropkit
import dropkit.functional as DF
from dropkit.lab import bench


def interleaved(fns: dict, repeats: int, inner: int = 1, clock=time.perf_counter) -> dict:
    """Median seconds per call of each callable, timed in interleaved rounds of `inner` calls."""
    times = {name: [] for name in fns}
    for fn in fns.values():
        for _ in range(max(3, inner)):
            fn()
    for _ in range(repeats):
        for name, fn in fns.items():
            start = clock()
            for _ in range(inner):
                fn()
            times[name].append((clock() - start) / inner)
    return {name: statistics.median(ts) for name, ts in times.items()}


KINDS = {
    "no dropout": lambda p: nn.Identity(),
    "torch.nn.Dropout": nn.Dropout,
    "dropkit.nn.Dropout": dropkit.nn.Dropout,
    "dropkit fused": dropkit.nn.Dropout,  # then fuse_activation_dropout: ReLUDropout
}


def _model(kind: str) -> nn.Module:
    torch.manual_seed(0)
    model = bench.seed_network(KINDS[kind])
    if kind == "dropkit fused":
        dropkit.fuse_activation_dropout(model)
    return model


def _step(model: nn.Module, x, y):
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    return step


def training_steps(batches, repeats: int, progress) -> list[dict]:
    rows = []
    for batch in batches:
        x, y = torch.randn(batch, 784), torch.randint(0, 10, (batch,))
        fns = {}
        for kind in KINDS:
            progress(f"batch {batch}: building {kind} (eager and compiled)")
            fns[("eager", kind)] = _step(_model(kind), x, y)
            fns[("compiled", kind)] = _step(torch.compile(_model(kind)), x, y)
        t = interleaved(fns, repeats)
        for (mode, kind), s in t.items():
            rows.append(
                dict(
                    batch=batch,
                    mode=mode,
                    impl=kind,
                    step_ms=1e3 * s,
                    vs_no_dropout=s / t[(mode, "no dropout")],
                    vs_eager=s / t[("eager", kind)],
                )
            )
    return rows


def small_call(repeats: int) -> dict:
    """One call on a (1, 16) tensor: dropkit's functional and module vs torch's, per call."""
    x = torch.randn(1, 16)
    xg = x.clone().requires_grad_()
    mod, tmod = dropkit.nn.Dropout(0.5), nn.Dropout(0.5)
    fns = {
        "torch F.dropout": lambda: F.dropout(x, 0.5, True),
        "dropkit F.dropout": lambda: DF.dropout(x, 0.5),
        "torch nn.Dropout": lambda: tmod(x),
        "dropkit nn.Dropout": lambda: mod(x),
        "torch F.dropout, grad": lambda: F.dropout(xg, 0.5, True),
        "dropkit F.dropout, grad": lambda: DF.dropout(xg, 0.5),
    }
    cpu = interleaved(fns, repeats, inner=300, clock=time.thread_time)
    wall = interleaved(fns, repeats, inner=300)
    return {name: dict(cpu_us=1e6 * cpu[name], wall_us=1e6 * wall[name]) for name in fns}


def mc(repeats: int, batch: int = 256) -> dict:
    model = _model("dropkit fused").eval()
    x = torch.randn(batch, 784)

    def plain():
        with torch.no_grad():
            for _ in range(50):
                model(x)

    t = interleaved({"plain": plain, "mc": lambda: dropkit.mc_predict(model, x, 50, seed=0)}, repeats)
    return dict(batch=batch, plain_ms=1e3 * t["plain"], mc_ms=1e3 * t["mc"], ratio=t["mc"] / t["plain"])


def big_forward(repeats: int, n: int = 2**24) -> dict:
    x = torch.randn(n)
    t = interleaved({
        "dropkit": lambda: DF.dropout(x, 0.5),
        "torch": lambda: F.dropout(x, 0.5, True),
        "clone": lambda: x.clone(),
    }, repeats)  # fmt: skip
    return dict(
        n=n,
        **{f"{k}_ms": 1e3 * v for k, v in t.items()},
        speedup_vs_torch=t["torch"] / t["dropkit"],
        vs_clone=t["dropkit"] / t["clone"],
    )


def run(quick: bool, repeats: int, progress) -> dict:
    batches = (32,) if quick else (128, 1024)
    reps = 3 if quick else repeats
    result = dict(
        date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        machine=f"{bench._cpu_name()}, {torch.get_num_threads()} threads",
        python=platform.python_version(),
        torch=torch.__version__,
        numba=numba.__version__,
        repeats=reps,
    )
    progress("(1, 16) calls")
    result["small_call"] = small_call(reps)
    progress("2^24 forward")
    result["big_forward"] = big_forward(max(3, reps // 4), 2**16 if quick else 2**24)
    progress("mc_predict")
    result["mc_predict"] = mc(max(3, reps // 4), 32 if quick else 256)
    result["steps"] = training_steps(batches, reps, progress)
    return result


def format_table(r: dict) -> str:
    lines = [
        f"{r['date']}: {r['machine']}, torch {r['torch']}, numba {r['numba']}; medians of {r['repeats']} interleaved repeats",
        "",
    ]
    lines += ["| step | batch | ms | vs no dropout (same mode) | vs eager (same impl) |", "|---|---|---|---|---|"]
    for s in r["steps"]:
        lines.append(
            f"| {s['mode']}, {s['impl']} | {s['batch']} | {s['step_ms']:.3f} | {s['vs_no_dropout']:.2f}x | {s['vs_eager']:.2f}x |"
        )
    sc = r["small_call"]
    lines += ["", "| (1, 16) call | CPU us | wall us |", "|---|---|---|"]
    lines += [f"| {k} | {v['cpu_us']:.2f} | {v['wall_us']:.2f} |" for k, v in sc.items()]
    b, m = r["big_forward"], r["mc_predict"]
    steps = {(s["mode"], s["impl"], s["batch"]): s for s in r["steps"]}
    lines += ["", "| target | goal | measured |", "|---|---|---|"]
    for batch in sorted({s["batch"] for s in r["steps"]}):
        fused, plain = steps[("eager", "dropkit fused", batch)], steps[("eager", "dropkit.nn.Dropout", batch)]
        torch_step = steps[("eager", "torch.nn.Dropout", batch)]["step_ms"]
        lines.append(
            f"| eager step, batch {batch}, dropkit fused vs no dropout | <= 1.10x | {fused['vs_no_dropout']:.2f}x "
            f"(unfused {plain['vs_no_dropout']:.2f}x) |"
        )
        lines.append(
            f"| eager step, batch {batch}, torch.nn.Dropout / dropkit fused | >= 1.5x | {torch_step / fused['step_ms']:.2f}x |"
        )
        for impl in ("dropkit fused", "dropkit.nn.Dropout"):
            c = steps[("compiled", impl, batch)]
            lines.append(
                f"| compiled step, batch {batch}, {impl} vs compiled no dropout | <= 1.15x | {c['vs_no_dropout']:.2f}x |"
            )
            lines.append(f"| compiled step, batch {batch}, {impl} vs its eager step | <= 1.0x | {c['vs_eager']:.2f}x |")
    ratio = sc["dropkit F.dropout"]["cpu_us"] / sc["torch F.dropout"]["cpu_us"]
    lines.append(f"| (1, 16) F.dropout call, dropkit / torch (CPU time) | <= 1.5x | {ratio:.2f}x |")
    lines.append(f"| mc_predict T = 50 / 50 plain forwards, batch {m['batch']} | <= 1.2x | {m['ratio']:.2f}x |")
    lines.append(
        f"| forward 2^{b['n'].bit_length() - 1} fp32: torch / dropkit | >= 15x | {b['speedup_vs_torch']:.1f}x |"
    )
    lines.append(f"| forward 2^{b['n'].bit_length() - 1} fp32: dropkit / clone | <= 1.0x | {b['vs_clone']:.2f}x |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 3 repeats: a smoke run, not numbers")
    parser.add_argument("--repeats", type=int, default=31)
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch and numba threads (0: their defaults); 1 is steadier on a busy machine",
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/step.json"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
        numba.set_num_threads(args.threads)
    result = run(args.quick, args.repeats, progress=lambda msg: print(msg, file=sys.stderr, flush=True))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(args.out)
    print(format_table(result))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
