"""What a training loop reports as it goes: the Progress interface, whose methods do nothing.

train.Progress re-exports it; report.RichProgress draws it as bars, and the tune command's
trials subclass it to prune and to follow. It lives alone so that both can import it:
train imports report.

Examples:
    >>> class Lines(Progress):
    ...     def log(self, message: str) -> None:
    ...         print(message)
    >>> with Lines() as progress:
    ...     progress.log("digits: 1797 examples")
    ...     progress.step("dropout", 0.5)
    digits: 1797 examples
"""

from __future__ import annotations

__all__ = ["Progress"]


class Progress:
    """What a training loop reports; subclass and override what you display (report.RichProgress does)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def log(self, message: str) -> None: ...

    def run_started(self, name: str, total_steps: int, done_steps: int) -> None: ...

    def step(self, name: str, loss: float) -> None: ...

    def epoch_done(self, name: str, record: dict) -> None: ...

    def run_done(self, name: str) -> None: ...
