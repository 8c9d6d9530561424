"""Count the dropout that torch itself executes: what ran, not what was replaced.

A TorchFunctionMode sees every call of torch's functional dropouts and of
scaled_dot_product_attention; an SDPA call counts when its dropout_p > 0, and
multi_head_attention_forward (whose inner calls the mode does not see) when it drops.
dropkit's own dropout runs in its custom ops and never reaches these functions.
"""

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

_DROPOUTS = {
    F.dropout, F.dropout1d, F.dropout2d, F.dropout3d, F.alpha_dropout, F.feature_alpha_dropout,
    torch.dropout, torch.alpha_dropout, torch.feature_dropout, torch.feature_alpha_dropout, torch.bernoulli,
}  # fmt: skip


class TorchDropouts(TorchFunctionMode):
    """with TorchDropouts() as seen: ...; seen.calls lists the names of torch's dropout calls that dropped."""

    def __init__(self):
        super().__init__()
        self.calls: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _DROPOUTS:
            p = args[1] if len(args) > 1 else kwargs.get("p", 0.5)
            training = args[2] if len(args) > 2 else kwargs.get("training", True)
            if func is torch.bernoulli or (training and p > 0):
                self.calls.append(func.__name__)
        elif func is F.multi_head_attention_forward:
            p = args[10] if len(args) > 10 else kwargs["dropout_p"]
            if p > 0 and (args[13] if len(args) > 13 else kwargs.get("training", True)):
                self.calls.append(func.__name__)
        elif func is F.scaled_dot_product_attention:
            p = args[4] if len(args) > 4 else kwargs.get("dropout_p", 0.0)
            if p > 0:
                self.calls.append(func.__name__)
        return func(*args, **kwargs)
