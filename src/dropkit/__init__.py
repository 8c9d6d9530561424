"""dropkit: dropout for PyTorch with reproducible counter-based masks and fused kernels.

Examples:
    >>> import torch, dropkit
    >>> layer = dropkit.Dropout(p=0.5)
    >>> y = dropkit.functional.dropout(torch.ones(4), 0.5, seed=7)
"""

from . import _threads  # noqa: F401  first: sets the command's OpenMP wait policy before torch loads
import importlib
from types import ModuleType

from . import _moved
from . import functional as functional
from . import nn as nn
from . import rng as rng
from . import scale as scale
from .scale import sample_addressed as sample_addressed
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
from .nn import DropoutLinear as DropoutLinear
from .nn import DropPath as DropPath
from .nn import DropBlock2d as DropBlock2d
from .nn import LockedDropout as LockedDropout
from .nn import EmbeddingDropout as EmbeddingDropout
from .nn import ConcreteDropout as ConcreteDropout
from .nn import ScaledDotProductAttention as ScaledDotProductAttention
from .functional import scaled_dot_product_attention as scaled_dot_product_attention
from . import convert as convert
from .convert import insert_dropout as insert_dropout
from .convert import replace_dropout as replace_dropout
from .convert import set_dropout as set_dropout
from .convert import weight_dropout as weight_dropout
from .convert import fuse_activation_dropout as fuse_activation_dropout
from .convert import fuse_dropout_linear as fuse_dropout_linear
from .nn import ReLUDropout as ReLUDropout
from .nn import GELUDropout as GELUDropout
from .convert import DropoutSchedule as DropoutSchedule
from . import mc as mc
from .mc import batch_bald as batch_bald
from .mc import apply_temperature as apply_temperature
from .mc import fit_temperature as fit_temperature
from .mc import auroc as auroc
from .mc import brier as brier
from .mc import ece as ece
from .mc import misclassification_auroc as misclassification_auroc
from .mc import nll as nll
from .mc import reliability as reliability
from .mc import MCResult as MCResult
from .mc import mc_dropout as mc_dropout
from .mc import mc_predict as mc_predict

__version__ = "0.1.0"

_moved.install()


def __getattr__(name: str) -> ModuleType:
    # dropkit.metrics and the other moved modules, as attributes: import the old path, which warns.
    if _moved.new_name(f"{__name__}.{name}") is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return importlib.import_module(f"{__name__}.{name}")


from .convert.integrations import register_on_import as _register_on_import  # noqa: E402

_register_on_import()  # attn_implementation="dropkit" in transformers, without importing it

__all__ = [
    "functional",
    "nn",
    "rng",
    "scale",
    "sample_addressed",
    "dropout",
    "keep_mask",
    "Dropout",
    "use_backend",
    "__version__",
    "bias_dropout_add",
    "BiasDropoutAdd",
    "mc",
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
    "Dropout1d",
    "Dropout2d",
    "Dropout3d",
    "AlphaDropout",
    "FeatureAlphaDropout",
    "GaussianDropout",
    "GaussianNoise",
    "DropConnectLinear",
    "DropPath",
    "DropBlock2d",
    "LockedDropout",
    "EmbeddingDropout",
    "ConcreteDropout",
    "ScaledDotProductAttention",
    "scaled_dot_product_attention",
    "convert",
    "insert_dropout",
    "replace_dropout",
    "set_dropout",
    "weight_dropout",
    "DropoutSchedule",
    "fuse_activation_dropout",
    "ReLUDropout",
    "GELUDropout",
    "fuse_dropout_linear",
    "DropoutLinear",
]
