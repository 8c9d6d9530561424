"""The backend switch: auto picks by device and Triton's presence; DROPKIT_BACKEND and use_backend force a path."""

import importlib
import inspect
import os
import subprocess
import sys
import threading
from types import SimpleNamespace

import pytest
import torch
from _helpers import reference as ref

import dropkit.functional as DF
from dropkit import kernels

CUDA_TENSOR = SimpleNamespace(is_cpu=False, is_cuda=True)  # backend_name reads only the device flags


def test_auto_picks_by_device(monkeypatch):
    monkeypatch.delenv("DROPKIT_BACKEND", raising=False)
    assert kernels.backend_name(torch.ones(1)) == "cpu"
    assert kernels.backend_name(torch.ones(1, device="meta")) == "torch"
    monkeypatch.setattr(kernels, "_triton_available", lambda: True)
    assert kernels.backend_name(CUDA_TENSOR) == "triton"


def test_cuda_without_triton_falls_back_to_torch(monkeypatch):
    monkeypatch.delenv("DROPKIT_BACKEND", raising=False)
    monkeypatch.setitem(sys.modules, "triton", None)  # `import triton` now raises ImportError
    assert kernels._triton_available.__wrapped__() is False
    monkeypatch.setattr(kernels, "_triton_available", kernels._triton_available.__wrapped__)
    assert kernels.backend_name(CUDA_TENSOR) == "torch"
    assert kernels.for_tensor(CUDA_TENSOR).__name__ == "dropkit.kernels.torch"
    assert kernels.fused_for_tensor(CUDA_TENSOR).__name__ == "dropkit.kernels.torch"


def test_fused_modules():
    x = torch.ones(1)
    for name, module in [("cpu", "cpu_fused"), ("torch", "torch")]:
        with kernels.use_backend(name):
            assert kernels.fused_for_tensor(x).__name__ == f"dropkit.kernels.{module}"


def _in_a_fresh_process(env_value: str, code: str) -> subprocess.CompletedProcess:
    # DROPKIT_BACKEND is read once, when dropkit is imported: only a new interpreter sees a new value.
    env = dict(os.environ, DROPKIT_BACKEND=env_value, PYTHONPATH=os.pathsep.join(sys.path))
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


def test_environment_variable_and_context_manager():
    code = """
import os, torch
from dropkit import kernels
os.environ["DROPKIT_BACKEND"] = "cpu"  # read once at import: changing it later does nothing
assert kernels.backend_name(torch.ones(1)) == "torch"
with kernels.use_backend("cpu"):
    assert kernels.backend_name(torch.ones(1)) == "cpu"
assert kernels.backend_name(torch.ones(1)) == "torch"
"""
    run = _in_a_fresh_process("torch", code)
    assert run.returncode == 0, run.stderr
    run = _in_a_fresh_process("gpu", "import torch\nfrom dropkit import kernels\nkernels.backend_name(torch.ones(1))")
    assert "ValueError: DROPKIT_BACKEND must be one of 'auto', 'cpu', 'triton', 'torch', got 'gpu'" in run.stderr


def test_use_backend_is_per_thread():
    inside, other = threading.Event(), []

    def elsewhere():
        inside.wait(timeout=10)
        other.append(kernels.backend_name(torch.ones(1)))

    thread = threading.Thread(target=elsewhere)
    thread.start()
    with kernels.use_backend("torch"):
        inside.set()
        thread.join(timeout=10)
        assert kernels.backend_name(torch.ones(1)) == "torch"
    assert other == ["cpu"]


# Every module the backend table names, checked against its contract: a new backend or file is checked by being listed.
@pytest.mark.parametrize(
    "file,contract", sorted({(file, c.__name__) for c, files in kernels.FILES.items() for file in files.values()})
)
def test_backends_keep_the_contract(file, contract):
    if "triton" in file:
        pytest.importorskip("triton")
    module, protocol = importlib.import_module(f"dropkit.kernels.{file}"), getattr(kernels, contract)
    assert isinstance(module, protocol), f"{module.__name__} lacks part of {contract}"
    for name in [n for n in vars(protocol) if not n.startswith("_") and callable(getattr(protocol, n))]:
        want = [p for p in inspect.signature(getattr(protocol, name)).parameters if p != "self"]
        got = list(inspect.signature(getattr(module, name)).parameters)
        assert got == want, f"{module.__name__}.{name}{got} differs from {contract}.{name}{want}"


def test_the_backend_names_come_from_the_table():
    assert kernels.BACKENDS == ("auto", *kernels.FILES[kernels.Backend])
    assert all(files.keys() == kernels.FILES[kernels.Backend].keys() for files in kernels.FILES.values())


def test_attention_calls_the_triton_kernels_decline_go_to_the_blocked_kernels(monkeypatch):
    # The switch asks the picked module (contract: supports) instead of knowing which file may decline.
    declining = SimpleNamespace(supports=lambda q, mask, mask_grad: False)
    monkeypatch.setitem(kernels._loaded, "attention_cpu", declining)
    fallback = kernels._load(kernels.FILES[kernels.AttentionBackend]["torch"])
    with kernels.use_backend("cpu"):
        assert kernels.attention_for_tensor(torch.ones(1), None, False) is fallback


@pytest.mark.parametrize("name", list(kernels.ACTIVATIONS))
@pytest.mark.parametrize("file", sorted(set(kernels.FILES[kernels.Backend].values())))
def test_every_backend_computes_every_activation_of_the_table(file, name):
    # A row added to kernels.ACTIVATIONS fails here until every backend computes its code.
    if "triton" in file:
        pytest.importorskip("triton")
        if ref.TRITON_DEVICE == "cpu" and os.environ.get("TRITON_INTERPRET") != "1":
            pytest.skip("Triton kernels need a GPU or TRITON_INTERPRET=1")
    device = ref.TRITON_DEVICE if "triton" in file else "cpu"
    x = torch.randn(3, 1001, generator=torch.Generator().manual_seed(4)).to(device)
    got = importlib.import_module(f"dropkit.kernels.{file}").dropout_fwd(x, 2**63 + 5, 7, 0.3, activation=name).cpu()
    want = ref.dropout(kernels.ACTIVATIONS[name].function(x.cpu()), 2**63 + 5, 7, 0.3)
    assert torch.equal(got == 0, want == 0), "the mask and the activation's zeros"
    # Elementwise and the same shape, but each backend's own erf (gelu): close, not bit-equal.
    torch.testing.assert_close(got, want)


@ref.needs_triton
@pytest.mark.parametrize("backward", ["recompute", "bitpacked"])
def test_forced_triton_runs_the_functional_on_every_path(backward):
    x = torch.randn(3, 333, device=ref.TRITON_DEVICE)
    outs = []
    for name in ("triton", "cpu", "torch"):
        xs = (x if name == "triton" else x.cpu()).clone().requires_grad_()
        with kernels.use_backend(name):
            if name == "triton":
                assert kernels.for_tensor(xs).__name__ == "dropkit.kernels.triton"
            y = DF.dropout(xs, 0.3, seed=2**64 - 5, offset=2**35 + 3, backward=backward)
            y.backward(torch.ones_like(y))
        outs.append((y.detach().cpu(), xs.grad.cpu()))
    for y, g in outs[1:]:
        assert torch.equal(y, outs[0][0]) and torch.equal(g, outs[0][1])
    assert torch.equal(outs[0][0], ref.dropout(x.cpu(), 2**64 - 5, 2**35 + 3, 0.3))
