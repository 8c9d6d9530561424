"""torch.library custom ops, with fake (meta) kernels and autograd formulas.

torch.compile(fullgraph=True) traces through them without a graph break.
Seeds travel as int64 scalar tensors (ops.seed), offsets as int64, both
holding uint64 bits (rng.to_int64).

Examples:
    >>> import torch, dropkit
    >>> torch.ops.dropkit.dropout(torch.ones(4), torch.tensor(7), 0, 0.5)
    tensor([2., 2., 0., 0.])
"""

from .alpha import alpha_dropout as alpha_dropout
from .alpha import alpha_transform as alpha_transform
from .attention import attention as attention
from .attention import attention_backward as attention_backward
from .block import drop_block2d as drop_block2d
from .concrete import concrete_dropout as concrete_dropout
from .dropout import apply_dropout as apply_dropout
from .dropout import dropout as dropout
from .dropout import dropout_ as dropout_
from .dropout import dropout_bitpacked as dropout_bitpacked
from .dropout import dropout_from_bits as dropout_from_bits
from .dropout import keep_mask as keep_mask
from .dropout_linear import apply_dropout_linear as apply_dropout_linear
from .dropout_linear import dropout_linear as dropout_linear
from .dropout_linear import dropout_linear_backward as dropout_linear_backward
from .fused import activation_dropout as activation_dropout
from .fused import apply_activation_dropout as apply_activation_dropout
from .fused import apply_bias_dropout_add as apply_bias_dropout_add
from .fused import bias_dropout_add as bias_dropout_add
from .fused import bias_dropout_add_backward as bias_dropout_add_backward
from .fused import relu_dropout_backward as relu_dropout_backward
from .gaussian import gaussian as gaussian
from .mask import apply_keep_mask as apply_keep_mask
from .mask import keep_mask_op as keep_mask_op
from .noise import apply as apply_noise
from .seed import seed_tensor as seed_tensor
from .seed import seed_value as seed_value

__all__ = [
    "attention",
    "attention_backward",
    "apply_dropout",
    "dropout",
    "dropout_",
    "dropout_bitpacked",
    "dropout_from_bits",
    "keep_mask",
    "activation_dropout",
    "apply_activation_dropout",
    "relu_dropout_backward",
    "apply_dropout_linear",
    "dropout_linear",
    "dropout_linear_backward",
    "apply_bias_dropout_add",
    "bias_dropout_add",
    "bias_dropout_add_backward",
    "seed_tensor",
    "seed_value",
    "concrete_dropout",
    "alpha_dropout",
    "alpha_transform",
    "drop_block2d",
    "gaussian",
    "apply_keep_mask",
    "keep_mask_op",
    "apply_noise",
]
