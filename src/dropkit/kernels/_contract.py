"""What every kernel backend provides: the contract the switch in dropkit.kernels hands out.

A backend is a module whose functions match these Protocols (tests/kernels/test_backend.py checks the
cpu, triton and torch modules against them, names and parameters). All of them compute the mask spec
bit for bit; inputs are contiguous.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from torch import Tensor

__all__ = ["ACTIVATION_CODES", "Backend", "FusedBackend"]

# The fused kernels' activation argument, as the numba and Triton kernels take it.
ACTIVATION_CODES = {None: 0, "relu": 1, "gelu": 2}


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

    def random_bits(self, n: int, seed: int, offset: int, device=None) -> Tensor:
        """The spec's random words for stream indices offset .. offset+n-1, as int64."""


@runtime_checkable
class FusedBackend(Protocol):
    """Fused bias + activation + dropout + residual add, forward and backward."""

    def bias_dropout_add_fwd(self, x, bias, residual, seed: int, offset: int, p: float, activation=None) -> Tensor:
        """residual + dropout(activation(x + bias))."""

    def bias_dropout_add_bwd(self, grad, x, bias, seed: int, offset: int, p: float, activation=None) -> Tensor:
        """Gradient of bias_dropout_add_fwd with respect to x + bias."""
