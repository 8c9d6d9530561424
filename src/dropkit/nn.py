"""Drop-in nn.Module layers: each holds its options and calls one functional (both live in dropkit/family/).

Examples:
    >>> import torch.nn as nn, dropkit
    >>> model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), dropkit.nn.Dropout(p=0.5), nn.Linear(256, 10))
"""

from .family._common import DropoutBase as DropoutBase
from .family.alpha import AlphaDropout as AlphaDropout
from .family.alpha import FeatureAlphaDropout as FeatureAlphaDropout
from .family.attention import ScaledDotProductAttention as ScaledDotProductAttention
from .family.block import DropBlock2d as DropBlock2d
from .family.channel import Dropout1d as Dropout1d
from .family.channel import Dropout2d as Dropout2d
from .family.channel import Dropout3d as Dropout3d
from .family.concrete import ConcreteDropout as ConcreteDropout
from .family.connect import DropConnectLinear as DropConnectLinear
from .family.connect import WeightDropout as WeightDropout
from .family.dropout import Dropout as Dropout
from .family.dropout_linear import DropoutLinear as DropoutLinear
from .family.embedding import EmbeddingDropout as EmbeddingDropout
from .family.fused import ActivationDropout as ActivationDropout
from .family.fused import BiasDropoutAdd as BiasDropoutAdd
from .family.fused import GELUDropout as GELUDropout
from .family.fused import ReLUDropout as ReLUDropout
from .family.gaussian import GaussianDropout as GaussianDropout
from .family.gaussian import GaussianNoise as GaussianNoise
from .family.locked import LockedDropout as LockedDropout
from .family.path import DropPath as DropPath
from .family.registry import is_dropout as is_dropout
from .family.registry import kinds as _kinds
from .family.registry import make_dropout as make_dropout

__all__ = [
    "Dropout",
    "DropoutBase",
    "is_dropout",
    "Dropout1d",
    "Dropout2d",
    "Dropout3d",
    "AlphaDropout",
    "FeatureAlphaDropout",
    "GaussianDropout",
    "GaussianNoise",
    "DropConnectLinear",
    "WeightDropout",
    "DropoutLinear",
    "DropPath",
    "DropBlock2d",
    "LockedDropout",
    "EmbeddingDropout",
    "ConcreteDropout",
    "DROPOUT_KINDS",
    "make_dropout",
    "BiasDropoutAdd",
    "ScaledDotProductAttention",
    "ActivationDropout",
    "ReLUDropout",
    "GELUDropout",
]

DROPOUT_KINDS = tuple(_kinds())
"""Names make_dropout takes: the variants that act on activations and are built from one number."""
