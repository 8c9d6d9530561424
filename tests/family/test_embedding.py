"""EmbeddingDropout: whole rows of the table dropped per forward (word dropout)."""

import pytest
import torch
from _helpers.family import assert_rate, reference_keep

import dropkit
import dropkit.functional as DF


def test_rows_follow_the_spec_mask_and_every_occurrence_agrees():
    weight = torch.randn(50, 4)
    words = torch.randint(0, 50, (8, 30), generator=torch.Generator().manual_seed(0))
    y = DF.embedding_dropout(words, weight, 0.4, seed=5)
    keep = reference_keep((50,), 0.4, 5)
    expected = torch.where(keep[:, None], weight * torch.tensor(1 / 0.6), 0.0)[words]
    assert torch.equal(y, expected)


def test_row_keep_rate_and_gradient_of_dropped_rows_is_zero():
    weight = torch.ones(100_000, 1, requires_grad=True)
    y = DF.embedding_dropout(torch.arange(100_000), weight, 0.3, seed=1)
    assert_rate(y[:, 0] != 0, 0.3)
    y.sum().backward()
    assert torch.equal(weight.grad[:, 0] != 0, y[:, 0] != 0)


def test_module_wraps_embedding_options_and_eval_is_plain_embedding():
    emb = torch.nn.Embedding(10, 3, padding_idx=0)
    m = dropkit.EmbeddingDropout(emb, 0.5)
    words = torch.tensor([[0, 1, 2, 3]])
    assert torch.equal(m.eval()(words), emb(words))
    m.train()
    torch.manual_seed(0)
    y = m(words)
    y.sum().backward()
    assert torch.equal(emb.weight.grad[0], torch.zeros(3))  # padding_idx gets no gradient, as in torch
    assert repr(m).startswith("EmbeddingDropout(\n  p=0.5")


def test_p_one_and_errors():
    weight = torch.randn(5, 2, requires_grad=True)
    y = DF.embedding_dropout(torch.tensor([1, 2]), weight, 1.0, seed=1)
    y.sum().backward()
    assert torch.equal(y, torch.zeros(2, 2)) and torch.isfinite(weight.grad).all()
    with pytest.raises(TypeError, match="embedding must be an instance of Embedding, got Linear"):
        dropkit.EmbeddingDropout(torch.nn.Linear(2, 2), 0.1)
    with pytest.raises(
        ValueError,
        match=r"embedding_dropout: Expected 2D weight, but received a 1D weight of shape \(5\) \(embedding_dropout takes 2-D \(num_embeddings, embedding_dim\)\)",
    ):
        DF.embedding_dropout(torch.tensor([1]), torch.ones(5), 0.1)


def test_integer_weight_error_names_the_weight():
    with pytest.raises(
        TypeError,
        match=r"^weight must have a floating dtype \(float32, float64, float16 or bfloat16\), got dtype torch.int64$",
    ):
        DF.embedding_dropout(torch.tensor([0, 1]), torch.ones(5, 2, dtype=torch.int64), 0.1, seed=1)


def test_module_and_function_share_one_default_rate():
    import inspect

    default = inspect.signature(DF.embedding_dropout).parameters["p"].default
    assert default == 0.1 and dropkit.EmbeddingDropout(torch.nn.Embedding(3, 2)).p == default
