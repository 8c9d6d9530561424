"""fuse_dropout_linear: Dropout -> Linear pairs of built models become DropoutLinear; bytes drop as predicted."""

import copy

import torch
import torch.nn as nn
from _helpers.models import output_and_grads, seed_network
from _helpers.saved import saved_bytes

import dropkit


def _saved_step_bytes(model, x):
    return saved_bytes(lambda: model(x).square().sum())


def test_seed_network_fuses_trains_identically_and_saves_the_dropped_copies():
    torch.manual_seed(0)
    net = seed_network()
    fused = copy.deepcopy(net)
    keys = list(fused.state_dict())
    assert dropkit.fuse_dropout_linear(fused) == ["3", "6"]
    assert [type(fused[i]) for i in (2, 3, 5, 6)] == [
        nn.Identity,
        dropkit.DropoutLinear,
        nn.Identity,
        dropkit.DropoutLinear,
    ]
    assert (fused[3].p, fused[6].p) == (0.5, 0.3) and list(fused.state_dict()) == keys
    x = torch.randn(16, 784)
    out, grads = output_and_grads(net, x, seed=3)
    out_f, grads_f = output_and_grads(fused, x, seed=3)
    # The same seeds in the same order, F.linear and torch's linear-backward mm on the same shapes: equal.
    assert torch.equal(out_f, out)
    for a, b in zip(grads_f, grads, strict=True):
        assert torch.equal(a, b)
    # ReLU keeps its output; the unfused Linear keeps a dropped copy of it, the fused one the output itself.
    predicted = 16 * (256 + 128) * 4
    assert _saved_step_bytes(net, x) - _saved_step_bytes(fused, x) == predicted
    net.eval(), fused.eval()
    assert torch.equal(fused(x), net(x))


def test_transformer_feed_forward_is_fused_with_the_predicted_saving():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(16, 2, dim_feedforward=48, dropout=0.2, batch_first=True)
    layer, _ = dropkit.replace_dropout(layer)
    fused = copy.deepcopy(layer)
    assert dropkit.fuse_dropout_linear(fused) == ["linear2"]
    assert isinstance(fused.dropout, nn.Identity) and fused.linear2.p == 0.2
    x = torch.randn(3, 5, 16)
    out, grads = output_and_grads(layer, x, seed=1)
    out_f, grads_f = output_and_grads(fused, x, seed=1)
    assert torch.equal(out_f, out)  # every dropout draws in the same order; the same matmuls
    for a, b in zip(grads_f, grads, strict=True):
        assert torch.equal(a, b)
    # relu (the default) keeps its output of 3 x 5 x 48 floats; the dropped copy of it is gone
    assert _saved_step_bytes(layer, x) - _saved_step_bytes(fused, x) == 3 * 5 * 48 * 4


def test_only_exact_pairs_are_fused():
    net = nn.Sequential(
        dropkit.nn.Dropout(0.1), nn.Linear(4, 4),                        # fused
        nn.Dropout(0.1), nn.Linear(4, 4),                                # torch's: replace_dropout first
        dropkit.nn.Dropout(0.1, backward="bitpacked"), nn.Linear(4, 4),  # bitpacked: left alone
        dropkit.nn.Dropout(0.1), nn.ReLU(), nn.Linear(4, 4),             # not neighbours
        dropkit.nn.Dropout(0.1), nn.Sequential(nn.Linear(4, 4)),         # the Linear is in another Sequential
    )  # fmt: skip
    assert dropkit.fuse_dropout_linear(net) == ["1"]
    assert dropkit.fuse_dropout_linear(net) == []  # idempotent
    assert dropkit.set_dropout(net, 0.2)[0] == "1" and net[1].p == 0.2


def test_mode_and_generator_follow_the_dropout():
    gen = torch.Generator()
    net = nn.Sequential(dropkit.nn.Dropout(0.5, generator=gen), nn.Linear(4, 4)).eval()
    dropkit.fuse_dropout_linear(net)
    assert not net[1].training and net[1].generator is gen
