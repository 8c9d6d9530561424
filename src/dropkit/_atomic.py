"""Atomic file writes: a temp file in the same folder, then os.replace, so readers never see half a file.

Used by the lab's plots, reports and checkpoints; it needs only the stdlib.

Examples:
    >>> write_atomic("model.pt", lambda tmp: torch.save(model.state_dict(), tmp))  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["write_atomic", "save_figure"]


def write_atomic(path: str | os.PathLike[str], write: Callable[[Path], object]) -> None:
    """Call write(tmp) on a temp file next to `path`, then rename it over `path`: readers never see half a file.

    Examples:
        >>> write_atomic("model.pt", lambda tmp: torch.save(model.state_dict(), tmp))  # doctest: +SKIP
    """
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def save_figure(fig: Any, path: str | os.PathLike[str], **options: Any) -> None:
    """fig.savefig(path, **options), atomically: a reader never sees half an image.

    The temp file has no image suffix, so the format is passed explicitly: path's suffix, or png without one.

    Examples:
        >>> save_figure(fig, "reliability.png", dpi=120)  # doctest: +SKIP
    """
    fmt = Path(path).suffix.lstrip(".").lower() or "png"
    write_atomic(path, lambda tmp: fig.savefig(tmp, format=fmt, **options))
