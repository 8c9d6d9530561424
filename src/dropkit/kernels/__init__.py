"""The one switch that picks a kernel backend for a tensor.

Backends: "cpu" (numba, CPU tensors), "triton" (GPU kernels; CPU tensors too
under TRITON_INTERPRET=1), "torch" (the spec in plain torch ops, any device).
"auto" takes cpu for CPU tensors, triton for GPU tensors where Triton imports,
and torch otherwise. Force one with DROPKIT_BACKEND (read once, when dropkit is
imported) or `use_backend` (per thread and per asyncio task).

Examples:
    >>> import torch
    >>> import dropkit.kernels as K
    >>> with K.use_backend("torch"):
    ...     K.backend_name(torch.ones(1))
    'torch'
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import importlib
import os
from collections.abc import Iterator
from types import ModuleType

# Not `import torch`: loading the backend module dropkit.kernels.torch binds the name `torch` in this package.
from torch import Tensor
from torch import device as Device

from .. import _validate
from ._contract import ACTIVATION_CODES, ACTIVATIONS, FILES, Activation, AttentionBackend, Backend, FusedBackend

__all__ = [
    "ACTIVATION_CODES",
    "ACTIVATIONS",
    "Activation",
    "BACKENDS",
    "AttentionBackend",
    "Backend",
    "FILES",
    "attention_for_tensor",
    "FusedBackend",
    "backend_name",
    "for_device",
    "for_tensor",
    "fused_for_tensor",
    "use_backend",
]

BACKENDS = ("auto", *FILES[Backend])
# Read once: a kernel call should not pay for os.environ, and a backend should not change under a running model.
_ENVIRONMENT = os.environ.get("DROPKIT_BACKEND", "auto")
_FORCED: contextvars.ContextVar[str | None] = contextvars.ContextVar("dropkit_backend", default=None)
_loaded: dict[str, ModuleType] = {}


@functools.cache
def _triton_available() -> bool:
    try:
        importlib.import_module("triton")
    except ImportError:
        return False
    return True


def _pick(is_cpu: bool, is_cuda: bool) -> str:
    name = _FORCED.get() or _validate.choice(_ENVIRONMENT, BACKENDS, "DROPKIT_BACKEND")
    if name == "auto":
        if is_cpu:
            return "cpu"
        return "triton" if is_cuda and _triton_available() else "torch"
    return name


def backend_name(x: Tensor) -> str:
    """Name of the backend that runs kernels for tensor x."""
    return _pick(x.is_cpu, x.is_cuda)


def _load(file: str) -> ModuleType:
    module = _loaded.get(file)
    if module is None:
        module = _loaded[file] = importlib.import_module(f".{file}", __name__)
    return module


def for_tensor(x: Tensor) -> Backend:
    """The kernel module (dropout_fwd, dropout_fwd_packed, ...) for tensor x."""
    return _load(FILES[Backend][backend_name(x)])


def for_device(device: Device | str) -> Backend:
    """The kernel module for tensors on `device` (what for_tensor gives a tensor there)."""
    kind = Device(device).type
    return _load(FILES[Backend][_pick(kind == "cpu", kind == "cuda")])


def fused_for_tensor(x: Tensor) -> FusedBackend:
    """The kernel module with bias_dropout_add_fwd and bias_dropout_add_bwd for tensor x."""
    return _load(FILES[FusedBackend][backend_name(x)])


def attention_for_tensor(q: Tensor, mask: Tensor | None, mask_grad: bool) -> AttentionBackend:
    """The module with attention_fwd and attention_bwd for this call (the torch backend's where the pick declines)."""
    module = _load(FILES[AttentionBackend][backend_name(q)])
    if not module.supports(q, mask, mask_grad):
        return _load(FILES[AttentionBackend]["torch"])
    return module


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Force a backend inside a with block (overrides DROPKIT_BACKEND), in this thread or task only."""
    token = _FORCED.set(_validate.choice(name, BACKENDS, "name"))
    try:
        yield
    finally:
        _FORCED.reset(token)
