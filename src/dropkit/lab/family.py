"""The dropout family in the lab's conv net (`dropkit family`): one run per kind and seed, and the table over seeds.

Each kind (lab.cnn.CNN_DROPOUT_TYPES) runs at its usual rate against 'none', the same net without
dropout from the same start and batches; the table gives test accuracy at validation's epoch, its
difference from none, the train-test gap and the accuracy lost when half the dense head's units are
knocked out (lab.analyze's masks).

Examples:
    >>> from dropkit.lab.settings import Settings
    >>> list(family_runs(Settings(model="cnn"), ["dropout2d"], [0]))
    ['none_s0', 'dropout2d_s0']
"""

from __future__ import annotations

import dataclasses
import statistics

import torch
from torch import nn

from .analyze import knockout_accuracies, knockout_masks
from .cnn import check_kind, dense_hidden_index
from .errors import SettingsError

__all__ = ["DEFAULT_RATES", "FILES", "family_runs", "knockout_drop", "family_summary", "family_table"]

# Rates each kind is commonly used at: plain dropout in a dense head 0.5; channel dropout, DropBlock and
# stochastic depth drop far more at once (a channel, a block, a branch), so they take about 0.1.
DEFAULT_RATES = {"dropout": 0.5, "dropout2d": 0.1, "drop_block": 0.1, "drop_path": 0.1}
FILES = ("family.json",)


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
        raise SettingsError(
            f"the family table compares the conv-net kinds: use --model cnn or rescnn, got {base.model!r}"
        )
    for kind in kinds:
        check_kind(base.model, kind)
    runs = {
        f"none_s{seed}": dataclasses.replace(base, dropout_type="dropout", dropout=(0.0,), seed=seed) for seed in seeds
    }
    for kind in kinds:
        p = DEFAULT_RATES[kind] if rate is None else rate
        runs.update(
            {f"{kind}_s{seed}": dataclasses.replace(base, dropout_type=kind, dropout=(p,), seed=seed) for seed in seeds}
        )
    return runs


@torch.no_grad()
def knockout_drop(
    model: nn.Sequential,
    x: torch.Tensor,
    y: torch.Tensor,
    fraction: float = 0.5,
    repeats: int = 5,
    batch_size: int = 1000,
) -> float:
    """Mean test accuracy lost when `fraction` of the dense head's hidden units are knocked out (analyze's random masks).

    Examples:
        >>> from dropkit.lab.cnn import build_cnn
        >>> knockout_drop(build_cnn(8, 10, dense=16).eval(), torch.zeros(4, 64), torch.zeros(4, dtype=torch.long))
        0.0
    """
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
        rows.append(
            {
                "kind": kind,
                "rate": runs[names[0]].dropout[0],
                "seeds": len(ok),
                "diverged": len(names) - len(ok),
                "test_acc_at_best_val": {"mean": statistics.fmean(acc), "min": min(acc), "max": max(acc)}
                if acc
                else None,
                "gap": statistics.fmean(summary["runs"][n]["gap"] for n in ok) if ok else None,
                "knockout_drop_50": statistics.fmean(knockouts[n] for n in ok) if ok else None,
            }
        )
    none = next((r for r in rows if r["kind"] == "none" and r["test_acc_at_best_val"]), None)
    for r in rows:
        r["vs_none_pp"] = (
            100 * (r["test_acc_at_best_val"]["mean"] - none["test_acc_at_best_val"]["mean"])
            if none and r["test_acc_at_best_val"]
            else None
        )
    conv = [r for r in rows if r["kind"] in ("dropout2d", "drop_block", "drop_path") and r["vs_none_pp"] is not None]
    best = max(conv, key=lambda r: r["vs_none_pp"], default=None)
    return {
        "dataset": summary["dataset"],
        "model": next(iter(runs.values())).model,
        "rows": rows,
        "best_conv_kind": None if best is None else {"kind": best["kind"], "vs_none_pp": best["vs_none_pp"]},
    }


def family_table(result: dict):
    """A rich Table of family_summary: one row per kind."""
    from rich import box
    from rich.table import Table

    table = Table(
        title=f"{result['dataset']}, {result['model']}: the dropout family over seeds",
        box=box.SIMPLE,
        pad_edge=False,
        collapse_padding=True,
    )
    best = result["best_conv_kind"]
    verdict = (
        "no conv-block kind ran"
        if best is None
        else f"best conv-block kind {best['kind']}: {best['vs_none_pp']:+.2f} pp over none, "
        + ("meets" if best["vs_none_pp"] >= 0.5 else "misses")
        + " the +0.5 pp target"
    )
    table.caption = (
        "test@val: test accuracy at validation's epoch, mean (min..max); gap: train - test at the last epoch; "
        f"knock-out: accuracy lost with 50% of the dense head's units removed. {verdict}"
    )
    for column in ("kind", "rate", "seeds", "test@val", "vs none pp", "gap", "knock-out"):
        table.add_column(column, justify="left" if column == "kind" else "right", no_wrap=True)
    for r in result["rows"]:
        acc = r["test_acc_at_best_val"]
        table.add_row(
            r["kind"],
            f"{r['rate']:g}",
            str(r["seeds"]),
            "-" if acc is None else f"{100 * acc['mean']:.2f}% ({100 * acc['min']:.2f}..{100 * acc['max']:.2f})",
            "-" if r["vs_none_pp"] is None else f"{r['vs_none_pp']:+.2f}",
            "-" if r["gap"] is None else f"{100 * r['gap']:.2f}%",
            "-" if r["knockout_drop_50"] is None else f"{100 * r['knockout_drop_50']:.2f}%",
        )
    return table
