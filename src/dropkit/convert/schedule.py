"""DropoutSchedule: step the rate of a model's dropout layers like a learning-rate scheduler.

Schedules (Liu et al. 2023, "Dropout Reduces Underfitting"):
- "constant": p throughout.
- "linear": warm-up, p * step / steps, reaching p at `steps` and staying there.
- "early": p until `steps`, then 0 (early dropout: fights underfitting).
- "late": 0 until `steps`, then p (late dropout: fights overfitting).

A step is whatever the loop counts (an iteration or an epoch). Call .step()
after each one; the rate for step 0 is applied at construction.

Examples:
    >>> import torch.nn as nn
    >>> model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
    >>> sched = DropoutSchedule(model, 0.2, "early", steps=2)
    >>> [sched.step() for _ in range(3)]
    [0.2, 0.0, 0.0]
"""

from __future__ import annotations

from typing import Any

from torch import nn

from .. import _validate
from .rate import set_dropout

__all__ = ["DROPOUT_SCHEDULES", "DropoutSchedule"]

DROPOUT_SCHEDULES = ("constant", "linear", "early", "late")


def _steps(schedule: str, steps: object) -> int:
    """steps for `schedule`: "constant" ignores it (>= 0); the others divide by it or cut at it (>= 1)."""
    return (
        _validate.non_negative_int(steps, "steps") if schedule == "constant" else _validate.positive_int(steps, "steps")
    )


class DropoutSchedule:
    """Sets the rate of every dropout-family module of `model` (via dropkit.set_dropout) at each step.

    Args:
        model: the model whose dropout layers are driven.
        p: the schedule's target rate.
        schedule: one of DROPOUT_SCHEDULES.
        steps: warm-up length ("linear") or cut-off step ("early", "late"); unused by "constant".
        types: drive only dropout modules of these types (default: all).

    Examples:
        >>> sched = DropoutSchedule(nn.Dropout(), 0.1, "linear", steps=4)
        >>> sched.p, sched.step(), sched.step()
        (0.0, 0.025, 0.05)
    """

    def __init__(
        self,
        model: nn.Module,
        p: float,
        schedule: str = "constant",
        *,
        steps: int = 0,
        types: type | tuple[type, ...] | None = None,
    ) -> None:
        self.model = model
        self.target = _validate.p(p, "p")
        self.schedule = _validate.choice(schedule, DROPOUT_SCHEDULES, "schedule")
        self.steps = _steps(schedule, steps)
        self.types = types
        self.last_step = 0
        self.p = self._apply()

    @classmethod
    def from_string(cls, model: nn.Module, p: float, spec: str, **kwargs: Any) -> DropoutSchedule:
        """A schedule from "constant", "linear:STEPS", "early:STEPS" or "late:STEPS" (a command-line form).

        Examples:
            >>> DropoutSchedule.from_string(nn.Dropout(), 0.1, "late:100").steps
            100
        """
        name, steps = _validate.schedule_spec(spec, DROPOUT_SCHEDULES)
        return cls(model, p, name, steps=steps, **kwargs)

    def rate_at(self, step: int) -> float:
        """The rate the schedule gives at `step`."""
        step = _validate.non_negative_int(step, "step")
        if self.schedule == "linear":
            return self.target * min(1.0, step / self.steps)
        if self.schedule == "early":
            return self.target if step < self.steps else 0.0
        if self.schedule == "late":
            return 0.0 if step < self.steps else self.target
        return self.target

    def _apply(self) -> float:
        p = self.rate_at(self.last_step)
        set_dropout(self.model, p, types=self.types)
        return p

    def step(self) -> float:
        """Advance one step, set the rates and return the new rate."""
        self.last_step += 1
        self.p = self._apply()
        return self.p

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint needs to resume the schedule."""
        return {"p": self.target, "schedule": self.schedule, "steps": self.steps, "last_step": self.last_step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume from state_dict() output and set the model's rates accordingly."""
        target = _validate.p(state["p"], "p")
        schedule = _validate.choice(state["schedule"], DROPOUT_SCHEDULES, "schedule")
        steps = _steps(schedule, state["steps"])
        last_step = _validate.non_negative_int(state["last_step"], "last_step")
        # validated before anything is set, so a bad state leaves the schedule as it was
        self.target, self.schedule, self.steps, self.last_step = target, schedule, steps, last_step
        self.p = self._apply()

    def __repr__(self) -> str:
        return f"DropoutSchedule(p={self.target}, schedule={self.schedule!r}, steps={self.steps}, last_step={self.last_step})"
