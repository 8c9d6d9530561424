"""The MC-dropout plots: reliability diagrams and uncertainty histograms (matplotlib, the [lab] extra).

They draw what dropkit.mc.metrics computes. matplotlib's Figure is used without
pyplot (no GUI backend); every file is written atomically.

Examples:
    >>> from dropkit.mc.metrics import reliability
    >>> plot_reliability({"MC T=50": reliability(p, y)}, "reliability.png")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from .._atomic import save_figure
from ..mc.metrics import Reliability, misclassification_auroc

__all__ = ["plot_reliability", "plot_histograms"]


def _figure(ncols: int = 1):
    from matplotlib.figure import Figure  # the [lab] extra; Figure needs no pyplot and no GUI backend

    fig = Figure(figsize=(5 * ncols, 4.2), layout="constrained")
    return fig, fig.subplots(1, ncols, squeeze=False)[0]


def plot_reliability(curves: Mapping[str, Reliability], path) -> None:
    """Reliability diagram: accuracy against confidence per bin for each named curve, with the diagonal.

    Examples:
        >>> plot_reliability({"MC T=50": reliability(p, y)}, "reliability.png")  # doctest: +SKIP
    """
    fig, (ax,) = _figure()
    ax.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=1, label="perfect calibration")
    for name, r in curves.items():
        filled = r.counts > 0
        ax.plot(
            r.confidence[filled].cpu().numpy(),
            r.accuracy[filled].cpu().numpy(),
            marker="o",
            markersize=4,
            label=f"{name} (ECE {r.ece:.4f})",
        )
    ax.set(
        xlabel="confidence (top-class probability)",
        ylabel="accuracy",
        xlim=(0, 1),
        ylim=(0, 1),
        title="Reliability diagram",
    )
    ax.legend(loc="upper left", fontsize=8)
    save_figure(fig, path, dpi=120)


def plot_histograms(
    scores: Mapping[str, Tensor],
    correct,
    path,
    bins: int = 40,
    *,
    groups: tuple[str, str] = ("correct", "wrong"),
    unit: str = "nats",
) -> None:
    """One panel per named uncertainty score: its histogram for correct and for wrong predictions.

    Args:
        scores: name -> (N,) score, higher = less sure.
        correct: (N,) bool: the first group (True) and the second (False).
        groups: the two groups' names (for out-of-distribution detection: in- and out-of-distribution).
        unit: the scores' unit for the axis ("" for none).

    Each title gives the AUROC of the score at finding the second group.

    Examples:
        >>> plot_histograms({"predictive entropy": h}, correct, "uncertainty_hist.png")  # doctest: +SKIP
    """
    correct = torch.as_tensor(correct, dtype=torch.bool).reshape(-1).cpu()
    fig, axes = _figure(len(scores))
    for ax, (name, s) in zip(axes, scores.items()):
        s = torch.as_tensor(s).reshape(-1).double().cpu()
        hi = float(s.max()) if s.numel() else 1.0
        edges = torch.linspace(0, max(hi, 1e-12), bins + 1).numpy()
        for mask, label, colour in ((correct, groups[0], "tab:blue"), (~correct, groups[1], "tab:red")):
            # no density for an empty group (all right or all wrong): it would divide by 0
            ax.hist(
                s[mask].numpy(),
                bins=edges,
                density=bool(mask.any()),
                alpha=0.55,
                color=colour,
                label=f"{label} ({int(mask.sum())})",
            )
        ax.set(
            xlabel=f"{name} ({unit})" if unit else name,
            ylabel="density",
            title=f"{name}: AUROC {_safe_auroc(s, correct)}",
        )
        ax.legend(fontsize=8)
    save_figure(fig, path, dpi=120)


def _safe_auroc(score: Tensor, correct: Tensor) -> str:
    try:
        return f"{misclassification_auroc(score, correct):.3f}"
    except ValueError:
        return "n/a"
