"""Dropout on models that already exist: insert it, set or schedule its rate, swap in dropkit's layers.

control: insert_dropout, set_dropout, replace_dropout, fuse_activation_dropout,
weight_dropout. schedule: DropoutSchedule. integrations: the glue replace_dropout uses
for torch's, transformers' and timm's attention, through each library's own extension point.

Examples:
    >>> import torch.nn as nn, dropkit
    >>> model, report = dropkit.convert.replace_dropout(nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.1)))
    >>> report
    Replaced({'Dropout': 1})
"""

from . import control as control
from . import integrations as integrations
from . import schedule as schedule
from .control import fuse_activation_dropout as fuse_activation_dropout
from .control import insert_dropout as insert_dropout
from .control import replace_dropout as replace_dropout
from .control import set_dropout as set_dropout
from .control import weight_dropout as weight_dropout
from .schedule import DropoutSchedule as DropoutSchedule

__all__ = [
    "control", "integrations", "schedule",
    "fuse_activation_dropout", "insert_dropout", "replace_dropout", "set_dropout", "weight_dropout",
    "DropoutSchedule",
]
