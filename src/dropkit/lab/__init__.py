"""dropkit.lab: the experiment runner behind the `dropkit` command (needs the [lab] extra).

Modules: data (IDX and digits loading), models (MLP builder, max-norm), settings
(what defines a run), runs (the run folder: layout, checkpoints, load_model),
train (the training loop and multi-run experiments), report (summary, tables,
plots), errors (every error a user can cause). Every such error is a LabError,
which the CLI prints as one line.

Examples:
    >>> from dropkit.lab import data, train
    >>> ds = data.load("digits")
"""

from .errors import LabError as LabError

__all__ = ["LabError"]
