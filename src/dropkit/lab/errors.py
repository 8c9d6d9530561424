"""Every error a user of the lab can cause, in one place: the CLI prints a LabError as one line, exit status 2.

Examples:
    >>> issubclass(DataError, LabError) and issubclass(Interrupted, LabError)
    True
"""

__all__ = ["LabError", "DataError", "SettingsError", "RunFolderError", "Interrupted", "Diverged"]


class LabError(Exception):
    """An error caused by the user's input or files: the CLI prints it as one line, exit status 2."""


class DataError(LabError):
    """A data set is missing, truncated, corrupt or inconsistent."""


class SettingsError(LabError):
    """A training setting is out of range or inconsistent with another."""


class RunFolderError(LabError):
    """The run folder cannot be used as asked (not empty, no run to resume, unknown run, unreadable checkpoint)."""


class Interrupted(LabError):
    """Training stopped on Ctrl-C after saving a checkpoint; resume continues exactly from it."""


class Diverged(LabError):
    """Training stopped at a non-finite loss or weights; the last finite checkpoint is kept for a --resume.

    Attributes:
        epoch, step: where it diverged, both counted from 1.
    """

    def __init__(self, message: str, *, epoch: int, step: int):
        super().__init__(message)
        self.epoch, self.step = epoch, step
