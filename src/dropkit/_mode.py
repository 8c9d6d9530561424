"""Process-wide switches that every dropout function reads.

`mc_active()` is True inside dropkit.mc_dropout(...): functional dropout then
drops even when called with training=False (Monte-Carlo dropout).
"""

from __future__ import annotations

import contextlib
import contextvars

__all__ = ["mc_active", "mc_enabled"]

_MC = contextvars.ContextVar("dropkit_mc", default=False)


def mc_active() -> bool:
    """True inside an mc_enabled() block."""
    return _MC.get()


@contextlib.contextmanager
def mc_enabled():
    """Make functional dropout stochastic regardless of its `training` argument."""
    token = _MC.set(True)
    try:
        yield
    finally:
        _MC.reset(token)
