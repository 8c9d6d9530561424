"""The functions of dropkit: explicit re-exports of each variant's function from its file in dropkit/family/.

Inverted dropout: in training each element is kept with probability 1-p and
scaled by 1/(1-p), so expectations match eval mode, where nothing changes.
Which elements are kept is a pure function of (seed, offset, index): see
docs/mask-spec.md.

Examples:
    >>> import torch, dropkit.functional as DF
    >>> DF.dropout(torch.ones(6), 0.5, seed=7)
    tensor([2., 2., 0., 0., 0., 2.])
"""

from __future__ import annotations

from .family.alpha import alpha_dropout as alpha_dropout
from .family.alpha import feature_alpha_dropout as feature_alpha_dropout
from .family.attention import attention_keep_mask as attention_keep_mask
from .family.attention import scaled_dot_product_attention as scaled_dot_product_attention
from .family.block import drop_block2d as drop_block2d
from .family.channel import dropout1d as dropout1d
from .family.channel import dropout2d as dropout2d
from .family.channel import dropout3d as dropout3d
from .family.concrete import concrete_dropout as concrete_dropout
from .family.connect import drop_connect as drop_connect
from .family.connect import drop_connect_linear as drop_connect_linear

# The order here is free: the registry (dropkit.family.registry) sorts what it finds.
from .family.dropout import BACKWARD_MODES as BACKWARD_MODES
from .family.dropout import dropout as dropout
from .family.dropout import keep_mask as keep_mask
from .family.dropout_linear import dropout_linear as dropout_linear
from .family.embedding import embedding_dropout as embedding_dropout
from .family.fused import activation_dropout as activation_dropout
from .family.fused import bias_dropout_add as bias_dropout_add
from .family.gaussian import gaussian_dropout as gaussian_dropout
from .family.gaussian import gaussian_noise as gaussian_noise
from .family.locked import locked_dropout as locked_dropout
from .family.path import drop_path as drop_path

__all__ = [
    "dropout",
    "bias_dropout_add",
    "activation_dropout",
    "keep_mask",
    "BACKWARD_MODES",
    "alpha_dropout",
    "feature_alpha_dropout",
    "drop_block2d",
    "dropout1d",
    "dropout2d",
    "dropout3d",
    "concrete_dropout",
    "drop_connect",
    "drop_connect_linear",
    "dropout_linear",
    "embedding_dropout",
    "gaussian_dropout",
    "gaussian_noise",
    "locked_dropout",
    "drop_path",
    "scaled_dot_product_attention",
    "attention_keep_mask",
]
