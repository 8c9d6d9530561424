"""Cost of exact zeros for the variants whose mask is drawn on a small shape (channel, DropPath, locked).

Times, interleaved in one process on the same tensor, forward and forward + backward of:
- product: input * mask, the 0-or-scale mask broadcast (the form before exact zeros; inf * 0 is NaN);
- select: dropkit.family._common.select_kept, where(keep, input, 0) * scale (exact zeros, what the variants run);
- torch: torch.nn.functional.dropout2d, for scale.
Prints medians and the select / product ratio; writes JSON with --out.

--layout channel draws the mask on (N, C, 1, ...) (channel dropout; DropPath is the same kernel loop);
--layout locked on (1, N, ...) (LockedDropout: a row of the mask repeated over dim 0).

Usage: python benchmarks/bench_small_mask.py [--shape 32 64 32 32] [--layout channel|locked] [--repeats 21]
       [--threads 1] [--out f.json]
"""

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from dropkit import rng
from dropkit.family._common import select_kept, small_mask


def product(x, mask, keep, scale):
    return x * mask


def select(x, mask, keep, scale):
    return select_kept(x, keep, scale)


def torch_dropout2d(x, mask, keep, scale):
    return torch.nn.functional.dropout2d(x, 0.5)


def timed(fn, x, mask, keep, scale, backward: bool) -> float:
    start = time.perf_counter()
    y = fn(x, mask, keep, scale)
    if backward:
        y.backward(torch.ones_like(y))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", type=int, nargs="+", default=[32, 64, 32, 32])
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--layout", choices=("channel", "locked"), default="channel")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x = torch.randn(args.shape)
    if args.layout == "channel":
        mask_shape = tuple(args.shape[:2]) + (1,) * (len(args.shape) - 2)
    else:
        mask_shape = (1, *args.shape[1:])
    mask = small_mask(x, mask_shape, 0.5, seed=1, offset=0)
    keep, scale = mask != 0, rng.scale(0.5)
    forms = {"product": product, "select": select, "torch": torch_dropout2d}
    results = {}
    for backward in (False, True):
        xs = x.detach().requires_grad_(backward)
        times: dict[str, list[float]] = {name: [] for name in forms}
        for _ in range(3):  # warm-up
            for fn in forms.values():
                timed(fn, xs, mask, keep, scale, backward)
        for _ in range(args.repeats):
            for name, fn in forms.items():
                times[name].append(timed(fn, xs, mask, keep, scale, backward))
        label = "forward+backward" if backward else "forward"
        results[label] = {name: statistics.median(t) * 1e3 for name, t in times.items()}
        results[label]["select/product"] = results[label]["select"] / results[label]["product"]
    print(f"shape {tuple(args.shape)} float32, mask {mask_shape}, {args.threads} thread(s), medians of {args.repeats}")
    print("| pass | product ms | select ms | torch dropout2d ms | select / product |\n|---|---|---|---|---|")
    for label, row in results.items():
        print(
            f"| {label} | {row['product']:.2f} | {row['select']:.2f} | {row['torch']:.2f} | {row['select/product']:.2f} |"
        )
    if args.out:
        record = {
            "shape": args.shape,
            "mask": mask_shape,
            "threads": args.threads,
            "repeats": args.repeats,
            "ms": results,
        }
        args.out.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
