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

import dataclasses
import math
import statistics

import torch
from torch import nn

from ..nn import DropBlock2d, Dropout, Dropout2d, DropPath
from .errors import SettingsError

__all__ = [
    "MODELS", "CNN_DROPOUT_TYPES", "DEFAULT_RATES", "CHANNELS", "FILES", "image_side", "check_kind", "build_cnn",
    "dense_hidden_index", "family_runs", "knockout_drop", "family_summary", "family_table",
]

MODELS = ("mlp", "cnn", "rescnn")
CNN_DROPOUT_TYPES = ("dropout", "dropout2d", "drop_block", "drop_path")
# Rates each kind is commonly used at: plain dropout in a dense head 0.5; channel dropout, DropBlock and
# stochastic depth drop far more at once (a channel, a block, a branch), so they take about 0.1.
DEFAULT_RATES = {"dropout": 0.5, "dropout2d": 0.1, "drop_block": 0.1, "drop_path": 0.1}
CHANNELS = (16, 32)
FILES = ("family.json",)


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
        raise SettingsError(f"dropout_type for model {model!r} must be one of {', '.join(CNN_DROPOUT_TYPES)}, got {kind!r}")
    if kind == "drop_path" and model != "rescnn":
        raise SettingsError("dropout_type 'drop_path' (stochastic depth) drops residual branches: use --model rescnn")
    return kind


class _Residual(nn.Module):
    """x + branch(x), ReLU after; the branch (conv, ReLU, conv) dropped per sample by stochastic depth when p > 0."""

    def __init__(self, channels: int, p: float):
        super().__init__()
        self.branch = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(), nn.Conv2d(channels, channels, 3, padding=1))
        self.drop = DropPath(p) if p > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.drop(self.branch(x)))


def build_cnn(side: int, n_classes: int, dense: int = 128, kind: str = "dropout", p: float = 0.0, residual: bool = False) -> nn.Sequential:
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


def family_runs(base, kinds, seeds, rate: float | None = None) -> dict:
    """One run per (kind, seed) of the conv net `base.model`, plus its twin without dropout ('none'), named '<kind>_s<seed>'.

    Args:
        base: lab Settings of the conv net (model cnn or rescnn). kinds: CNN_DROPOUT_TYPES members.
        rate: every kind's rate; None: each kind at its DEFAULT_RATES.

    Examples:
        >>> from dropkit.lab.settings import Settings
        >>> list(family_runs(Settings(model="cnn"), ["dropout2d"], [0, 1]))
        ['none_s0', 'none_s1', 'dropout2d_s0', 'dropout2d_s1']
    """
    if base.model not in ("cnn", "rescnn"):
        raise SettingsError(f"the family table compares the conv-net kinds: use --model cnn or rescnn, got {base.model!r}")
    for kind in kinds:
        check_kind(base.model, kind)
    runs = {f"none_s{seed}": dataclasses.replace(base, dropout_type="dropout", dropout=(0.0,), seed=seed) for seed in seeds}
    for kind in kinds:
        p = DEFAULT_RATES[kind] if rate is None else rate
        runs.update({f"{kind}_s{seed}": dataclasses.replace(base, dropout_type=kind, dropout=(p,), seed=seed) for seed in seeds})
    return runs


@torch.no_grad()
def knockout_drop(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor, fraction: float = 0.5, repeats: int = 5, batch_size: int = 1000) -> float:
    """Mean test accuracy lost when `fraction` of the dense head's hidden units are knocked out (analyze's random masks).

    Examples:
        >>> knockout_drop(build_cnn(8, 10, dense=16).eval(), torch.zeros(4, 64), torch.zeros(4, dtype=torch.long))
        0.0
    """
    from .analyze import knockout_accuracies, knockout_masks

    i = dense_hidden_index(model)
    hidden = [model[:i](x[j : j + batch_size]) for j in range(0, len(x), batch_size)]
    labels = [y[j : j + batch_size] for j in range(0, len(y), batch_size)]
    intact = sum(int((model[i:](h).argmax(1) == b).sum()) for h, b in zip(hidden, labels)) / len(y)
    masks = knockout_masks(hidden[0].shape[1], fraction, repeats, layer=0, seed=0)
    return intact - statistics.fmean(knockout_accuracies(model[i:], hidden, labels, masks))


def family_summary(runs: dict, summary: dict, knockouts: dict[str, float]) -> dict:
    """Per kind over seeds: test accuracy at validation's epoch (mean, min, max), its difference from 'none' (pp), gap, knock-out drop."""
    kinds: dict[str, list[str]] = {}
    for name in runs:
        kinds.setdefault(name.rsplit("_s", 1)[0], []).append(name)
    rows = []
    for kind, names in kinds.items():
        ok = [n for n in names if "diverged" not in summary["runs"][n]]
        acc = [summary["runs"][n]["test_acc_at_best_val"] for n in ok]
        rows.append({
            "kind": kind, "rate": runs[names[0]].dropout[0], "seeds": len(ok), "diverged": len(names) - len(ok),
            "test_acc_at_best_val": {"mean": statistics.fmean(acc), "min": min(acc), "max": max(acc)} if acc else None,
            "gap": statistics.fmean(summary["runs"][n]["gap"] for n in ok) if ok else None,
            "knockout_drop_50": statistics.fmean(knockouts[n] for n in ok) if ok else None,
        })
    none = next((r for r in rows if r["kind"] == "none" and r["test_acc_at_best_val"]), None)
    for r in rows:
        r["vs_none_pp"] = (100 * (r["test_acc_at_best_val"]["mean"] - none["test_acc_at_best_val"]["mean"])
                           if none and r["test_acc_at_best_val"] else None)
    conv = [r for r in rows if r["kind"] in ("dropout2d", "drop_block", "drop_path") and r["vs_none_pp"] is not None]
    best = max(conv, key=lambda r: r["vs_none_pp"], default=None)
    return {"dataset": summary["dataset"], "model": next(iter(runs.values())).model, "rows": rows,
            "best_conv_kind": None if best is None else {"kind": best["kind"], "vs_none_pp": best["vs_none_pp"]}}


def family_table(result: dict):
    """A rich Table of family_summary: one row per kind."""
    from rich import box
    from rich.table import Table

    table = Table(title=f"{result['dataset']}, {result['model']}: the dropout family over seeds", box=box.SIMPLE, pad_edge=False, collapse_padding=True)
    best = result["best_conv_kind"]
    verdict = ("no conv-block kind ran" if best is None else
               f"best conv-block kind {best['kind']}: {best['vs_none_pp']:+.2f} pp over none, "
               + ("meets" if best["vs_none_pp"] >= 0.5 else "misses") + " the +0.5 pp target")
    table.caption = ("test@val: test accuracy at validation's epoch, mean (min..max); gap: train - test at the last epoch; "
                     f"knock-out: accuracy lost with 50% of the dense head's units removed. {verdict}")
    for column in ("kind", "rate", "seeds", "test@val", "vs none pp", "gap", "knock-out"):
        table.add_column(column, justify="left" if column == "kind" else "right", no_wrap=True)
    for r in result["rows"]:
        acc = r["test_acc_at_best_val"]
        table.add_row(
            r["kind"], f"{r['rate']:g}", str(r["seeds"]),
            "-" if acc is None else f"{100 * acc['mean']:.2f}% ({100 * acc['min']:.2f}..{100 * acc['max']:.2f})",
            "-" if r["vs_none_pp"] is None else f"{r['vs_none_pp']:+.2f}",
            "-" if r["gap"] is None else f"{100 * r['gap']:.2f}%",
            "-" if r["knockout_drop_50"] is None else f"{100 * r['knockout_drop_50']:.2f}%",
        )
    return table
