"""Real PEFT LoRA (no stand-in) with dropkit: each adapter's dropout + lora_A runs as dropout_linear.

Small Llama configs, no downloads. Checked: what runs (no torch dropout in a step), bit-identical
outputs and gradients to the unfused dropkit route (same F.linear calls on the same shapes), the
saved bytes of lora_dropout=0, and PEFT's flows: merge/unmerge, adapter switching, disabling
adapters, save_pretrained/from_pretrained with the state_dict keys unchanged.
"""

import copy

import pytest
import torch
from _helpers import lora as lora_helpers
from _helpers import torchvision_shim
from _helpers.lora import TARGETS, loss, tiny_llama, tiny_llama_lora, tokens
from _helpers.saved import saved_bytes
from _helpers.torch_dropouts import TorchDropouts

import dropkit

torchvision_shim.install()  # peft imports transformers, which imports torchvision where it is installed
peft = pytest.importorskip("peft", reason="peft is an optional extra: pip install dropkit[peft]")
from dropkit.convert.integrations import peft as dk_peft  # noqa: E402

SMALL = dict(hidden=64, layers=1)


def model(lora_dropout=0.1, adapters=("default",)):
    return tiny_llama_lora(**SMALL, lora_dropout=lora_dropout, adapters=adapters).train()


def ids():
    return tokens(2, 8)


def unfused(m):
    return lora_helpers.unfused(copy.deepcopy(m))


def output_and_grads(m, seed=3):
    torch.manual_seed(seed)
    out = loss(m, ids())
    out.backward()
    grads = {n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None}
    m.zero_grad()
    return out.detach(), grads


def test_every_adapter_is_fused_and_reported_and_no_torch_dropout_runs():
    m = model(adapters=("default", "other"))
    keys = list(m.state_dict())
    m, report = dropkit.replace_dropout(m)
    fused = [n for n in report.routed if ".lora_A." in n]
    assert len(fused) == 2 * len(TARGETS)  # 1 layer x 7 projections x 2 adapters
    assert fused[0] == "base_model.model.model.layers.0.self_attn.q_proj.lora_A.default"
    assert sum(1 for n in fused if n.endswith(".other")) == len(TARGETS)
    layer = m.get_submodule("base_model.model.model.layers.0.self_attn.q_proj")
    assert type(layer) is peft.tuners.lora.layer.Linear  # PEFT's class, unchanged
    assert isinstance(layer.lora_A["default"], dropkit.nn.DropoutLinear) and layer.lora_A["default"].p == 0.1
    assert isinstance(layer.lora_dropout["default"], torch.nn.Identity)
    assert list(m.state_dict()) == keys
    with TorchDropouts() as seen:
        loss(m, ids()).backward()
    assert seen.calls == []
    assert dropkit.replace_dropout(m)[1].routed == [n for n in report.routed if ".lora_A." not in n]  # idempotent


def test_outputs_and_gradients_are_bit_identical_to_the_unfused_route():
    m = model()
    reference = unfused(m)
    fused, _ = dropkit.replace_dropout(m)
    want, want_grads = output_and_grads(reference)
    got, got_grads = output_and_grads(fused)
    # The same seeds in the same order and the same F.linear / mm calls on the same shapes: equal.
    assert torch.equal(got, want)
    assert got_grads.keys() == want_grads.keys() and len(got_grads) == 2 * len(TARGETS)
    for name, g in got_grads.items():
        assert torch.equal(g, want_grads[name]), name
    assert not torch.equal(got, output_and_grads(model(lora_dropout=0.0))[0])  # the dropout did drop


def test_saved_bytes_equal_those_of_no_dropout():
    x = tokens(2, 64)
    zero = saved_bytes(lambda: loss(model(0.0), x))
    torch_drop = saved_bytes(lambda: loss(model(0.1), x))
    fused, _ = dropkit.replace_dropout(model(0.1))
    routed = saved_bytes(lambda: loss(fused, x))
    # Each adapter keeps x, which lora_A keeps without dropout too; the seeds are Python ints.
    assert routed == zero, (routed, zero)
    # torch's dropout keeps at least a bool mask per element for each of the 7 projections.
    masked = x.numel() * (6 * 64 + 64 * 43 // 16)  # six projections read hidden, down_proj the MLP width
    assert torch_drop - zero >= masked, (torch_drop, zero, masked)


def test_merge_and_unmerge_work_on_the_fused_adapters():
    m, _ = dropkit.replace_dropout(model())
    plain = unfused(model())
    m.eval(), plain.eval()
    x = ids()
    before = m(input_ids=x).logits
    assert torch.equal(before, plain(input_ids=x).logits)  # eval: lora_A is its Linear
    m.merge_adapter()
    plain.merge_adapter()
    merged = m(input_ids=x).logits
    assert torch.equal(merged, plain(input_ids=x).logits)
    torch.testing.assert_close(merged, before)  # merged weights: another sum order
    m.unmerge_adapter()
    torch.testing.assert_close(m(input_ids=x).logits, before)
    unloaded = m.merge_and_unload()
    assert not any(isinstance(mod, dropkit.nn.DropoutLinear) for mod in unloaded.modules())
    torch.testing.assert_close(unloaded(input_ids=x).logits, before)


def test_adapter_switching_trains_only_the_active_adapter():
    m, _ = dropkit.replace_dropout(model(adapters=("a", "b")))
    plain = unfused(model(adapters=("a", "b")))
    x = ids()
    for name in ("b", "a"):
        m.set_adapter(name)
        plain.set_adapter(name)
        _, grads = output_and_grads(m)
        assert grads and all(f".{name}." in n for n in grads)
        m.eval(), plain.eval()
        assert torch.equal(m(input_ids=x).logits, plain(input_ids=x).logits)
        m.train(), plain.train()
    m.eval()
    m.set_adapter("a")
    a = m(input_ids=x).logits
    m.set_adapter("b")
    assert not torch.equal(a, m(input_ids=x).logits)


def test_disable_adapter_gives_the_base_model():
    m, _ = dropkit.replace_dropout(model())
    m.eval()
    x = ids()
    with m.disable_adapter():
        off = m(input_ids=x).logits
    base = tiny_llama(64, 1).eval()  # the same seed: the same base weights
    assert torch.equal(off, base(input_ids=x).logits)
    assert not torch.equal(off, m(input_ids=x).logits)


def test_save_pretrained_and_from_pretrained_round_trip(tmp_path):
    m, _ = dropkit.replace_dropout(model())
    unfused(model()).save_pretrained(tmp_path / "plain")
    m.save_pretrained(tmp_path / "fused")
    a = peft.utils.load_peft_weights(str(tmp_path / "fused"))
    b = peft.utils.load_peft_weights(str(tmp_path / "plain"))
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)  # the same keys and tensors
    base = tiny_llama(64, 1)
    loaded = peft.PeftModel.from_pretrained(base, tmp_path / "fused", is_trainable=True)
    loaded, report = dropkit.replace_dropout(loaded)
    assert sum(".lora_A." in n for n in report.routed) == len(TARGETS)
    m.eval(), loaded.eval()
    assert torch.equal(loaded(input_ids=ids()).logits, m(input_ids=ids()).logits)
    m.train(), loaded.train()
    assert torch.equal(output_and_grads(loaded)[0], output_and_grads(m)[0])


def test_set_dropout_and_mc_dropout_reach_the_adapters():
    m, _ = dropkit.replace_dropout(model())
    changed = dropkit.set_dropout(m, 0.3)
    assert sum(".lora_A." in n for n in changed) == len(TARGETS)
    m.eval()
    x = ids()
    with dropkit.mc_dropout(m):
        assert not torch.equal(m(input_ids=x).logits, m(input_ids=x).logits)
    assert torch.equal(m(input_ids=x).logits, m(input_ids=x).logits)


def test_variant_adapters_keep_their_dropout_module():
    config = peft.LoraConfig(r=4, lora_dropout=0.1, target_modules=["q_proj"], use_dora=True)
    m = peft.get_peft_model(tiny_llama(64, 1), config, adapter_name="dora")
    m, report = dropkit.replace_dropout(m)
    assert not any(".lora_A." in n for n in report.routed)
    layer = m.get_submodule("base_model.model.model.layers.0.self_attn.q_proj")
    assert type(layer.lora_dropout["dora"]) is dropkit.nn.Dropout and report["Dropout"] == 1


def test_glue_route_on_a_model_without_lora_does_nothing():
    assert dk_peft.route(torch.nn.Linear(2, 2)) == ([], {})
