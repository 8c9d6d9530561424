"""What every kernel backend provides: the contracts the switch in dropkit.kernels hands out.

A backend is a set of modules whose functions match these Protocols; FILES names them, and both the
switch and tests/kernels/test_backend.py (names and parameters of every module FILES lists) read it.
All of them compute the mask spec bit for bit; inputs are contiguous unless a contract says otherwise.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

__all__ = ["Activation", "ACTIVATIONS", "ACTIVATION_CODES", "Backend", "FusedBackend", "AttentionBackend", "FILES"]


@dataclasses.dataclass(frozen=True)
class Activation:
    """An activation the kernels fuse with dropout: its kernel code and the torch forms it stands for."""

    code: int  # the `act` argument of the numba and Triton kernels
    function: Callable[[Tensor], Tensor]  # torch's own, for the unfused path (eval, p = 0)
    module: type[torch.nn.Module]  # the torch module computing exactly this (fuse_activation_dropout)
    options: tuple[tuple[str, object], ...] = ()  # that module's attributes that must have these values

    def computed_by(self, module: torch.nn.Module) -> bool:
        """True where `module` computes exactly this activation: its exact type, with these options.

        Examples:
            >>> ACTIVATIONS["gelu"].computed_by(torch.nn.GELU()), ACTIVATIONS["gelu"].computed_by(torch.nn.GELU("tanh"))
            (True, False)
        """
        return type(module) is self.module and all(getattr(module, k) == v for k, v in self.options)


# The one table of fused activations: the family validates names against it, the rewrite
# matches modules with it, every backend implements each code (tests/kernels/test_backend.py).
ACTIVATIONS = {
    "relu": Activation(1, torch.relu, torch.nn.ReLU),
    "gelu": Activation(2, torch.nn.functional.gelu, torch.nn.GELU, (("approximate", "none"),)),
}
# The kernels' activation argument by name; None (code 0) is no activation.
ACTIVATION_CODES = {None: 0} | {name: a.code for name, a in ACTIVATIONS.items()}


@runtime_checkable
class Backend(Protocol):
    """Spec dropout and the spec's random words."""

    def dropout_fwd(
        self, x: Tensor, seed: int, offset: int, p: float, out: Tensor | None = None, activation: str | None = None
    ) -> Tensor:
        """Spec dropout of activation(x) (None, "relu", "gelu"), into `out` (may be x itself) or a new tensor."""

    def dropout_fwd_packed(self, x: Tensor, seed: int, offset: int, p: float) -> tuple[Tensor, Tensor]:
        """dropout_fwd that also returns the keep mask packed 1 bit per element (uint8)."""

    def dropout_bwd_packed(self, grad: Tensor, bits: Tensor, p: float) -> Tensor:
        """grad * scale where the packed keep bit is set, else 0."""

    def relu_dropout_bwd(self, grad: Tensor, y: Tensor, p: float) -> Tensor:
        """Gradient of dropout(relu(x)) from its output y: grad * scale where y > 0, else 0."""

    def random_bits(self, n: int, seed: int, offset: int, device: torch.device | str | None = None) -> Tensor:
        """The spec's random words for stream indices offset .. offset+n-1, as int64."""


@runtime_checkable
class FusedBackend(Protocol):
    """Fused bias + activation + dropout + residual add, forward and backward."""

    def bias_dropout_add_fwd(
        self,
        x: Tensor,
        bias: Tensor | None,
        residual: Tensor,
        seed: int,
        offset: int,
        p: float,
        activation: str | None = None,
    ) -> Tensor:
        """residual + dropout(activation(x + bias))."""

    def bias_dropout_add_bwd(
        self,
        grad: Tensor,
        x: Tensor | None,
        bias: Tensor | None,
        seed: int,
        offset: int,
        p: float,
        activation: str | None = None,
    ) -> Tensor:
        """Gradient of bias_dropout_add_fwd with respect to x + bias."""


@runtime_checkable
class AttentionBackend(Protocol):
    """Scaled dot-product attention with spec dropout on the probabilities, forward and backward.

    The mask indexes the logical (*B, L_q, L_k) probability tensor; backward regenerates it
    from (seed, offset), so nothing of size L_q x L_k is kept between the two.
    """

    def supports(self, q: Tensor, mask: Tensor | None, mask_grad: bool) -> bool:
        """Whether these kernels take the call; the switch hands the others to the torch backend's."""

    def attention_fwd(
        self,
        q: Tensor,
        k: Tensor,
        v: Tensor,
        mask: Tensor | None,
        seed: int,
        offset: int,
        p: float,
        is_causal: bool,
        scale: float,
    ) -> tuple[Tensor, Tensor]:
        """(softmax(q k^T * scale + mask) with spec dropout, times v; the rows' log-sum-exp)."""

    def attention_bwd(
        self,
        grad: Tensor,
        q: Tensor,
        k: Tensor,
        v: Tensor,
        out: Tensor,
        lse: Tensor,
        mask: Tensor | None,
        seed: int,
        offset: int,
        p: float,
        is_causal: bool,
        scale: float,
        mask_grad: bool,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        """(dq, dk, dv, dmask) of attention_fwd; dmask only when mask_grad, else None."""


# The module keeping each contract on each backend: the backends' names, the switch's tables and
# the contract test all come from here.
FILES: dict[type, dict[str, str]] = {
    Backend: {"cpu": "cpu", "triton": "triton", "torch": "torch"},
    FusedBackend: {"cpu": "cpu_fused", "triton": "triton", "torch": "torch"},
    # The blocked attention kernels run on any device (their masking step picks numba or plain torch).
    AttentionBackend: {"cpu": "attention_cpu", "triton": "attention_triton", "torch": "attention_cpu"},
}
