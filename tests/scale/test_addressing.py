"""Sample-addressed masks: independent of the batch split, reproducible on recompute, stable under compile.

Comparisons are torch.equal (one exception says why): the masks are the same bits and the ops
are the same elementwise ops on the same rows (only the batch is cut differently).
"""

import pytest
import torch
import torch.nn as nn

import dropkit
import dropkit.functional as DF
from dropkit.scale import addressing

B = 64


class Apply(nn.Module):
    """A module around a function or a module, so its dropout calls have a layer name."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *args):
        return self.fn(*args)


def _embedding():
    torch.manual_seed(0)
    return dropkit.EmbeddingDropout(nn.Embedding(10, 3), 0.5)


# (module factory, inputs for a batch of n, the inputs' batch dimension)
CASES = {
    "dropout": (lambda: dropkit.Dropout(0.5), lambda n: (torch.ones(n, 7),), 0),
    "dropout_inplace": (lambda: dropkit.Dropout(0.5, inplace=True), lambda n: (torch.ones(n, 7),), 0),
    "dropout_bitpacked": (lambda: dropkit.Dropout(0.3, backward="bitpacked"), lambda n: (torch.ones(n, 2, 3),), 0),
    "alpha": (lambda: dropkit.AlphaDropout(0.4), lambda n: (torch.ones(n, 5),), 0),
    "feature_alpha": (lambda: dropkit.FeatureAlphaDropout(0.4), lambda n: (torch.ones(n, 3, 4),), 0),
    "gaussian": (lambda: dropkit.GaussianDropout(0.4), lambda n: (torch.ones(n, 5),), 0),
    "gaussian_noise": (lambda: dropkit.GaussianNoise(0.3), lambda n: (torch.zeros(n, 5),), 0),
    "dropout1d": (lambda: dropkit.Dropout1d(0.5), lambda n: (torch.ones(n, 3, 4),), 0),
    "dropout2d": (lambda: dropkit.Dropout2d(0.5), lambda n: (torch.ones(n, 3, 2, 2),), 0),
    "dropout3d": (lambda: dropkit.Dropout3d(0.5), lambda n: (torch.ones(n, 3, 2, 2, 2),), 0),
    "locked_time_first": (lambda: dropkit.LockedDropout(0.5), lambda n: (torch.ones(4, n, 3),), 1),
    "locked_batch_first": (lambda: dropkit.LockedDropout(0.5, batch_first=True), lambda n: (torch.ones(n, 4, 3),), 0),
    "drop_path": (lambda: dropkit.DropPath(0.5), lambda n: (torch.ones(n, 3, 2),), 0),
    "drop_block_batchwise": (
        lambda: dropkit.DropBlock2d(0.3, 2, batchwise=True),
        lambda n: (torch.ones(n, 2, 6, 6),),
        0,
    ),
    "embedding": (_embedding, lambda n: (torch.arange(n * 2).reshape(n, 2) % 10,), 0),
    "concrete": (lambda: dropkit.ConcreteDropout(nn.Identity(), 0.3), lambda n: (torch.ones(n, 5),), 0),
    "bias_dropout_add": (
        lambda: dropkit.BiasDropoutAdd(5, 0.5, "relu"),
        lambda n: (torch.ones(n, 5), torch.zeros(n, 5)),
        0,
    ),
    "attention": (
        lambda: dropkit.nn.ScaledDotProductAttention(0.5),
        lambda n: (torch.ones(n, 2, 3, 4), torch.ones(n, 2, 5, 4), torch.arange(n * 40.0).view(n, 2, 5, 4)),
        0,
    ),
    "drop_connect": (
        lambda: Apply(lambda x: x * DF.drop_connect(torch.ones(x.shape[1:]), 0.5)),
        lambda n: (torch.ones(n, 4),),
        0,
    ),
}


def _split_run(model, inputs, parts, step, dim, seed=11):
    """model on `parts` equal slices of the batch, each told its global sample offset; outputs concatenated."""
    n = inputs[0].shape[dim] // parts
    outs = []
    with dropkit.sample_addressed(model, seed=seed) as addr:
        for i in range(parts):
            addr.set_step(step, sample_offset=i * n)
            outs.append(model(*(x.narrow(dim, i * n, n).clone() for x in inputs)))
    return torch.cat(outs, dim)


@pytest.mark.parametrize("case", CASES)
def test_masks_do_not_depend_on_the_split(case):
    make, inputs, dim = CASES[case]
    model = Apply(make())
    whole = _split_run(model, inputs(B), 1, step=5, dim=dim)
    for parts in (2, 4):  # 2 x 32 (ranks) and 4 x 16 (micro-batches)
        split = _split_run(model, inputs(B), parts, step=5, dim=dim)
        if case == "concrete":
            # Same uniforms, but ATen's vectorized logit/sigmoid run a tensor's tail in scalar
            # code, so another batch size rounds some elements differently.
            torch.testing.assert_close(split, whole)
        else:
            assert torch.equal(split, whole), parts
    assert not torch.equal(_split_run(model, inputs(B), 1, step=6, dim=dim), whole)  # a new step, a new mask


def test_sample_mask_is_the_spec_mask_at_the_sample_address():
    model = nn.Sequential(nn.Identity(), dropkit.Dropout(0.5))
    with dropkit.sample_addressed(model, seed=2**64 - 3) as addr:
        addr.set_step(2**40 + 1, sample_offset=37)
        y = model(torch.ones(3, 10))
        seed = addr.layer_seed("1")
    for k in range(3):  # global sample 37 + k, features 0..9: offset (37 + k) * 10
        assert torch.equal(y[k] != 0, DF.keep_mask((10,), 0.5, seed=seed, offset=(37 + k) * 10))
    assert seed == addressing.derive_seed(2**64 - 3, addressing.layer_key("1"), 2**40 + 1)


def test_layer_key_is_the_stable_hash_of_the_name():
    # Pinned so that masks stay reproducible across releases and processes.
    assert addressing.layer_key("blocks.0.drop") == 0x5C23DCD374289B1B
    assert addressing.layer_key("blocks.0.drop") != addressing.layer_key("blocks.1.drop")


def test_layers_and_repeated_calls_get_distinct_masks():
    class Twice(nn.Module):
        def forward(self, x):
            return torch.stack([DF.dropout(x, 0.5), DF.dropout(x, 0.5)])

    model = nn.Sequential(Twice(), Twice())
    x = torch.ones(8, 64)
    with dropkit.sample_addressed(model, seed=0) as addr:
        addr.set_step(0)
        a, b = model[0](x), model[1](x)
        again = model[0](x)
    assert not torch.equal(a[0], a[1]) and not torch.equal(a, b)
    assert torch.equal(again, a)  # the call index restarts with each forward of the module


def test_explicit_seed_wins_and_mode_ends_with_the_block():
    model = nn.Sequential(Apply(lambda x: DF.dropout(x, 0.5, seed=9)), dropkit.Dropout(0.5))
    x = torch.ones(4, 16)
    with dropkit.sample_addressed(model, seed=0) as addr:
        addr.set_step(0)
        assert torch.equal(model[0](x), DF.dropout(x, 0.5, seed=9))
        inside = model[1](x)
    assert not model[1]._forward_pre_hooks and not model[1]._forward_hooks
    torch.manual_seed(0)
    assert not torch.equal(model[1](x), inside)  # back to seeds drawn from torch's generator


def test_errors_name_the_problem():
    model = dropkit.Dropout(0.5)
    with pytest.raises(TypeError, match=r"seed must be an int in \[0, 2\*\*64\), got None"):
        dropkit.sample_addressed(model, seed=None)
    with pytest.raises(ValueError, match=r"seed must be in \[0, 2\*\*64\), got -1"):
        dropkit.sample_addressed(model, seed=-1)
    with pytest.raises(TypeError, match="model must be an instance of Module, got int"):
        dropkit.sample_addressed(3, seed=0)
    with dropkit.sample_addressed(model, seed=0) as addr:
        with pytest.raises(ValueError, match=r"sample_offset must be in \[0, 2\*\*64\), got -2"):
            addr.set_step(0, sample_offset=-2)
        with pytest.raises(TypeError, match=r"step must be an int in \[0, 2\*\*64\), got 1.5"):
            addr.set_step(1.5)
        with pytest.raises(RuntimeError, match="cannot be nested"):
            dropkit.sample_addressed(model, seed=1).__enter__()
        with pytest.raises(RuntimeError, match="outside the forward of any module of the addressed model"):
            DF.dropout(torch.ones(3), 0.5)
        with pytest.raises(ValueError, match="drop_block2d cannot be sample-addressed: it scales by the kept"):
            DF.drop_block2d(torch.ones(2, 1, 4, 4), 0.3, block_size=2)


class Blocks(nn.Module):
    """Two dropout blocks, the second run under activation checkpointing when `checkpointed` is set."""

    def __init__(self, checkpointed=None):
        super().__init__()
        torch.manual_seed(0)
        self.first = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), dropkit.Dropout(0.5))
        self.second = nn.Sequential(nn.Linear(32, 32), dropkit.DropPath(0.5), dropkit.Dropout(0.3), nn.Linear(32, 4))
        self.checkpointed = checkpointed

    def forward(self, x):
        h = self.first(x)
        if self.checkpointed is None:
            return self.second(h)
        return torch.utils.checkpoint.checkpoint(
            self.second, h, use_reentrant=self.checkpointed, preserve_rng_state=False
        )


def _grads(model, x, addressed=True):
    if addressed:
        with dropkit.sample_addressed(model, seed=4) as addr:
            addr.set_step(7, sample_offset=3)
            model(x).square().sum().backward()
    else:
        torch.manual_seed(1)
        model(x).square().sum().backward()
    return [p.grad for p in model.parameters()]


@pytest.mark.parametrize("use_reentrant", [True, False])
def test_checkpoint_without_saved_rng_state_recomputes_the_mask(use_reentrant):
    x = torch.randn(8, 16, requires_grad=True)
    plain = _grads(Blocks(), x)
    # Same masks and the same ops in the same order on the same shapes: exactly equal.
    for g, e in zip(_grads(Blocks(use_reentrant), x), plain):
        assert torch.equal(g, e)
    # What addressing fixes: torch's generator has moved on by the time forward is recomputed.
    drawn = _grads(Blocks(use_reentrant), x, addressed=False)
    assert any(not torch.equal(g, e) for g, e in zip(drawn, _grads(Blocks(), x, addressed=False)))


def test_compiled_addressing_equals_eager_and_never_recompiles():
    from torch._dynamo.testing import CompileCounterWithBackend

    model = Blocks()
    x = torch.randn(B, 16)
    counter = CompileCounterWithBackend("aot_eager")
    compiled = torch.compile(model, backend=counter, fullgraph=True)
    with dropkit.sample_addressed(model, seed=3) as addr:
        for step in range(3):
            for micro in range(2):  # new step and new sample offset each call
                addr.set_step(step, sample_offset=micro * 32)
                rows = x[micro * 32 : (micro + 1) * 32]
                # aot_eager runs the same aten ops as eager on the same shapes: exact.
                assert torch.equal(compiled(rows), model(rows)), (step, micro)
    assert counter.frame_count == 1


@pytest.mark.parametrize(
    "ctr,key",
    [
        ((0, 0, 0, 0), (0, 0)),
        ((0xFFFFFFFF,) * 4, (0xFFFFFFFF, 0xFFFFFFFF)),
        ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0)),
    ],
)
def test_int_philox_that_derives_seeds_is_the_reference(ctr, key):
    assert dropkit.rng.philox4x32_int(ctr, key) == tuple(int(w) for w in dropkit.rng.philox4x32(ctr, key))
