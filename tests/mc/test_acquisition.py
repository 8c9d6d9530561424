"""Acquisition scores: BALD, variation ratio and BatchBALD against brute-force references and baal."""

import doctest
import itertools
import math

import pytest
import torch

from dropkit.mc import acquisition
from dropkit.mc.acquisition import bald, batch_bald, joint_mutual_information, variation_ratio
from dropkit.mc.predict import MCResult


def mc_probs(t=6, n=7, c=3, seed=0, spread=2.0):
    g = torch.Generator().manual_seed(seed)
    logits = spread * torch.randn(t, n, c, generator=g, dtype=torch.float64) + 2 * torch.randn(
        1, n, c, generator=g, dtype=torch.float64
    )
    return torch.softmax(logits, 2)


def brute_joint_mi(probs, indices):
    """I(y_S; w) by enumerating every label configuration of S: H(y_S) - sum_i E_t H(y_i | t)."""
    t, _, c = probs.shape
    joint_entropy = 0.0
    for labels in itertools.product(range(c), repeat=len(indices)):
        per_pass = torch.ones(t, dtype=torch.float64)
        for i, y in zip(indices, labels):
            per_pass = per_pass * probs[:, i, y]
        q = float(per_pass.mean())
        joint_entropy -= q * math.log(q) if q > 0 else 0.0
    conditional = sum(float(-(probs[:, i] * probs[:, i].log()).sum(1).mean()) for i in indices)
    return joint_entropy - conditional


def brute_greedy(probs, k):
    chosen, scores = [], []
    for _ in range(k):
        gains = {j: brute_joint_mi(probs, chosen + [j]) for j in range(probs.shape[1]) if j not in chosen}
        best = max(gains, key=gains.get)
        chosen.append(best)
        scores.append(gains[best])
    return chosen, scores


def test_bald_is_the_brute_force_mutual_information_and_mcresult_agrees():
    probs = mc_probs()
    expected = torch.tensor([brute_joint_mi(probs, [i]) for i in range(probs.shape[1])], dtype=torch.float64)
    torch.testing.assert_close(bald(probs), expected)  # sums in another order
    r = MCResult(probs.log(), "classification")
    torch.testing.assert_close(r.bald, expected)  # softmax of log probs: a renormalisation


def test_bald_and_variation_ratio_on_dense_outputs():
    probs = torch.softmax(torch.randn(5, 2, 4, 3, 3, generator=torch.Generator().manual_seed(1)), 2)  # (T, N, C, H, W)
    assert bald(probs).shape == (2, 3, 3) and variation_ratio(probs).shape == (2, 3, 3)
    flat = probs.permute(0, 1, 3, 4, 2).reshape(5, 18, 4)
    torch.testing.assert_close(bald(probs).reshape(-1), bald(flat))  # same numbers, other layout


def test_variation_ratio_counts_votes():
    # passes vote 0, 0, 1, 2 for point 0 (mode 2 of 4) and 1, 1, 1, 1 for point 1
    votes = torch.tensor([[0, 1], [0, 1], [1, 1], [2, 1]])
    probs = torch.nn.functional.one_hot(votes, 3).double() * 0.7 + 0.1
    assert torch.equal(variation_ratio(probs), torch.tensor([0.5, 0.0], dtype=torch.float64))  # 1 - 2/4, 1 - 4/4
    assert torch.equal(MCResult(probs.log()).variation_ratio, variation_ratio(probs))


def load_baal_heuristics():
    """baal's heuristics module (baal imports torchmetrics, which imports torchvision: hence the shim)."""
    pytest.importorskip("structlog", reason="baal needs structlog (pip install --no-deps baal structlog)")
    from _helpers import torchvision_shim

    torchvision_shim.install()
    return pytest.importorskip(
        "baal.active.heuristics", reason="baal is not installed (pip install --no-deps baal structlog)"
    )


def test_bald_and_entropy_match_baal():
    heuristics = load_baal_heuristics()
    probs = mc_probs(t=20, n=50, c=10, seed=2)
    layout = probs.permute(1, 2, 0).numpy()  # baal's (B, C, T)
    # float64 sums of the same terms in another order
    torch.testing.assert_close(bald(probs), torch.from_numpy(heuristics.BALD().compute_score(layout)))
    torch.testing.assert_close(
        MCResult(probs.log()).predictive_entropy, torch.from_numpy(heuristics.Entropy().compute_score(layout))
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_batch_bald_exact_equals_brute_force_greedy(seed):
    probs = mc_probs(t=5, n=6, c=3, seed=seed)
    indices, scores = brute_greedy(probs, 4)
    r = batch_bald(probs, 4, joint_samples=3**3)  # 27 configurations: exact up to the fourth pick
    assert r.indices.tolist() == indices
    torch.testing.assert_close(r.scores, torch.tensor(scores, dtype=torch.float64))  # sums in another order


def test_batch_bald_first_pick_is_the_bald_argmax_and_scores_never_fall():
    probs = mc_probs(t=8, n=30, c=4, seed=3)
    r = batch_bald(probs, 5)
    assert int(r.indices[0]) == int(bald(probs).argmax())
    torch.testing.assert_close(r.scores[0], bald(probs).max())
    assert bool((r.scores.diff() >= -1e-12).all())  # adding a point never loses information
    assert len(set(r.indices.tolist())) == 5


def test_batch_bald_avoids_redundant_points_that_top_k_bald_takes():
    base = mc_probs(t=8, n=4, c=3, seed=4)
    votes = torch.arange(8) % 3  # point 0: confident passes that disagree, the top BALD score
    base[:, 0] = torch.nn.functional.one_hot(votes, 3).double() * 0.9 + 0.1 / 3 * 0.3
    base[:, 0] /= base[:, 0].sum(1, keepdim=True)
    probs = torch.cat([base, base[:, :1].expand(-1, 3, -1)], 1)  # points 4-6 copy point 0
    copies = {0, 4, 5, 6}
    assert set(bald(probs).topk(3).indices.tolist()) <= copies  # top-k BALD takes three copies
    r = batch_bald(probs, 3)
    assert len(copies & set(r.indices.tolist())) == 1  # one copy is all the information there is


def test_joint_mutual_information_exact_equals_brute_force():
    probs = mc_probs(t=4, n=5, c=2, seed=5)
    torch.testing.assert_close(joint_mutual_information(probs, [3, 0, 4]), brute_joint_mi(probs, [3, 0, 4]))


def test_sampled_joint_mutual_information_is_unbiased():
    # 2^6 = 64 configurations for 7 points with joint_samples = 32: the estimate samples from the fifth
    # point on. Over 40 generator seeds the mean estimate lies within 4 standard errors of the truth.
    probs = mc_probs(t=6, n=7, c=2, seed=6)
    exact = brute_joint_mi(probs, list(range(7)))
    estimates = torch.tensor(
        [
            joint_mutual_information(probs, range(7), joint_samples=32, generator=torch.Generator().manual_seed(s))
            for s in range(40)
        ],
        dtype=torch.float64,
    )
    se = float(estimates.std() / math.sqrt(len(estimates)))
    assert abs(float(estimates.mean()) - exact) < 4 * se, (float(estimates.mean()), exact, se)
    assert float(estimates.std()) > 0  # it did sample


def test_sampled_batch_bald_is_reproducible_and_close_to_exact():
    probs = mc_probs(t=10, n=40, c=3, seed=7)
    first = batch_bald(probs, 6, joint_samples=200, generator=torch.Generator().manual_seed(0))
    again = batch_bald(probs, 6, joint_samples=200, generator=torch.Generator().manual_seed(0))
    assert torch.equal(first.indices, again.indices) and torch.equal(first.scores, again.scores)  # same draws
    exact = [brute_joint_mi(probs, first.indices[: n + 1].tolist()) for n in range(6)]
    # exact for the first 5 picks (3^4 = 81 <= 200); the last is a 200-sample estimate
    torch.testing.assert_close(first.scores[:5], torch.tensor(exact[:5], dtype=torch.float64))
    assert abs(float(first.scores[5]) - exact[5]) < 0.1 * exact[5]


def test_errors_name_the_argument():
    probs = mc_probs()
    with pytest.raises(
        ValueError,
        match=r"probs must be a floating tensor of shape \(T, N, C\), got dtype torch.float64 and shape \(6, 7, 3, 1\)",
    ):
        batch_bald(probs[..., None], 2)
    with pytest.raises(
        ValueError,
        match=r"probs must be a floating tensor of shape \(T, N, C, \.\.\.\), got dtype torch.int64 and shape \(2, 3\)",
    ):
        bald(torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"k must be at most the number of candidates N = 7, got 8"):
        batch_bald(probs, 8)
    with pytest.raises(ValueError, match=r"k must be"):
        batch_bald(probs, 0)
    with pytest.raises(ValueError, match=r"joint_samples must be"):
        batch_bald(probs, 2, joint_samples=0)
    with pytest.raises(ValueError, match=r"indices must be distinct candidate indices in \[0, 7\), got \[1, 1\]"):
        joint_mutual_information(probs, [1, 1])


def test_doctests():
    assert doctest.testmod(acquisition, extraglobs={"torch": torch}).failed == 0
