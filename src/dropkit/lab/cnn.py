"""A small conv net for the lab, and the conv members of the dropout family in it.

Two conv blocks (3x3 conv, ReLU, 2x2 max-pool; 16 then 32 channels) and a dense head (one hidden
layer, ReLU). "rescnn" adds a residual block (two 3x3 convs, x + branch(x)) after each pool, so
stochastic depth has a branch to drop. Channel dropout and DropBlock act on each block's output. The dropout kind chooses where the network is dropped:

- dropout: plain dropout after the dense hidden layer only;
- dropout2d: whole channels after each conv block (Tompson et al. 2015);
- drop_block: square regions of each conv block's maps (Ghiasi et al. 2018);
- drop_path: each residual branch, per sample (stochastic depth, Huang et al. 2016; rescnn only).

Dropout layers hold no parameters, so nets built after the same torch.manual_seed start from the
same weights whatever the kind: every kind's run and its no-dropout twin share initial weights.

Examples:
    >>> build_cnn(8, 10, dense=32, kind="dropout2d", p=0.1)[4]
    Dropout2d(p=0.1, inplace=False)
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..nn import DropBlock2d, Dropout, Dropout2d, DropPath
from .errors import SettingsError

__all__ = ["MODELS", "CNN_DROPOUT_TYPES", "CHANNELS", "image_side", "check_kind", "build_cnn", "dense_hidden_index"]

MODELS = ("mlp", "cnn", "rescnn")
CNN_DROPOUT_TYPES = ("dropout", "dropout2d", "drop_block", "drop_path")
CHANNELS = (16, 32)


def image_side(n_features: int) -> int:
    """The side of the square images flattened into n_features (28 for MNIST, 8 for digits).

    Examples:
        >>> image_side(784)
        28
    """
    side = math.isqrt(n_features)
    if side * side != n_features or side < 4:
        raise SettingsError(f"the conv net needs square images of side >= 4, and {n_features} features are not one")
    return side


def check_kind(model: str, kind: str) -> str:
    """A dropout kind the conv net `model` can use; SettingsError naming the choices otherwise.

    Examples:
        >>> check_kind("rescnn", "drop_path")
        'drop_path'
    """
    if kind not in CNN_DROPOUT_TYPES:
        raise SettingsError(
            f"--dropout-type for --model {model} must be one of {', '.join(CNN_DROPOUT_TYPES)}, got {kind!r}"
        )
    if kind == "drop_path" and model != "rescnn":
        raise SettingsError("--dropout-type drop_path (stochastic depth) drops residual branches: use --model rescnn")
    return kind


class _Residual(nn.Module):
    """x + branch(x), ReLU after; the branch (conv, ReLU, conv) dropped per sample by stochastic depth when p > 0."""

    def __init__(self, channels: int, p: float):
        super().__init__()
        self.branch = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(), nn.Conv2d(channels, channels, 3, padding=1)
        )
        self.drop = DropPath(p) if p > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.drop(self.branch(x)))


def build_cnn(
    side: int, n_classes: int, dense: int = 128, kind: str = "dropout", p: float = 0.0, residual: bool = False
) -> nn.Sequential:
    """The conv net for flattened side x side one-channel images: dropout of `kind` at rate p (0: none).

    Examples:
        >>> net = build_cnn(28, 10, kind="drop_path", p=0.1, residual=True)
        >>> net(torch.zeros(2, 784)).shape
        torch.Size([2, 10])
    """
    check_kind("rescnn" if residual else "cnn", kind)
    layers: list[nn.Module] = [nn.Unflatten(1, (1, side, side))]
    width = 1
    for channels in CHANNELS:
        # the residual block works on the pooled maps: a quarter of the cost of the full-size ones
        layers += [nn.Conv2d(width, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        if residual:
            layers.append(_Residual(channels, p if kind == "drop_path" else 0.0))
        if p > 0 and kind == "dropout2d":
            layers.append(Dropout2d(p))
        if p > 0 and kind == "drop_block":
            layers.append(DropBlock2d(p, block_size=3))  # on 14x14 and 7x7 maps (Ghiasi et al. shrink it on small maps)
        width, side = channels, side // 2
    layers += [nn.Flatten(), nn.Linear(width * side * side, dense), nn.ReLU()]
    if p > 0 and kind == "dropout":
        layers.append(Dropout(p))
    layers.append(nn.Linear(dense, n_classes))
    return nn.Sequential(*layers)


def dense_hidden_index(model: nn.Sequential) -> int:
    """The index just after the dense head's ReLU: model[:i] gives its activations, model[i:] the rest (for knock-outs).

    Examples:
        >>> dense_hidden_index(build_cnn(8, 10, dense=32))
        10
    """
    linears = [i for i, m in enumerate(model) if isinstance(m, nn.Linear)]
    return linears[-2] + 2
