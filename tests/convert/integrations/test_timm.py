"""Real timm (no stand-in) with dropkit: DropPath, DropBlock2d and Attention dropout, from small configs."""

import pytest
import torch
from _helpers import torchvision_shim
from _helpers.torch_dropouts import TorchDropouts

import dropkit

torchvision_shim.install()  # timm imports torchvision; beside a CPU torch its ops library does not load
timm = pytest.importorskip("timm", reason="timm is an optional extra: pip install dropkit[timm]")
from timm.models.vision_transformer import VisionTransformer  # noqa: E402

from dropkit.convert.integrations import timm as dk_timm  # noqa: E402


def vit(drop=0.1, attn=0.1, path=0.1, convert=True):
    torch.manual_seed(0)
    model = VisionTransformer(
        img_size=8, patch_size=4, in_chans=1, embed_dim=16, depth=2, num_heads=2, num_classes=3,
        drop_rate=drop, proj_drop_rate=drop, attn_drop_rate=attn, drop_path_rate=path,
    )  # fmt: skip
    return dropkit.replace_dropout(model) if convert else (model, None)


def images():
    return torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(1))


def step(model):
    model.train()
    loss = model(images()).pow(2).mean()
    loss.backward()
    return loss


def test_every_dropout_is_converted_or_routed_and_none_of_torchs_runs():
    stock, _ = vit(convert=False)
    with TorchDropouts() as before:
        step(stock)
    assert before.calls
    model, report = vit()
    # pos_drop, head_drop and per block proj_drop, mlp.drop1, mlp.drop2; block 0's drop path rate is 0 (an Identity).
    assert report == {"Dropout": 2 + 2 * 3, "DropPath": 2}
    assert report.routed == ["blocks.0.attn", "blocks.1.attn"] and report.unrouted == []
    assert (
        all(type(b.attn) is dk_timm.Attention for b in model.blocks)
        and type(model.blocks[1].drop_path1) is dropkit.DropPath
    )
    with TorchDropouts() as after:
        step(model)
    assert after.calls == []


def test_drop_path_keeps_rate_and_scale_by_keep():
    model = torch.nn.Sequential(timm.layers.DropPath(0.25, scale_by_keep=False))
    assert dropkit.nn.is_dropout(model[0])
    model, report = dropkit.replace_dropout(model)
    assert repr(model[0]) == "DropPath(p=0.25, scale_by_keep=False)" and report == {"DropPath": 1}


def test_drop_block_converted_in_every_configuration_but_noise():
    blocks = torch.nn.Sequential(
        timm.layers.DropBlock2d(0.2, 3, couple_channels=False), timm.layers.DropBlock2d(0.2, 3),
        timm.layers.DropBlock2d(0.2, 3, gamma_scale=0.5, scale_by_keep=False, batchwise=True, fast=True),
        timm.layers.DropBlock2d(0.2, 3, with_noise=True),
    )  # fmt: skip
    assert all(dropkit.nn.is_dropout(b) for b in blocks)
    with pytest.warns(
        UserWarning, match=r"still runs in torch: 3: timm DropBlock2d\(with_noise=True\) fills dropped blocks"
    ):
        model, report = dropkit.replace_dropout(blocks)
    assert [repr(m) for m in model[:3]] == [
        "DropBlock2d(p=0.2, block_size=3, couple_channels=False)", "DropBlock2d(p=0.2, block_size=3, couple_channels=True)",
        "DropBlock2d(p=0.2, block_size=3, couple_channels=True, gamma_scale=0.5, scale_by_keep=False)",
    ]  # fmt: skip
    assert type(model[3]) is timm.layers.DropBlock2d and report == {"DropBlock2d": 3} and report.unrouted == ["3"]


@pytest.mark.parametrize("couple", [True, False])
def test_drop_block_masks_have_timms_shape_and_scale(couple):
    # timm's semantics: coupled masks are the same for every channel; kept units scale by numel / kept.
    model, _ = dropkit.replace_dropout(torch.nn.Sequential(timm.layers.DropBlock2d(0.3, 3, couple_channels=couple)))
    y = model.train()(torch.ones(4, 5, 12, 12))
    kept = y != 0
    assert torch.equal(kept, kept[:, :1].expand_as(kept)) == couple
    per = kept[:, :1] if couple else kept
    assert torch.equal(y[kept], torch.full_like(y[kept], per.numel() / per.sum().item()))
    assert 0 < per.sum() < per.numel()  # at p = 0.3 some blocks drop and some units stay


def test_loss_finite_and_reproducible():
    model, _ = vit()
    torch.manual_seed(3)
    a = step(model)
    torch.manual_seed(3)
    assert torch.isfinite(a) and torch.equal(step(model), a)  # same seeds and ops: exact


def test_eval_equals_the_unconverted_model():
    # timm's fused attention and dropkit's no-dropout path both call torch's SDPA; qkv scale passed explicitly: close.
    stock, ours = vit(convert=False)[0].eval(), vit()[0].eval()
    with torch.no_grad():
        torch.testing.assert_close(ours(images()), stock(images()))
        assert torch.equal(ours(images()), ours(images()))


@pytest.mark.parametrize("only", ["attn", "path"])
def test_mc_samples_differ_with_only_one_kind_of_dropout(only):
    model, _ = vit(drop=0.0, attn=0.3 if only == "attn" else 0.0, path=0.3 if only == "path" else 0.0)
    model.eval()
    with torch.no_grad(), dropkit.mc_dropout(model):
        assert not torch.equal(model(images()), model(images()))


def test_attention_keep_mask_is_the_spec():
    # The routed attention draws its seed from torch's generator; the same draw gives the spec mask.
    attn = dk_timm.Attention.from_timm(timm.layers.Attention(8, num_heads=2, attn_drop=0.5)).train()
    x = torch.randn(2, 5, 8)
    torch.manual_seed(4)
    got = attn(x)
    q, k, v = attn.qkv(x).reshape(2, 5, 3, 2, 4).permute(2, 0, 3, 1, 4).unbind(0)
    torch.manual_seed(4)
    ref = dropkit.functional.scaled_dot_product_attention(q, k, v, dropout_p=0.5, seed=dropkit.rng.draw_seed())
    torch.testing.assert_close(got, attn.proj(ref.transpose(1, 2).reshape(2, 5, 8)))  # same ops: close after proj
    keep = dropkit.functional.attention_keep_mask(q, k, 0.5, seed=1)
    assert torch.equal(keep, torch.from_numpy(dropkit.rng.keep_mask((2, 2, 5, 5), 0.5, 1, 0)))


def test_shares_parameters_with_the_timm_module():
    timm_attn = timm.layers.Attention(8, num_heads=2)
    ours = dk_timm.Attention.from_timm(timm_attn)
    assert ours.qkv is timm_attn.qkv and list(ours.state_dict()) == list(timm_attn.state_dict())


def test_compile_graph_breaks_no_more_than_stock():
    def breaks(model):
        torch._dynamo.reset()
        return torch._dynamo.explain(model.train())(images()).graph_break_count

    assert breaks(vit()[0]) <= breaks(vit(convert=False)[0])
