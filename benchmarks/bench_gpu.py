"""GPU benchmark of dropkit's Triton kernels: prints tables, writes JSON, names the GPU.

Usage: python benchmarks/bench_gpu.py [--out benchmarks/results/gpu.json] [--quick]

Sections, each timed with triton.testing.do_bench (median, L2 flushed between
runs, after warm-up), each recorded and skipped past if it fails:
  parity   GPU masks and outputs vs the CPU kernel, bit for bit (dtypes, seeds above
           2^63, offsets above 2^34 and not multiples of 4, bit-packed masks, fused op)
  dropout  n = 2^20 .. 2^28, float32 and bfloat16: forward, backward, forward+backward of
           dropkit, torch F.dropout, torch.compile(F.dropout) and x.clone() (the floor);
           GB/s counts one read and one write of n elements per pass for every method
  fused    residual + dropout(act(x + bias)), act None or gelu: dropkit vs eager torch
           vs torch.compile of the same expression, forward and forward+backward
  compiled torch.compile(dropout(relu(x))) in both compiled forms of dropkit (DROPKIT_COMPILED:
           "decomposed", the spec as ops Inductor fuses into its own Triton loop with 64-bit integer
           multiplies; "kernel", the hand-written Triton kernel behind a custom op, umulhi), vs
           compiled relu alone (the floor) and compiled F.dropout; forward and forward+backward.
           This decides the default form on GPUs (decomposed until measured)
  memory   peak memory of forward+backward through a 24-layer MLP with each dropout
  saved    bytes saved for backward per element by each dropout
Without a CUDA device it prints why and exits 0. --quick runs every section on
tiny sizes; with TRITON_INTERPRET=1 and no GPU it runs the Triton kernels on CPU
tensors, which checks the script end to end (timings then mean nothing).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
import traceback
from pathlib import Path

import torch
import torch.nn.functional as F

P = 0.1  # a typical transformer dropout rate


def _parse(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/gpu.json"), help="where to write the JSON")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run of every section")
    return parser.parse_args(argv)


class Bench:
    """Sizes, device and timer of one run; CUDA events via do_bench, wall clock on CPU (--quick only)."""

    def __init__(self, quick: bool, device: str):
        self.quick, self.device = quick, device
        self.parity_n = 4099 if quick else 2**20 + 3
        self.sizes = [2**10, 2**12] if quick else [2**20, 2**22, 2**24, 2**26, 2**28]
        self.dtypes = [torch.float32, torch.bfloat16]
        self.fused_shapes = [(8, 64)] if quick else [(8192, 4096), (16384, 8192)]
        self.mlp = dict(layers=24, width=64, tokens=32) if quick else dict(layers=24, width=4096, tokens=8192)

    def time_ms(self, fn) -> float:
        if self.device == "cuda":
            import triton.testing

            return triton.testing.do_bench(fn, warmup=25, rep=100, return_mode="median")
        fn()
        samples = []
        for _ in range(3):
            t0 = time.perf_counter()
            fn()
            samples.append((time.perf_counter() - t0) * 1e3)
        return statistics.median(samples)


def _section(results: dict, name: str, fn, *args):
    """Run one section; a failure is recorded with its traceback and the run goes on."""
    print(f"\n== {name}", flush=True)
    t0 = time.perf_counter()
    try:
        results[name] = {"ok": True, **fn(*args)}
        if "skipped" in results[name]:
            print(f"skipped: {results[name]['skipped']}")
    except Exception as exc:  # noqa: BLE001 - one broken section must not cost the others
        traceback.print_exc()
        results[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    results[name]["seconds"] = round(time.perf_counter() - t0, 1)


def _table(rows: list[dict], cols: list[str]) -> str:
    widths = [max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in cols]
    line = lambda vals: "| " + " | ".join(v.rjust(w) for v, w in zip(vals, widths)) + " |"  # noqa: E731
    out = [line(cols), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    return "\n".join(out + [line([_fmt(r.get(c)) for c in cols]) for r in rows])


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
    return "" if v is None else str(v)


# ----------------------------------------------------------------------------- sections


def parity(b: Bench) -> dict:
    """GPU (Triton) outputs equal the CPU kernel's bit for bit."""
    from dropkit.kernels import cpu, cpu_fused
    from dropkit.kernels import triton as tk

    rows = []
    n = b.parity_n
    cases = [(0, 0), (2**64 - 1, 2**34 + 1), (2**63 + 5, 2**40 - 2), (123456789, 7)]
    for dtype in (torch.float32, torch.bfloat16, torch.float16, torch.float64):
        x = torch.randn(n).to(dtype)
        for seed, offset in cases:
            same = torch.equal(
                tk.dropout_fwd(x.to(b.device), seed, offset, 0.3).cpu(), cpu.dropout_fwd(x, seed, offset, 0.3)
            )
            y, bits = tk.dropout_fwd_packed(x.to(b.device), seed, offset, 0.3)
            cy, cbits = cpu.dropout_fwd_packed(x, seed, offset, 0.3)
            packed = torch.equal(y.cpu(), cy) and torch.equal(bits.cpu(), cbits)
            rows.append(
                dict(check="dropout", dtype=str(dtype)[6:], seed=seed, offset=offset, identical=same and packed)
            )
    for seed, offset in cases:
        same = torch.equal(tk.random_bits(n, seed, offset, b.device).cpu(), cpu.random_bits(n, seed, offset))
        rows.append(dict(check="random_bits", dtype="", seed=seed, offset=offset, identical=same))
    for dtype in (torch.float32, torch.bfloat16):
        x, r = torch.randn(64, 257).to(dtype), torch.randn(64, 257).to(dtype)
        bias = torch.randn(257).to(dtype)
        for act in (None, "relu"):  # gelu differs by the erf implementation (an ulp): not compared here
            got = tk.bias_dropout_add_fwd(x.to(b.device), bias.to(b.device), r.to(b.device), 2**63 + 9, 5, 0.3, act)
            same = torch.equal(got.cpu(), cpu_fused.bias_dropout_add_fwd(x, bias, r, 2**63 + 9, 5, 0.3, act))
            rows.append(dict(check=f"fused {act}", dtype=str(dtype)[6:], seed=2**63 + 9, offset=5, identical=same))
    print(_table(rows, ["check", "dtype", "seed", "offset", "identical"]))
    return {"all_identical": all(r["identical"] for r in rows), "rows": rows}


def _rows(times: dict, fields: dict, ratios) -> list[dict]:
    """One row per method and pass of `times` ({method: {pass: ms}}): fields, the time, and ratios(pass, ms)."""
    return [
        dict(fields, method=name, pass_=mode, ms=ms, **ratios(mode, ms))
        for name, t in times.items()
        for mode, ms in t.items()
    ]


def _dropout_methods(b: Bench):
    import dropkit.functional as DF

    def compiled():
        torch._dynamo.reset()  # a fresh compile per size and dtype: no recompile limit, no dynamic shapes
        return torch.compile(lambda x: F.dropout(x, P, True), dynamic=False)

    return {
        "dropkit": lambda: lambda x: DF.dropout(x, P),
        "torch": lambda: lambda x: F.dropout(x, P, True),
        "torch.compile": compiled,
        "clone": lambda: lambda x: x.clone(),
    }


def dropout(b: Bench) -> dict:
    rows = []
    for dtype in b.dtypes:
        for n in b.sizes:
            x = torch.randn(n, device=b.device, dtype=dtype, requires_grad=True)
            g = torch.randn_like(x)
            nbytes = 2 * n * x.element_size()  # read x, write y: the floor every method shares
            times = {}
            for name, make in _dropout_methods(b).items():
                f = make()
                y = f(x)
                times[name] = {
                    "fwd": b.time_ms(lambda: f(x)),
                    "bwd": b.time_ms(lambda: torch.autograd.grad(y, x, g, retain_graph=True)),
                    "fwd+bwd": b.time_ms(lambda: torch.autograd.grad(f(x), x, g)),
                }
                del y
            rows += _rows(
                times,
                dict(dtype=str(dtype)[6:], n=f"2^{n.bit_length() - 1}"),
                lambda mode, ms: dict(GBps=nbytes / ms / 1e6, of_clone=times["clone"][mode] / ms),
            )
            del x, g
            if b.device == "cuda":
                torch.cuda.empty_cache()
    print(_table(rows, ["dtype", "n", "method", "pass_", "ms", "GBps", "of_clone"]))
    return {"rows": rows}


def fused(b: Bench) -> dict:
    import dropkit.functional as DF

    def eager(x, bias, r, act):
        h = x + bias
        return r + F.dropout(F.gelu(h) if act == "gelu" else h, P, True)

    rows = []
    for dtype in b.dtypes:
        for shape in b.fused_shapes:
            x = torch.randn(shape, device=b.device, dtype=dtype, requires_grad=True)
            bias = torch.randn(shape[-1], device=b.device, dtype=dtype, requires_grad=True)
            r = torch.randn(shape, device=b.device, dtype=dtype, requires_grad=True)
            g = torch.randn_like(x)
            for act in (None, "gelu"):
                torch._dynamo.reset()
                fns = {
                    "dropkit": lambda x, bias, r: DF.bias_dropout_add(x, bias, r, P, activation=act),
                    "torch": lambda x, bias, r: eager(x, bias, r, act),
                    "torch.compile": torch.compile(lambda x, bias, r: eager(x, bias, r, act), dynamic=False),
                }
                times = {}
                for name, f in fns.items():
                    f(x, bias, r)
                    times[name] = {
                        "fwd": b.time_ms(lambda: f(x, bias, r)),
                        "fwd+bwd": b.time_ms(lambda: torch.autograd.grad(f(x, bias, r), (x, bias, r), g)),
                    }
                rows += _rows(
                    times,
                    dict(dtype=str(dtype)[6:], shape="x".join(map(str, shape)), act=str(act)),
                    lambda mode, ms: dict(dropkit_speedup=ms / times["dropkit"][mode]),
                )
    print(_table(rows, ["dtype", "shape", "act", "method", "pass_", "ms", "dropkit_speedup"]))
    return {"rows": rows}


def compiled_forms(b: Bench) -> dict:
    import dropkit.functional as DF
    from dropkit.ops import compiled

    methods = {  # name: (form the graph is traced in, function)
        "decomposed": ("decomposed", lambda x: DF.dropout(torch.relu(x), P)),
        "kernel": ("kernel", lambda x: DF.dropout(torch.relu(x), P)),
        "torch.compile F.dropout": ("decomposed", lambda x: F.dropout(torch.relu(x), P, True)),
        "relu (no dropout)": ("decomposed", torch.relu),
    }
    rows = []
    for dtype in b.dtypes:
        for n in b.sizes:
            x = torch.randn(n, device=b.device, dtype=dtype, requires_grad=True)
            g = torch.randn_like(x)
            times = {}
            for name, (form, fn) in methods.items():
                torch._dynamo.reset()
                # Dynamo guards on the form: trace and time inside the block, or it recompiles in the default
                with compiled.use_form(form):
                    f = torch.compile(fn, dynamic=False, fullgraph=True)
                    f(x)
                    times[name] = {
                        "fwd": b.time_ms(lambda: f(x)),
                        "fwd+bwd": b.time_ms(lambda: torch.autograd.grad(f(x), x, g)),
                    }
            rows += _rows(
                times,
                dict(dtype=str(dtype)[6:], n=f"2^{n.bit_length() - 1}"),
                lambda mode, ms: dict(
                    of_no_dropout=ms / times["relu (no dropout)"][mode],
                    decomposed_speedup=ms / times["decomposed"][mode],
                ),
            )
            del x, g
            if b.device == "cuda":
                torch.cuda.empty_cache()
    torch._dynamo.reset()
    print(_table(rows, ["dtype", "n", "method", "pass_", "ms", "of_no_dropout", "decomposed_speedup"]))
    return {"rows": rows}


def _mlp(b: Bench, make_dropout):
    width, layers = b.mlp["width"], b.mlp["layers"]
    blocks = []
    for _ in range(layers):
        blocks += [torch.nn.Linear(width, width), torch.nn.GELU(), make_dropout()]
    return torch.nn.Sequential(*blocks).to(b.device, torch.bfloat16)


def memory(b: Bench) -> dict:
    """Peak memory of forward+backward above the parameters, for a 24-layer MLP with each dropout."""
    import dropkit

    if b.device != "cuda":
        return {"skipped": "peak memory needs torch.cuda"}
    makes = {
        "none": torch.nn.Identity,
        "torch nn.Dropout": lambda: torch.nn.Dropout(P),
        "dropkit recompute": lambda: dropkit.nn.Dropout(P),
        "dropkit bitpacked": lambda: dropkit.nn.Dropout(P, backward="bitpacked"),
    }
    rows = []
    for name, make in makes.items():
        model = _mlp(b, make)
        x = torch.randn(b.mlp["tokens"], b.mlp["width"], device=b.device, dtype=torch.bfloat16, requires_grad=True)
        model(x).float().square().mean().backward()  # warm-up: allocates .grad
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        model(x).float().square().mean().backward()
        torch.cuda.synchronize()
        rows.append(dict(dropout=name, peak_MiB=(torch.cuda.max_memory_allocated() - base) / 2**20))
        del model, x
        torch.cuda.empty_cache()
    for r in rows:
        r["over_none_MiB"] = r["peak_MiB"] - rows[0]["peak_MiB"]
    print(_table(rows, ["dropout", "peak_MiB", "over_none_MiB"]))
    return {"model": b.mlp, "rows": rows}


def saved(b: Bench) -> dict:
    """Bytes saved for backward per element, counted with saved_tensors_hooks."""
    import dropkit

    n = 2**20
    layers = {
        "torch F.dropout": lambda x: F.dropout(x, P, True),
        "dropkit recompute": lambda x: dropkit.functional.dropout(x, P),
        "dropkit bitpacked": lambda x: dropkit.functional.dropout(x, P, backward="bitpacked"),
    }
    rows = []
    for name, f in layers.items():
        x = torch.randn(n, device=b.device, requires_grad=True) * 1  # non-leaf, as inside a network
        stored = []
        with torch.autograd.graph.saved_tensors_hooks(lambda t: stored.append(t) or t, lambda t: t):
            f(x)
        own = [t for t in stored if t.data_ptr() != x.data_ptr()]
        rows.append(dict(dropout=name, bytes_per_element=sum(t.numel() * t.element_size() for t in own) / n))
    print(_table(rows, ["dropout", "bytes_per_element"]))
    return {"rows": rows}


def _summary(results: dict) -> list[dict]:
    """The GPU targets, read off this run."""

    def pick(section, **match):
        rows = results.get(section, {}).get("rows", [])
        return next((r for r in rows if all(r.get(k) == v for k, v in match.items())), None)

    out = []
    sizes = [r["n"] for r in results.get("dropout", {}).get("rows", [])]
    top = max(sizes, key=lambda s: int(s[2:])) if sizes else None
    for dtype in ("float32", "bfloat16"):
        for mode in ("fwd", "bwd"):
            r = pick("dropout", dtype=dtype, n=top, method="dropkit", pass_=mode)
            out.append(
                dict(
                    figure=f"{mode} at {top}, {dtype}: share of clone bandwidth",
                    target=">= 0.90",
                    value=r and r["of_clone"],
                )
            )
        d, t = (
            pick("dropout", dtype=dtype, n=top, method="dropkit", pass_="fwd+bwd"),
            pick("dropout", dtype=dtype, n=top, method="torch", pass_="fwd+bwd"),
        )
        out.append(
            dict(
                figure=f"fwd+bwd vs torch F.dropout at {top}, {dtype}",
                target=">= 1.1x" if dtype == "float32" else ">= 1.2x",
                value=d and t and t["ms"] / d["ms"],
            )
        )
    for act in ("None", "gelu"):
        for other, target in (("torch", ">= 2x"), ("torch.compile", ">= 1.0x")):
            rows = [r for r in results.get("fused", {}).get("rows", []) if r["act"] == act and r["method"] == other]
            out.append(
                dict(
                    figure=f"fused bias+dropout+add ({act}) vs {other}, min over shapes, dtypes, passes",
                    target=target,
                    value=min((r["dropkit_speedup"] for r in rows), default=None),
                )
            )
    sizes = [r["n"] for r in results.get("compiled", {}).get("rows", [])]
    top = max(sizes, key=lambda s: int(s[2:])) if sizes else None
    for dtype in ("float32", "bfloat16"):
        k = pick("compiled", dtype=dtype, n=top, method="kernel", pass_="fwd+bwd")
        out.append(
            dict(
                figure=f"compiled relu+dropout fwd+bwd at {top}, {dtype}: kernel form / decomposed form time",
                target="> 1 keeps DROPKIT_COMPILED=decomposed the GPU default",
                value=k and k["decomposed_speedup"],
            )
        )
    r = pick("saved", dropout="dropkit recompute")
    out.append(dict(figure="bytes saved for backward per element", target="0", value=r and r["bytes_per_element"]))
    out.append(
        dict(figure="GPU mask vs CPU mask", target="identical", value=results.get("parity", {}).get("all_identical"))
    )
    return out


def main(argv=None) -> int:
    args = _parse(argv)
    if torch.cuda.is_available():
        device = "cuda"
    elif args.quick and os.environ.get("TRITON_INTERPRET") == "1":
        device = "cpu"
    else:
        print(
            "bench_gpu: no CUDA device found (torch.cuda.is_available() is False): nothing to measure, skipping.\n"
            "Run it on a GPU machine: python benchmarks/bench_gpu.py\n"
            "(TRITON_INTERPRET=1 python benchmarks/bench_gpu.py --quick runs a CPU smoke test of the script.)"
        )
        return 0
    import triton

    import dropkit
    from dropkit import kernels

    b = Bench(args.quick, device)
    meta = {
        "device": torch.cuda.get_device_name()
        if device == "cuda"
        else f"cpu ({platform.processor() or 'unknown'}), interpreted",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "triton": triton.__version__,
        "dropkit": dropkit.__version__,
        "cuda": torch.version.cuda,
        "quick": args.quick,
        "p": P,
    }
    print(" ".join(f"{k}={v}" for k, v in meta.items()), flush=True)
    results: dict = {"meta": meta}
    t0 = time.perf_counter()
    with kernels.use_backend("triton"):
        for name, fn in [
            ("parity", parity),
            ("saved", saved),
            ("dropout", dropout),
            ("fused", fused),
            ("compiled", compiled_forms),
            ("memory", memory),
        ]:
            _section(results, name, fn, b)
    results["summary"] = _summary(results)
    results["meta"]["seconds"] = round(time.perf_counter() - t0, 1)
    print("\n== summary")
    print(_table(results["summary"], ["figure", "target", "value"]))
    failed = [k for k, v in results.items() if isinstance(v, dict) and v.get("ok") is False]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1, default=str))
    print(f"\nwrote {args.out} in {results['meta']['seconds']} s; failed sections: {', '.join(failed) or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
