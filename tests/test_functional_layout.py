"""Property test: any shape, stride pattern, dtype, seed, offset and rate gives the spec's output
for the tensor's logical (row-major) order, and keeps the input's layout where torch would."""

import torch
from _helpers.devices import FLOAT_DTYPES
from _helpers.reference import dropout as reference
from hypothesis import given, settings
from hypothesis import strategies as st

import dropkit.functional as DF


@st.composite
def strided_tensors(draw):
    shape = draw(st.lists(st.integers(0, 7), min_size=0, max_size=4))
    x = torch.randn(shape).to(draw(st.sampled_from(FLOAT_DTYPES)))
    if x.dim() >= 2 and draw(st.booleans()):
        x = x.transpose(0, -1)  # permuted
    if x.dim() >= 1 and draw(st.booleans()):
        x = x[..., :: draw(st.integers(1, 3))]  # stepped slice: not dense
    if x.dim() == 4 and draw(st.booleans()):
        x = x.contiguous(memory_format=torch.channels_last)
    return x


@settings(max_examples=80, deadline=None)
@given(
    x=strided_tensors(),
    seed=st.integers(0, 2**64 - 1),
    offset=st.integers(0, 2**62),
    p=st.sampled_from([0.0, 1e-10, 0.25, 0.5, 0.9, 1.0]),
    backward=st.sampled_from(["recompute", "bitpacked"]),
)
def test_any_layout_gets_the_mask_of_its_contiguous_copy(x, seed, offset, p, backward):
    y = DF.dropout(x, p, seed=seed, offset=offset, backward=backward)
    assert torch.equal(y, reference(x.contiguous(), seed, offset, p))
    if p > 0 and x.numel() > 0:
        assert _layout(y) == _layout(torch.empty_like(x))


def _layout(t: torch.Tensor) -> list[int]:
    """Strides of the dimensions longer than 1: the others describe no layout."""
    return [s for s, n in zip(t.stride(), t.shape) if n > 1]
