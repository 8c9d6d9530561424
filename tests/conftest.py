"""Shared fixtures: the device comes from here (CPU by default, CUDA when present)."""

import pytest
import torch

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
FLOAT_DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]


@pytest.fixture(params=DEVICES)
def device(request):
    return torch.device(request.param)


def four_sigma(p: float, n: int) -> float:
    """4 standard deviations of the kept fraction of n Bernoulli(1-p) draws."""
    return 4 * (p * (1 - p) / n) ** 0.5
