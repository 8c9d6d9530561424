"""transformers models from small configs (no downloads) with every dropout on dropkit, attention included."""

import pytest
import torch
from _helpers import torchvision_shim
from _helpers.torch_dropouts import TorchDropouts
from torch.utils._python_dispatch import TorchDispatchMode

import dropkit
from dropkit import rng

torchvision_shim.install()  # transformers imports torchvision where it is installed
transformers = pytest.importorskip(
    "transformers", reason="transformers is an optional extra: pip install dropkit[transformers]"
)
from dropkit.convert.integrations import transformers as dk_transformers  # noqa: E402

SMALL = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)


def bert(cls, attn, hidden):
    return cls(
        getattr(transformers, cls.__name__.replace("Model", "Config"))(
            **SMALL,
            vocab_size=50,
            max_position_embeddings=16,
            attention_probs_dropout_prob=attn,
            hidden_dropout_prob=hidden,
        )
    )


BUILDERS = {
    "bert": lambda a, h: bert(transformers.BertModel, a, h),
    "roberta": lambda a, h: bert(transformers.RobertaModel, a, h),
    "distilbert": lambda a, h: transformers.DistilBertModel(transformers.DistilBertConfig(
        dim=32, n_layers=1, n_heads=2, hidden_dim=64, vocab_size=50, max_position_embeddings=16, attention_dropout=a, dropout=h)),
    "gpt2": lambda a, h: transformers.GPT2Model(transformers.GPT2Config(
        n_embd=32, n_layer=1, n_head=2, vocab_size=50, n_positions=16, attn_pdrop=a, resid_pdrop=h, embd_pdrop=h,
        bos_token_id=0, eos_token_id=0)),
    "vit": lambda a, h: transformers.ViTModel(transformers.ViTConfig(
        **SMALL, image_size=8, patch_size=4, num_channels=1, attention_probs_dropout_prob=a, hidden_dropout_prob=h)),
    "llama": lambda a, h: transformers.LlamaModel(transformers.LlamaConfig(
        **SMALL, num_key_value_heads=1, vocab_size=50, max_position_embeddings=16, attention_dropout=a)),
}  # fmt: skip
MODELS = list(BUILDERS)


def build(name, attn=0.1, hidden=0.1, convert=True):
    torch.manual_seed(0)
    model = BUILDERS[name](attn, hidden)
    if convert:
        dk_transformers.apply(model)
    return model


def inputs(name):
    g = torch.Generator().manual_seed(1)
    if name == "vit":
        return {"pixel_values": torch.randn(2, 1, 8, 8, generator=g)}
    mask = torch.ones(2, 6, dtype=torch.long)
    mask[1, 4:] = 0  # padding: the models build a real attention mask
    return {"input_ids": torch.randint(0, 50, (2, 6), generator=g), "attention_mask": mask}


def step(model, name):
    """One training step's loss and gradients."""
    model.train()
    loss = model(**inputs(name)).last_hidden_state.pow(2).mean()
    loss.backward()
    return loss


@pytest.mark.parametrize("name", MODELS)
def test_no_torch_dropout_runs_in_a_training_step(name):
    with TorchDropouts() as before:
        step(build(name, convert=False), name)
    assert before.calls, "the counter sees the stock model's dropout"
    with TorchDropouts() as after:
        step(build(name), name)
    assert after.calls == []


@pytest.mark.parametrize("name", MODELS)
def test_report_names_the_routed_attention(name):
    model = build(name, convert=False)
    _, report = dropkit.replace_dropout(model)
    attention = [n for n, m in model.named_modules() if dk_transformers._uses_interface(m)]
    assert report.routed == attention and len(attention) == 1 and report.unrouted == []
    assert model.config._attn_implementation == "dropkit"
    holders = 1 if name in ("bert", "roberta", "distilbert", "gpt2") else 0  # modules that only hold the attention rate
    dropouts = sum(isinstance(m, torch.nn.Dropout) for m in build(name, convert=False).modules())
    assert sum(report.values()) == dropouts - holders


@pytest.mark.parametrize("name", MODELS)
def test_loss_is_finite_and_reproducible(name):
    model = build(name)
    torch.manual_seed(5)
    a = step(model, name)
    torch.manual_seed(5)
    b = step(model, name)
    assert torch.isfinite(a) and torch.equal(a, b)  # same seeds, same ops, same shapes: exact


@pytest.mark.parametrize("name", MODELS)
def test_eval_equals_the_unconverted_model(name):
    # The stock model runs sdpa (or eager) attention; a different kernel may round differently: close.
    stock, ours = build(name, convert=False).eval(), build(name).eval()
    with torch.no_grad():
        torch.testing.assert_close(ours(**inputs(name)).last_hidden_state, stock(**inputs(name)).last_hidden_state)
        assert torch.equal(ours(**inputs(name)).last_hidden_state, ours(**inputs(name)).last_hidden_state)


@pytest.mark.parametrize("name", MODELS)
def test_mc_samples_differ_with_only_attention_dropout(name):
    model = build(name, attn=0.3, hidden=0.0).eval()
    with torch.no_grad(), dropkit.mc_dropout(model):
        a, b = (model(**inputs(name)).last_hidden_state for _ in range(2))
    assert not torch.equal(a, b)
    stock = build(name, attn=0.3, hidden=0.0, convert=False).eval()
    with torch.no_grad(), dropkit.mc_dropout(stock):
        assert torch.equal(stock(**inputs(name)).last_hidden_state, stock(**inputs(name)).last_hidden_state)


class AttentionCalls(TorchDispatchMode):
    """Records the arguments and output of every dropkit::attention call."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func is torch.ops.dropkit.attention.default:
            self.calls.append((args, out[0]))
        return out


@pytest.mark.parametrize("name", MODELS)
def test_attention_dropout_is_the_spec_mask_on_the_probabilities(name):
    # The op's output against float64 math with the numpy spec mask of the (B, H, L_q, L_k) probabilities: close.
    model = build(name, attn=0.4, hidden=0.0).train()
    with torch.no_grad(), AttentionCalls() as seen:
        model(**inputs(name))
    ((q, k, v, mask, seed, offset, p, is_causal, scale), out) = seen.calls[0]
    assert p == 0.4 and offset == 0
    s = q.double() @ k.double().transpose(-2, -1) * scale
    if is_causal:
        s = s.masked_fill(~torch.ones(s.shape[-2:], dtype=torch.bool).tril(), float("-inf"))
    elif mask is not None:
        s = s.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else s + mask.double()
    keep = torch.from_numpy(rng.keep_mask(tuple(s.shape), p, rng.to_uint64(int(seed)), 0))
    ref = torch.where(keep, torch.softmax(s, -1) / (1 - p), 0.0) @ v.double()
    torch.testing.assert_close(out, ref.float())


@pytest.mark.parametrize("name", MODELS)
def test_compile_graph_breaks_no_more_than_stock(name):
    def breaks(model):
        torch._dynamo.reset()
        return torch._dynamo.explain(model.train())(**inputs(name)).graph_break_count

    assert breaks(build(name)) <= breaks(build(name, convert=False))


_LOAD = """
import sys
from _helpers import torchvision_shim
torchvision_shim.install()
{imports}
from transformers import BertModel
model = BertModel.from_pretrained(sys.argv[1]{kwargs})
print(model.config._attn_implementation, "dropkit" in sys.modules, "transformers" in before)
"""


def _load(path, imports, kwargs=""):
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = _LOAD.format(imports=imports, kwargs=kwargs)
    paths = [str(Path(__file__).resolve().parents[2]), str(Path(dropkit.__file__).resolve().parents[1])]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths + [os.environ.get("PYTHONPATH", "")]))
    run = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout.split()


def test_import_dropkit_is_enough_for_attn_implementation_and_saved_models_load_without_it(tmp_path):
    model = build("bert")  # converted: attention on "dropkit"
    model.save_pretrained(tmp_path)
    # After only `import dropkit` (which did not import transformers), from_pretrained knows "dropkit".
    assert _load(tmp_path, "import dropkit; before = set(sys.modules)", ', attn_implementation="dropkit"') == [
        "dropkit",
        "True",
        "False",
    ]
    # Without dropkit the saved model loads with transformers' default attention.
    assert _load(tmp_path, "before = set(sys.modules)") == ["sdpa", "False", "False"]
