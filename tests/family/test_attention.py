"""scaled_dot_product_attention: spec mask on the (..., L_q, L_k) probabilities, torch's semantics, lean backward."""

import pytest
import torch

import dropkit
import dropkit.functional as DF
from dropkit import _mode, rng
from dropkit.kernels import attention_cpu

SDPA = torch.nn.functional.scaled_dot_product_attention


def reference(q, k, v, mask, p, seed, offset, is_causal=False, scale=None):
    """float64 math: softmax(q k^T * scale + mask), the numpy spec mask times 1/(1-p), times v."""
    q, k, v = q.double(), k.double(), v.double()
    s = q @ k.transpose(-2, -1) * (scale if scale is not None else q.shape[-1] ** -0.5)
    if is_causal:
        mask = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool).tril()
    if mask is not None and mask.dtype == torch.bool:
        s = s.masked_fill(~mask, float("-inf"))
    elif mask is not None:
        s = s + mask.double()
    probs = torch.softmax(s, -1).nan_to_num(0.0)
    keep = torch.from_numpy(rng.keep_mask(tuple(probs.shape), p, seed, offset))
    return torch.where(keep, probs / (1 - p), 0.0) @ v


def qkv(batch, lq, lk, e=4, ev=None, dtype=torch.float32, requires_grad=False):
    g = torch.Generator().manual_seed(lq * 100 + lk)
    make = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64).to(dtype).requires_grad_(requires_grad)
    return make(*batch, lq, e), make(*batch, lk, e), make(*batch, lk, ev or e)


@pytest.mark.parametrize("batch, lq, lk", [((2, 3), 5, 7), ((1,), 9, 3), ((2, 1, 2), 1, 13)])
@pytest.mark.parametrize("seed, offset", [(0, 0), (2**64 - 1, 3), (12345, 2**34 + 1)])
def test_keep_mask_is_the_spec_mask_of_the_probability_tensor(batch, lq, lk, seed, offset):
    # Value = identity, so the output is the dropped probability matrix itself; kept
    # probabilities of unmasked softmax rows are never 0, so (out != 0) is the mask: exact.
    q, k, _ = qkv(batch, lq, lk)
    eye = torch.eye(lk).expand(*batch, lk, lk)
    out = DF.scaled_dot_product_attention(q, k, eye, dropout_p=0.4, seed=seed, offset=offset)
    spec = torch.from_numpy(rng.keep_mask((*batch, lq, lk), 0.4, seed, offset))
    assert torch.equal(out != 0, spec)
    assert torch.equal(DF.attention_keep_mask(q, k, 0.4, seed=seed, offset=offset), spec)


def test_query_blocks_and_shards_see_their_slice_of_the_mask(monkeypatch):
    # Blocks of one row each, several runs per block: the mask must not depend on the blocking (exact).
    q, k, v = qkv((2, 3), 6, 5)
    whole = DF.scaled_dot_product_attention(q, k, v, dropout_p=0.5, seed=9, offset=11)
    monkeypatch.setattr(attention_cpu, "BLOCK_ELEMENTS", 1)
    assert torch.equal(DF.scaled_dot_product_attention(q, k, v, dropout_p=0.5, seed=9, offset=11), whole)
    # Query rows [2, 6) of batch-head (1, 2) start at stream offset + (5 * 6 + 2) * 5.
    shard = DF.scaled_dot_product_attention(
        q[1:, 2:, 2:], k[1:, 2:], v[1:, 2:], dropout_p=0.5, seed=9, offset=11 + (5 * 6 + 2) * 5
    )
    torch.testing.assert_close(shard[0, 0], whole[1, 2, 2:])  # the same mask, a different matmul shape: close


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("case", ["plain", "bool", "additive", "causal", "scale", "gqa"])
def test_values_match_the_float64_math_reference(dtype, case):
    # Matmuls and a softmax: close, at the dtype's default tolerances, against float64 rounded to the dtype.
    q, k, v = qkv((2, 4), 6, 9, e=8, ev=3, dtype=dtype)
    kw, mask, ref_kv = {}, None, (k, v)
    if case == "bool":
        mask = torch.rand(2, 1, 6, 9, generator=torch.Generator().manual_seed(1)) > 0.3
        mask[0, 0, 2] = False  # a row with no key: zeros, as torch's SDPA gives
    elif case == "additive":
        mask = torch.randn(6, 9, generator=torch.Generator().manual_seed(2)).to(dtype)
    elif case == "causal":
        kw["is_causal"] = True
    elif case == "scale":
        kw["scale"] = 0.3
    elif case == "gqa":
        k, v = k[:, :2], v[:, :2]
        kw["enable_gqa"] = True
        ref_kv = (k.repeat_interleave(2, 1), v.repeat_interleave(2, 1))
    out = DF.scaled_dot_product_attention(q, k, v, mask, 0.3, seed=5, offset=7, **kw)
    ref = reference(q, *ref_kv, mask, 0.3, 5, 7, kw.get("is_causal", False), kw.get("scale"))
    assert out.dtype == dtype and out.shape == (2, 4, 6, 3)
    torch.testing.assert_close(out, ref.to(dtype))


def test_without_dropout_it_is_torchs_sdpa():
    # The same torch call on the same inputs: exact.
    q, k, v = qkv((2, 2), 5, 5)
    assert torch.equal(DF.scaled_dot_product_attention(q, k, v, is_causal=True), SDPA(q, k, v, is_causal=True))
    assert torch.equal(DF.scaled_dot_product_attention(q, k, v, None, 0.5, training=False), SDPA(q, k, v))
    assert dropkit.ScaledDotProductAttention(0.5).eval()(q, k, v).equal(SDPA(q, k, v))


def test_mc_dropout_turns_it_on_and_seeds_come_from_torch():
    q, k, v = qkv((1, 2), 4, 4)
    with _mode.mc_enabled():
        assert not torch.equal(
            DF.scaled_dot_product_attention(q, k, v, None, 0.5, training=False, seed=1), SDPA(q, k, v)
        )
    torch.manual_seed(0)
    a = DF.scaled_dot_product_attention(q, k, v, None, 0.5)
    b = DF.scaled_dot_product_attention(q, k, v, None, 0.5)
    torch.manual_seed(0)
    assert torch.equal(DF.scaled_dot_product_attention(q, k, v, None, 0.5), a) and not torch.equal(a, b)
    attn = dropkit.ScaledDotProductAttention(0.5).eval()
    with dropkit.mc_dropout(torch.nn.Sequential(attn)):
        assert attn.training


@pytest.mark.parametrize("case", ["plain", "causal", "bool", "additive", "gqa"])
def test_gradcheck(case):
    q, k, v = qkv((2, 2), 3, 4, e=3, ev=2, dtype=torch.float64, requires_grad=True)
    args, kw = [q, k, v], {}
    if case == "causal":
        kw["is_causal"] = True
    elif case == "bool":
        kw["attn_mask"] = torch.tensor([[True, False, True, True], [False, False, True, False], [True] * 4])
    elif case == "additive":
        args.append(torch.randn(2, 1, 3, 4, dtype=torch.float64, requires_grad=True))
    elif case == "gqa":
        args[1], args[2] = k[:, :1].detach().requires_grad_(), v[:, :1].detach().requires_grad_()
        kw["enable_gqa"] = True
    fn = lambda q, k, v, *m: DF.scaled_dot_product_attention(q, k, v, *m, dropout_p=0.3, seed=4, offset=1, **kw)
    assert torch.autograd.gradcheck(fn, tuple(args))


def test_gradient_equals_the_reference_gradient():
    # Blocked backward with the regenerated mask vs autograd through the float64 math: close.
    q, k, v = qkv((2, 3), 7, 5, dtype=torch.float64, requires_grad=True)
    g = torch.randn(2, 3, 7, 4, dtype=torch.float64)
    got = torch.autograd.grad(DF.scaled_dot_product_attention(q, k, v, dropout_p=0.5, seed=2), (q, k, v), g)
    want = torch.autograd.grad(reference(q, k, v, None, 0.5, 2, 0), (q, k, v), g)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)


def test_nothing_of_size_lq_by_lk_is_saved():
    q, k, v = qkv((2, 2), 64, 64, requires_grad=True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.numel()) or t, lambda t: t):
        DF.scaled_dot_product_attention(q, k, v, dropout_p=0.1, seed=1, is_causal=True)
    # q, k, v, output (2*2*64*4 each), the row log-sum-exp (2*2*64) and the seed; probabilities would be 16384.
    assert sorted(saved) == [1, 256, 1024, 1024, 1024, 1024]


def test_p_one_gives_zeros_and_zero_gradients():
    q, k, v = qkv((1, 2), 3, 3, requires_grad=True)
    out = DF.scaled_dot_product_attention(q, k, v, dropout_p=1.0, seed=1)
    out.sum().backward()
    assert torch.equal(out, torch.zeros_like(out)) and all(torch.equal(t.grad, torch.zeros_like(t)) for t in (q, k, v))


def test_compile_fullgraph_matches_eager():
    # The op runs the same kernels under compile: exact, gradients too.
    q, k, v = qkv((2, 2), 5, 6, requires_grad=True)
    fn = lambda q, k, v: DF.scaled_dot_product_attention(q, k, v, dropout_p=0.3, is_causal=True, seed=8).sin()
    eager = fn(q, k, v)
    ge = torch.autograd.grad(eager.sum(), (q, k, v))
    compiled = torch.compile(fn, fullgraph=True, backend="aot_eager")(q, k, v)
    gc = torch.autograd.grad(compiled.sum(), (q, k, v))
    assert torch.equal(compiled, eager) and all(torch.equal(a, b) for a, b in zip(gc, ge))


def test_compiled_seed_draws_follow_torch_manual_seed():
    q, k, v = qkv((1, 2), 4, 4)
    fn = lambda q: DF.scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    torch.manual_seed(3)
    eager = fn(q)
    torch.manual_seed(3)
    assert torch.equal(torch.compile(fn, fullgraph=True)(q), eager)


def test_errors_name_the_argument():
    q, k, v = qkv((1, 2), 3, 3)
    with pytest.raises(ValueError, match=r"dropout_p must be between 0 and 1, got 1.5"):
        DF.scaled_dot_product_attention(q, k, v, dropout_p=1.5)
    with pytest.raises(ValueError, match="takes attn_mask or is_causal=True, not both"):
        DF.scaled_dot_product_attention(q, k, v, torch.ones(3, 3, dtype=torch.bool), 0.1, is_causal=True)
    with pytest.raises(ValueError, match=r"key \(\.\.\., S, E\).*got shapes \(1, 2, 3, 4\), \(1, 2, 3, 5\)"):
        DF.scaled_dot_product_attention(q, torch.randn(1, 2, 3, 5), v, dropout_p=0.1)
    with pytest.raises(
        ValueError, match=r"enable_gqa needs query heads \(2\) to be a multiple of key and value heads \(3, 3\)"
    ):
        DF.scaled_dot_product_attention(
            q, torch.randn(1, 3, 3, 4), torch.randn(1, 3, 3, 4), dropout_p=0.1, enable_gqa=True
        )
    with pytest.raises(TypeError, match="query must have a floating dtype"):
        DF.scaled_dot_product_attention(q.int(), k, v, dropout_p=0.1)


def test_module_repr():
    assert repr(dropkit.ScaledDotProductAttention(0.1)) == "ScaledDotProductAttention(p=0.1)"
