"""What defines a training run: Settings (with commented defaults), the model it builds, and multi-run recipes.

Examples:
    >>> s = Settings(dataset="digits", epochs=2)
    >>> list(demo_runs(s))
    ['dropout', 'no_dropout', 'l2']
"""

from __future__ import annotations

import dataclasses
import math
import re

import torch

from . import cnn, data, models
from .errors import SettingsError

__all__ = [
    "Settings",
    "OPTIMIZERS",
    "LR_SCHEDULES",
    "MASKS",
    "RESUMABLE",
    "SAFE_ON_RESUME",
    "build_model",
    "parse_duration",
    "demo_runs",
    "scarce_runs",
    "split_sizes",
    "on_subset",
    "SCARCE_SIZE",
    "SCARCE_STEPS",
    "sweep_runs",
    "resume_runs",
]

OPTIMIZERS = ("sgd", "adam")
LR_SCHEDULES = ("constant", "cosine", "step")  # learning-rate schedules (dropout rates: dropkit.schedule.DROPOUT_SCHEDULES)
MASKS = ("drawn", "addressed")


@dataclasses.dataclass
class Settings:
    """Everything that defines one training run. The defaults are the seed network and `dropkit demo`'s recipe.

    Examples:
        >>> Settings(hidden=(1024, 1024), dropout=0.5, input_dropout=0.2, max_norm=3.0).dropout
        (0.5, 0.5)
    """

    dataset: str = "auto"  # auto | fashion-mnist | mnist | digits | idx; auto = Fashion-MNIST if found, else digits; idx = data_dir's IDX files
    data_dir: str | None = None  # searched before $DROPKIT_DATA, /usr/share/datasets, ~/.cache/dropkit
    download: bool = False  # fetch (Fashion-)MNIST if not found; sha256 checked
    # mlp | cnn | rescnn (lab.cnn: two conv blocks and a dense head of width hidden[0], dropped at rate
    # dropout[0]; rescnn adds a residual block to each conv block, for stochastic depth)
    model: str = "mlp"
    hidden: tuple[int, ...] = (256, 128)  # hidden widths: the seed network 784-256-128-10
    dropout: tuple[float, ...] = (0.5, 0.3)  # rate after each hidden activation (one rate = all layers)
    # hidden dropout kind: dropout | alpha | gaussian | concrete (models.DROPOUT_TYPES); concrete learns
    # each hidden layer's rate, starting from `dropout`, and takes only the constant dropout schedule.
    # With a conv net: dropout (dense head only) | dropout2d | drop_block | drop_path (cnn.CNN_DROPOUT_TYPES)
    dropout_type: str = "dropout"
    # constant | linear:N | early:N | late:N, N in epochs (Liu et al. 2023): each dropout layer's rate
    # over time, toward its own rate; constant = the rates above throughout
    dropout_schedule: str = "constant"
    input_dropout: float = 0.0  # rate on the input pixels (Srivastava et al. use 0.2)
    max_norm: float | None = None  # bound on each unit's incoming weight norm (Srivastava et al.: 3 to 4)
    l1: float = 0.0  # L1 penalty on weights, added to the loss
    l2: float = 0.0  # L2 penalty (weight decay) on weights, not biases
    optimizer: str = "sgd"  # sgd (with momentum) | adam
    lr: float | None = None  # learning rate; None = 0.05 for sgd, 0.001 for adam
    momentum: float = 0.9  # sgd only
    schedule: str = "cosine"  # constant | cosine (to 0, per step) | step (x0.1 at 50% and 75%)
    epochs: int = 20  # the demo's 3 runs of 20 epochs take about 1 minute on 2 idle cores
    # optimizer steps in all, instead of epochs (which it overrides; the last epoch may be partial):
    # a small --train-size gets as many updates as the full set, and the lr schedule spans the steps
    steps: int | None = None
    # train on N examples of the training split, class-stratified, drawn by seed (data.train_subset);
    # val_split's share of these N (stratified too) is held out as validation, the rest trains
    train_size: int | None = None
    eval_every: int = 1  # evaluate, record and checkpoint every K epochs and after the last (small sets: K > 1)
    batch_size: int = 128
    val_split: float = 0.0  # fraction of the training set held out as validation (fixed by seed)
    seed: int = 0  # initialisation, batch order and dropout masks
    time_budget: float | None = None  # seconds; stop after the epoch that crosses it (None = no limit)
    threads: int = 0  # torch threads; 0 = torch's default (one per core)
    # drawn: each dropout call's seed from torch's generator | addressed: masks from (seed, layer,
    # step, sample) (dropkit.sample_addressed), so they do not depend on --nproc or --accumulate
    masks: str = "drawn"
    accumulate: int = 1  # micro-batches per step: each process's part of the batch in K pieces, gradients summed
    eval_batch_size: int = 10000  # evaluation is forward-only, so large batches are cheap

    def __post_init__(self):
        self.hidden = models.hidden_widths(self.hidden)
        self.dropout = models.dropout_rates(self.dropout, len(self.hidden))
        self.input_dropout = models.rate(self.input_dropout, "input_dropout")
        if self.model not in cnn.MODELS:
            raise SettingsError(f"model must be one of {', '.join(cnn.MODELS)}, got {self.model!r}")
        if self.model == "mlp":
            self.dropout_type = models.dropout_kind(self.dropout_type)
        else:
            self.dropout_type = cnn.check_kind(self.model, self.dropout_type)
            if self.input_dropout > 0:
                raise SettingsError(f"input_dropout {self.input_dropout} is for the MLP; model {self.model!r} drops inside (--dropout-type)")
        self.dropout_schedule = models.dropout_schedule(self.dropout_schedule)
        if self.dropout_type == "concrete":
            models.concrete_rates(self.dropout)
            if self.dropout_schedule.split(":")[0] != "constant":
                raise SettingsError(
                    f"dropout_schedule {self.dropout_schedule!r} cannot drive dropout_type 'concrete': "
                    "its rates are learned, so they cannot follow a schedule; use --dropout-schedule constant"
                )
        checks = [
            (self.dataset in data.DATASETS, f"dataset must be one of {', '.join(data.DATASETS)}, got {self.dataset!r}"),
            (self.optimizer in OPTIMIZERS, f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}"),
            (self.schedule in LR_SCHEDULES, f"schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.schedule!r}"),
            (self.epochs >= 1, f"epochs must be at least 1, got {self.epochs}"),
            (self.steps is None or self.steps >= 1, f"steps must be at least 1, got {self.steps}"),
            (self.train_size is None or self.train_size >= 2, f"train_size must be at least 2, got {self.train_size}"),
            (self.eval_every >= 1, f"eval_every must be at least 1, got {self.eval_every}"),
            (self.batch_size >= 1, f"batch_size must be at least 1, got {self.batch_size}"),
            (self.eval_batch_size >= 1, f"eval_batch_size must be at least 1, got {self.eval_batch_size}"),
            (0.0 <= self.val_split < 1.0, f"val_split must be in [0, 1), got {self.val_split}"),
            (self.lr is None or self.lr > 0, f"lr must be positive, got {self.lr}"),
            (self.momentum >= 0, f"momentum must be non-negative, got {self.momentum}"),
            (self.l1 >= 0 and self.l2 >= 0, f"l1 and l2 must be non-negative, got {self.l1} and {self.l2}"),
            (self.max_norm is None or self.max_norm > 0, f"max_norm must be positive, got {self.max_norm}"),
            (self.time_budget is None or self.time_budget > 0, f"time_budget must be positive, got {self.time_budget}"),
            (self.threads >= 0, f"threads must be non-negative, got {self.threads}"),
            (self.masks in MASKS, f"masks must be one of {', '.join(MASKS)}, got {self.masks!r}"),
            (self.accumulate >= 1, f"accumulate must be at least 1, got {self.accumulate}"),
            (self.accumulate == 1 or self.masks == "addressed",
             f"accumulate {self.accumulate} needs masks 'addressed' (drawn masks depend on the micro-batch split)"),
            (0 <= self.seed < 2**63, f"seed must be in [0, 2**63), got {self.seed}"),
        ]
        for ok, message in checks:
            if not ok:
                raise SettingsError(message)

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else (0.05 if self.optimizer == "sgd" else 1e-3)

    def total_steps(self, steps_per_epoch: int) -> int:
        """The optimizer steps of the whole run: `steps`, or `epochs` epochs of steps_per_epoch.

        Examples:
            >>> Settings(epochs=3).total_steps(10), Settings(epochs=3, steps=25).total_steps(10)
            (30, 25)
        """
        return self.steps if self.steps is not None else self.epochs * steps_per_epoch

    @property
    def uses_dropout(self) -> bool:
        return self.input_dropout > 0 or any(p > 0 for p in self.dropout)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Settings":
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls) if f.name in d})


def build_model(s: Settings, n_features: int, n_classes: int, n_train: int | None = None) -> torch.nn.Module:
    """The network that `s` describes (an MLP, or lab.cnn's conv net), for inputs of n_features and n_classes outputs.

    Args:
        n_train: the training set size, which sets concrete dropout's regularisers (models.concrete_regularizers).

    Examples:
        >>> build_model(Settings(hidden=(8,), dropout=0.5), 64, 10)[0]
        Linear(in_features=64, out_features=8, bias=True)
    """
    if s.model != "mlp":
        side = cnn.image_side(n_features)
        return cnn.build_cnn(side, n_classes, s.hidden[0], s.dropout_type, s.dropout[0], residual=s.model == "rescnn")
    return models.build_mlp(n_features, s.hidden, n_classes, s.dropout, s.input_dropout, s.dropout_type, n_train)


def parse_duration(text: str) -> float:
    """Seconds in a duration like '90', '90s', '45m', '1.5h'.

    Examples:
        >>> parse_duration("60m")
        3600.0
    """
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*([smh]?)\s*", str(text))
    if not match or float(match[1]) <= 0:
        raise SettingsError(f"time budget must look like 90s, 45m or 1.5h, got {text!r}")
    return float(match[1]) * {"": 1, "s": 1, "m": 60, "h": 3600}[match[2]]


def demo_runs(base: Settings, l2: float = 5e-4) -> dict[str, Settings]:
    """The demo's three runs: `base` with its dropout, the same without dropout, and without dropout but with L2.

    Examples:
        >>> list(demo_runs(Settings()))
        ['dropout', 'no_dropout', 'l2']
    """
    plain = dataclasses.replace(base, dropout=(0.0,), input_dropout=0.0, l2=0.0)
    return {"dropout": dataclasses.replace(base, l2=0.0), "no_dropout": plain, "l2": dataclasses.replace(plain, l2=l2)}


def split_sizes(s: Settings, n: int) -> tuple[int, int]:
    """(training, validation) examples of a run on n examples with s.val_split (at least one of each).

    Examples:
        >>> split_sizes(Settings(val_split=0.1), 500)
        (450, 50)
    """
    n_val = max(1, int(n * s.val_split)) if s.val_split > 0 else 0
    if n_val >= n:
        raise SettingsError(f"val_split {s.val_split} of {n} examples leaves none to train on")
    return n - n_val, n_val


def on_subset(s: Settings, size: int, evaluations: int = 20) -> Settings:
    """`s` on `size` examples (train_size), evaluated about `evaluations` times (eval_every), as small sets need.

    Examples:
        >>> on_subset(Settings(steps=3000, val_split=0.1), 1000).eval_every  # 8 steps an epoch, 375 epochs
        19
    """
    per_epoch = math.ceil(split_sizes(s, size)[0] / s.batch_size)
    epochs = math.ceil(s.total_steps(per_epoch) / per_epoch)
    return dataclasses.replace(s, train_size=size, eval_every=max(1, math.ceil(epochs / evaluations)))


# The demo's scarce-data part: the seed network on 5,000 examples (4,500 train, 500 validation) for as many
# updates as 7 epochs of the full set: where the data-size curve measured dropout's largest gain, on every
# seed run (docs/lab.md, "Regimes"; below 2,000 the seed recipe's dropout net is too noisy to win).
SCARCE_SIZE = 5000
SCARCE_STEPS = 3000


def scarce_runs(base: Settings, l2: float = 5e-4, size: int = SCARCE_SIZE, steps: int = SCARCE_STEPS) -> dict[str, Settings]:
    """demo_runs on a class-stratified `size` examples for `steps` updates, evaluated about 20 times a run.

    Examples:
        >>> scarce_runs(Settings(val_split=0.1))["no_dropout"].train_size
        5000
    """
    return demo_runs(on_subset(dataclasses.replace(base, steps=steps), size), l2)


def sweep_runs(base: Settings, rates, seeds) -> dict[str, Settings]:
    """One run per (rate, seed): hidden dropout `rate` on every hidden layer, named 'p<rate>_s<seed>'.

    Examples:
        >>> list(sweep_runs(Settings(), [0.0, 0.5], [0]))
        ['p0_s0', 'p0.5_s0']
    """
    return {
        f"p{rate:g}_s{seed}": dataclasses.replace(base, dropout=(rate,), seed=seed) for rate in rates for seed in seeds
    }


# What --resume does with an option given again (docs/lab.md, "Resuming"):
# these may change, from the resumed step on; config.json records each change;
RESUMABLE = ("epochs", "steps", "lr", "max_norm", "time_budget")
# these change nothing a run computes, and are taken as given;
SAFE_ON_RESUME = ("threads", "download")
# every other field defines the model, the data, the batches or the optimizer, and --resume refuses to change it.


def _shown(value) -> str:
    """A setting as the command line spells it: lists space-separated, None as 'unset'."""
    if isinstance(value, (tuple, list)):
        return " ".join(map(str, value))
    return "unset" if value is None else str(value)


def resume_runs(saved: dict[str, Settings], asked: dict[str, Settings], given) -> dict[str, Settings]:
    """The settings each saved run continues with on --resume: its own, with the given options it may change.

    Args:
        saved: the run folder's runs (config.json).
        asked: the runs the command builds from its options, by name.
        given: the options set explicitly (Settings field names, and any other option that shapes the
            runs, such as sweep's "rates"); the others are the saved values whatever their defaults.

    Raises:
        SettingsError: a given option that is not RESUMABLE or SAFE_ON_RESUME differs from a run's value,
            or shapes other runs than the folder's (a message naming the option, the run's and the given value).

    Examples:
        >>> old = {"dropout": Settings(epochs=2)}
        >>> resume_runs(old, {"dropout": Settings(epochs=5)}, ["epochs"])["dropout"].epochs
        5
    """
    fields = {f.name for f in dataclasses.fields(Settings)}
    fixed = [g for g in given if g not in RESUMABLE + SAFE_ON_RESUME]
    if fixed and set(asked) != set(saved):
        raise SettingsError(
            f"--{fixed[0].replace('_', '-')} cannot change on --resume: the run folder has runs {', '.join(saved)}, "
            f"the options given make {', '.join(asked)}; start a new run folder (another --out) for other runs"
        )
    base = next(iter(asked.values()))
    out = {}
    for name, s in saved.items():
        new = asked.get(name, base)
        for option in (g for g in fixed if g in fields):
            if getattr(s, option) != getattr(new, option):
                raise SettingsError(
                    f"--{option.replace('_', '-')} cannot change on --resume: run {name!r} has {_shown(getattr(s, option))}, "
                    f"given {_shown(getattr(new, option))}; start a new run folder (another --out) for a different run"
                )
        out[name] = dataclasses.replace(s, **{g: getattr(new, g) for g in given if g in RESUMABLE + SAFE_ON_RESUME})
    return out
