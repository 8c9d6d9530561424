"""dropkit: dropout for PyTorch with reproducible counter-based masks and fused kernels.

Examples:
    >>> import torch, dropkit
    >>> layer = dropkit.Dropout(p=0.5)
    >>> y = dropkit.functional.dropout(torch.ones(4), 0.5, seed=7)
"""

from . import functional as functional
from . import nn as nn
from . import rng as rng
from . import addressing as addressing
from . import sharding as sharding
from .addressing import sample_addressed as sample_addressed
from .functional import dropout as dropout
from .kernels import use_backend as use_backend
from .functional import keep_mask as keep_mask
from .functional import bias_dropout_add as bias_dropout_add
from .nn import Dropout as Dropout
from .nn import BiasDropoutAdd as BiasDropoutAdd
from .nn import Dropout1d as Dropout1d
from .nn import Dropout2d as Dropout2d
from .nn import Dropout3d as Dropout3d
from .nn import AlphaDropout as AlphaDropout
from .nn import FeatureAlphaDropout as FeatureAlphaDropout
from .nn import GaussianDropout as GaussianDropout
from .nn import GaussianNoise as GaussianNoise
from .nn import DropConnectLinear as DropConnectLinear
from .nn import DropPath as DropPath
from .nn import DropBlock2d as DropBlock2d
from .nn import LockedDropout as LockedDropout
from .nn import EmbeddingDropout as EmbeddingDropout
from .nn import ConcreteDropout as ConcreteDropout
from .nn import ScaledDotProductAttention as ScaledDotProductAttention
from .functional import scaled_dot_product_attention as scaled_dot_product_attention
from .control import insert_dropout as insert_dropout
from .control import replace_dropout as replace_dropout
from .control import set_dropout as set_dropout
from .control import weight_dropout as weight_dropout
from .control import fuse_activation_dropout as fuse_activation_dropout
from .nn import ReLUDropout as ReLUDropout
from .nn import GELUDropout as GELUDropout
from .schedule import DropoutSchedule as DropoutSchedule
from . import metrics as metrics
from . import uncertainty as uncertainty
from . import calibration as calibration
from . import acquisition as acquisition
from .acquisition import batch_bald as batch_bald
from .calibration import apply_temperature as apply_temperature
from .calibration import fit_temperature as fit_temperature
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

from .integrations import register_on_import as _register_on_import  # noqa: E402

_register_on_import()  # attn_implementation="dropkit" in transformers, without importing it

__all__ = [
    "functional", "nn", "rng", "addressing", "sharding", "sample_addressed", "dropout", "keep_mask", "Dropout", "use_backend", "__version__",
    "bias_dropout_add", "BiasDropoutAdd",
    "metrics", "uncertainty", "calibration", "acquisition", "batch_bald", "apply_temperature", "fit_temperature", "auroc", "brier", "ece", "misclassification_auroc", "nll", "reliability",
    "MCResult", "mc_dropout", "mc_predict",
    "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout", "GaussianDropout", "GaussianNoise", "DropConnectLinear", "DropPath", "DropBlock2d", "LockedDropout", "EmbeddingDropout", "ConcreteDropout",
    "ScaledDotProductAttention", "scaled_dot_product_attention",
    "insert_dropout", "replace_dropout", "set_dropout", "weight_dropout", "DropoutSchedule",
    "fuse_activation_dropout", "ReLUDropout", "GELUDropout",
]
