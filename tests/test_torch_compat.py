"""dropkit as a drop-in on PyTorch's own dropout tests.

Each test makes one check of PyTorch's test/nn/test_dropout.py (TestDropoutNN and
TestDropoutNNDeviceType on CPU) against dropkit's layers, and names the check it mirrors.
The checks are written anew here; only their conditions and thresholds are torch's.
Where torch's check draws random shapes or masks, the seed is fixed, so a test cannot flake
(torch's own Dropout1d mean check fails on about 1 seed in 5).
"""

import itertools
import warnings

import pytest
import torch

import dropkit
import dropkit.functional as DF
from dropkit.nn import AlphaDropout, Dropout, Dropout1d, Dropout2d, Dropout3d, FeatureAlphaDropout


def _alpha_dropout_keeps_mean_and_std(cls, input):
    # mirrors TestDropoutNN._test_alpha_dropout
    mean, std = input.mean(), input.std()
    for p in (0.2, 0.5, 0.8):
        x = input.detach().clone().requires_grad_()
        out = cls(p)(x)
        assert abs(out.detach().mean() - mean) < 0.1, (p, out.mean(), mean)
        assert abs(out.detach().std() - std) < 0.1, (p, out.std(), std)
        out.backward(input)
        assert x.grad is not None and torch.isfinite(x.grad).all()


def test_AlphaDropout():
    # mirrors TestDropoutNN.test_AlphaDropout
    torch.manual_seed(0)
    _alpha_dropout_keeps_mean_and_std(AlphaDropout, torch.randn(5000))


def test_FeatureAlphaDropout():
    # mirrors TestDropoutNN.test_FeatureAlphaDropout (torch draws b, w, h, d at random)
    torch.manual_seed(0)
    _alpha_dropout_keeps_mean_and_std(FeatureAlphaDropout, torch.randn(1000, 3, 2, 4, 5))
    _alpha_dropout_keeps_mean_and_std(FeatureAlphaDropout, torch.randn(50, 20, 64, 64))


def test_invalid_dropout_p():
    # mirrors TestDropoutNN.test_invalid_dropout_p
    v = torch.ones(1)
    for cls in (Dropout, Dropout1d, Dropout2d, Dropout3d):
        for p in (-0.1, 1.1):
            with pytest.raises(ValueError):
                cls(p)
    for p in (-0.1, 1.1):
        with pytest.raises(ValueError):
            DF.dropout(v, p)


def _dropout_mean_grad_layout_eval(cls, input, memory_format=torch.contiguous_format):
    # mirrors TestDropoutNNDeviceType._test_dropout
    p = 0.2
    input = input.fill_(1 - p)
    for module, shift in ((cls(p), 0), (cls(p, True), 1)):
        x = input.clone(memory_format=memory_format).requires_grad_()
        out = module(x + 0 if shift else x)  # inplace needs a non-leaf, as torch's check passes
        assert out.is_contiguous(memory_format=memory_format)
        assert abs(out.detach().mean() - (1 - p)) < 0.05
        out.backward(input)
        assert x.grad.is_contiguous(memory_format=memory_format)
        assert abs(x.grad.mean() - (1 - p)) < 0.05
    for inplace in (True, False):
        assert torch.equal(cls(p, inplace).eval()(input), input)
    repr(cls(p)), str(cls(p))


def _dropout_discontiguous(cls, memory_format=torch.contiguous_format):
    # mirrors TestDropoutNNDeviceType._test_dropout_discontiguous
    for p in (0, 1e-10):
        inp = torch.ones(2, 3, 3, 3)
        strided = torch.empty(2, 3, 3, 6, memory_format=memory_format)[..., ::2]
        strided.copy_(inp)
        out = cls(p=p)(strided)
        if p != 0:
            assert out.is_contiguous(memory_format=memory_format)
        assert torch.equal(out, strided)


def _dropout_stride_mean_preserve(cls):
    # mirrors TestDropoutNNDeviceType._test_dropout_stride_mean_preserve
    torch.manual_seed(0)
    inp = torch.ones(2, 3, 4, 5)
    for perm in itertools.permutations(range(4)):
        inverse = tuple(perm.index(i) for i in range(4))
        for shift in ((0, 0), (1, 0), (0, 1), (1, 1)):
            for p in (1e-10, 0.3, 0.5, 0.7):
                x = inp.permute(perm).contiguous().permute(inverse)[shift[0] :, shift[1] :, :, :]
                out = cls(p=p)(x)
                assert out.permute(perm).is_contiguous()
                torch.testing.assert_close(out.mean(), inp.mean(), rtol=0.5, atol=0.5)
                if p == 1e-10:
                    assert torch.equal(out, x)
                else:
                    assert not torch.equal(out, x)


def test_Dropout():
    # mirrors TestDropoutNNDeviceType.test_Dropout (CPU)
    torch.manual_seed(0)
    _dropout_mean_grad_layout_eval(Dropout, torch.empty(1000))
    _dropout_discontiguous(Dropout)
    _dropout_discontiguous(Dropout, torch.channels_last)
    _dropout_stride_mean_preserve(Dropout)
    _dropout_mean_grad_layout_eval(Dropout, torch.empty(1000).bfloat16())


def _no_batch_equals_batch_of_one(module, input):
    # mirrors TestDropoutNNDeviceType._test_dropoutNd_no_batch (torch uses freeze_rng_state)
    state = torch.get_rng_state()
    unbatched = module(input.clone())
    torch.set_rng_state(state)
    batched = module(input.clone().unsqueeze(0)).squeeze(0)
    assert torch.equal(unbatched, batched)


def _whole_channels_dropped(module, input):
    # mirrors TestDropoutNNDeviceType._test_dropoutNd_channel_zero
    out = module(input)
    per_channel = input[0, 0].numel()
    for b, c in itertools.product(range(input.shape[0]), range(input.shape[1])):
        assert out[b, c].count_nonzero().item() in (0, per_channel)


def test_Dropout1d():
    # mirrors TestDropoutNNDeviceType.test_Dropout1d (torch draws N, C, L in [10, 15]; seeded here).
    # Its mean check allows 0.05 around 0.8 with 156 channels: sigma 0.032, about 1.6 sigma, so
    # it fails for torch's own Dropout1d on about 1 seed in 5; seed 1 is one where it holds.
    torch.manual_seed(1)
    _dropout_mean_grad_layout_eval(Dropout1d, torch.empty(12, 13, 11, dtype=torch.float64))
    for shape, rank in (((1, 2, 2, 2), 4), ((2,), 1)):
        with pytest.raises(RuntimeError, match=f"Expected 2D or 3D input, but received a {rank}D input"):
            Dropout1d(p=0.5)(torch.rand(shape))
    x = torch.rand(50, 2)
    _no_batch_equals_batch_of_one(Dropout1d(p=0.5), x)
    _no_batch_equals_batch_of_one(Dropout1d(p=0.5, inplace=True), x)
    _whole_channels_dropped(Dropout1d(p=0.5), torch.ones(10, 4, 2))
    _whole_channels_dropped(Dropout1d(p=0.5, inplace=True), torch.ones(10, 4, 2))


def test_Dropout2d():
    # mirrors TestDropoutNNDeviceType.test_Dropout2d (torch draws b, w, h in [1, 5])
    torch.manual_seed(0)
    x = torch.empty(1000, 3, 4, 2)
    _dropout_mean_grad_layout_eval(Dropout2d, x)
    _dropout_mean_grad_layout_eval(Dropout2d, x, torch.channels_last)
    _dropout_discontiguous(Dropout2d)
    _dropout_discontiguous(Dropout2d, torch.channels_last)
    with pytest.warns(UserWarning, match="Received a 5-D input to dropout2d"):
        Dropout2d(p=0.5)(torch.rand(1, 2, 2, 2, 2))
    with pytest.warns(UserWarning, match="Received a 2-D input to dropout2d"):
        Dropout2d(p=0.5)(torch.rand(1, 2))
    with pytest.warns(UserWarning, match="assuming that channel-wise 1D dropout behavior is desired"):
        Dropout2d(p=0.5)(torch.rand(1, 2, 2))
    _whole_channels_dropped(Dropout2d(p=0.5), torch.ones(10, 4, 2, 2))
    _whole_channels_dropped(Dropout2d(p=0.5, inplace=True), torch.ones(10, 4, 2, 2))


def test_Dropout2d_unbatched_keyword_is_dropkits_own():
    # torch's check for unbatched (C, H, W) input is commented out upstream (torch reads 3-D as
    # (N, C, L)); dropkit offers it behind an explicit keyword, with no warning: one image of
    # shape (C, H, W) gets the mask a batch of one would.
    x = torch.rand(50, 2, 2)
    state = torch.get_rng_state()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        unbatched = Dropout2d(p=0.5, unbatched=True)(x)
    torch.set_rng_state(state)
    assert torch.equal(unbatched, Dropout2d(p=0.5)(x.unsqueeze(0)).squeeze(0))
    assert repr(Dropout2d(0.5, unbatched=True)) == "Dropout2d(p=0.5, inplace=False, unbatched=True)"


def test_Dropout3d():
    # mirrors TestDropoutNNDeviceType.test_Dropout3d (torch draws b, w, h in [1, 5], d in [1, 2])
    torch.manual_seed(0)
    _dropout_mean_grad_layout_eval(Dropout3d, torch.empty(1000, 3, 2, 4, 2))
    _dropout_discontiguous(Dropout3d)
    _dropout_discontiguous(Dropout3d, torch.channels_last)
    with pytest.warns(UserWarning, match="Received a 6-D input to dropout3d"):
        Dropout3d(p=0.5)(torch.rand(1, 2, 2, 2, 2, 2))
    with pytest.warns(UserWarning, match="Received a 3-D input to dropout3d"):
        Dropout3d(p=0.5)(torch.rand(1, 2, 2))
    x = torch.rand(50, 2, 2, 2)
    _no_batch_equals_batch_of_one(Dropout3d(p=0.5), x)
    _no_batch_equals_batch_of_one(Dropout3d(p=0.5, inplace=True), x)
    _whole_channels_dropped(Dropout3d(p=0.5), torch.ones(10, 4, 2, 2, 2))
    _whole_channels_dropped(Dropout3d(p=0.5, inplace=True), torch.ones(10, 4, 2, 2, 2))


def test_empty_dropout():
    # mirrors TestDropoutNNDeviceType.test_empty_dropout
    x = torch.tensor([])
    assert dropkit.functional.dropout(x).size() == x.size()
