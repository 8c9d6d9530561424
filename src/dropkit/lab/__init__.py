"""dropkit.lab: the experiment runner behind the `dropkit` command (needs the [lab] extra).

Modules: commands (the `dropkit` commands, one module each), options (an option
written once: default, help, parsing, check), settings (what defines a run, every
option of the training and active-learning commands), experiment (a training
command's runs into a locked run folder), data (IDX and digits loading), models
(MLP builder, max-norm), runs (the run folder: layout, checkpoints, load_model),
train (the training loop and multi-run experiments), progress (what the loop
reports as it goes), report (summary, tables, plots), errors (every error a user
can cause). Every such error is a LabError, which the CLI prints as one line.

Examples:
    >>> from dropkit.lab import data, train
    >>> ds = data.load("digits")
"""

from .errors import LabError as LabError

__all__ = ["LabError"]
