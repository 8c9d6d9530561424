"""Embedding dropout, word dropout: drop whole rows of an embedding table (Gal and Ghahramani 2016;
Merity et al. 2017; fastai's EmbeddingDropout).

Every occurrence of a dropped word in the batch reads a zero vector. One
draw per row of the table (the spec mask of the (num_embeddings,) grid).

Example:
    >>> y = embedding_dropout(torch.tensor([[0, 1, 2]]), torch.randn(5, 4), 0.2, seed=1)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import _validate
from ._common import active, check, small_mask

__all__ = ["embedding_dropout"]


def embedding_dropout(
    input: Tensor,
    weight: Tensor,
    p: float = 0.1,
    training: bool = True,
    padding_idx: int | None = None,
    max_norm: float | None = None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
    *,
    seed: int | None = None,
    offset: int = 0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """F.embedding with each row of `weight` zeroed with probability p (kept rows scaled by 1/(1-p)).

    Args:
        input: integer indices of any shape.
        weight: (num_embeddings, embedding_dim) table.
        p: probability of a row (a word) being dropped.
        training: as in dropkit.functional.dropout.
        padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse: as in torch.nn.functional.embedding.
        seed, offset, generator: as in dropkit.functional.dropout; row i uses stream index offset + i.

    Example:
        >>> embedding_dropout(torch.tensor([0, 0, 1]), torch.ones(2, 2), 0.5, seed=3).shape
        torch.Size([3, 2])
    """
    p, seed, offset = check(weight, p, seed, offset, "weight")
    _validate.rank(weight, {2: "(num_embeddings, embedding_dim)"}, "embedding_dropout", "weight")
    if active(training) and p > 0.0:
        weight = weight * small_mask(weight, (weight.shape[0], 1), p, seed, offset, generator, None)
    return F.embedding(input, weight, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse)
