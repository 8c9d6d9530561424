"""Acquisition scores for active learning from MC-dropout class probabilities.

Probabilities are (T, N, C) (or (T, N, C, ...) for the per-point scores): T
stochastic passes, N candidate points, C classes, entropies in nats.

- `bald`: the mutual information between a point's label and the weights,
  H[mean_t p_t] - mean_t H[p_t] (Houlsby et al. 2011; Gal et al. 2017).
- `variation_ratio`: 1 - (passes that vote for the modal class) / T (Freeman 1965).
- `batch_bald`: greedy BatchBALD (Kirsch et al. 2019): picks k points that
  maximise the mutual information between their *joint* labels and the weights,
  so a batch does not fill up with near-copies of one uncertain point. It needs
  consistent samples: pass t must be the same thinned network for every
  candidate (`mc_predict(..., consistent=True)`).

Example:
    >>> probs = torch.tensor([[[0.9, 0.1], [0.5, 0.5]], [[0.1, 0.9], [0.5, 0.5]]])   # (T=2, N=2, C=2)
    >>> bald(probs)          # point 0: the passes disagree; point 1: both unsure in the same way
    tensor([0.3681, 0.0000])
    >>> variation_ratio(probs)   # point 1's passes both pick class 0
    tensor([0.5000, 0.0000])
"""

from __future__ import annotations

import dataclasses

import numpy.typing as npt
import torch
from torch import Tensor

from .. import _validate

__all__ = ["entropy", "bald", "variation_ratio", "batch_bald", "joint_mutual_information", "BatchBALD", "JOINT_SAMPLES"]

# Label configurations of the chosen points: enumerated exactly while C^n is at most this, sampled
# (this many, from the MC mixture) beyond. About 40000 / C for C = 10, the size Kirsch et al.'s
# code suggests; k = 10 over 1,000 candidates at T = 50 takes 5.2 CPU seconds
# (benchmarks/bench_acquisition.py).
JOINT_SAMPLES = 4096
_BLOCK_ELEMENTS = 2**22
_NEGLIGIBLE = -69.0  # log(1e-30)  # configurations x candidates x classes per matmul block (32 MiB of float64)


def entropy(probs: Tensor, dim: int) -> Tensor:
    """Entropy in nats of the distributions `probs` along `dim`; zero probabilities add nothing (not NaN).

    Examples:
        >>> entropy(torch.tensor([[0.5, 0.5], [1.0, 0.0]]), 1)
        tensor([0.6931, 0.0000])
    """
    entr: Tensor = torch.special.entr(probs)  # torch.special.entr is untyped in torch
    return entr.sum(dim)


def _probs(probs: npt.ArrayLike, name: str = "probs", dense: bool = True) -> Tensor:
    probs = torch.as_tensor(probs)
    if not probs.is_floating_point() or probs.dim() < 3 or (not dense and probs.dim() != 3):
        layout = "(T, N, C, ...)" if dense else "(T, N, C)"
        raise ValueError(
            f"{name} must be a floating tensor of shape {layout}, got dtype {probs.dtype} and shape {tuple(probs.shape)}"
        )
    return probs


def bald(probs: npt.ArrayLike) -> Tensor:
    """(N, ...) BALD: mutual information between label and weights, H[mean p] - mean H[p], clamped at 0.

    Example:
        >>> bald(torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]]))   # two confident passes that disagree
        tensor([0.6931])
    """
    probs = _probs(probs)
    # Mathematically >= 0 (Jensen); rounding can leave -1e-8.
    return (entropy(probs.mean(0), 1) - entropy(probs, 2).mean(0)).clamp_min(0)


def variation_ratio(probs: npt.ArrayLike) -> Tensor:
    """(N, ...) 1 - f/T, f the number of passes whose top class is the modal one: 0 when all passes agree.

    Example:
        >>> variation_ratio(torch.tensor([[[0.6, 0.4]], [[0.7, 0.3]], [[0.2, 0.8]]]))
        tensor([0.3333])
    """
    probs = _probs(probs)
    votes = torch.nn.functional.one_hot(probs.argmax(2), probs.shape[2]).sum(0)  # (N, ..., C)
    return 1 - votes.amax(-1).to(probs.dtype) / probs.shape[0]


@dataclasses.dataclass(frozen=True)
class BatchBALD:
    """The points greedy BatchBALD picked, in order, and the joint score after each pick.

    Attributes:
        indices: (k,) int64 candidate indices, in the order they were picked.
        scores: (k,) float64: scores[n] is the joint mutual information of indices[: n + 1]
            (exact or estimated, see batch_bald); scores[0] is the first point's BALD.
    """

    indices: Tensor
    scores: Tensor


class _Configurations:
    """The label configurations of the chosen points and P(config | pass t), enumerated or sampled.

    rows[m, t] is P(y_m | pass t) divided by a per-row scale; the joint entropy of
    the chosen points and a candidate is -sum_m weight[m] sum_c J log J - constant,
    J[m, c] = mean_t rows[m, t] p[t, j, c]. Enumerated: weight 1, constant 0.
    Sampled (M configurations drawn from the MC mixture: a pass t_m, then each label
    from p[t_m]): the importance-weighted estimate of Kirsch et al. 2019, with
    weight[m] = 1 / (M q_m), q_m = mean_t rows[m, t], and the row scales in the constant.
    """

    def __init__(self, probs: Tensor, limit: int, generator: torch.Generator | None):
        self.p, self.limit, self.generator = probs, limit, generator
        t = probs.shape[0]
        self.rows = torch.ones(1, t, dtype=probs.dtype, device=probs.device)
        self.weight = torch.ones(1, dtype=probs.dtype, device=probs.device)
        self.constant = 0.0
        self.chosen: list[int] = []
        self.passes: Tensor | None = None  # (M,) the pass each sampled configuration was drawn from
        self.log_rows: Tensor | None = None  # (M, T) log P(y_m | pass t), unscaled

    def add(self, j: int) -> None:
        t, _, c = self.p.shape
        self.chosen.append(j)
        if self.passes is None and c ** len(self.chosen) <= self.limit:
            self.rows = (self.rows[:, None, :] * self.p[:, j, :].T[None]).reshape(-1, t)
            self.weight = torch.ones(self.rows.shape[0], dtype=self.p.dtype, device=self.p.device)
            return
        if self.passes is None:
            self.passes = torch.randint(t, (self.limit,), generator=self.generator, device=self.p.device)
            self.log_rows = torch.zeros(self.limit, t, dtype=self.p.dtype, device=self.p.device)
            new = self.chosen
        else:
            new = [j]
        assert self.log_rows is not None  # set together with self.passes, just above or on an earlier call
        for i in new:
            # inverse-CDF draw of y_m ~ p[t_m, i] (clamped: rounding can leave the last cumsum below u)
            u = torch.rand(self.limit, 1, dtype=self.p.dtype, generator=self.generator, device=self.p.device)
            labels = (self.p[self.passes, i, :].cumsum(1) < u).sum(1).clamp_max(c - 1)
            self.log_rows += self.p[:, i, :].T[labels].log()  # (M, T): log p[t, i, y_m]
        scale = self.log_rows.amax(1, keepdim=True)  # finite: y_m has probability > 0 under pass t_m
        # Passes below 1e-30 of a row's largest add nothing to its entropy terms, and as denormals
        # they would slow the matmul and the logs tenfold.
        diff = self.log_rows - scale
        self.rows = torch.where(diff > _NEGLIGIBLE, diff.exp(), 0.0)
        m = self.rows.shape[0]
        self.weight = 1 / (m * self.rows.mean(1))
        self.constant = float(scale.sum()) / m

    def joint_entropy(self, candidates: Tensor) -> Tensor:
        """(len(candidates),) H(y_chosen, y_j) for each candidate j."""
        t, _, c = self.p.shape
        m = self.rows.shape[0]
        out = []
        block = max(1, _BLOCK_ELEMENTS // (m * c))
        for start in range(0, len(candidates), block):
            idx = candidates[start : start + block]
            joint = (self.rows / t) @ self.p[:, idx, :].reshape(t, -1)  # (M, candidates * C)
            jlogj = joint.clamp_min(torch.finfo(joint.dtype).tiny).log_().mul_(joint)  # 0 log 0 = 0
            out.append(-(self.weight @ jlogj).reshape(len(idx), c).sum(1) - self.constant)
        return torch.cat(out) if out else self.p.new_zeros(0)


def _check(probs: npt.ArrayLike, joint_samples: int) -> tuple[Tensor, int]:
    probs = _probs(probs, dense=False).double()
    joint_samples = _validate.positive_int(joint_samples, "joint_samples")
    return probs, joint_samples


def batch_bald(
    probs: npt.ArrayLike, k: int, *, joint_samples: int = JOINT_SAMPLES, generator: torch.Generator | None = None
) -> BatchBALD:
    """Greedy BatchBALD: k points whose joint labels carry the most information about the weights.

    Step n adds the candidate j maximising I(y_1, ..., y_{n-1}, y_j; w) =
    H(y_1, ..., y_j) - sum_i E_t H(y_i | pass t) (Kirsch et al. 2019, algorithm 1).
    The joint entropy is exact while the chosen points have at most
    `joint_samples` label configurations (C^(n-1)), and estimated from
    `joint_samples` configurations sampled from the MC mixture beyond that.
    Computed in float64.

    Args:
        probs: (T, N, C) class probabilities of T consistent MC passes over N candidates.
        k: points to pick, 1 <= k <= N.
        joint_samples: the enumeration limit and sample size M.
        generator: torch.Generator for the sampled configurations.

    Returns:
        BatchBALD(indices, scores).

    Example:
        >>> probs = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [0.9, 0.1]], [[1.0, 0.0], [1.0, 0.0], [0.1, 0.9]],
        ...                       [[0.0, 1.0], [0.0, 1.0], [0.9, 0.1]], [[0.0, 1.0], [0.0, 1.0], [0.1, 0.9]]])
        >>> bald(probs)   # the top two by BALD are points 0 and 1, which tell the same thing
        tensor([0.6931, 0.6931, 0.3681])
        >>> batch_bald(probs, 2).indices
        tensor([0, 2])
    """
    probs, joint_samples = _check(probs, joint_samples)
    n = probs.shape[1]
    k = _validate.positive_int(k, "k")
    if k > n:
        raise ValueError(f"k must be at most the number of candidates N = {n}, got {k}")
    conditional = entropy(probs, 2).mean(0)  # (N,) E_t H(y_j | pass t)
    configs = _Configurations(probs, joint_samples, generator)
    available = torch.ones(n, dtype=torch.bool, device=probs.device)
    indices, scores = [], []
    spent = 0.0
    for _ in range(k):
        candidates = available.nonzero().squeeze(1)
        gain = configs.joint_entropy(candidates) - conditional[candidates] - spent
        best = int(gain.argmax())
        j = int(candidates[best])
        indices.append(j)
        scores.append(float(gain[best]))
        spent += float(conditional[j])
        available[j] = False
        if len(indices) < k:
            configs.add(j)
    return BatchBALD(torch.tensor(indices, dtype=torch.int64), torch.tensor(scores, dtype=torch.float64))


def joint_mutual_information(
    probs: npt.ArrayLike,
    indices: npt.ArrayLike,
    *,
    joint_samples: int = JOINT_SAMPLES,
    generator: torch.Generator | None = None,
) -> float:
    """I(y_i for i in indices; w): the BatchBALD score of a given set, exact or estimated as in batch_bald.

    Example:
        >>> probs = torch.tensor([[[1.0, 0.0], [1.0, 0.0]], [[0.0, 1.0], [0.0, 1.0]]])
        >>> round(joint_mutual_information(probs, [0, 1]), 4)   # two copies: one bit's worth, log 2
        0.6931
    """
    probs, joint_samples = _check(probs, joint_samples)
    indices = [int(i) for i in torch.as_tensor(indices).reshape(-1).tolist()]
    n = probs.shape[1]
    if not indices or len(set(indices)) != len(indices) or not all(0 <= i < n for i in indices):
        raise ValueError(f"indices must be distinct candidate indices in [0, {n}), got {indices}")
    configs = _Configurations(probs, joint_samples, generator)
    for i in indices[:-1]:
        configs.add(i)
    joint = configs.joint_entropy(torch.tensor(indices[-1:], device=probs.device))
    return float(joint[0] - entropy(probs[:, indices, :], 2).mean(0).sum())
