"""torch's nn.MultiheadAttention and nn.TransformerEncoderLayer with their attention dropout on dropkit."""

import pytest
import torch
from _helpers.torch_dropouts import TorchDropouts

import dropkit
from dropkit import rng
from dropkit.convert.integrations.multihead import MultiheadAttention


def encoder(dropout=0.1, attn=None, convert=True, batch_first=True):
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(16, 2, 32, dropout, batch_first=batch_first)
    model = torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
    for m in model.modules():
        if isinstance(m, torch.nn.MultiheadAttention) and attn is not None:
            m.dropout = attn
    return dropkit.replace_dropout(model) if convert else (model, None)


def tokens(batch_first=True):
    x = torch.randn(3, 6, 16, generator=torch.Generator().manual_seed(1))
    return x if batch_first else x.transpose(0, 1)


PADDING = torch.tensor([[False] * 6, [False] * 4 + [True] * 2, [False] * 5 + [True]])


def step(model, batch_first=True):
    model.train()
    loss = model(tokens(batch_first), src_key_padding_mask=PADDING).pow(2).mean()
    loss.backward()
    return loss


@pytest.mark.parametrize("batch_first", [True, False])
def test_no_torch_dropout_runs_in_a_training_step(batch_first):
    with TorchDropouts() as before:
        step(encoder(convert=False, batch_first=batch_first)[0], batch_first)
    assert "multi_head_attention_forward" in before.calls
    model, report = encoder(batch_first=batch_first)
    assert report.routed == ["layers.0.self_attn", "layers.1.self_attn"] and report == {"Dropout": 6}
    with TorchDropouts() as after:
        loss = step(model, batch_first)
    assert after.calls == [] and torch.isfinite(loss)


def test_output_is_the_spec_mask_on_the_probabilities():
    # float64 math with the numpy spec mask, the seed drawn as the layer draws it: close (matmuls).
    torch.manual_seed(0)
    mha = MultiheadAttention.from_torch(torch.nn.MultiheadAttention(8, 2, dropout=0.4, batch_first=True).double())
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    torch.manual_seed(7)
    out, _ = mha(x, x, x, need_weights=False)
    torch.manual_seed(7)
    seed = rng.draw_seed()
    q, k, v = (x @ w.T + b for w, b in zip(mha.in_proj_weight.chunk(3), mha.in_proj_bias.chunk(3)))
    q, k, v = (t.view(2, 5, 2, 4).transpose(1, 2) for t in (q, k, v))
    keep = torch.from_numpy(rng.keep_mask((2, 2, 5, 5), 0.4, seed, 0))
    probs = torch.where(keep, torch.softmax(q @ k.transpose(-2, -1) / 2, -1) / 0.6, 0.0)
    ref = mha.out_proj((probs @ v).transpose(1, 2).reshape(2, 5, 8))
    torch.testing.assert_close(out, ref)


def test_need_weights_uses_the_same_mask():
    # Same seed: the probability path with returned weights and the SDPA path drop the same elements: close.
    mha = MultiheadAttention.from_torch(torch.nn.MultiheadAttention(8, 2, dropout=0.5))
    x = torch.randn(5, 2, 8)
    mask = torch.nn.Transformer.generate_square_subsequent_mask(5)
    torch.manual_seed(3)
    a, weights = mha(x, x, x, attn_mask=mask, average_attn_weights=False)
    torch.manual_seed(3)
    b, none = mha(x, x, x, attn_mask=mask, need_weights=False)
    torch.testing.assert_close(a, b)
    assert none is None and weights.shape == (2, 2, 5, 5) and bool((weights == 0).any())


def test_eval_is_torchs_and_mc_samples_differ_with_only_attention_dropout():
    stock, _ = encoder(dropout=0.0, attn=0.3, convert=False)
    model, _ = encoder(dropout=0.0, attn=0.3)
    stock.eval(), model.eval()
    with torch.no_grad():
        assert torch.equal(model(tokens()), stock(tokens()))  # the same torch forward
        with dropkit.mc_dropout(model):
            assert not torch.equal(model(tokens()), model(tokens()))
        with dropkit.mc_dropout(stock):
            assert torch.equal(stock(tokens()), stock(tokens()))  # torch's attention dropout ignores mc_dropout


def test_reproducible_under_manual_seed():
    model, _ = encoder()
    torch.manual_seed(2)
    a = step(model)
    torch.manual_seed(2)
    assert torch.equal(step(model), a)  # same seeds and ops: exact


def test_options_it_does_not_reimplement_are_named_in_one_warning():
    model = torch.nn.Sequential(
        torch.nn.MultiheadAttention(8, 2, dropout=0.1, add_bias_kv=True), torch.nn.MultiheadAttention(8, 2)
    )
    with pytest.warns(
        UserWarning, match=r"still runs in torch: 0: nn.MultiheadAttention has bias_k/bias_v or add_zero_attn: "
    ):
        _, report = dropkit.replace_dropout(model)
    assert (
        report.unrouted == ["0"]
        and not report.complete
        and report.routed == []
        and type(model[1]) is torch.nn.MultiheadAttention
    )
