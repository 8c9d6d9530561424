"""Process-wide switches that every dropout function reads.

`mc_active()` is True inside dropkit.mc_dropout(...): functional dropout then
drops even when called with training=False (Monte-Carlo dropout).

Examples:
    >>> with mc_enabled():
    ...     mc_active()
    True
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Iterator

import torch

__all__ = ["mc_active", "mc_enabled", "consistent_replicas", "consistent_enabled"]

# Eager code reads the ContextVar, so one thread's MC block never leaks into another.
_MC = contextvars.ContextVar("dropkit_mc", default=False)
# Dynamo cannot trace ContextVar.get, so compiled code reads this mirror instead: a plain
# module global, which Dynamo guards on. Entering or leaving MC mode then recompiles once
# per mode (True/False), never per call. It is process-wide: under torch.compile, MC mode in
# one thread is seen by compiled code in every thread.
_mc_compiled = False
_depth = 0
_lock = threading.Lock()


def mc_active() -> bool:
    """True inside an mc_enabled() block."""
    if torch.compiler.is_compiling():
        return _mc_compiled
    return _MC.get()


def _count(step: int) -> None:
    global _depth, _mc_compiled
    with _lock:
        _depth += step
        _mc_compiled = _depth > 0


@contextlib.contextmanager
def mc_enabled() -> Iterator[None]:
    """Make functional dropout stochastic regardless of its `training` argument."""
    token = _MC.set(True)
    _count(1)
    try:
        yield
    finally:
        _count(-1)
        _MC.reset(token)


# The replicas of the forward that mc_predict(consistent=True) is running (a
# consistent.Replicas), or None. Eager only: compiled code sees a mirror flag and refuses.
# Typed object: this module sits below dropkit.ops.consistent and may not import it.
_REPLICAS: contextvars.ContextVar[object | None] = contextvars.ContextVar("dropkit_replicas", default=None)
_replicas_depth = 0


def consistent_replicas() -> object | None:
    """The consistent.Replicas of the forward being run, inside consistent_enabled(), else None."""
    if torch.compiler.is_compiling():
        if _replicas_depth:
            raise RuntimeError(
                "mc_predict(consistent=True) runs eagerly only: call it on the model, not a torch.compile'd one"
            )
        return None
    return _REPLICAS.get()


@contextlib.contextmanager
def consistent_enabled(replicas: object) -> Iterator[None]:
    """Route every dropout call to consistent masks of `replicas` (see dropkit.ops.consistent)."""
    global _replicas_depth
    token = _REPLICAS.set(replicas)
    with _lock:
        _replicas_depth += 1
    try:
        yield
    finally:
        with _lock:
            _replicas_depth -= 1
        _REPLICAS.reset(token)
