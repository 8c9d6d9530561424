"""Temperature scaling: one scalar T, fitted on held-out data, divides the logits (Guo et al. 2017).

softmax(z / T) keeps every argmax, so accuracy is unchanged; T > 1 softens
overconfident predictions, T < 1 sharpens underconfident ones. T is fitted by
minimising the NLL of a held-out split with LBFGS, in float64. For
Monte-Carlo dropout the "logits" are the log of the MC-averaged probabilities
(`log_probs(r.mean_probs)`): softmax(log p / T) is p^(1/T) renormalised.

Logits are (N, C) or (N, C, d1, ...) with the class dimension at 1 and labels
(N,) or (N, d1, ...), as for dropkit.mc.metrics.

Example:
    >>> logits = torch.tensor([[4.0, 0.0], [0.0, 4.0], [4.0, 0.0], [0.0, 4.0]])
    >>> labels = torch.tensor([0, 1, 1, 1])   # one confident mistake: soften
    >>> t = fit_temperature(logits, labels)
    >>> round(t, 3), apply_temperature(logits, t).argmax(1).tolist()
    (3.641, [0, 1, 0, 1])
"""

from __future__ import annotations

import numpy.typing as npt
import torch
from torch import Tensor

from .. import _validate

__all__ = ["fit_temperature", "apply_temperature", "log_probs"]

_LOG_T_BOUND = 20.0  # |log T| <= 20 (T in [2e-9, 5e8]): LBFGS's line search cannot overflow exp


def _flat_logits(logits: npt.ArrayLike, labels: npt.ArrayLike) -> tuple[Tensor, Tensor]:
    """(M, C) float64 logits and (M,) labels, one row per predicted position."""
    logits, labels = _validate.probs_labels(torch.as_tensor(logits), torch.as_tensor(labels), "logits")
    if bool(torch.isnan(logits).any()) or bool(torch.isposinf(logits).any()):
        raise ValueError("logits must not contain NaN or +inf")
    c = logits.shape[1]
    return logits.movedim(1, -1).reshape(-1, c).double(), labels.reshape(-1)


def fit_temperature(logits: npt.ArrayLike, labels: npt.ArrayLike, *, max_iter: int = 100) -> float:
    """The temperature T > 0 that minimises the NLL of softmax(logits / T) on (logits, labels).

    Fits log T with LBFGS (strong-Wolfe line search) from T = 1. The NLL is
    convex in 1/T, so the minimum found is the global one. Use a held-out
    split (validation), never the test split.

    Args:
        logits: (N, C, ...) logits, or log-probabilities such as log_probs(mean_probs).
        labels: (N, ...) integer labels in [0, C).
        max_iter: LBFGS iterations (>= 1).

    Returns:
        T as a Python float.

    Example:
        >>> logits = torch.tensor([[1.0986, 0.0]] * 4)   # p = 0.75 for class 0, right 3 times in 4
        >>> round(fit_temperature(logits, torch.tensor([0, 0, 0, 1])), 3)   # already calibrated
        1.0
    """
    max_iter = _validate.positive_int(max_iter, "max_iter")
    z, y = _flat_logits(logits, labels)
    if z.shape[0] == 0:
        raise ValueError("fit_temperature needs at least one prediction, got logits with no rows")
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS(
        [log_t], lr=1.0, max_iter=max_iter, tolerance_grad=1e-12, tolerance_change=1e-14, line_search_fn="strong_wolfe"
    )

    def closure() -> Tensor:
        opt.zero_grad()
        t = log_t.clamp(-_LOG_T_BOUND, _LOG_T_BOUND).exp()
        loss = torch.nn.functional.cross_entropy(z / t, y)
        loss.backward()  # type: ignore[no-untyped-call]  # torch leaves Tensor.backward unannotated
        return loss

    opt.step(closure)  # type: ignore[no-untyped-call]  # torch leaves LBFGS.step unannotated
    return float(log_t.detach().clamp(-_LOG_T_BOUND, _LOG_T_BOUND).exp())


def apply_temperature(logits: npt.ArrayLike, temperature: float) -> Tensor:
    """softmax(logits / temperature) over the class dimension 1: calibrated probabilities.

    Example:
        >>> apply_temperature(torch.tensor([[2.0, 0.0]]), 2.0)
        tensor([[0.7311, 0.2689]])
    """
    temperature = _validate.positive(temperature, "temperature")
    logits = torch.as_tensor(logits)
    if not logits.is_floating_point() or logits.dim() < 2:
        raise ValueError(
            f"logits must be a floating tensor of shape (N, C, ...), got dtype {logits.dtype} and shape {tuple(logits.shape)}"
        )
    return torch.softmax(logits / temperature, dim=1)


def log_probs(probs: npt.ArrayLike) -> Tensor:
    """log(probs), a zero probability clamped to the dtype's smallest normal number: MC dropout's logits.

    Example:
        >>> log_probs(torch.tensor([[1.0, 0.0]], dtype=torch.float64))
        tensor([[   0.0000, -708.3964]], dtype=torch.float64)
    """
    probs = torch.as_tensor(probs)
    if not probs.is_floating_point():
        raise ValueError(f"probs must be a floating tensor, got dtype {probs.dtype}")
    return probs.clamp_min(torch.finfo(probs.dtype).tiny).log()
