"""Dropout at scale: masks addressed by sample (not by batch split) and sharded tensors.

addressing: seeds and offsets from (base seed, layer, step, sample), so masks do not
depend on how a batch is split across processes or micro-batches. sharding: the
unsharded mask's slice for a shard (DTensor included).

Examples:
    >>> import torch, dropkit
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 4), dropkit.Dropout(0.5))
    >>> with dropkit.scale.sample_addressed(model, seed=1) as addr:
    ...     y = model(torch.ones(2, 4))
"""

from . import addressing as addressing
from . import sharding as sharding
from .addressing import sample_addressed as sample_addressed
from .sharding import shard_dropout as shard_dropout

__all__ = ["addressing", "sharding", "sample_addressed", "shard_dropout"]
