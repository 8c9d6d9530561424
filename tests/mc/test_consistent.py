"""Consistent MC dropout: a replica is one thinned network for every input, on the mask spec."""

import doctest

import pytest
import torch
from _helpers.stats import four_sigma
from torch import nn

import dropkit
from dropkit import rng
from dropkit.mc.predict import mc_predict
from dropkit.ops import consistent


def mlp():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(6, 32),
        nn.ReLU(),
        dropkit.Dropout(0.5),
        nn.Linear(32, 16),
        nn.ReLU(),
        dropkit.Dropout(0.3),
        nn.Linear(16, 4),
    ).eval()


def cnn():
    torch.manual_seed(1)
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        dropkit.Dropout2d(0.4),
        nn.Flatten(),
        dropkit.DropPath(0.2),
        dropkit.Dropout(0.3),
        nn.Linear(4 * 5 * 5, 3),
    ).eval()


def test_masks_are_the_spec_masks_addressed_by_replica_and_call():
    # The model is dropout alone, so the output is x times the mask: one elementwise op, exact.
    model = nn.Sequential(dropkit.Dropout(0.4), dropkit.Dropout(0.2))
    x = torch.ones(3, 2, 5)
    out = mc_predict(model, x, samples=4, seed=11, consistent=True, chunk=3).samples  # forwards of 3 and 1 replicas
    f = 2 * 5
    for t in range(4):
        first = torch.from_numpy(rng.keep_mask((2, 5), 0.4, 11, 0 * consistent.CALL_STRIDE + t * f))
        second = torch.from_numpy(rng.keep_mask((2, 5), 0.2, 11, 1 * consistent.CALL_STRIDE + t * f))
        expected = first.float() * float(rng.scale(0.4)) * second.float() * float(rng.scale(0.2))
        for b in range(3):
            assert torch.equal(out[t, b], expected)


@pytest.mark.parametrize("make, shape", [(mlp, (6,)), (cnn, (2, 5, 5))])
def test_a_points_samples_do_not_depend_on_batch_or_chunk(make, shape):
    model = make()
    x = torch.randn(12, *shape, generator=torch.Generator().manual_seed(2))
    full = mc_predict(model, x, samples=10, seed=3, consistent=True).samples
    perm = torch.randperm(12, generator=torch.Generator().manual_seed(4))[:5]
    for chunk in (1, 3, 10):
        part = mc_predict(model, x[perm], samples=10, seed=3, consistent=True, chunk=chunk).samples
        # the same masks; the matmuls see other batch shapes, so close, not equal
        torch.testing.assert_close(part, full[:, perm])
    alone = mc_predict(model, x[7:8], samples=10, seed=3, consistent=True, chunk=4).samples
    torch.testing.assert_close(alone, full[:, 7:8])


def test_dropout_only_model_gives_bit_identical_rows_across_batches():
    # x times a mask: the same elementwise product whatever the batch, so exact
    model = nn.Sequential(dropkit.Dropout(0.5))
    x = torch.randn(9, 7, generator=torch.Generator().manual_seed(5))
    full = mc_predict(model, x, samples=6, seed=8, consistent=True, chunk=6).samples
    for rows, chunk in (([4], 1), ([8, 0, 3], 4), (list(range(9)), 2)):
        assert torch.equal(
            mc_predict(model, x[rows], samples=6, seed=8, consistent=True, chunk=chunk).samples, full[:, rows]
        )


def test_replicas_differ_and_keep_at_the_rate():
    model = nn.Sequential(dropkit.Dropout(0.3))
    t, f = 200, 1000
    out = mc_predict(model, torch.ones(2, f), samples=t, seed=9, consistent=True).samples
    assert torch.equal(out[:, 0], out[:, 1])  # every row of a replica: one mask
    kept = (out[:, 0] != 0).double().mean()
    assert abs(float(kept) - 0.7) < four_sigma(0.3, t * f), f"4 sigma = {four_sigma(0.3, t * f):.2e}"
    assert not torch.equal(out[0, 0], out[1, 0])


def test_default_mode_is_unchanged_and_not_consistent():
    model = nn.Sequential(dropkit.Dropout(0.5))
    out = mc_predict(model, torch.ones(2, 50), samples=3, seed=1).samples
    assert not torch.equal(out[:, 0], out[:, 1])  # rows draw their own masks


def test_consistent_samples_feed_batch_bald():
    model = mlp()
    x = torch.randn(30, 6, generator=torch.Generator().manual_seed(6))
    r = mc_predict(model, x, samples=20, seed=2, consistent=True)
    picks = r.batch_bald(4).indices
    # the same network per pass, so the picks do not depend on the order the candidates came in
    perm = torch.randperm(30, generator=torch.Generator().manual_seed(7))
    again = mc_predict(model, x[perm], samples=20, seed=2, consistent=True).batch_bald(4).indices
    assert perm[again].tolist() == picks.tolist()


def test_locked_dropout_batch_first_and_inplace():
    model = nn.Sequential(
        dropkit.LockedDropout(0.5, batch_first=True), nn.Flatten(), dropkit.Dropout(0.2, inplace=True)
    )
    x = torch.randn(4, 3, 5, generator=torch.Generator().manual_seed(8))
    full = mc_predict(model, x, samples=5, seed=4, consistent=True).samples
    one = mc_predict(model, x[2:3], samples=5, seed=4, consistent=True, chunk=2).samples
    assert torch.equal(one, full[:, 2:3])  # products of x with masks only: exact


def test_unsupported_layers_are_refused_with_the_fix():
    with pytest.raises(
        ValueError,
        match=r"mc_predict\(consistent=True\) supports dropkit's Dropout, Dropout1d, Dropout2d, Dropout3d, DropPath, LockedDropout, DropoutLinear; the model's '1' is torch.nn.modules.dropout.Dropout \(dropkit.replace_dropout\(model\) converts torch's dropout layers\)",
    ):
        mc_predict(nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5)), torch.randn(2, 3), samples=2, consistent=True)
    with pytest.raises(ValueError, match=r"the model's '0' is dropkit\..*GaussianDropout$"):
        mc_predict(nn.Sequential(dropkit.GaussianDropout(0.5)), torch.randn(2, 3), samples=2, consistent=True)
    sequence_first = nn.Sequential(dropkit.LockedDropout(0.5))
    with pytest.raises(
        ValueError,
        match=r"consistent MC dropout needs every dropout input batch-first: a dropout call got shape \(1, 2, 4\), whose first dimension is not the replicated batch of 6 rows",
    ):
        mc_predict(sequence_first, torch.randn(3, 2, 4), samples=2, consistent=True)


def test_compiled_model_gives_the_eager_samples_and_fullgraph_is_refused():
    # Each dropout call breaks the graph and runs eagerly, so the compiled model's samples are eager's.
    torch._dynamo.reset()
    model, x = mlp(), torch.randn(5, 6)
    eager = mc_predict(model, x, samples=6, chunk=4, seed=3, consistent=True).samples
    compiled = mc_predict(torch.compile(model), x, samples=6, chunk=4, seed=3, consistent=True).samples
    torch.testing.assert_close(compiled, eager)  # through Inductor's matmuls: close, not bitwise
    with pytest.raises(ValueError, match=r"cannot run a torch.compile\(..., fullgraph=True\) model: consistent masks"):
        mc_predict(torch.compile(model, fullgraph=True), x, samples=2, seed=3, consistent=True)
    torch._dynamo.reset()


def test_doctests():
    assert doctest.testmod(consistent, extraglobs={"torch": torch}).failed == 0
