"""Monte-Carlo dropout: predictive uncertainty from any model that has dropout (Gal and Ghahramani 2016).

Keep dropout on at test time, run T stochastic passes and read the spread of the
T predictions as uncertainty. `mc_dropout(model)` switches on only the
dropout-family modules (BatchNorm and everything else stay in eval mode);
`mc_predict` runs the T passes batched and summarizes them.

Examples:
    >>> import torch, dropkit
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), dropkit.Dropout(0.5), torch.nn.Linear(8, 3))
    >>> r = dropkit.mc_predict(model, torch.randn(2, 4), samples=20, seed=0)
    >>> r.samples.shape, r.mean_probs.shape, r.mutual_information.shape
    (torch.Size([20, 2, 3]), torch.Size([2, 3]), torch.Size([2]))
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .. import _mode, _validate, rng
from ..nn import (
    Dropout,
    Dropout1d,
    Dropout2d,
    Dropout3d,
    DropoutBase,
    DropoutLinear,
    DropPath,
    LockedDropout,
    is_dropout,
)
from ..ops.consistent import Replicas
from . import acquisition
from .acquisition import entropy

__all__ = [
    "mc_dropout",
    "mc_predict",
    "MCResult",
    "is_dropout",
    "shares_mask_across_batch",
    "TASKS",
    "CHUNK_ELEMENTS",
    "CONSISTENT_LAYERS",
]

TASKS = ("classification", "regression")


def _l2_elements(default: int = 2**20) -> int:
    """Half of CPU 0's L2 cache in float32 elements (Linux sysfs), or `default` where it cannot be read."""
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            if (index / "level").read_text().strip() != "2" or (index / "type").read_text().strip() == "Instruction":
                continue
            size = (index / "size").read_text().strip()
        except OSError:
            continue
        units = {"K": 2**10, "M": 2**20}
        if size[:-1].isdigit() and size[-1] in units:
            return max(1, int(size[:-1]) * units[size[-1]] // 8)
    return default


# Default size of one replicated batch, in input elements: half the L2 cache, so
# the replica and the first activations stay in it. A fixed 4 MiB (2^20 elements)
# spilled the 2 MiB L2 of the Intel Xeons the benchmarks ran on; their L3 is shared
# with the whole host. Measured with benchmarks/bench_mc.py (docs/benchmarks.md).
CHUNK_ELEMENTS = _l2_elements()


def shares_mask_across_batch(module: torch.nn.Module) -> bool:
    """True for dropout modules whose one draw covers the whole batch (weights, embedding rows, batchwise blocks).

    Replicated copies of an input in one forward would all see the same mask
    there, so mc_predict runs one sample per forward for models that hold one.

    Examples:
        >>> shares_mask_across_batch(torch.nn.Dropout())
        False
    """
    if isinstance(module, DropoutBase):
        return bool(module.shares_mask_across_batch)  # declared by each dropkit variant
    # Others by class name, so fastai's WeightDropout and EmbeddingDropout and timm's DropBlock are caught too.
    name = type(module).__name__
    return name in ("DropConnectLinear", "EmbeddingDropout", "WeightDropout") or (
        name.startswith("DropBlock") and bool(getattr(module, "batchwise", False))
    )


@contextlib.contextmanager
def mc_dropout(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """Make only the dropout-family modules of `model` stochastic; restore every module's mode on exit.

    Each module's `training` flag is set on its own (never through `.train()`,
    which recurses), so BatchNorm keeps its running statistics and normalizes
    with them. Inside the block dropkit's functional dropout drops even with
    training=False, and PyTorch's fused attention fast path is off (it skips the
    dropout modules of nn.TransformerEncoderLayer in eval mode); that switch is
    process-wide while the block runs. Nesting works: each exit restores what
    its entry found. In a model converted by dropkit.replace_dropout, functional
    dropout calls and attention dropout (rates kept as floats) run at the rate
    their call site had in the traced training forward, also where the model
    passes 0 outside training; in an unconverted model they stay off.

    Args:
        model: any nn.Module.

    Examples:
        >>> model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4), torch.nn.Dropout(0.5)).eval()
        >>> with mc_dropout(model):
        ...     [m.training for m in model]
        [False, False, True]
        >>> model[2].training
        False
    """
    saved = [(m, m.training) for m in model.modules()]
    fastpath = torch.backends.mha.get_fastpath_enabled()
    try:
        for m, _ in saved:
            m.training = is_dropout(m)
        torch.backends.mha.set_fastpath_enabled(False)
        with _mode.mc_enabled():
            yield model
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
        for m, training in saved:
            m.training = training


@dataclasses.dataclass(eq=False)
class MCResult:
    """T stochastic predictions and their summaries (entropies in nats).

    Classification treats `samples` as logits with the class dimension at
    dim 2, i.e. dim 1 of each prediction, as torch.nn.CrossEntropyLoss does:
    (T, B, C) or (T, B, C, H, W). Summaries are computed on first access.

    Attributes:
        samples: (T, B, ...) raw model outputs, one row per pass.
        task: "classification" or "regression".

    Examples:
        >>> r = MCResult(torch.zeros(4, 2, 3), "classification")
        >>> r.predictive_entropy
        tensor([1.0986, 1.0986])
    """

    samples: Tensor
    task: str = "classification"

    def _require(self, task: str, name: str) -> None:
        if self.task != task:
            raise AttributeError(f"{name} is defined for task={task!r}, this result has task={self.task!r}")

    @functools.cached_property
    def probs(self) -> Tensor:
        """(T, B, C, ...) softmax of each pass."""
        self._require("classification", "probs")
        return torch.softmax(
            self.samples.float() if self.samples.dtype in (torch.float16, torch.bfloat16) else self.samples, dim=2
        )

    @functools.cached_property
    def mean_probs(self) -> Tensor:
        """(B, C, ...) predictive distribution: the average of the T softmaxes."""
        return self.probs.mean(0)

    @functools.cached_property
    def predictive_entropy(self) -> Tensor:
        """(B, ...) H[mean_probs]: total uncertainty."""
        return entropy(self.mean_probs, 1)

    @functools.cached_property
    def expected_entropy(self) -> Tensor:
        """(B, ...) mean over passes of each pass's entropy: the aleatoric part."""
        return entropy(self.probs, 2).mean(0)

    @functools.cached_property
    def mutual_information(self) -> Tensor:
        """(B, ...) BALD: predictive minus expected entropy, the part due to the weights (epistemic)."""
        return acquisition.bald(self.probs)

    @property
    def bald(self) -> Tensor:
        """(B, ...) the BALD acquisition score (Houlsby et al. 2011): the mutual information."""
        return self.mutual_information

    @functools.cached_property
    def variation_ratio(self) -> Tensor:
        """(B, ...) 1 - (passes voting for the modal class) / T: 0 when every pass agrees."""
        return acquisition.variation_ratio(self.probs)

    def batch_bald(self, k: int, **options: Any) -> acquisition.BatchBALD:
        """Greedy BatchBALD over the B points (dropkit.mc.acquisition.batch_bald; needs consistent=True samples)."""
        self._require("classification", "batch_bald")
        return acquisition.batch_bald(self.probs, k, **options)

    @functools.cached_property
    def variance(self) -> Tensor:
        """(B, C, ...) variance of each class probability over the passes (divisor T)."""
        return self.probs.var(0, correction=0)

    @functools.cached_property
    def mean(self) -> Tensor:
        """(B, ...) regression: the average prediction."""
        self._require("regression", "mean")
        return self.samples.mean(0)

    @functools.cached_property
    def std(self) -> Tensor:
        """(B, ...) regression: standard deviation over the passes (divisor T, so T = 1 gives 0)."""
        self._require("regression", "std")
        return self.samples.std(0, correction=0)


# The layers whose every draw goes through the consistent masks (dropkit.ops.consistent).
CONSISTENT_LAYERS = (Dropout, Dropout1d, Dropout2d, Dropout3d, DropPath, LockedDropout, DropoutLinear)


def _check_consistent(model: torch.nn.Module) -> None:
    if getattr(getattr(model, "dynamo_ctx", None), "fullgraph", False):
        # torch.compile without fullgraph works: each dropout call breaks the graph and runs eagerly.
        raise ValueError(
            "mc_predict(consistent=True) cannot run a torch.compile(..., fullgraph=True) model: consistent masks "
            "are addressed by each forward's replica and call index, Python state that a compiled graph cannot "
            "read, so every dropout call must break the graph and run eagerly; compile without fullgraph=True, "
            "or pass the eager module (model._orig_mod)"
        )
    for name, m in model.named_modules():
        if is_dropout(m) and not isinstance(m, CONSISTENT_LAYERS):
            raise ValueError(
                f"mc_predict(consistent=True) supports dropkit's {', '.join(c.__name__ for c in CONSISTENT_LAYERS)}; "
                f"the model's {name or 'root'!r} is {type(m).__module__}.{type(m).__name__}"
                + (
                    " (dropkit.replace_dropout(model) converts torch's dropout layers)"
                    if type(m).__module__.startswith("torch.")
                    else ""
                )
            )


def _default_chunk(samples: int, x: Tensor) -> int:
    """Copies per forward: as few forwards as CHUNK_ELEMENTS allows, with the samples spread evenly over them."""
    most = max(1, min(samples, CHUNK_ELEMENTS // max(1, x.numel())))
    forwards = -(-samples // most)
    return -(-samples // forwards)


def _forward_copies(model: torch.nn.Module, x: Tensor, copies: int) -> Tensor:
    """(copies, B, ...) outputs of one forward over `copies` stacked replicas of x."""
    batch = x.shape[0]
    out = model(x.repeat(copies, *([1] * (x.dim() - 1))))
    if not isinstance(out, Tensor):
        raise TypeError(f"mc_predict needs a model that returns a tensor, got {type(out).__name__}")
    if out.dim() == 0 or out.shape[0] != copies * batch:
        raise ValueError(
            f"mc_predict needs an output with the batch dimension first: input batch {copies} x {batch} = "
            f"{copies * batch} rows gave an output of shape {tuple(out.shape)}"
        )
    return out.reshape(copies, batch, *out.shape[1:])


def _rng_scope(seed: int | None, device: torch.device) -> contextlib.AbstractContextManager[object]:
    if seed is None:
        return contextlib.nullcontext()
    # fork_rng restores the global generators on exit: a seeded call leaves the user's RNG where it was.
    # manual_seed also seeds the CUDA generators, so a CPU input forks those ("cuda" is fork_rng's default).
    stack = contextlib.ExitStack()
    stack.enter_context(torch.random.fork_rng(device_type=device.type if device.type != "cpu" else "cuda"))
    torch.manual_seed(seed)
    return stack


def mc_predict(
    model: torch.nn.Module,
    x: Tensor,
    samples: int = 50,
    *,
    chunk: int | None = None,
    seed: int | None = None,
    task: str = "classification",
    consistent: bool = False,
) -> MCResult:
    """T stochastic forward passes of `model` on `x` under mc_dropout, batched.

    The input is replicated along the batch dimension, `chunk` copies per
    forward, so T passes cost ceil(T / chunk) forwards, not T. Each copy gets
    its own mask because dropout masks are drawn per element (or per sample,
    channel or time series) of the whole replicated batch. Models holding a
    layer that draws one mask for the whole batch (DropConnect, embedding
    dropout, DropBlock with batchwise=True) would give identical copies, so for
    them the default is one pass per forward.

    Args:
        model: any module whose forward takes a tensor with the batch first and
            returns a tensor with the batch first.
        x: (B, ...) input of any rank and dtype: (B, F) tables, (B, C, H, W) images and
            (B, L) token ids alike. Models whose input or output is not batch-first
            (a sequence-first RNN) need a wrapper that transposes.
        samples: T, the number of stochastic passes (>= 1).
        chunk: copies per forward. Default: the fewest forwards whose replicated
            input fits CHUNK_ELEMENTS elements, T spread evenly over them (1 copy
            per forward for batch-shared-mask models).
        seed: makes the result reproducible: dropout masks come from torch's
            generators seeded with it inside torch.random.fork_rng, so the
            caller's global RNG state is left untouched. The same (seed, chunk)
            gives the same samples; another chunk gives other, equally valid
            draws. Layers built with their own `generator=` draw from it instead.
        task: "classification" (outputs are logits, class dimension 1) or
            "regression" (outputs are predictions).
        consistent: pass t uses the same thinned network for every input
            (dropkit.ops.consistent): a point's samples are then identical whatever
            batch it is in, and whatever the batch size and chunk (up to float
            rounding where the batch shape changes a matmul). `seed` is then the
            masks' own seed (drawn from torch's generator if None). Needs batch-first
            dropout inputs and dropkit's Dropout, Dropout1d/2d/3d, DropPath or
            LockedDropout(batch_first=True) layers; runs eagerly.

    Returns:
        MCResult with samples (T, B, ...) and the task's summaries.

    Examples:
        >>> model = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.Dropout(0.2), torch.nn.Linear(16, 1))
        >>> r = mc_predict(model, torch.randn(5, 3), samples=30, seed=1, task="regression")
        >>> r.mean.shape, r.std.shape
        (torch.Size([5, 1]), torch.Size([5, 1]))
    """
    _validate.batched_tensor(x, "x")
    samples = _validate.positive_int(samples, "samples")
    chunk = None if chunk is None else _validate.positive_int(chunk, "chunk")
    seed = _validate.seed(seed)
    task = _validate.choice(task, TASKS, "task")
    if consistent:
        _check_consistent(model)
    shared = any(shares_mask_across_batch(m) for m in model.modules())
    if chunk is None:
        chunk = 1 if shared else _default_chunk(samples, x)
    elif shared and chunk > 1:
        warnings.warn(
            "mc_predict: the model has a layer that draws one mask per batch; copies in one forward share it, "
            "so samples are correlated (pass chunk=1 for independent samples)",
            stacklevel=2,
        )
    parts = []
    with torch.no_grad(), _rng_scope(seed, x.device), mc_dropout(model):
        mask_seed = (rng.draw_seed() if seed is None else seed) if consistent else None
        for start in range(0, samples, chunk):
            copies = min(chunk, samples - start)
            # mask_seed is None exactly when not consistent
            replicas = None if mask_seed is None else Replicas(mask_seed, start, copies, copies * x.shape[0])
            with contextlib.nullcontext() if replicas is None else _mode.consistent_enabled(replicas):
                parts.append(_forward_copies(model, x, copies))
    out = torch.cat(parts)
    # Catches what the module checks cannot see: a custom layer sharing one mask
    # over the batch, dropout only in functional calls of non-dropkit code, or p = 0.
    if samples > 1 and torch.equal(out[0], out[1]):
        warnings.warn(
            "mc_predict: the first two samples are identical; no dropout is active in this model's forward, "
            "or a layer shares one mask over the batch (try chunk=1)",
            stacklevel=2,
        )
    return MCResult(out, task)
