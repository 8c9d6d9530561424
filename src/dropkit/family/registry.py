"""The registries of the family, built from what its classes declare (DropoutBase's attributes).

A new variant registers by being a DropoutBase subclass with a `kind`: make_dropout,
dropkit.nn.DROPOUT_KINDS, the lab's MLP and mc_predict read its declarations from here.
"""

from __future__ import annotations

import torch

from .. import _validate
from ._common import DropoutBase

__all__ = ["is_dropout", "variants", "kinds", "make_dropout"]


def is_dropout(module: torch.nn.Module) -> bool:
    """True for every dropout-family module: dropkit's (all variants) and torch's (Dropout*, AlphaDropout ...).

    The wrappers (EmbeddingDropout, ConcreteDropout, DropConnectLinear) count too;
    switching their mode with .train() also switches the layer they hold. So do timm's
    DropPath and DropBlock2d (recognised by name: timm is never imported).

    Examples:
        >>> from dropkit.nn import DropPath
        >>> is_dropout(torch.nn.Dropout2d()), is_dropout(DropPath(0.1)), is_dropout(torch.nn.ReLU())
        (True, True, False)
    """
    return isinstance(module, (DropoutBase, torch.nn.modules.dropout._DropoutNd)) or _is_timm_dropout(module)


def _is_timm_dropout(module: torch.nn.Module) -> bool:
    cls = type(module)
    return cls.__module__.startswith("timm.layers") and cls.__name__ in ("DropPath", "DropBlock2d")


def variants() -> list[type[DropoutBase]]:
    """Every DropoutBase subclass defined so far, sorted by module and name (never by import order)."""
    found, todo = set(), list(DropoutBase.__subclasses__())
    while todo:
        cls = todo.pop()
        if cls not in found:
            found.add(cls)
            todo.extend(cls.__subclasses__())
    return sorted(found, key=lambda cls: (cls.__module__, cls.__qualname__))


def kinds() -> dict[str, type[DropoutBase]]:
    """make_dropout's names and their classes: the variants that declare a `kind`, sorted by name with
    torch's own (dropout, dropout1d, dropout2d, dropout3d) first, whatever order their modules were imported in.

    Examples:
        >>> list(kinds())[3:6]
        ['dropout3d', 'alpha', 'drop_block']
    """
    declared = {cls.kind: cls for cls in variants() if cls.kind is not None and cls.__module__.startswith("dropkit.")}
    return dict(sorted(declared.items(), key=lambda item: (not item[0].startswith("dropout"), item[0])))


def make_dropout(kind: str, p: float) -> torch.nn.Module:
    """A dropout module of `kind` (one of dropkit.nn.DROPOUT_KINDS) at drop rate p.

    A kind whose number is no rate (gaussian_noise: a standard deviation) is refused rather
    than given p as its number; build it directly, e.g. dropkit.nn.GaussianNoise(stddev).

    Examples:
        >>> make_dropout("drop_path", 0.1)
        DropPath(p=0.1, scale_by_keep=True)
    """
    registered = kinds()
    cls = registered[_validate.choice(kind, tuple(registered), "kind")]
    if not cls.has_rate:
        raise ValueError(
            f"kind {kind!r} has no drop rate: make_dropout({kind!r}, p={p!r}) would read p as its standard "
            f"deviation; build dropkit.nn.{cls.__name__}(stddev) directly"
        )
    return cls(p)
