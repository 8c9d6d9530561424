"""Calibration and ranking metrics against hand-computed values and scikit-learn."""

import json
import math

import pytest
import torch
from torch.overrides import TorchFunctionMode

from dropkit.mc import metrics as M


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
    # 0.6 lies exactly on the edge 9/15: bins are [lo, hi), as torchmetrics', so it belongs to bin 9.
    probs = torch.tensor([[0.9, 0.1], [0.6, 0.4]], dtype=torch.float64)
    labels = torch.tensor([0, 1])
    assert M.ece(probs, labels) == pytest.approx(0.5 * 0.1 + 0.5 * 0.6)
    r = M.reliability(probs, labels)
    assert r.counts[9] == 1 and r.counts[13] == 1
    assert M.ece(probs, labels, bins=1) == pytest.approx(abs(0.5 - 0.75))


def _torchmetrics_ece(probs, labels, bins):
    from _helpers import torchvision_shim

    torchvision_shim.install()  # torchmetrics imports torchvision where it is installed
    tm = pytest.importorskip("torchmetrics.functional.classification", reason="torchmetrics is a dev dependency")
    return float(tm.multiclass_calibration_error(probs, labels, num_classes=probs.shape[1], n_bins=bins, norm="l1"))


@pytest.mark.parametrize(
    "confidences, labels, ours_before",
    [
        ([0.6, 0.6, 0.62], [0, 1, 1], 0.193),  # two on the edge 9/15, one inside its bin
        ([1.0, 0.9, 0.95, 0.99], [0, 1, 0, 0], 0.470),  # a confidence of exactly 1 gets its own bin
        ([0.2 + k / 15 for k in range(12)], [0] * 6 + [1] * 6, None),  # every one on an edge
    ],
)
def test_ece_equals_torchmetrics_at_bin_edges(confidences, labels, ours_before):
    conf = torch.tensor(confidences)
    probs = torch.stack([conf, 1 - conf], 1)
    labels = torch.tensor(labels)
    expected = _torchmetrics_ece(probs, labels, M.ECE_BINS)
    assert M.ece(probs, labels) == pytest.approx(expected, abs=1e-6)
    assert M.ece(probs.double(), labels) == pytest.approx(expected, abs=1e-6)
    if ours_before is not None:  # what the (lo, hi] bins gave: the case is a real edge case
        assert abs(expected - ours_before) > 0.05


@pytest.mark.parametrize("bins", [1, 10, 15])
def test_ece_equals_torchmetrics_on_random_predictions(bins):
    torch.manual_seed(bins)
    probs = torch.softmax(torch.randn(2000, 10) * 3, dim=1)
    labels = torch.randint(0, 10, (2000,))
    assert M.ece(probs, labels, bins) == pytest.approx(_torchmetrics_ece(probs, labels, bins), abs=1e-6)


def test_reliability_empty_bins_and_json():
    r = M.reliability(torch.tensor([[0.95, 0.05]]), torch.tensor([0]))
    assert torch.isnan(r.accuracy[0]) and r.accuracy[M.ECE_BINS - 1] == 1.0
    assert torch.isnan(r.accuracy[-1])  # the bin of confidences of exactly 1 is empty
    d = json.loads(json.dumps(r.to_dict()))
    assert d["accuracy"][0] is None and d["counts"][M.ECE_BINS - 1] == 1 and len(d["counts"]) == M.ECE_BINS + 1


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
    assert M.auroc(scores, positives) == pytest.approx(
        sklearn_metrics.roc_auc_score(positives.numpy(), scores.numpy()), abs=1e-12
    )


@pytest.mark.parametrize("tpr", [0.95, 0.8, 0.5])
def test_fpr_at_tpr_matches_sklearn_roc_curve(tpr):
    from sklearn.metrics import roc_curve

    g = torch.Generator().manual_seed(3)
    scores = torch.randint(0, 30, (400,), generator=g).double()  # many ties
    positives = torch.rand(400, generator=g) < 0.3 + scores / 100
    fpr, tpr_curve, _ = roc_curve(positives.numpy(), scores.numpy(), drop_intermediate=False)
    expected = float(fpr[(tpr_curve >= tpr - 1e-12).argmax()])  # the first threshold reaching the TPR
    assert M.fpr_at_tpr(scores, positives, tpr) == pytest.approx(expected, abs=1e-15)  # counts over the same set


def test_fpr_at_tpr_errors():
    with pytest.raises(
        ValueError, match="fpr_at_tpr needs positives, negatives and tpr > 0, got 0 positives, 2 negatives, tpr 0.95"
    ):
        M.fpr_at_tpr(torch.tensor([0.1, 0.2]), torch.tensor([False, False]))
    with pytest.raises(ValueError, match="tpr must be between 0 and 1, got 1.5"):
        M.fpr_at_tpr(torch.tensor([0.1, 0.2]), torch.tensor([True, False]), 1.5)


def test_misclassification_auroc():
    correct = torch.tensor([True, True, False, True, False])
    assert M.misclassification_auroc(torch.tensor([0.1, 0.2, 0.8, 0.3, 0.9]), correct) == 1.0
    assert M.misclassification_auroc(-torch.tensor([0.1, 0.2, 0.8, 0.3, 0.9]), correct) == 0.0


@pytest.mark.parametrize(
    "call,msg",
    [
        (
            lambda: M.nll(torch.ones(3), torch.zeros(3, dtype=torch.long)),
            r"probs must be a floating tensor of shape \(N, C, ...\)",
        ),
        (lambda: M.nll(torch.ones(3, 2), torch.zeros(4, dtype=torch.long)), r"labels must be integers of shape \(3,\)"),
        (
            lambda: M.brier(torch.ones(3, 2), torch.tensor([0, 1, 2])),
            r"labels must lie in \[0, 2\), got values from 0 to 2",
        ),
        (lambda: M.ece(torch.ones(2, 2), torch.ones(2)), "labels must be integers"),
        (lambda: M.ece(torch.ones(2, 2), torch.zeros(2, dtype=torch.long), bins=0), "bins must be >= 1, got 0"),
        (
            lambda: M.auroc(torch.ones(3), torch.ones(3, dtype=torch.bool)),
            "auroc needs positives and negatives, got 3 positives and 0 negatives",
        ),
        (lambda: M.auroc(torch.tensor([0.0, math.nan]), torch.tensor([True, False])), "scores must not contain NaN"),
        (
            lambda: M.auroc(torch.ones(3), torch.ones(2, dtype=torch.bool)),
            r"scores must be real numbers with the shape of the labels \(2,\)",
        ),
        (lambda: M.auroc(torch.ones(2), torch.ones(2)), "positives must be a bool tensor"),
    ],
)
def test_errors(call, msg):
    with pytest.raises(ValueError, match=msg):
        call()


def test_reliability_and_ece_stay_on_the_input_device(device):
    g = torch.Generator().manual_seed(2)
    probs = torch.softmax(torch.randn(300, 5, generator=g), 1)
    labels = torch.randint(0, 5, (300,), generator=g)
    on_cpu = M.reliability(probs, labels)
    r = M.reliability(probs.to(device), labels.to(device))
    for field in ("edges", "counts", "accuracy", "confidence"):
        value = getattr(r, field)
        assert value.device == device, field
        assert torch.equal(value.cpu().nan_to_num(-1.0), getattr(on_cpu, field).nan_to_num(-1.0)), field
    assert M.ece(probs.to(device), labels.to(device)) == on_cpu.ece
    assert r.to_dict() == on_cpu.to_dict()


class _FactoryCalls(TorchFunctionMode):
    """Records the tensor factories called without a device: they make CPU tensors whatever the input's device."""

    FACTORIES = {"zeros", "ones", "empty", "full", "linspace", "logspace", "arange", "eye", "rand", "randn", "tensor"}

    def __init__(self):
        super().__init__()
        self.without_device = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if getattr(func, "__name__", "") in self.FACTORIES and kwargs.get("device") is None:
            self.without_device.append(func.__name__)
        return func(*args, **kwargs)


def test_reliability_creates_no_tensor_on_a_fixed_device():
    # The device test above needs CUDA to fail; this one fails on any machine if a tensor is built on the CPU.
    probs, labels = torch.tensor([[0.9, 0.1], [0.6, 0.4]]), torch.tensor([0, 1])
    with _FactoryCalls() as calls:
        M.reliability(probs, labels)
        M.ece(probs, labels)
    assert calls.without_device == []


def test_metrics_does_not_import_the_lab_or_matplotlib():
    import subprocess
    import sys

    code = "import sys, dropkit.mc.metrics; print(sorted(m for m in ('dropkit.lab', 'matplotlib') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
