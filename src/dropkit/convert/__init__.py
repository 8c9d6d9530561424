"""Dropout on models that already exist: insert it, set or schedule its rate, swap in dropkit's layers.

insert (insert_dropout), rate (set_dropout), schedule (DropoutSchedule), replace
(replace_dropout), fuse (fuse_activation_dropout), weight (weight_dropout);
integrations: the glue replace_dropout uses for torch's, transformers' and timm's
attention, through each library's own extension point.

Examples:
    >>> import torch.nn as nn, dropkit
    >>> model, places = dropkit.convert.insert_dropout(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)), 0.2)
    >>> dropkit.convert.set_dropout(model, 0.1)
    ['1.1']
"""

from . import integrations as integrations
from . import schedule as schedule
from .fuse import fuse_activation_dropout as fuse_activation_dropout
from .fuse import fuse_dropout_linear as fuse_dropout_linear
from .insert import INSERT_AFTER as INSERT_AFTER
from .insert import insert_dropout as insert_dropout
from .rate import set_dropout as set_dropout
from .replace import Replaced as Replaced
from .replace import replace_dropout as replace_dropout
from .schedule import DropoutSchedule as DropoutSchedule
from .weight import weight_dropout as weight_dropout

__all__ = [
    "integrations",
    "schedule",
    "fuse_activation_dropout",
    "fuse_dropout_linear",
    "INSERT_AFTER",
    "insert_dropout",
    "set_dropout",
    "Replaced",
    "replace_dropout",
    "DropoutSchedule",
    "weight_dropout",
]
