"""Monte-Carlo dropout: predictions with uncertainty, their metrics, calibration and acquisition.

predict (mc_dropout, mc_predict), metrics (nll, brier, ece, auroc ...; numbers only),
calibration (temperature scaling) and acquisition (BALD, BatchBALD) for active learning.

Examples:
    >>> import torch, dropkit
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), dropkit.Dropout(0.5), torch.nn.Linear(8, 3))
    >>> r = dropkit.mc.mc_predict(model, torch.randn(2, 4), samples=8, seed=0)
    >>> round(dropkit.mc.nll(r.mean_probs, torch.tensor([0, 1])), 1) > 0
    True
"""

from . import acquisition as acquisition
from . import calibration as calibration
from . import metrics as metrics
from . import predict as predict
from .acquisition import batch_bald as batch_bald
from .calibration import apply_temperature as apply_temperature
from .calibration import fit_temperature as fit_temperature
from .metrics import auroc as auroc
from .metrics import brier as brier
from .metrics import ece as ece
from .metrics import misclassification_auroc as misclassification_auroc
from .metrics import nll as nll
from .metrics import reliability as reliability
from .predict import MCResult as MCResult
from .predict import mc_dropout as mc_dropout
from .predict import mc_predict as mc_predict

__all__ = [
    "acquisition",
    "calibration",
    "metrics",
    "predict",
    "batch_bald",
    "apply_temperature",
    "fit_temperature",
    "auroc",
    "brier",
    "ece",
    "misclassification_auroc",
    "nll",
    "reliability",
    "MCResult",
    "mc_dropout",
    "mc_predict",
]
