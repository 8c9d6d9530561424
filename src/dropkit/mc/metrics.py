"""Calibration and ranking metrics for probabilistic classifiers, and their plots.

Probabilities are (N, C) or (N, C, d1, ...) with the class dimension at 1 and
labels (N,) or (N, d1, ...), as torch.nn.CrossEntropyLoss takes them; every
position counts as one prediction. Scalars come back as Python floats,
computed in float64, on the device of the probabilities. Numbers only:
the lab draws them (dropkit.lab.plots).

Examples:
    >>> probs = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    >>> labels = torch.tensor([0, 1, 1])
    >>> round(nll(probs, labels), 4), round(brier(probs, labels), 4)
    (0.4149, 0.2733)
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy.typing as npt
import torch
from torch import Tensor

from .. import _validate

__all__ = [
    "nll",
    "brier",
    "ece",
    "reliability",
    "Reliability",
    "auroc",
    "misclassification_auroc",
    "fpr_at_tpr",
    "ECE_BINS",
]

ECE_BINS = 15  # equal-width confidence bins (Guo et al. 2017)


def _flat(probs: npt.ArrayLike, labels: npt.ArrayLike) -> tuple[Tensor, Tensor]:
    """(M, C) float64 probabilities and (M,) labels, one row per predicted position."""
    probs, labels = _validate.probs_labels(torch.as_tensor(probs), torch.as_tensor(labels))
    c = probs.shape[1]
    return probs.movedim(1, -1).reshape(-1, c).double(), labels.reshape(-1)


def nll(probs: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """Mean negative log-likelihood -log p(label) in nats.

    A probability of 0 is clamped to float64's smallest normal number, so a
    confident mistake costs about 708 nats instead of infinity.

    Examples:
        >>> round(nll(torch.tensor([[0.5, 0.5]]), torch.tensor([1])), 4)
        0.6931
    """
    p, y = _flat(probs, labels)
    picked = p.gather(1, y[:, None]).squeeze(1).clamp_min(torch.finfo(torch.float64).tiny)
    return float(-picked.log().mean())


def brier(probs: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """Brier score: mean over predictions of sum_c (p_c - [c == label])^2, in [0, 2] (Brier 1950).

    Examples:
        >>> brier(torch.tensor([[1.0, 0.0]]), torch.tensor([1]))
        2.0
    """
    p, y = _flat(probs, labels)
    onehot = torch.nn.functional.one_hot(y, p.shape[1]).double()
    return float(((p - onehot) ** 2).sum(1).mean())


@dataclasses.dataclass(frozen=True)
class Reliability:
    """Reliability-diagram data: per confidence bin, how many predictions, their accuracy and mean confidence.

    Bin i < bins holds confidences in [edges[i], edges[i+1]); the last bin, i = bins, holds
    confidences of exactly 1. These are torchmetrics' bins (and baal's): binned in float32
    against float32 edges, as torchmetrics does, so ECE equals its multiclass_calibration_error
    (norm="l1"). Empty bins have accuracy and confidence NaN.

    Attributes:
        edges: (bins + 1,) bin edges from 0 to 1.
        counts: (bins + 1,) predictions per bin.
        accuracy: (bins + 1,) fraction correct per bin.
        confidence: (bins + 1,) mean top-class probability per bin.
    """

    edges: Tensor
    counts: Tensor
    accuracy: Tensor
    confidence: Tensor

    @property
    def ece(self) -> float:
        """Expected calibration error: sum over bins of |bin| / N * |accuracy - confidence|."""
        filled = self.counts > 0
        weights = self.counts[filled].double() / self.counts.sum()
        return float((weights * (self.accuracy[filled] - self.confidence[filled]).abs()).sum())

    def to_dict(self) -> dict[str, Any]:
        """Plain lists (NaN as None) for JSON."""

        def clean(t: Tensor) -> list[float | None]:
            return [None if v != v else v for v in t.tolist()]

        return {
            "edges": self.edges.tolist(),
            "counts": self.counts.tolist(),
            "accuracy": clean(self.accuracy),
            "confidence": clean(self.confidence),
        }


def reliability(probs: npt.ArrayLike, labels: npt.ArrayLike, bins: int = ECE_BINS) -> Reliability:
    """Bin predictions by top-class confidence into `bins` equal-width bins.

    Examples:
        >>> r = reliability(torch.tensor([[0.75, 0.25]] * 4), torch.tensor([0, 0, 0, 1]))
        >>> r.ece
        0.0
    """
    bins = _validate.positive_int(bins, "bins")
    p, y = _flat(probs, labels)
    conf, pred = p.max(1)
    correct = (pred == y).double()
    # torchmetrics' binning, to the bit: float32 confidences against float32 edges, a confidence on
    # an edge goes to the bin above it ([lo, hi)), and 1.0 gets a bin of its own. Sums stay float64.
    edges = torch.linspace(0, 1, bins + 1, dtype=torch.float32, device=p.device)
    idx = torch.bucketize(conf.float(), edges, right=True) - 1
    counts = torch.bincount(idx, minlength=bins + 1)
    sums = torch.zeros(bins + 1, dtype=torch.float64, device=p.device)
    acc = sums.index_add(0, idx, correct) / counts
    mean_conf = sums.index_add(0, idx, conf) / counts
    return Reliability(edges.double(), counts, acc, mean_conf)


def ece(probs: npt.ArrayLike, labels: npt.ArrayLike, bins: int = ECE_BINS) -> float:
    """Expected calibration error with `bins` equal-width confidence bins (Naeini et al. 2015; Guo et al. 2017).

    Examples:
        >>> round(ece(torch.tensor([[0.9, 0.1], [0.6, 0.4]]), torch.tensor([0, 1])), 4)
        0.35
    """
    return reliability(probs, labels, bins).ece


def auroc(scores: npt.ArrayLike, positives: npt.ArrayLike) -> float:
    """Exact area under the ROC curve: P(score of a positive > score of a negative), ties counting 1/2.

    Computed from average ranks (the Mann-Whitney U statistic), so it equals
    the trapezoidal ROC area exactly, ties included.

    Examples:
        >>> auroc(torch.tensor([0.1, 0.4, 0.4, 0.9]), torch.tensor([False, True, False, True]))
        0.875
    """
    scores, positives = _validate.scores_positives(torch.as_tensor(scores), torch.as_tensor(positives))
    scores = scores.reshape(-1).double()
    positives = positives.reshape(-1)
    n_pos = int(positives.sum())
    n_neg = positives.numel() - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"auroc needs positives and negatives, got {n_pos} positives and {n_neg} negatives")
    _, inverse, counts = torch.unique(scores, return_inverse=True, return_counts=True)
    ends = counts.cumsum(0).double()
    mean_rank = ends - (counts.double() - 1) / 2  # 1-based ranks, ties share their average
    rank_sum = mean_rank[inverse][positives].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def fpr_at_tpr(scores: npt.ArrayLike, positives: npt.ArrayLike, tpr: float = 0.95) -> float:
    """False-positive rate at the threshold that flags a `tpr` fraction of the positives (FPR95 at 0.95).

    The threshold is the ceil(tpr * P)-th highest positive score, so at least a `tpr` fraction of the
    positives score at or above it; the result is the fraction of negatives that do too (ties flagged).

    Example:
        >>> fpr_at_tpr(torch.tensor([0.9, 0.8, 0.7, 0.1, 0.75, 0.2]), torch.tensor([True, True, True, False, False, False]))
        0.3333333333333333
    """
    scores, positives = _validate.scores_positives(torch.as_tensor(scores), torch.as_tensor(positives))
    tpr = _validate.p(tpr, "tpr")
    scores, positives = scores.reshape(-1).double(), positives.reshape(-1)
    pos, neg = scores[positives], scores[~positives]
    if pos.numel() == 0 or neg.numel() == 0 or tpr == 0:
        raise ValueError(
            f"fpr_at_tpr needs positives, negatives and tpr > 0, got {pos.numel()} positives, {neg.numel()} negatives, tpr {tpr}"
        )
    k = math.ceil(tpr * pos.numel() - 1e-9)  # 1e-9: 0.95 * 20 is 19.000000000000004 in floats
    threshold = pos.sort(descending=True).values[k - 1]
    return float((neg >= threshold).double().mean())


def misclassification_auroc(uncertainty: npt.ArrayLike, correct: npt.ArrayLike) -> float:
    """AUROC of an uncertainty score (higher = less sure) at telling wrong predictions from right ones.

    Examples:
        >>> misclassification_auroc(torch.tensor([0.1, 0.2, 0.9]), torch.tensor([True, True, False]))
        1.0
    """
    return auroc(uncertainty, ~torch.as_tensor(correct, dtype=torch.bool))
