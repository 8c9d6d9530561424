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
from . import metrics as metrics
from . import uncertainty as uncertainty
from .metrics import auroc as auroc
from .metrics import brier as brier
from .metrics import ece as ece
from .metrics import misclassification_auroc as misclassification_auroc
from .metrics import nll as nll
from .metrics import reliability as reliability
from .uncertainty import MCResult as MCResult
from .uncertainty import mc_dropout as mc_dropout
from .uncertainty import mc_predict as mc_predict

__version__ = "0.1.0"

__all__ = [
    "functional", "nn", "rng", "dropout", "keep_mask", "Dropout", "__version__",
    "metrics", "uncertainty", "auroc", "brier", "ece", "misclassification_auroc", "nll", "reliability",
    "MCResult", "mc_dropout", "mc_predict",
]
