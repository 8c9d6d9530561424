"""Each variant runs its own typed op, so traces and profiles name the variant (no stringly typed op)."""

import pytest
import torch
from torch.fx.experimental.proxy_tensor import make_fx

import dropkit.functional as DF


@pytest.mark.parametrize(
    "call, op",
    [
        (lambda x: DF.alpha_dropout(x, 0.2, training=True, seed=1), "dropkit.alpha_dropout"),
        (lambda x: DF.gaussian_dropout(x, 0.2, seed=1), "dropkit.gaussian"),
        (lambda x: DF.gaussian_noise(x, 0.1, seed=1), "dropkit.gaussian"),
        (lambda x: DF.drop_block2d(x, 0.2, 2, seed=1), "dropkit.drop_block2d"),
        (lambda x: DF.feature_alpha_dropout(x, 0.2, training=True, seed=1), "dropkit.keep_mask"),
        (lambda x: DF.drop_path(x, 0.2, scale_by_keep=False, seed=1), "dropkit.keep_mask"),
    ],
)
def test_the_trace_names_the_variant(call, op):
    graph = make_fx(call)(torch.randn(2, 3, 4, 4)).code
    assert f"torch.ops.{op}.default" in graph, graph
    assert "dropkit.noise" not in graph
