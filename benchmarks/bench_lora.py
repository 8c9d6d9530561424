"""LoRA fine-tuning with lora_dropout: saved-for-backward bytes and step time, side by side in one process.

Model: LlamaForCausalLM from a config (no downloads), fp32, LoRA r 8 on q, k, v, o,
gate, up and down (peft). Methods: lora_dropout=0; 0.1 with torch's dropout; 0.1
after replace_dropout without the fused route (every adapter's Dropout dropkit's);
0.1 through the fused route (dropkit.replace_dropout: lora_dropout + lora_A ->
dropout_linear). Sizes: "tiny" hidden 256, 2 layers, batch 4 x seq 256; "large"
hidden 1024, 2 layers, batch 1 x seq 1024 (batch 1 keeps it feasible on 2 cores).

Bytes: distinct storages saved for backward in one forward (a tensor saved by two
layers counts once); they do not depend on load. Times: one training step
(zero_grad, forward, backward, AdamW step), the median of interleaved rounds (every
method once per round, so a neighbour's load hits them alike) after a warm-up step
(the large size: --large-warmup 0 skips it, its first-call costs being small beside
its step); wall time and the process's CPU time (all threads: a busy machine
stretches wall time far more than CPU time), with the load average. The JSON is
rewritten after each size.

Usage: python benchmarks/bench_lora.py [--quick] [--sizes tiny,large] [--repeats 7] [--large-repeats 3]
       [--large-warmup 1] [--threads N] [--out benchmarks/results/lora.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _helpers import torchvision_shim  # noqa: E402  (transformers imports torchvision where it is installed)

torchvision_shim.install()

import numba  # noqa: E402
import torch  # noqa: E402
from _helpers.lora import loss, tiny_llama_lora, tokens, unfused  # noqa: E402
from _helpers.saved import saved_bytes  # noqa: E402

import dropkit  # noqa: E402

METHODS = ("lora_dropout=0", "torch dropout 0.1", "dropkit unfused 0.1", "dropkit fused 0.1")
SIZES = {"tiny": dict(hidden=256, batch=4, seq=256), "large": dict(hidden=1024, batch=1, seq=1024)}


def build(method: str, hidden: int) -> torch.nn.Module:
    model = tiny_llama_lora(hidden=hidden, layers=2, lora_dropout=0.0 if method == "lora_dropout=0" else 0.1).train()
    if method == "dropkit unfused 0.1":
        unfused(model)
    elif method == "dropkit fused 0.1":
        model, report = dropkit.replace_dropout(model)
        assert sum(".lora_A." in n for n in report.routed) == 14, report.routed  # 2 layers x 7 projections
    return model


def stepper(model: torch.nn.Module, ids: torch.Tensor):
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    def step():
        opt.zero_grad(set_to_none=True)
        loss(model, ids).backward()
        opt.step()

    return step


def measure(size: str, repeats: int, warmup: int, progress) -> dict:
    cfg = SIZES[size]
    ids = tokens(cfg["batch"], cfg["seq"])
    models = {m: build(m, cfg["hidden"]) for m in METHODS}
    progress(f"{size}: saved bytes")
    mib = {m: saved_bytes(lambda m=m: loss(models[m], ids)) / 2**20 for m in METHODS}
    steps = {m: stepper(models[m], ids) for m in METHODS}
    for w in range(warmup):
        progress(f"{size}: warm-up {w + 1}/{warmup}")
        for fn in steps.values():
            fn()
    wall, cpu = {m: [] for m in METHODS}, {m: [] for m in METHODS}
    load = [os.getloadavg()[0]]
    for r in range(repeats):
        progress(f"{size}: round {r + 1}/{repeats}")
        for m, fn in steps.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            wall[m].append(time.perf_counter() - start)
            cpu[m].append(time.process_time() - start_cpu)
        load.append(os.getloadavg()[0])
    med = {m: statistics.median(ts) for m, ts in wall.items()}
    med_cpu = {m: statistics.median(ts) for m, ts in cpu.items()}
    base_b, base, torch_d = mib["lora_dropout=0"], "lora_dropout=0", "torch dropout 0.1"
    rows = [
        dict(method=m, saved_mib=round(mib[m], 3), bytes_vs_no_dropout=round(mib[m] / base_b, 4),
             step_ms=round(1e3 * med[m], 1), time_vs_no_dropout=round(med[m] / med[base], 3),
             time_vs_torch_dropout=round(med[m] / med[torch_d], 3),
             cpu_ms=round(1e3 * med_cpu[m], 1), cpu_vs_no_dropout=round(med_cpu[m] / med_cpu[base], 3),
             cpu_vs_torch_dropout=round(med_cpu[m] / med_cpu[torch_d], 3))
        for m in METHODS
    ]  # fmt: skip
    return dict(
        size=size,
        **cfg,
        layers=2,
        r=8,
        repeats=repeats,
        warmup=warmup,
        load_1min=[round(x, 2) for x in load],
        rows=rows,
    )


def format_table(result: dict) -> str:
    lines = []
    for block in result["sizes"]:
        lines.append(
            f"\n{block['size']}: hidden {block['hidden']}, batch {block['batch']} x seq {block['seq']}, "
            f"{block['repeats']} rounds, 1-min load {min(block['load_1min'])}-{max(block['load_1min'])} (times under load)"
        )
        lines.append(
            f"{'method':22} {'saved MiB':>10} {'vs 0':>7} {'wall ms':>9} {'vs 0':>7} {'vs torch':>9} "
            f"{'cpu ms':>9} {'vs 0':>7} {'vs torch':>9}"
        )
        for r in block["rows"]:
            lines.append(
                f"{r['method']:22} {r['saved_mib']:10.2f} {r['bytes_vs_no_dropout']:7.3f} {r['step_ms']:9.1f} "
                f"{r['time_vs_no_dropout']:7.3f} {r['time_vs_torch_dropout']:9.3f} {r['cpu_ms']:9.1f} "
                f"{r['cpu_vs_no_dropout']:7.3f} {r['cpu_vs_torch_dropout']:9.3f}"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the tiny size only, 2 rounds: a smoke run, not numbers")
    parser.add_argument("--repeats", type=int, default=7, help="interleaved rounds for the tiny size")
    parser.add_argument("--large-repeats", type=int, default=3, help="interleaved rounds for the large size")
    parser.add_argument("--large-warmup", type=int, default=1, help="warm-up rounds for the large size")
    parser.add_argument("--sizes", default="tiny,large", help="comma-separated: tiny, large")
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch and numba threads (0: their defaults); 1 is steadier on a busy machine",
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/lora.json"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
        numba.set_num_threads(args.threads)
    progress = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    result = dict(
        benchmark="bench_lora", date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        machine=platform.machine(), cpus=os.cpu_count(), torch_threads=torch.get_num_threads(), torch=torch.__version__,
        note="bytes: distinct storages saved for backward in one forward, load-independent; times: medians under the recorded load",
        sizes=[],
    )  # fmt: skip
    sizes = ["tiny"] if args.quick else args.sizes.split(",")
    runs = {"tiny": (2 if args.quick else args.repeats, 1), "large": (args.large_repeats, args.large_warmup)}
    plan = [(size, *runs[size]) for size in sizes]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for size, repeats, warmup in plan:
        result["sizes"].append(measure(size, repeats, warmup, progress))
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(result, indent=2) + "\n")
        tmp.replace(args.out)
    print(format_table(result))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
