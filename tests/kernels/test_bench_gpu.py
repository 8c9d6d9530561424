"""benchmarks/bench_gpu.py runs end to end (tiny sizes, Triton interpreted on CPU when there is no GPU)."""

import importlib.util
import json
from pathlib import Path

import torch
from _helpers import reference as ref

from dropkit import kernels

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_gpu.py"
_spec = importlib.util.spec_from_file_location("bench_gpu", _PATH)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def test_without_a_device_it_says_so_and_exits_0(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    assert bench.main(["--out", str(tmp_path / "gpu.json")]) == 0
    assert "no CUDA device found" in capsys.readouterr().out
    assert not (tmp_path / "gpu.json").exists()


def test_a_failing_section_is_recorded_and_the_run_goes_on():
    results = {}
    bench._section(results, "broken", lambda: 1 / 0)
    bench._section(results, "fine", lambda: {"rows": []})
    assert results["broken"]["ok"] is False and results["broken"]["error"].startswith("ZeroDivisionError")
    assert results["fine"]["ok"] is True


@ref.needs_triton
def test_every_section_on_tiny_sizes(monkeypatch):
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: fn)  # compiling is slow on CPU and not under test here
    b = bench.Bench(quick=True, device=ref.TRITON_DEVICE)
    b.parity_n, b.sizes, b.dtypes, b.fused_shapes = 1027, [1024], [torch.bfloat16], [(4, 24)]
    results = {}
    with kernels.use_backend("triton"):
        for name, fn in [
            ("parity", bench.parity),
            ("saved", bench.saved),
            ("dropout", bench.dropout),
            ("fused", bench.fused),
            ("memory", bench.memory),
        ]:
            bench._section(results, name, fn, b)
    assert all(results[k]["ok"] for k in ("parity", "saved", "dropout", "fused", "memory")), results
    assert results["parity"]["all_identical"] is True
    assert len(results["dropout"]["rows"]) == 4 * 3  # four methods, three passes
    summary = {r["figure"]: r["value"] for r in bench._summary(results)}
    assert summary["bytes saved for backward per element"] == 0
    assert summary["GPU mask vs CPU mask"] is True
    json.dumps(results, default=str)
