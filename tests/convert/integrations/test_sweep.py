"""A sweep of transformers and timm architectures from tiny configs: every dropout they run is dropkit's after conversion.

For each: 0 torch dropout ops in a training step (functional calls and SDPA with
dropout_p > 0 counted, not only modules), eval output equal to the unconverted
model, MC samples that differ with only hidden and with only attention dropout
non-zero, set_dropout(model, 0) giving a deterministic training forward, and a
complete report. Marked `sweep` (pytest -m sweep); the list is in docs/integrations.md.
"""

import copy

import pytest
import torch
from _helpers import torchvision_shim
from _helpers.torch_dropouts import TorchDropouts

import dropkit

torchvision_shim.install()  # transformers and timm import torchvision where it is installed
transformers = pytest.importorskip("transformers", reason="transformers is an optional extra")
timm = pytest.importorskip("timm", reason="timm is an optional extra")

pytestmark = pytest.mark.sweep

TINY = dict(
    hidden_size=32, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2, intermediate_size=64, vocab_size=99,
    max_position_embeddings=64, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
    encoder_ffn_dim=64, decoder_ffn_dim=64, d_ff=64, d_kv=16, embedding_size=32, layerdrop=0.0, image_size=32,
    patch_size=8, num_channels=3, pad_token_id=0, bos_token_id=1, eos_token_id=2, decoder_start_token_id=1,
)  # fmt: skip
VISION = dict(embed_dim=16, depths=[1], num_heads=[2], window_size=4, patch_size=4, hidden_sizes=[16], num_stages=1)
SPEECH = dict(
    conv_dim=(8, 8), conv_kernel=(10, 3), conv_stride=(5, 2), num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
    apply_spec_augment=False, num_mel_bins=8, max_source_positions=16, max_target_positions=16,
)  # fmt: skip

# model_type -> extra config arguments; the family is read from the model (encoder-decoder, main input).
ARCHITECTURES = {
    # encoder-only
    "bert": {}, "roberta": {}, "distilbert": dict(dim=32, n_layers=1, n_heads=2, hidden_dim=64), "albert": {},
    "electra": {}, "xlm-roberta": {}, "camembert": {}, "mpnet": {}, "roformer": {}, "megatron-bert": {}, "ernie": {},
    "data2vec-text": {}, "deberta": {}, "deberta-v2": {}, "esm": dict(vocab_size=33, mask_token_id=4),
    # decoder-only
    "gpt2": dict(n_embd=32, n_layer=1, n_head=2), "gpt_neo": dict(num_layers=1, attention_types=[[["global"], 1]]),
    "gptj": dict(n_embd=32, n_layer=1, n_head=2, rotary_dim=8), "gpt_neox": {}, "opt": dict(ffn_dim=64, word_embed_proj_dim=32),
    "bloom": dict(n_layer=1, n_head=2), "llama": {}, "mistral": {}, "qwen2": {}, "phi": {}, "falcon": {}, "biogpt": {},
    "codegen": dict(n_embd=32, n_layer=1, n_head=2, rotary_dim=8), "xglm": dict(d_model=32, ffn_dim=64), "olmo": {},
    # encoder-decoder
    "bart": {}, "mbart": {}, "t5": dict(num_decoder_layers=1), "mt5": dict(num_decoder_layers=1), "pegasus": {}, "marian": {}, "blenderbot": {}, "blenderbot-small": {},
    "m2m_100": {}, "plbart": {},
    # vision
    "vit": {}, "deit": {}, "beit": {},
    # speech
    "wav2vec2": SPEECH, "hubert": SPEECH, "whisper": SPEECH,
}  # fmt: skip
# Dropout that stays torch's, and why; the report must name it (docs/integrations.md lists these).
NOT_CONVERTIBLE = {
    "dinov2": ({}, "calls torch.rand: draws its own random mask"),
    "wavlm": (SPEECH, "calls torch.multi_head_attention_forward: the attention dropout inside"),
}


def _is_rate(name: str, value) -> bool:
    return isinstance(value, float) and (
        "dropout" in name or "pdrop" in name or "drop_prob" in name or name == "drop_path_rate"
    )


def _is_attention(name: str) -> bool:
    return "attention" in name or "attn" in name


def transformers_model(model_type: str, hidden: float, attention: float):
    extra = ARCHITECTURES[model_type] if model_type in ARCHITECTURES else NOT_CONVERTIBLE[model_type][0]
    config = transformers.AutoConfig.for_model(model_type, **{**TINY, **extra})
    for name, value in list(config.to_dict().items()):
        if _is_rate(name, value) and "classifier" not in name:
            setattr(config, name, attention if _is_attention(name) else hidden)
    torch.manual_seed(0)
    return transformers.AutoModel.from_config(config)


def transformers_inputs(model) -> dict:
    config, g = model.config, torch.Generator().manual_seed(1)
    name = model.main_input_name
    if name == "pixel_values":
        return {"pixel_values": torch.randn(2, 3, 32, 32, generator=g)}
    if name == "input_values":
        return {"input_values": torch.randn(2, 400, generator=g)}
    if name == "input_features":
        inputs = {"input_features": torch.randn(2, config.num_mel_bins, 2 * config.max_source_positions, generator=g)}
    else:
        inputs = {"input_ids": torch.randint(3, config.vocab_size, (2, 7), generator=g)}
    if config.is_encoder_decoder:
        inputs["decoder_input_ids"] = torch.randint(3, config.vocab_size, (2, 5), generator=g)
    return inputs


TIMM = {
    "convnext": dict(model_name="test_convnext", drop_path_rate="hidden", drop_rate="hidden"),
    "resnet_drop_block": dict(model_name="resnet10t", drop_block_rate="hidden", drop_rate="hidden"),
    "efficientnet": dict(model_name="test_efficientnet", drop_path_rate="hidden", drop_rate="hidden"),
    "swin": dict(model_name="swin_tiny_patch4_window7_224", drop_path_rate="hidden", attn_drop_rate="attention",
                 img_size=56, embed_dim=16, depths=(1, 1), num_heads=(2, 2), window_size=7),
    "vit": dict(model_name="vit_tiny_patch16_224", drop_path_rate="hidden", attn_drop_rate="attention", proj_drop_rate="hidden",
                img_size=32, patch_size=8, embed_dim=32, depth=1, num_heads=2),
}  # fmt: skip


def timm_model(name: str, hidden: float, attention: float):
    kwargs = {k: {"hidden": hidden, "attention": attention}.get(v, v) for k, v in TIMM[name].items()}
    torch.manual_seed(0)
    return timm.create_model(pretrained=False, num_classes=5, **kwargs)


def timm_inputs(model) -> torch.Tensor:
    size = 56 if "swin" in type(model).__name__.lower() else 32
    return torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))


CASES = [("transformers", t) for t in ARCHITECTURES] + [("timm", t) for t in TIMM]


def build(case, hidden=0.1, attention=0.1):
    library, name = case
    model = (transformers_model if library == "transformers" else timm_model)(name, hidden, attention)
    return model, (transformers_inputs if library == "transformers" else timm_inputs)(model)


def output(model, inputs) -> torch.Tensor:
    out = model(**inputs) if isinstance(inputs, dict) else model(inputs)
    return out if isinstance(out, torch.Tensor) else out[0]


def step(model, inputs) -> torch.Tensor:
    model.train()
    loss = output(model, inputs).float().pow(2).mean()
    loss.backward()
    return loss


def convert(model, inputs):
    model, report = dropkit.replace_dropout(model, inputs)
    return model, report


@pytest.mark.parametrize("case", CASES, ids=[n for _, n in CASES])
def test_every_dropout_runs_on_dropkit(case):
    stock, inputs = build(case)
    model, report = convert(copy.deepcopy(stock), inputs)
    assert report.complete and report.traced, report.torch
    with (
        torch.no_grad()
    ):  # before any training step moves BatchNorm statistics; attention kernels may round differently: close
        torch.testing.assert_close(output(model.eval(), inputs), output(stock.eval(), inputs))
    with TorchDropouts() as before:
        step(copy.deepcopy(stock), inputs)
    assert before.calls, "the counter sees the stock model's dropout"
    with TorchDropouts() as after:
        loss = step(model, inputs)
    assert after.calls == [] and torch.isfinite(loss)


@pytest.mark.parametrize("case", CASES, ids=[n for _, n in CASES])
def test_mc_stochastic_with_only_one_kind_and_set_dropout_zero_deterministic(case):
    kinds = {"hidden": (0.3, 0.0), "attention": (0.0, 0.3)}
    for kind, (hidden, attention) in kinds.items():
        model, inputs = build(case, hidden, attention)
        if not any(_is_attention(n) == (kind == "attention") for n in _rate_names(case, model)):
            continue  # no dropout of this kind in the model (convolutional nets, Llama's attention-only dropout)
        if MC_GAPS.get(case[1]) == kind:
            continue
        model, _ = convert(model, inputs)
        with torch.no_grad(), dropkit.mc_dropout(model.eval()):
            assert not torch.equal(output(model, inputs), output(model, inputs)), kind
    model, inputs = build(case)
    model, _ = convert(model, inputs)
    dropkit.set_dropout(model, 0.0)
    model.train()
    with torch.no_grad():
        torch.manual_seed(1)
        a = output(model, inputs)
        torch.manual_seed(2)
        assert torch.equal(a, output(model, inputs))


# Known gaps of mc_dropout (docs/integrations.md): Falcon's attention dropout stays off in MC.
MC_GAPS = {"falcon": "attention"}


def _rate_names(case, model) -> list[str]:
    if case[0] == "timm":
        return [k for k, v in TIMM[case[1]].items() if v == "attention"]
    return [n for n, v in model.config.to_dict().items() if _is_rate(n, v)]


@pytest.mark.parametrize("name", NOT_CONVERTIBLE)
def test_what_stays_torchs_is_named_with_why(name):
    model, inputs = build(("transformers", name))
    with pytest.warns(UserWarning, match="still runs in torch: ") as warned:
        _, report = convert(model, inputs)
    assert not report.complete and len(warned) == 1
    assert any(why.startswith(NOT_CONVERTIBLE[name][1]) for why in report.torch.values()), report.torch


def test_compiled_equals_eager_for_an_encoder_decoder_with_functional_dropout():
    # BART calls F.dropout with float rates: after conversion compiled and eager draw the same masks.
    model, inputs = build(("transformers", "bart"), hidden=0.2, attention=0.2)
    model, report = convert(model, inputs)
    assert any(s.kind == "functional" for s in report.sites)
    torch.manual_seed(3)
    eager = output(model.train(), inputs).pow(2).mean()
    torch._dynamo.reset()
    compiled = torch.compile(model)
    torch.manual_seed(3)
    loss = output(compiled, inputs).pow(2).mean()
    assert abs(loss.item() - eager.item()) <= 1e-6, (loss.item(), eager.item())
