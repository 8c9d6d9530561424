"""Dropout1d/2d/3d: one spec draw per (sample, channel), torch's rank rules and warnings."""

import warnings

import pytest
import torch
import torch.nn.functional as TF
from _helpers.family import assert_rate, reference_keep, saved_numels

import dropkit
import dropkit.functional as DF
from dropkit import _mode


def unbatched_kw(fn, shape) -> dict:
    """dropout2d reads 3-D input as (N, C, L), as torch does; unbatched=True makes it one (C, H, W) image."""
    return {"unbatched": True} if fn is DF.dropout2d and len(shape) == 3 else {}


CASES = [  # function, batched shape, unbatched shape, torch module
    (DF.dropout1d, (3, 5, 7), (5, 7), dropkit.Dropout1d),
    (DF.dropout2d, (3, 5, 4, 3), (5, 4, 3), dropkit.Dropout2d),
    (DF.dropout3d, (3, 5, 2, 3, 2), (5, 2, 3, 2), dropkit.Dropout3d),
]


@pytest.mark.parametrize("fn, batched, unbatched, _", CASES)
@pytest.mark.parametrize("seed, offset", [(0, 0), (2**64 - 1, 3), (12345, 2**33 + 1)])
def test_mask_is_the_spec_mask_of_the_channel_grid(fn, batched, unbatched, _, seed, offset):
    for shape in (batched, unbatched):
        y = fn(torch.ones(shape), 0.4, seed=seed, offset=offset, **unbatched_kw(fn, shape))
        channels = shape[: len(shape) - (len(batched) - 2)]
        keep = reference_keep(channels, 0.4, seed, offset)
        expected = torch.where(keep, 1 / 0.6, 0.0).to(torch.float32).view(*channels, *[1] * (len(batched) - 2))
        assert torch.equal(y, expected.expand(shape))


@pytest.mark.parametrize("fn, batched, unbatched, _", CASES)
def test_all_or_nothing_per_channel(fn, batched, unbatched, _):
    x = torch.rand(batched) + 0.5
    y = fn(x, 0.5, seed=3)
    per_channel = (y != 0).flatten(2)
    assert torch.equal(per_channel.all(-1), per_channel.any(-1))
    kept = per_channel.all(-1)
    assert 0 < kept.sum() < kept.numel()
    assert torch.equal(y.flatten(2)[kept], (x * 2).flatten(2)[kept])


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5, 0.7, 0.9])
def test_channel_keep_rate_within_4_sigma(p):
    y = DF.dropout2d(torch.ones(1000, 100, 1, 2), p, seed=int(p * 100))
    assert_rate(y[:, :, 0, 0] != 0, p)


@pytest.mark.parametrize("p", [0.3, 0.7])
def test_same_output_distribution_as_torch(p):
    torch.manual_seed(0)
    x = torch.ones(500, 200, 2, 2)
    ours, theirs = DF.dropout2d(x, p, seed=11), TF.dropout2d(x, p)
    assert set(ours.unique().tolist()) == set(theirs.unique().tolist())
    assert_rate(ours[:, :, 0, 0] != 0, p)
    assert_rate(theirs[:, :, 0, 0] != 0, p)


@pytest.mark.parametrize(
    "fn, shape, message",
    [
        (
            DF.dropout1d,
            (4,),
            r"dropout1d: Expected 2D or 3D input, but received a 1D input of shape \(4\) \(dropout1d takes 2-D \(C, L\) or 3-D \(N, C, L\)\)",
        ),
        (
            DF.dropout1d,
            (1, 2, 2, 2),
            r"dropout1d: Expected 2D or 3D input, but received a 4D input of shape \(1, 2, 2, 2\)",
        ),
        (
            DF.dropout2d,
            (3,),
            r"dropout2d: Expected 3D or 4D input, but received a 1D input of shape \(3\) \(dropout2d takes 3-D \(C, H, W\) or 4-D \(N, C, H, W\)\)",
        ),
        (
            DF.dropout3d,
            (),
            r"dropout3d: Expected 4D or 5D input, but received a 0D input of shape \(\) \(dropout3d takes 4-D \(C, D, H, W\) or 5-D \(N, C, D, H, W\)\)",
        ),
    ],
)
def test_wrong_rank_names_expected_and_received_shapes(fn, shape, message):
    # Catchable as torch's rank errors are (RuntimeError) and as dropkit's argument errors (ValueError).
    for error in (ValueError, RuntimeError):
        with pytest.raises(error, match=message):
            fn(torch.ones(shape), 0.5, seed=0)
        with pytest.raises(error, match=message):
            fn(torch.ones(shape), 0.5, training=False)


def test_unbatched_keyword_takes_only_3d_input():
    with pytest.raises(ValueError, match=r"dropout2d\(unbatched=True\): Expected 3D input, but received a 4D input"):
        DF.dropout2d(torch.ones(1, 2, 3, 4), 0.5, seed=0, unbatched=True)


@pytest.mark.parametrize(
    "fn, tfn, shape, warning, channels",
    [
        (DF.dropout2d, TF.dropout2d, (6, 5), "Received a 2-D input to dropout2d", (6, 5)),
        (DF.dropout2d, TF.dropout2d, (2, 3, 2, 2, 2), "Received a 5-D input to dropout2d", (2, 3)),
        (DF.dropout2d, TF.dropout2d, (4, 6, 5), "assuming that channel-wise 1D dropout behavior is desired", (4, 6)),
        (DF.dropout3d, TF.dropout3d, (6, 2, 2), "Received a 3-D input to dropout3d", (6,)),
        (DF.dropout3d, TF.dropout3d, (5, 2, 2, 2, 2, 2), "Received a 6-D input to dropout3d", (5,)),
    ],
)
def test_ranks_torch_warns_on_warn_the_same_and_drop_the_same_channels(fn, tfn, shape, warning, channels):
    x = torch.ones(shape)
    with pytest.warns(UserWarning, match=warning):
        y = fn(x, 0.5, seed=9)
    with pytest.warns(UserWarning, match=warning):
        assert tfn(x, 0.5).shape == y.shape
    # The mask is the spec mask of the leading `channels` grid, broadcast over the rest, as torch draws it.
    keep = reference_keep(channels, 0.5, 9)
    assert torch.equal(y != 0, keep.view(*channels, *[1] * (len(shape) - len(channels))).expand(shape))


def test_ranks_torch_accepts_without_warning_are_the_ranks_dropkit_accepts():
    for fn, tfn, spatial in [
        (DF.dropout1d, TF.dropout1d, 1),
        (DF.dropout2d, TF.dropout2d, 2),
        (DF.dropout3d, TF.dropout3d, 3),
    ]:
        for rank in range(spatial + 1, spatial + 3):
            if fn is DF.dropout2d and rank == 3:
                continue  # torch warns there: the test above
            x = torch.ones((2,) * rank)
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                assert fn(x, 0.5, seed=0).shape == tfn(x, 0.5).shape


def test_3d_input_to_dropout2d_with_unbatched_is_one_image():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = DF.dropout2d(torch.ones(6, 4, 5), 0.5, seed=9, unbatched=True)
    keep = reference_keep((6,), 0.5, 9)
    assert torch.equal(y != 0, keep.view(6, 1, 1).expand(6, 4, 5))


@pytest.mark.parametrize("fn, batched, unbatched, _", CASES)
def test_p_one_gives_zeros_and_zero_gradient(fn, batched, unbatched, _):
    x = torch.randn(batched, requires_grad=True)
    y = fn(x, 1.0, seed=1)
    y.sum().backward()
    assert torch.equal(y, torch.zeros(batched)) and torch.equal(x.grad, torch.zeros(batched))


def test_p_zero_and_eval_are_identity_and_mc_mode_drops():
    x = torch.randn(2, 3, 4, 4)
    assert DF.dropout2d(x, 0.0) is x
    assert DF.dropout2d(x, 0.5, training=False) is x
    with _mode.mc_enabled():
        assert torch.equal(DF.dropout2d(x, 0.5, training=False, seed=4), DF.dropout2d(x, 0.5, seed=4))


def test_gradient_is_the_mask_and_nothing_of_input_size_is_saved():
    x = torch.randn(8, 16, 16, 16, dtype=torch.float64, requires_grad=True)
    saved = saved_numels(lambda: DF.dropout2d(x, 0.5, seed=5).sum().backward())
    assert max(saved) <= 8 * 16, saved
    mask = DF.dropout2d(torch.ones(8, 16, 1, 1, dtype=torch.float64), 0.5, seed=5)
    assert torch.equal(x.grad, mask.expand_as(x))
    assert torch.autograd.gradcheck(
        lambda t: DF.dropout2d(t, 0.3, seed=2), torch.randn(2, 3, 2, 2, dtype=torch.float64, requires_grad=True)
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_dtypes_keep_value_is_scale_in_dtype(dtype):
    y = DF.dropout2d(torch.ones(4, 8, 2, 2, dtype=dtype), 0.3, seed=1)
    assert y.dtype == dtype
    assert set(y.unique().tolist()) == {0.0, torch.tensor(1 / 0.7, dtype=dtype).item()}


def test_channels_last_keeps_format_and_mask():
    x = torch.randn(2, 3, 4, 4).to(memory_format=torch.channels_last)
    y = DF.dropout2d(x, 0.5, seed=7)
    assert y.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(y, DF.dropout2d(x.contiguous(), 0.5, seed=7))


def test_inplace_on_non_leaf_and_error_on_leaf():
    x = torch.randn(2, 3, 4, requires_grad=True)
    h = x * 1
    y = DF.dropout1d(h, 0.5, inplace=True, seed=3)
    assert y is h
    y.sum().backward()
    assert torch.equal(x.grad, DF.dropout1d(torch.ones(2, 3, 4), 0.5, seed=3))
    with pytest.raises(
        RuntimeError, match="inplace=True cannot overwrite input: it is a leaf tensor that requires grad"
    ):
        DF.dropout1d(x, 0.5, inplace=True)


def test_bad_rate_is_rejected():
    with pytest.raises(ValueError, match=r"p must be between 0 and 1, got 1.5"):
        DF.dropout2d(torch.ones(1, 1, 1, 1), 1.5)
    with pytest.raises(ValueError, match=r"p must be between 0 and 1, got 1.5"):
        dropkit.Dropout2d(1.5)
    with pytest.raises(TypeError, match="input must have a floating dtype"):
        DF.dropout2d(torch.ones(1, 1, 1, 1, dtype=torch.int64), 0.5)


@pytest.mark.parametrize("fn, batched, unbatched, cls", CASES)
def test_module_is_a_drop_in_for_torch(fn, batched, unbatched, cls):
    torch_cls = getattr(torch.nn, cls.__name__)
    m = cls(0.2, inplace=True)
    assert isinstance(m, torch_cls) and repr(m) == repr(torch_cls(0.2, inplace=True))
    x = torch.ones(batched)
    torch.manual_seed(5)
    a = cls(0.5)(x)
    torch.manual_seed(5)
    b = cls(0.5)(x)
    assert torch.equal(a, b) and not torch.equal(a, cls(0.5)(x))
    assert cls(0.5).eval()(x) is x
