"""The one switch that picks a kernel backend for a tensor.

Backends: "cpu" (numba, CPU tensors), "triton" (GPU kernels; CPU tensors too
under TRITON_INTERPRET=1), "torch" (the spec in plain torch ops, any device).
"auto" takes cpu for CPU tensors, triton for GPU tensors where Triton imports,
and torch otherwise. Force one with DROPKIT_BACKEND or `use_backend`.

Example:
    >>> import dropkit.kernels as K
    >>> with K.use_backend("torch"):
    ...     K.backend_name(torch.ones(1))
    'torch'
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
from types import ModuleType

import torch

from .. import _validate

__all__ = ["ACTIVATION_CODES", "BACKENDS", "attention_for_tensor", "backend_name", "for_tensor", "fused_for_tensor", "use_backend"]

BACKENDS = ("auto", "cpu", "triton", "torch")
_MODULES = {"cpu": "cpu", "triton": "triton", "torch": "fallback"}
_FUSED_MODULES = {"cpu": "cpu_fused", "triton": "triton", "torch": "fallback"}
# The blocked kernels run on any device (their masking step picks numba or plain torch).
_ATTENTION_MODULES = {"cpu": "attention_cpu", "triton": "attention_triton", "torch": "attention_cpu"}
# The fused kernels' activation argument, as the numba and Triton kernels take it.
ACTIVATION_CODES = {None: 0, "relu": 1, "gelu": 2}
_forced: list[str] = []
_loaded: dict[str, ModuleType] = {}


@functools.cache
def _triton_available() -> bool:
    try:
        importlib.import_module("triton")
    except ImportError:
        return False
    return True


def backend_name(x: torch.Tensor) -> str:
    """Name of the backend that runs kernels for tensor x."""
    # Read on every call (about 1 us) so that a changed DROPKIT_BACKEND takes effect.
    name = _forced[-1] if _forced else os.environ.get("DROPKIT_BACKEND", "auto")
    if name == "auto":
        if x.is_cpu:
            return "cpu"
        return "triton" if x.is_cuda and _triton_available() else "torch"
    return _validate.backend(name, "DROPKIT_BACKEND")


def _load(file: str) -> ModuleType:
    module = _loaded.get(file)
    if module is None:
        module = _loaded[file] = importlib.import_module(f".{file}", __name__)
    return module


def for_tensor(x: torch.Tensor) -> ModuleType:
    """The kernel module (dropout_fwd, dropout_fwd_packed, ...) for tensor x."""
    return _load(_MODULES[backend_name(x)])


def fused_for_tensor(x: torch.Tensor) -> ModuleType:
    """The kernel module with bias_dropout_add_fwd and bias_dropout_add_bwd for tensor x."""
    return _load(_FUSED_MODULES[backend_name(x)])


def attention_for_tensor(q: torch.Tensor, mask: torch.Tensor | None, mask_grad: bool) -> ModuleType:
    """The module with attention_fwd and attention_bwd for this call (Triton where it takes the dtype and mask)."""
    module = _load(_ATTENTION_MODULES[backend_name(q)])
    if module.__name__.endswith("attention_triton") and not module.supports(q, mask, mask_grad):
        return _load("attention_cpu")
    return module


@contextlib.contextmanager
def use_backend(name: str):
    """Force a backend inside a with block (overrides DROPKIT_BACKEND)."""
    _forced.append(_validate.backend(name, "name"))
    try:
        yield
    finally:
        _forced.pop()
