"""Calibration and ranking metrics against hand-computed values and scikit-learn."""

import json
import math

import pytest
import torch

from dropkit import metrics as M


def test_nll_known_value():
    probs = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    labels = torch.tensor([0, 1, 1])
    expected = -(math.log(0.9) + math.log(0.8) + math.log(0.4)) / 3
    assert M.nll(probs, labels) == pytest.approx(expected, rel=1e-6)


def test_nll_of_a_zero_probability_is_finite():
    value = M.nll(torch.tensor([[1.0, 0.0]], dtype=torch.float64), torch.tensor([1]))
    assert value == pytest.approx(-math.log(torch.finfo(torch.float64).tiny))


def test_brier_known_values():
    probs = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]], dtype=torch.float64)
    labels = torch.tensor([0, 1, 1])
    assert M.brier(probs, labels) == pytest.approx((0.02 + 0.08 + 0.72) / 3)
    assert M.brier(torch.eye(3), torch.arange(3)) == 0.0
    assert M.brier(torch.eye(3), torch.tensor([1, 2, 0])) == 2.0


def test_perfectly_calibrated_toy_has_ece_zero():
    # In each bin the accuracy equals the confidence: 3 of 4 right at 0.75, 1 of 2 at 0.5, all right at 1.
    probs = torch.tensor([[0.75, 0.25]] * 4 + [[0.5, 0.5]] * 2 + [[0.0, 1.0]] * 3, dtype=torch.float64)
    labels = torch.tensor([0, 0, 0, 1, 0, 1, 1, 1, 1])
    assert M.ece(probs, labels) == 0.0
    r = M.reliability(probs, labels)
    assert r.counts.sum() == 9 and (r.counts > 0).sum() == 3
    assert r.edges.shape == (M.ECE_BINS + 1,)


def test_ece_known_value_and_bin_edges():
    # 0.6 lies exactly on the edge 9/15: bins are (lo, hi], so it belongs to bin 8 (8/15, 9/15].
    probs = torch.tensor([[0.9, 0.1], [0.6, 0.4]], dtype=torch.float64)
    labels = torch.tensor([0, 1])
    assert M.ece(probs, labels) == pytest.approx(0.5 * 0.1 + 0.5 * 0.6)
    r = M.reliability(probs, labels)
    assert r.counts[8] == 1 and r.counts[13] == 1
    assert M.ece(probs, labels, bins=1) == pytest.approx(abs(0.5 - 0.75))


def test_reliability_empty_bins_and_json():
    r = M.reliability(torch.tensor([[0.95, 0.05]]), torch.tensor([0]))
    assert torch.isnan(r.accuracy[0]) and r.accuracy[-1] == 1.0
    d = json.loads(json.dumps(r.to_dict()))
    assert d["accuracy"][0] is None and d["counts"][-1] == 1


def test_dense_predictions_flatten_like_rows():
    torch.manual_seed(0)
    probs = torch.softmax(torch.randn(4, 3, 5), dim=1)
    labels = torch.randint(0, 3, (4, 5))
    rows, row_labels = probs.movedim(1, -1).reshape(-1, 3), labels.reshape(-1)
    for fn in (M.nll, M.brier, M.ece):
        assert fn(probs, labels) == pytest.approx(fn(rows, row_labels)), fn.__name__


def test_auroc_known_values():
    y = torch.tensor([False, False, True, True])
    assert M.auroc(torch.tensor([0.1, 0.2, 0.3, 0.4]), y) == 1.0
    assert M.auroc(torch.tensor([0.4, 0.3, 0.2, 0.1]), y) == 0.0
    assert M.auroc(torch.zeros(4), y) == 0.5
    # Pairs (pos, neg): (0.4, 0.1) win, (0.4, 0.4) tie, (0.9, *) win: (3 + 0.5) / 4.
    assert M.auroc(torch.tensor([0.1, 0.4, 0.4, 0.9]), torch.tensor([False, True, False, True])) == 0.875


def test_auroc_of_random_scores_is_near_half():
    g = torch.Generator().manual_seed(0)
    n_pos, n_neg = 300, 700
    scores = torch.rand(n_pos + n_neg, generator=g)
    positives = torch.arange(n_pos + n_neg) < n_pos
    sigma = math.sqrt((n_pos + n_neg + 1) / (12 * n_pos * n_neg))  # Mann-Whitney null
    assert abs(M.auroc(scores, positives) - 0.5) <= 4 * sigma


def test_auroc_matches_sklearn_with_ties():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    g = torch.Generator().manual_seed(1)
    scores = torch.randint(0, 6, (500,), generator=g).double()
    positives = torch.rand(500, generator=g) < 0.3
    assert M.auroc(scores, positives) == pytest.approx(sklearn_metrics.roc_auc_score(positives.numpy(), scores.numpy()), abs=1e-12)


def test_misclassification_auroc():
    correct = torch.tensor([True, True, False, True, False])
    assert M.misclassification_auroc(torch.tensor([0.1, 0.2, 0.8, 0.3, 0.9]), correct) == 1.0
    assert M.misclassification_auroc(-torch.tensor([0.1, 0.2, 0.8, 0.3, 0.9]), correct) == 0.0


@pytest.mark.parametrize(
    "call,msg",
    [
        (lambda: M.nll(torch.ones(3), torch.zeros(3, dtype=torch.long)), r"probs must be a floating tensor of shape \(N, C, ...\)"),
        (lambda: M.nll(torch.ones(3, 2), torch.zeros(4, dtype=torch.long)), r"labels must be integers of shape \(3,\)"),
        (lambda: M.brier(torch.ones(3, 2), torch.tensor([0, 1, 2])), r"labels must lie in \[0, 2\), got values from 0 to 2"),
        (lambda: M.ece(torch.ones(2, 2), torch.ones(2)), "labels must be integers"),
        (lambda: M.ece(torch.ones(2, 2), torch.zeros(2, dtype=torch.long), bins=0), "bins must be >= 1, got 0"),
        (lambda: M.auroc(torch.ones(3), torch.ones(3, dtype=torch.bool)), "auroc needs positives and negatives, got 3 positives and 0 negatives"),
        (lambda: M.auroc(torch.tensor([0.0, math.nan]), torch.tensor([True, False])), "scores must not contain NaN"),
        (lambda: M.auroc(torch.ones(3), torch.ones(2, dtype=torch.bool)), r"scores must be real numbers with the shape of the labels \(2,\)"),
        (lambda: M.auroc(torch.ones(2), torch.ones(2)), "positives must be a bool tensor"),
    ],
)
def test_errors(call, msg):
    with pytest.raises(ValueError, match=msg):
        call()


def test_plots_write_png(tmp_path):
    pytest.importorskip("matplotlib")
    g = torch.Generator().manual_seed(0)
    probs = torch.softmax(torch.randn(200, 4, generator=g), 1)
    labels = torch.randint(0, 4, (200,), generator=g)
    M.plot_reliability({"a": M.reliability(probs, labels)}, tmp_path / "rel.png")
    score = torch.special.entr(probs).sum(1)
    M.plot_histograms({"entropy": score, "mi": score / 2}, probs.argmax(1) == labels, tmp_path / "hist.png")
    for name in ("rel.png", "hist.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
