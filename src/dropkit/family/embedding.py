"""Embedding dropout, word dropout: drop whole rows of an embedding table (Gal and Ghahramani 2016;
Merity et al. 2017; fastai's EmbeddingDropout).

Every occurrence of a dropped word in the batch reads a zero vector. One
draw per row of the table (the spec mask of the (num_embeddings,) grid).

Examples:
    >>> y = embedding_dropout(torch.tensor([[0, 1, 2]]), torch.randn(5, 4), 0.2, seed=1)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import _validate, rng
from ._common import DropoutBase, active, check, resolve_seed, select_kept, small_mask

__all__ = ["embedding_dropout", "EmbeddingDropout"]


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
        padding_idx: as in torch.nn.functional.embedding.
        max_norm: as in torch.nn.functional.embedding.
        norm_type: as in torch.nn.functional.embedding.
        scale_grad_by_freq: as in torch.nn.functional.embedding.
        sparse: as in torch.nn.functional.embedding.
        seed: as in dropkit.functional.dropout.
        offset: as in dropkit.functional.dropout; row i uses stream index offset + i.
        generator: as in dropkit.functional.dropout.

    Examples:
        >>> embedding_dropout(torch.tensor([0, 0, 1]), torch.ones(2, 2), 0.5, seed=3).shape
        torch.Size([3, 2])
    """
    p, seed, offset = check(weight, p, seed, offset, "weight")
    _validate.rank(weight, {2: "(num_embeddings, embedding_dim)"}, "embedding_dropout", "weight")
    if active(training) and p > 0.0:
        resolved, offset = resolve_seed(seed, offset, generator, (weight.shape[0], 1), None)
        weight = select_kept(weight, small_mask(weight, (weight.shape[0], 1), p, resolved, offset) != 0, rng.scale(p))
    return F.embedding(input, weight, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse)


class EmbeddingDropout(DropoutBase):
    """Word dropout: wraps an nn.Embedding and drops whole rows of its table each forward (fastai's EmbeddingDropout).

    Args:
        embedding: the nn.Embedding to wrap (its options are honoured).
        p: probability of a row being dropped. Default: 0.1, as embedding_dropout
        generator: torch.Generator the per-call seeds are drawn from (default: torch's; eager only).

    Shape:
        Input: indices of any shape. Output: (*, embedding_dim).

    Examples:
        >>> m = EmbeddingDropout(torch.nn.Embedding(100, 8), 0.1)
        >>> m(torch.tensor([[1, 2, 3]])).shape
        torch.Size([1, 3, 8])
    """

    mask_unit = "row"
    shares_mask_across_batch = True

    def __init__(
        self, embedding: torch.nn.Embedding, p: float = 0.1, *, generator: torch.Generator | None = None
    ) -> None:
        super().__init__()
        self.embedding = _validate.module_type(embedding, torch.nn.Embedding, "embedding")
        self.p = _validate.p(p)
        self.generator = generator

    def forward(self, input: Tensor) -> Tensor:
        e = self.embedding
        return embedding_dropout(
            input,
            e.weight,
            self.p,
            self.training,
            e.padding_idx,
            e.max_norm,
            e.norm_type,
            e.scale_grad_by_freq,
            e.sparse,
            generator=self.generator,
        )

    def extra_repr(self) -> str:
        return f"p={self.p}"
