"""dropkit.lab: the experiment runner behind the `dropkit` command (needs the [lab] extra).

Modules: data (IDX and digits loading), models (MLP builder, max-norm), train
(settings, training loop, checkpoints, resume), report (summary, tables, plots).
Every error a user can cause is a LabError, which the CLI prints as one line.

Examples:
    >>> from dropkit.lab import data, train
    >>> ds = data.load("digits")
"""


class LabError(Exception):
    """An error caused by the user's input or files: the CLI prints it as one line, exit status 2."""


__all__ = ["LabError"]
