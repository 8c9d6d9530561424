"""Fuzz of the public functional API (hypothesis): every variant x dtype x shape x layout x p x training x
inplace x requires_grad x backend either equals the numpy reference of the mask spec (forward and gradient,
exactly, NaN where the input's kept element is NaN) or raises one documented error naming the argument.

Variants whose output is the spec mask times a scale (dropout, relu activation dropout, channel, path and
locked dropout) are compared with the reference; the others (alpha, feature alpha, Gaussian, Gaussian
noise, DropBlock), whose outputs are not a masked scale, are checked for what the spec promises all of
them: shape, dtype, memory format, identity at p = 0 and in eval, zeros at p = 1, no NaN from finite input.
Deterministic (derandomize=True); 200 examples per variant.
"""

import math
import warnings

import pytest
import torch
from _helpers.reference import keep as reference_keep
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dropkit.functional as DF
import dropkit.kernels as K
from dropkit import rng

EXAMPLES = 200
DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
RATES = [0.0, 1e-10, 0.5, 1.0 - 2.0**-53, 1.0]
LAYOUTS = ["contiguous", "transposed", "strided", "channels_last"]
RANK_MESSAGE = r"(Expected .*D input|expects|input must have at least|must be)"


def _channel_mask_shape(shape, spatial: int):
    """Mask shape of dropout{1,2,3}d by torch's rank rules (family/channel.py's docstring), or None if refused."""
    rank = len(shape)
    if spatial == 2 and rank == 3:  # (N, C, L), as torch reads it (with its warning)
        channels = 2
    elif rank in (spatial + 1, spatial + 2):
        channels = rank - spatial
    elif spatial == 2 and rank >= 2:
        channels = 2
    elif spatial == 3 and rank >= 1:
        channels = 1
    else:
        return None
    return tuple(shape[:channels]) + (1,) * (rank - channels)


# name -> (call(x, p, training, inplace, seed, offset, options), mask shape of the input's shape or None if the
# rank is refused, options strategy); the masked-scale variants only.
MASKED = {
    "dropout": (lambda x, p, t, i, s, o, _: DF.dropout(x, p, t, i, seed=s, offset=o), lambda shape, _: tuple(shape)),
    "relu_dropout": (
        lambda x, p, t, i, s, o, _: DF.activation_dropout(x, p, t, activation="relu", seed=s, offset=o),
        lambda shape, _: tuple(shape),
    ),
    "dropout1d": (
        lambda x, p, t, i, s, o, _: DF.dropout1d(x, p, t, i, seed=s, offset=o),
        lambda shape, _: _channel_mask_shape(shape, 1),
    ),
    "dropout2d": (
        lambda x, p, t, i, s, o, _: DF.dropout2d(x, p, t, i, seed=s, offset=o),
        lambda shape, _: _channel_mask_shape(shape, 2),
    ),
    "dropout3d": (
        lambda x, p, t, i, s, o, _: DF.dropout3d(x, p, t, i, seed=s, offset=o),
        lambda shape, _: _channel_mask_shape(shape, 3),
    ),
    "drop_path": (
        lambda x, p, t, i, s, o, _: DF.drop_path(x, p, t, seed=s, offset=o),
        lambda shape, _: (shape[0],) + (1,) * (len(shape) - 1) if len(shape) >= 1 else None,
    ),
    "locked_dropout": (
        lambda x, p, t, i, s, o, batch_first: DF.locked_dropout(x, p, t, batch_first, i, seed=s, offset=o),
        lambda shape, batch_first: (
            tuple(1 if d == (1 if batch_first else 0) else n for d, n in enumerate(shape)) if len(shape) >= 2 else None
        ),
    ),
}
INPLACE = {"dropout", "dropout1d", "dropout2d", "dropout3d", "locked_dropout"}  # the ones with an inplace argument

OTHERS = {
    "alpha_dropout": lambda x, p, t, i, s, o: DF.alpha_dropout(x, p, t, i, seed=s, offset=o),
    "feature_alpha_dropout": lambda x, p, t, i, s, o: DF.feature_alpha_dropout(x, p, t, i, seed=s, offset=o),
    "gaussian_dropout": lambda x, p, t, i, s, o: DF.gaussian_dropout(x, p, t, seed=s, offset=o),
    "drop_block2d": lambda x, p, t, i, s, o: DF.drop_block2d(x, p, 3, t, seed=s, offset=o),
}
OTHER_INPLACE = {"alpha_dropout", "feature_alpha_dropout"}


@st.composite
def tensors(draw, dtype):
    """(x, shape): a tensor of a drawn shape (0-d, empty, odd sizes) in a drawn memory layout, some elements inf or NaN."""
    rank = draw(st.integers(0, 5))
    shape = tuple(draw(st.lists(st.integers(0, 5) if rank <= 3 else st.integers(1, 3), min_size=rank, max_size=rank)))
    layouts = [
        layout
        for layout in LAYOUTS
        if layout == "contiguous" or (rank >= 2 and layout != "channels_last") or rank in (4, 5)
    ]
    layout = draw(st.sampled_from(layouts))
    n = math.prod(shape)
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31)))
    values = torch.randn(n, generator=g, dtype=torch.float64)
    special = draw(st.sampled_from(["none", "some", "all"]))
    if special != "none" and n:
        at = torch.rand(n, generator=g) < (0.2 if special == "some" else 1.1)
        values[at] = torch.tensor([math.inf, -math.inf, math.nan], dtype=torch.float64).repeat(n)[: int(at.sum())]
    x = values.to(dtype).reshape(shape)
    if layout == "transposed":
        x = x.transpose(-1, -2).contiguous().transpose(-1, -2)
    elif layout == "strided":
        wide = torch.zeros(shape[:-1] + (2 * shape[-1],), dtype=dtype)
        wide[..., ::2] = x
        x = wide[..., ::2]
    elif layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last if rank == 4 else torch.channels_last_3d)
    return x, shape


def calls():
    return st.fixed_dictionaries(
        {
            "dtype": st.sampled_from(DTYPES),
            "p": st.sampled_from(RATES),
            "training": st.booleans(),
            "inplace": st.booleans(),
            "requires_grad": st.booleans(),
            "seed": st.integers(0, 2**64 - 1),
            "offset": st.sampled_from([0, 3, 2**32 - 1, 2**40 + 5]),
            "backend": st.sampled_from(["cpu", "torch"]),
            "option": st.booleans(),
            "leaf": st.booleans(),
        }
    )


FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def reference(x: torch.Tensor, keep_shape, c, seed: int, offset: int, relu: bool) -> torch.Tensor:
    """The spec: where(keep, x * scale, 0) in the compute type (float32 for half types), rounded once."""
    compute = torch.float64 if x.dtype == torch.float64 else torch.float32
    keep = reference_keep(keep_shape, c["p"], seed, offset)
    h = x.detach().to(compute)
    if relu:
        h = torch.where(h < 0, torch.zeros((), dtype=compute), h)
    scale = torch.tensor(rng.scale(c["p"]), dtype=compute)
    return torch.where(keep, h * scale, torch.zeros((), dtype=compute)).to(x.dtype)


def assert_same(got: torch.Tensor, expected: torch.Tensor) -> None:
    """Exactly equal, NaN where NaN (a kept NaN input), and never NaN where the spec says 0."""
    assert got.shape == expected.shape and got.dtype == expected.dtype
    assert not bool((got.isnan() & (expected == 0)).any()), "NaN where the spec says 0"
    torch.testing.assert_close(got, expected, rtol=0, atol=0, equal_nan=True)


def _prepare(x, c):
    """(leaf, input): the call's input is the leaf itself, or with "leaf" False a non-leaf copy of it (x * 1)."""
    leaf = x.detach().clone(memory_format=torch.preserve_format).requires_grad_(c["requires_grad"])
    return leaf, (leaf if c["leaf"] else leaf * 1)


@pytest.mark.parametrize("name", list(MASKED))
@FUZZ
@given(data=st.data(), c=calls())
def test_masked_variants_equal_the_spec_or_raise_a_clear_error(name, data, c):
    call, mask_shape = MASKED[name]
    x, shape = data.draw(tensors(c["dtype"]))
    inplace = c["inplace"] and name in INPLACE
    leaf, inp = _prepare(x, c)
    with K.use_backend(c["backend"]), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch's rank warnings, repeated by dropkit on purpose
        keep_shape = mask_shape(shape, c["option"])
        if keep_shape is None:
            with pytest.raises(ValueError, match=RANK_MESSAGE):
                call(inp, c["p"], c["training"], inplace, c["seed"], c["offset"], c["option"])
            return
        drops = c["training"] and c["p"] > 0
        if inplace and drops and c["requires_grad"] and c["leaf"]:
            with pytest.raises(
                RuntimeError, match="inplace=True cannot overwrite input: it is a leaf tensor that requires grad"
            ):
                call(inp, c["p"], c["training"], inplace, c["seed"], c["offset"], c["option"])
            return
        y = call(inp, c["p"], c["training"], inplace, c["seed"], c["offset"], c["option"])
    relu = name == "relu_dropout"
    if not drops:
        expected = torch.relu(x) if relu else x  # relu_dropout in eval or at p = 0 is the activation alone
        assert_same(y.detach(), expected)
        if not relu:
            assert y is inp
        return
    assert_same(y.detach(), reference(x, keep_shape, c, c["seed"], c["offset"], relu))
    last = {4: torch.channels_last, 5: torch.channels_last_3d}.get(x.dim())
    if last is not None and x.is_contiguous(memory_format=last) != x.is_contiguous():  # an unambiguous layout
        assert y.is_contiguous(memory_format=last) == x.is_contiguous(memory_format=last), "memory format not kept"
    if inplace:
        assert y is inp
    if c["requires_grad"] and y.numel():
        w = torch.randn(shape, dtype=torch.float64).to(x.dtype)
        (g,) = torch.autograd.grad(y, leaf, w)
        if relu:  # dL/dx = where(keep and x > 0, w * scale, 0)
            kept = reference(x.abs() + 1, keep_shape, c, c["seed"], c["offset"], False) != 0
            expected = torch.where(kept & (x > 0), reference(w, keep_shape, c, c["seed"], c["offset"], False), 0)
        else:
            expected = reference(w, keep_shape, c, c["seed"], c["offset"], False)
        assert_same(g, expected)


@pytest.mark.parametrize("name", list(OTHERS))
@FUZZ
@given(data=st.data(), c=calls())
def test_other_variants_keep_their_promises(name, data, c):
    call = OTHERS[name]
    x, _ = data.draw(tensors(c["dtype"]))
    inplace = c["inplace"] and name in OTHER_INPLACE
    leaf, inp = _prepare(x, c)
    drops = c["training"] and c["p"] > 0
    with K.use_backend(c["backend"]), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        try:
            y = call(inp, c["p"], c["training"], inplace, c["seed"], c["offset"])
        except ValueError as e:  # a refused rank: only DropBlock and feature alpha dropout have rank rules
            assert name in ("drop_block2d", "feature_alpha_dropout") and "input" in str(e), e
            return
        except RuntimeError as e:
            assert inplace and drops and c["requires_grad"] and c["leaf"], e
            assert "inplace=True cannot overwrite input: it is a leaf tensor that requires grad" in str(e)
            return
    assert y.shape == x.shape and y.dtype == x.dtype
    if not drops:
        assert y is inp
        return
    if c["p"] == 1.0:
        assert_same(y.detach(), torch.zeros_like(x))
    finite = torch.isfinite(x)
    if c["p"] < 1.0 and finite.all() and name != "gaussian_dropout" and x.dtype in (torch.float32, torch.float64):
        assert bool(torch.isfinite(y).all()), f"{name} made non-finite values of finite input"
    if c["requires_grad"] and y.numel() and not inplace:
        (g,) = torch.autograd.grad(y, leaf, torch.ones_like(y))
        assert g.shape == x.shape
        if c["p"] == 1.0:
            assert_same(g, torch.zeros_like(x))


def test_found_by_the_fuzz_drop_block_of_an_empty_map():
    # drop_block2d divided by zero placing blocks on a map with no rows (ZeroDivisionError, not an error message)
    for shape in [(0, 0, 0), (2, 3, 0, 4), (1, 2, 5, 0)]:
        x = torch.ones(shape, requires_grad=True)
        y = DF.drop_block2d(x, 0.5, 3, seed=1)
        y.sum().backward()
        assert y.shape == x.shape and torch.equal(x.grad, torch.zeros(shape))
