"""The backend switch: auto picks by device and Triton's presence; DROPKIT_BACKEND and use_backend force a path."""

import sys
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
    assert kernels.for_tensor(CUDA_TENSOR).__name__ == "dropkit.kernels.fallback"
    assert kernels.fused_for_tensor(CUDA_TENSOR).__name__ == "dropkit.kernels.fallback"


def test_fused_modules():
    x = torch.ones(1)
    for name, module in [("cpu", "cpu_fused"), ("torch", "fallback")]:
        with kernels.use_backend(name):
            assert kernels.fused_for_tensor(x).__name__ == f"dropkit.kernels.{module}"


def test_environment_variable_and_context_manager(monkeypatch):
    monkeypatch.setenv("DROPKIT_BACKEND", "torch")
    assert kernels.backend_name(torch.ones(1)) == "torch"
    with kernels.use_backend("cpu"):
        assert kernels.backend_name(torch.ones(1)) == "cpu"
    monkeypatch.setenv("DROPKIT_BACKEND", "gpu")
    with pytest.raises(ValueError, match=r"DROPKIT_BACKEND must be one of 'auto', 'cpu', 'triton', 'torch', got 'gpu'"):
        kernels.backend_name(torch.ones(1))


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
