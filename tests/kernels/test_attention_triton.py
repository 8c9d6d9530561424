"""The Triton flash-attention kernels: spec dropout mask, values and gradients (CPU tensors under TRITON_INTERPRET=1)."""

import pytest
import torch
from _helpers import reference as ref

from dropkit import rng
from dropkit.kernels import attention_cpu

K = pytest.importorskip("dropkit.kernels.attention_triton")
pytestmark = ref.needs_triton
DEV = ref.TRITON_DEVICE


def qkv(batch, lq, lk, e, dtype):
    g = torch.Generator().manual_seed(lq * 31 + lk)
    return [torch.randn(*batch, n, e, generator=g).to(dtype).to(DEV) for n in (lq, lk, lk)]


@pytest.mark.parametrize("seed, offset", [(3, 0), (2**64 - 1, 2**34 + 1)])
def test_keep_mask_is_the_spec(seed, offset):
    # v = identity: the output is the dropped probabilities; kept ones are never 0, so (out != 0) is the mask: exact.
    q, k, _ = qkv((2, 1), 5, 17, 4, torch.float32)
    eye = torch.eye(17, device=DEV).expand(2, 1, 17, 17).contiguous()
    out, _ = K.attention_fwd(q, k, eye, None, seed, offset, 0.4, False, 0.5)
    assert torch.equal((out != 0).cpu(), torch.from_numpy(rng.keep_mask((2, 1, 5, 17), 0.4, seed, offset)))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("case", ["plain", "causal", "bool", "additive"])
def test_forward_and_backward_match_the_blocked_kernels(dtype, case):
    # Same mask (regenerated from seed and offset), different summation order and tiles: close at the dtype's tolerance.
    q, k, v = qkv((1, 2), 18, 20, 8, dtype)
    mask = None
    if case == "bool":
        mask = (
            (torch.rand(1, 1, 18, 20, generator=torch.Generator().manual_seed(2)) > 0.3)
            .expand(1, 2, 18, 20)
            .clone()
            .to(DEV)
        )
        mask[..., 3, :] = False  # a row with no key: zeros
    elif case == "additive":
        mask = torch.randn(18, 20, generator=torch.Generator().manual_seed(3)).to(dtype).expand(1, 2, 18, 20).to(DEV)
    args = (mask, 9, 5, 0.3, case == "causal", 8**-0.5)
    out, lse = K.attention_fwd(q, k, v, *args)
    want, want_lse = attention_cpu.attention_fwd(
        q.cpu(), k.cpu(), v.cpu(), *[None if mask is None else mask.cpu(), *args[1:]]
    )
    # As FlashAttention-2, the kernel rounds the probabilities to the input type before P @ V (the blocked
    # kernel keeps them in float32): each term's relative error is eps/2, so the output's absolute error
    # stays below eps * max|v| / (1 - p). float32: the default tolerance.
    eps = torch.finfo(dtype).eps if dtype != torch.float32 else 0.0
    atol = eps * v.float().abs().max().item() / 0.7
    torch.testing.assert_close(out.cpu(), want, **({} if dtype == torch.float32 else dict(atol=atol, rtol=eps)))
    torch.testing.assert_close(lse.cpu(), want_lse)
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(4)).to(dtype).to(DEV)
    got = K.attention_bwd(g, q, k, v, out, lse, *args, False)[:3]
    ref_grads = attention_cpu.attention_bwd(g.cpu(), q.cpu(), k.cpu(), v.cpu(), want, want_lse,
                                            None if mask is None else mask.cpu(), *args[1:], False)[:3]  # fmt: skip
    for a, b in zip(got, ref_grads):
        # Gradients sum L products of rounded terms: eps times the largest gradient, per term of the longest sum.
        tol = {} if dtype == torch.float32 else dict(atol=eps * b.float().abs().max().item() * 4, rtol=eps)
        torch.testing.assert_close(a.cpu(), b, **tol)
