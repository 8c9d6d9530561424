"""torch's dropout functions called in a converted model's forward run on dropkit (dropkit.convert.integrations.intercept)."""

import pytest
import torch
import torch.nn.functional as F
from _helpers.torch_dropouts import TorchDropouts
from torch import nn

import dropkit
import dropkit.functional as DF
from dropkit import rng
from dropkit.convert.integrations import intercept


class Block(nn.Module):
    """Dropout as many model files write it: float rates under their own names, one of them gated by training."""

    def __init__(self, hidden=0.2, attn=0.3):
        super().__init__()
        self.lin, self.norm = nn.Linear(8, 8), nn.BatchNorm1d(4)
        self.hidden_rate, self.attn_rate = hidden, attn

    def forward(self, x):
        h = F.dropout(self.norm(self.lin(x)), self.hidden_rate, self.training)
        q = h.unsqueeze(1)
        a = F.scaled_dot_product_attention(q, q, q, dropout_p=self.attn_rate if self.training else 0.0).squeeze(1)
        return torch.dropout(a, self.hidden_rate, self.training) + h


class Net(nn.Module):
    def __init__(self, hidden=0.2, attn=0.3, checkpoint=False):
        super().__init__()
        self.blocks = nn.ModuleList([Block(hidden, attn), Block(hidden, attn)])
        self.checkpoint = checkpoint

    def forward(self, x):
        for block in self.blocks:
            x = torch.utils.checkpoint.checkpoint(block, x, use_reentrant=False) if self.checkpoint else block(x)
        return x


def tokens(batch=3):
    return torch.randn(batch, 4, 8, generator=torch.Generator().manual_seed(1))


def build(convert=True, **kwargs):
    torch.manual_seed(0)
    net = Net(**kwargs)
    return dropkit.replace_dropout(net, tokens())[0] if convert else net


def loss_and_grads(model, seed=5):
    model.train().zero_grad()
    torch.manual_seed(seed)
    loss = model(tokens()).pow(2).mean()
    loss.backward()
    return loss, [p.grad.clone() for p in model.parameters()]


def test_no_torch_dropout_runs_in_a_training_step():
    with TorchDropouts() as before:
        loss_and_grads(build(convert=False))
    assert before.calls.count("dropout") == 4 and before.calls.count("scaled_dot_product_attention") == 2
    with TorchDropouts() as after:
        loss_and_grads(build())
    assert after.calls == []


def test_report_lists_each_site_with_its_rate_and_attribute():
    _, report = dropkit.replace_dropout(build(convert=False), tokens())
    assert report.traced and report.complete and report.torch == {} and dict(report) == {}
    got = [(s.name, s.index, s.op, s.kind, s.rate, s.holder) for s in report.sites]
    assert got == [
        (f"blocks.{i}", n, op, kind, rate, holder) for i in (0, 1) for n, op, kind, rate, holder in (
            (0, "dropout", "functional", 0.2, "hidden_rate"),
            (1, "scaled_dot_product_attention", "attention", 0.3, "attn_rate"),
            (2, "dropout", "functional", 0.2, "hidden_rate"),
        )
    ]  # fmt: skip


def test_equal_rates_under_two_names_are_told_apart():
    # Both attributes hold 0.1: only the distinct values of the second traced forward can say which a call reads.
    model, report = dropkit.replace_dropout(build(convert=False, hidden=0.1, attn=0.1), tokens())
    assert [s.holder for s in report.sites[:3]] == ["hidden_rate", "attn_rate", "hidden_rate"]
    assert model.blocks[0].hidden_rate == 0.1 and model.blocks[0].attn_rate == 0.1  # the marks are undone


def test_conversion_leaves_rng_modes_and_batchnorm_statistics_alone():
    net = build(convert=False).eval()
    stats = [b.clone() for b in net.buffers()]
    torch.manual_seed(9)
    expected = torch.rand(3)
    torch.manual_seed(9)
    dropkit.replace_dropout(net, tokens())
    assert torch.equal(torch.rand(3), expected)
    assert not any(m.training for m in net.modules()) and all(torch.equal(a, b) for a, b in zip(stats, net.buffers()))


class Functional(nn.Module):
    def __init__(self, rate=0.4):
        super().__init__()
        self.rate = rate

    def forward(self, x):
        return F.dropout(x, self.rate, self.training)


def test_a_functional_call_is_dropkits_dropout_with_torchs_next_seed():
    model, _ = dropkit.replace_dropout(Functional(), torch.ones(2, 8))
    x = torch.randn(16, 32)
    torch.manual_seed(3)
    got = model.train()(x)
    torch.manual_seed(3)
    seed = rng.draw_seed()
    assert torch.equal(got, DF.dropout(x, 0.4, seed=seed))  # the same function on the same tensor: exact
    assert torch.equal(got != 0, torch.from_numpy(rng.keep_mask((16, 32), 0.4, seed, 0)))


def test_eval_is_the_unconverted_model():
    # In eval no mode is entered: the same torch calls on the same tensors, so exactly equal.
    with torch.no_grad():
        assert torch.equal(build().eval()(tokens()), build(convert=False).eval()(tokens()))


def test_checkpoint_recompute_draws_the_forwards_masks():
    # Same seeds, same ops, the recompute inside backward: gradients exactly those of the plain model.
    plain_loss, plain = loss_and_grads(build())
    ckpt_loss, ckpt = loss_and_grads(build(checkpoint=True))
    assert torch.equal(plain_loss, ckpt_loss) and all(torch.equal(a, b) for a, b in zip(plain, ckpt))


def test_compiled_equals_eager_without_graph_breaks():
    model = build()
    torch._dynamo.reset()
    explain = torch._dynamo.explain(model.train())(tokens())
    assert explain.graph_break_count == 0
    eager_loss, eager = loss_and_grads(model)
    compiled = torch.compile(model, fullgraph=True)
    model.zero_grad()
    torch.manual_seed(5)
    loss = compiled(tokens()).pow(2).mean()
    loss.backward()
    # Same masks; Inductor may fuse the arithmetic differently: close.
    torch.testing.assert_close(loss, eager_loss)
    torch.testing.assert_close([p.grad for p in model.parameters()], eager)


@pytest.mark.parametrize("only", ["hidden", "attn"])
def test_mc_samples_differ_with_only_one_kind_and_batchnorm_stays_eval(only):
    model = build(hidden=0.3 if only == "hidden" else 0.0, attn=0.3 if only == "attn" else 0.0).eval()
    stats = [b.clone() for b in model.buffers()]
    with torch.no_grad(), dropkit.mc_dropout(model):
        assert not torch.equal(model(tokens()), model(tokens()))
        assert not model.blocks[0].norm.training
    assert all(torch.equal(a, b) for a, b in zip(stats, model.buffers()))
    stock = build(convert=False, hidden=0.3 if only == "hidden" else 0.0, attn=0.3 if only == "attn" else 0.0).eval()
    with torch.no_grad(), dropkit.mc_dropout(stock):
        assert torch.equal(stock(tokens()), stock(tokens()))  # unconverted: torch's functional dropout stays off


def test_set_dropout_and_schedule_reach_the_float_rates():
    model = build()
    changed = dropkit.set_dropout(model, 0.0)
    assert changed == [f"blocks.{i}.{a}" for i in (0, 1) for a in ("hidden_rate", "attn_rate")]
    assert model.blocks[1].attn_rate == 0.0
    a, _ = loss_and_grads(model, seed=1)
    b, _ = loss_and_grads(model, seed=2)
    assert torch.equal(a, b)  # no dropout left: different seeds, the same training forward
    dropkit.DropoutSchedule(model, 0.4, "late", steps=1).step()
    assert model.blocks[0].hidden_rate == 0.4


def test_a_site_without_an_attribute_gets_its_rate_set():
    class Computed(nn.Module):
        def __init__(self):
            super().__init__()
            self.base = 0.1

        def forward(self, x):
            return F.dropout(x, self.base * 3, self.training)

    model, report = dropkit.replace_dropout(Computed(), torch.ones(2, 8))
    assert [(s.rate, s.holder) for s in report.sites] == [(pytest.approx(0.3), None)]
    assert dropkit.set_dropout(model, 0.0) == ["dropout[0]"]
    assert torch.equal(model.train()(torch.ones(2, 8)), torch.ones(2, 8))
    with dropkit.mc_dropout(model.eval()):
        assert torch.equal(model(torch.ones(2, 8)), torch.ones(2, 8))  # mc_dropout runs the set rate too


def test_functional_calls_are_sample_addressed():
    # Masks of a functional call depend on (seed, module, call index, step, sample), not on the batch split.
    model = build(attn=0.0)
    x = tokens(6)
    model.train()
    for b in model.blocks:
        b.norm.eval()  # batch statistics would depend on the split
    with torch.no_grad(), dropkit.sample_addressed(model, seed=4) as addr:
        addr.set_step(2)
        whole = model(x)
        addr.set_step(2, sample_offset=4)
        tail = model(x[4:])
    torch.testing.assert_close(whole[4:], tail)  # linear layers on a different batch shape: close
    assert intercept.interceptor(model) is not None
