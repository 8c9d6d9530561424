"""Temperature scaling: the fitted T is the NLL minimum, recovers a known temperature, and checks its input."""

import doctest
import math

import pytest
import torch

from dropkit.mc import calibration, metrics
from dropkit.mc.calibration import apply_temperature, fit_temperature, log_probs


def synthetic(n=4000, c=5, true_t=1.0, seed=0):
    """Logits whose labels are drawn from softmax(logits / true_t): true_t is the calibrating temperature."""
    g = torch.Generator().manual_seed(seed)
    logits = 3 * torch.randn(n, c, generator=g, dtype=torch.float64)
    labels = torch.multinomial(torch.softmax(logits / true_t, 1), 1, generator=g).squeeze(1)
    return logits, labels


def nll_at(logits, labels, t):
    return metrics.nll(apply_temperature(logits, t), labels)


def grid_nll(logits, labels, grid):
    """NLL at every temperature of the grid at once: mean of logsumexp(z / T) - z_y / T."""
    z = logits[None] / grid[:, None, None]
    return (torch.logsumexp(z, 2) - z.gather(2, labels.expand(len(grid), -1)[..., None]).squeeze(2)).mean(1)


@pytest.mark.parametrize("true_t", [0.5, 1.0, 3.0])
def test_fit_is_the_nll_minimum_of_a_grid(true_t):
    logits, labels = synthetic(n=1000, true_t=true_t)
    t = fit_temperature(logits, labels)
    grid = torch.logspace(-1, 1, 1501, dtype=torch.float64)  # ratio 1.0031 between neighbours
    losses = grid_nll(logits, labels, grid)
    best = int(losses.argmin())
    # The NLL is smooth and convex in 1/T: the fit is at least as good as every grid point (up to
    # float64 summation noise) and lies within one grid step of the best one.
    assert grid_nll(logits, labels, torch.tensor([t], dtype=torch.float64))[0] <= losses[best] + 1e-12
    assert grid[best - 1] <= t <= grid[best + 1]


def test_fit_recovers_the_generating_temperature():
    # Maximum likelihood on 5,000 draws: the standard deviation of log T over 10 seeds was 0.0096,
    # so a 10% band is about 10 of them wide, yet far from T = 1.
    logits, labels = synthetic(n=5000, true_t=3.0, seed=1)
    t = fit_temperature(logits, labels)
    assert 2.7 < t < 3.3, t


def test_scaling_keeps_argmax_and_lowers_nll_and_ece_of_overconfident_logits():
    logits, labels = synthetic(true_t=2.0, seed=2)
    t = fit_temperature(logits, labels)
    before, after = torch.softmax(logits, 1), apply_temperature(logits, t)
    assert torch.equal(before.argmax(1), after.argmax(1))  # a positive scale of each row keeps its order
    assert metrics.nll(after, labels) < metrics.nll(before, labels)
    assert metrics.ece(after, labels) < metrics.ece(before, labels)


def test_mc_log_mean_probs_are_logits_for_temperature_scaling():
    # softmax(log p / T) is p^(1/T) renormalised: at T = 1 it returns p itself.
    logits, labels = synthetic(seed=3)
    g = torch.Generator().manual_seed(4)
    samples = logits + torch.randn(20, *logits.shape, generator=g, dtype=torch.float64)
    mean_probs = torch.softmax(samples, 2).mean(0)
    torch.testing.assert_close(apply_temperature(log_probs(mean_probs), 1.0), mean_probs)  # exp, sum, divide
    t = fit_temperature(log_probs(mean_probs), labels)
    assert nll_at(log_probs(mean_probs), labels, t) <= metrics.nll(mean_probs, labels)
    powered = mean_probs ** (1 / t)
    torch.testing.assert_close(apply_temperature(log_probs(mean_probs), t), powered / powered.sum(1, keepdim=True))


def test_dense_predictions_count_every_position():
    logits, labels = synthetic(n=600, c=3, true_t=2.0, seed=5)
    dense = logits.reshape(25, 4, 6, 3).permute(0, 3, 1, 2)  # (N, C, H, W)
    t_dense = fit_temperature(dense, labels.reshape(25, 4, 6))
    t_flat = fit_temperature(logits, labels)
    torch.testing.assert_close(t_dense, t_flat)  # the same positions, summed in another order


def test_log_probs_clamps_zero():
    out = log_probs(torch.tensor([[1.0, 0.0]]))
    assert out[0, 0] == 0 and out[0, 1] == math.log(torch.finfo(torch.float32).tiny)


def test_errors_name_the_argument():
    z, y = torch.zeros(3, 2), torch.tensor([0, 1, 1])
    with pytest.raises(
        ValueError,
        match=r"logits must be a floating tensor of shape \(N, C, \.\.\.\), got dtype torch.int64 and shape \(3, 2\)",
    ):
        fit_temperature(torch.zeros(3, 2, dtype=torch.long), y)
    with pytest.raises(ValueError, match=r"labels must be integers of shape \(3,\) to match logits of shape \(3, 2\)"):
        fit_temperature(z, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="logits must not contain NaN or \\+inf"):
        fit_temperature(torch.tensor([[float("nan"), 0.0]]), torch.tensor([0]))
    with pytest.raises(ValueError, match="fit_temperature needs at least one prediction"):
        fit_temperature(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match=r"max_iter must be"):
        fit_temperature(z, y, max_iter=0)
    with pytest.raises(ValueError, match=r"temperature must be a finite float > 0, got 0.0"):
        apply_temperature(z, 0.0)
    with pytest.raises(
        ValueError,
        match=r"logits must be a floating tensor of shape \(N, C, \.\.\.\), got dtype torch.float32 and shape \(3,\)",
    ):
        apply_temperature(torch.zeros(3), 1.0)


def test_doctests():
    assert doctest.testmod(calibration, extraglobs={"torch": torch}).failed == 0
