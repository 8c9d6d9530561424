"""Shared fixtures: the device comes from here (CPU by default, CUDA when present)."""

import pytest
import torch
from _helpers.devices import DEVICES


@pytest.fixture(params=DEVICES)
def device(request):
    return torch.device(request.param)
