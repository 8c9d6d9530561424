"""dropkit: dropout for PyTorch with reproducible counter-based masks and fused kernels.

Example:
    >>> import torch, dropkit
    >>> layer = dropkit.Dropout(p=0.5)
    >>> y = dropkit.functional.dropout(torch.ones(4), 0.5, seed=7)
"""

from . import functional as functional
from . import nn as nn
from . import rng as rng
from .functional import dropout as dropout
from .functional import keep_mask as keep_mask
from .nn import Dropout as Dropout

__version__ = "0.1.0"

__all__ = ["functional", "nn", "rng", "dropout", "keep_mask", "Dropout", "__version__"]
