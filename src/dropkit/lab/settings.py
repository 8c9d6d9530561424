"""What defines a run, each option written once: Settings (training), ActiveSettings (`dropkit active`), their checks.

Every field is an Option (dropkit.lab.options): its default, help, parsing and check in one place.
The `dropkit` commands generate their options from these fields (dropkit.lab.commands.common) and
docs/lab.md's option table is generated from them too (tests/lab/test_settings.py keeps it so). A
value is checked once, here, where it enters; the messages name the command-line flag.

To add an option to the training commands: add one field to Settings below (a default, a help, a
check), and use it where it acts (train.py, models.py); the commands and the docs table follow.

Examples:
    >>> s = Settings(dataset="digits", epochs=2)
    >>> list(demo_runs(s))
    ['dropout', 'no_dropout', 'l2']
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import re

import torch
from torch import nn

from .. import _validate
from ..convert.schedule import DropoutSchedule
from . import cnn, data, models
from .errors import SettingsError
from .options import (
    NumberList,
    Option,
    at_least,
    check_fields,
    flag,
    from_text,
    in_range,
    name_list,
    one_of,
    optional,
    positive_or_none,
    shown,
)

__all__ = [
    "Settings",
    "ActiveSettings",
    "OPTIMIZERS",
    "LEARNING_RATES",
    "LR_SCHEDULES",
    "MASKS",
    "STRATEGIES",
    "SELECTION_VAL_SPLIT",
    "DEMO_L2",
    "RESUMABLE",
    "SAFE_ON_RESUME",
    "from_command_line",
    "hidden_widths",
    "dropout_rates",
    "rate",
    "dropout_kind",
    "dropout_schedule",
    "concrete_rates",
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
LEARNING_RATES = {"sgd": 0.05, "adam": 1e-3}  # the default --lr of each optimizer
LR_SCHEDULES = (
    "constant",
    "cosine",
    "step",
)  # learning-rate schedules (dropout rates: dropkit.convert.schedule.DROPOUT_SCHEDULES)
MASKS = ("drawn", "addressed")
STRATEGIES = ("random", "entropy", "bald", "batchbald")  # dropkit active's acquisition strategies
# --val-split of the commands that choose something (demo's epoch, sweep's rate, tune's rates): choose
# on validation, never on test. 10% of the training set: 6000 Fashion-MNIST images, enough to tell
# rates 0.5 pp apart.
SELECTION_VAL_SPLIT = 0.1
DEMO_L2 = 5e-4  # weight decay of the demo's l2 run


def parse_duration(text: str, name: str = "--time-budget") -> float:
    """Seconds in a duration like '90', '90s', '45m', '1.5h'; SettingsError naming the option otherwise.

    Examples:
        >>> parse_duration("60m")
        3600.0
    """
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*([smh]?)\s*", str(text))
    if not match or float(match[1]) <= 0:
        raise SettingsError(f"{name} must look like 90s, 45m or 1.5h, got {text!r}")
    return float(match[1]) * {"": 1, "s": 1, "m": 60, "h": 3600}[match[2]]


def rate(value, name: str) -> float:
    """A dropout rate in [0, 1], checked by dropkit's own validator; SettingsError otherwise."""
    try:
        return _validate.p(value, name)
    except (TypeError, ValueError) as e:
        raise SettingsError(str(e)) from None


def hidden_widths(hidden, name: str = "--hidden") -> tuple[int, ...]:
    """Hidden layer widths as a tuple of positive ints; SettingsError otherwise (1.5 is no width, never truncated).

    Examples:
        >>> hidden_widths([1024, 1024])
        (1024, 1024)
    """
    hidden = tuple(hidden) if isinstance(hidden, (tuple, list)) else (hidden,)
    if not hidden or any(isinstance(h, bool) or not isinstance(h, numbers.Integral) or h < 1 for h in hidden):
        raise SettingsError(f"{name} must list one or more positive layer widths (integers), got {hidden}")
    return tuple(int(h) for h in hidden)


def _rates(dropout, name: str) -> tuple[float, ...]:
    """The rates given: one or one per layer, each in [0, 1] (None: no dropout)."""
    rates = (0.0,) if dropout is None else (dropout,) if isinstance(dropout, (int, float)) else tuple(dropout)
    return tuple(rate(r, name) for r in rates)


def dropout_rates(dropout, n_hidden: int, name: str = "--dropout") -> tuple[float, ...]:
    """One dropout rate per hidden layer: a single rate is used for every layer.

    Examples:
        >>> dropout_rates(0.5, 3)
        (0.5, 0.5, 0.5)
    """
    rates = _rates(dropout, name)
    if len(rates) == 1:
        rates = rates * n_hidden
    if len(rates) != n_hidden:
        raise SettingsError(f"{name} needs one rate or one per hidden layer ({n_hidden}), got {len(rates)}: {rates}")
    return rates


def dropout_kind(kind: str, name: str = "--dropout-type") -> str:
    """A hidden dropout kind the MLP can use (one of models.DROPOUT_TYPES); SettingsError saying why otherwise.

    Examples:
        >>> dropout_kind("gaussian")
        'gaussian'
    """
    if kind in models.NOT_FOR_MLP:
        raise SettingsError(
            f"{name} {kind!r} {models.NOT_FOR_MLP[kind]}; the lab's MLP takes {', '.join(models.DROPOUT_TYPES)}"
        )
    try:
        return _validate.choice(kind, models.DROPOUT_TYPES, name)
    except ValueError as e:
        raise SettingsError(str(e)) from None


def dropout_schedule(spec: str, name: str = "--dropout-schedule") -> str:
    """A dropout schedule spec ("constant", "linear:N", "early:N", "late:N"); SettingsError otherwise.

    Checked by building the schedule on a module without dropout, so the rules are DropoutSchedule's own.

    Examples:
        >>> dropout_schedule("early:5")
        'early:5'
    """
    try:
        DropoutSchedule.from_string(nn.Module(), 0.0, spec)
    except (TypeError, ValueError) as e:
        raise SettingsError(f"{name} {spec!r}: {e}") from None
    return spec


def concrete_rates(rates, name: str = "--dropout") -> tuple[float, ...]:
    """Initial ConcreteDropout rates: each 0 (no layer) or strictly between 0 and 1 (a rate stored as a logit)."""
    for r in rates:
        if r >= 1:
            raise SettingsError(
                f"{name} with --dropout-type concrete must be below 1 (the rate is learned as a logit), got {r}"
            )
    return tuple(rates)


def _seed(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise SettingsError(f"{name} must be in [0, 2**63), got {value}")
    return value


def _strategies(value, name: str) -> tuple[str, ...]:
    value = tuple(value)
    if not value or any(s not in STRATEGIES for s in value):
        raise SettingsError(
            f"{name} must be one or more of {', '.join(STRATEGIES)}, got {', '.join(map(str, value)) or 'none'}"
        )
    return value


def _distinct_seeds(value, name: str) -> tuple[int, ...]:
    value = tuple(value)
    if not value or len(set(value)) != len(value):
        raise SettingsError(f"{name} must be distinct ints, got {', '.join(map(str, value)) or 'none'}")
    return tuple(_seed(v, name) for v in value)


# The options more than one settings class takes: written once, used by each.
DATASET = Option(
    "auto",
    f"{' | '.join(data.DATASETS)} (auto: Fashion-MNIST if found, else digits; idx: your own IDX files in --data-dir).",
    check=one_of(data.DATASETS),
)
DATA_DIR = Option(
    None, "Directory with the IDX files (searched before $DROPKIT_DATA, /usr/share/datasets).", shown="none"
)
HIDDEN = Option(
    (256, 128), "Hidden widths, e.g. --hidden 1024 1024 (or 1024,1024).", parse=NumberList(int), check=hidden_widths
)
# With --hidden and no --dropout the first rate goes on every layer (from_command_line): (0.5, 0.3)
# fits two layers only.
DROPOUT = Option(
    (0.5, 0.3),
    "Hidden dropout: one rate or one per hidden layer (concrete: the initial rates); with --hidden alone, the first rate on every layer.",
    parse=NumberList(float),
    check=_rates,
)
THREADS = Option(0, "torch threads (0: torch's default, one per core).", int, check=at_least(0))


@dataclasses.dataclass
class Settings:
    """Everything that defines one training run. The defaults are the seed network and `dropkit demo`'s recipe.

    Examples:
        >>> Settings(hidden=(1024, 1024), dropout=0.5, input_dropout=0.2, max_norm=3.0).dropout
        (0.5, 0.5)
        >>> Settings(batch_size=0)
        Traceback (most recent call last):
        dropkit.lab.errors.SettingsError: --batch-size must be at least 1, got 0
    """

    dataset: str = DATASET.field()
    data_dir: str | None = DATA_DIR.field()
    download: bool = Option(False, "Fetch MNIST/Fashion-MNIST if missing; sha256 checked.", bool).field()
    # lab.cnn's conv nets: two conv blocks and a dense head of width hidden[0], dropped at rate dropout[0]
    model: str = Option(
        "mlp",
        f"{' | '.join(cnn.MODELS)}: the MLP, or two conv blocks and a dense head of width --hidden's first (rescnn: with residual blocks).",
        check=one_of(cnn.MODELS),
    ).field()
    hidden: tuple[int, ...] = HIDDEN.field()  # the seed network 784-256-128-10
    dropout: tuple[float, ...] = DROPOUT.field()
    # concrete learns each hidden layer's rate, starting from `dropout`, and takes only the constant dropout schedule
    dropout_type: str = Option(
        "dropout",
        f"Hidden dropout kind: {' | '.join(models.DROPOUT_TYPES)} (concrete: learned rates, Gal et al. 2017); input dropout stays dropout. "
        f"Conv nets: {' | '.join(cnn.CNN_DROPOUT_TYPES)} (dropout: dense head only; drop_path: --model rescnn).",
    ).field()  # checked in __post_init__: the kinds depend on --model
    # Liu et al. 2023: each dropout layer's rate over time, toward its own rate
    dropout_schedule: str = Option(
        "constant",
        "Rates over epochs: constant | linear:N | early:N | late:N (N epochs; Liu et al. 2023); concrete takes constant only.",
        check=dropout_schedule,
    ).field()
    input_dropout: float = Option(
        0.0, "Dropout rate on the inputs (Srivastava et al.: 0.2).", float, check=rate
    ).field()
    max_norm: float | None = Option(
        None,
        "Max L2 norm of each unit's incoming weights (Srivastava et al.: 3-4).",
        float,
        check=positive_or_none,
        shown="none",
    ).field()
    l1: float = Option(0.0, "L1 penalty on weights, added to the loss.", float, check=in_range(0, float("inf"))).field()
    l2: float = Option(
        0.0,
        "L2 penalty (weight decay) on weights, not biases; in demo, the l2 run's.",
        float,
        check=in_range(0, float("inf")),
    ).field()
    optimizer: str = Option("sgd", f"{' | '.join(OPTIMIZERS)} (sgd with --momentum).", check=one_of(OPTIMIZERS)).field()
    lr: float | None = Option(
        None,
        "Learning rate.",
        float,
        check=positive_or_none,
        shown=", ".join(f"{v:g} for {k}" for k, v in LEARNING_RATES.items()),
    ).field()
    momentum: float = Option(0.9, "SGD momentum.", float, check=in_range(0, float("inf"))).field()
    schedule: str = Option(
        "cosine",
        "Learning-rate schedule: constant | cosine (to 0, per step) | step (x0.1 at 50% and 75%).",
        check=one_of(LR_SCHEDULES),
    ).field()
    epochs: int = Option(
        20, "Epochs per run.", int, check=at_least(1)
    ).field()  # the demo's 3 runs take about 1 minute on 2 idle cores
    # the lr schedule spans the steps, so a small --train-size gets as many updates as the full set
    steps: int | None = Option(
        None,
        "Optimizer steps per run, instead of --epochs (the last epoch may be partial; the lr schedule spans them).",
        int,
        check=optional(at_least(1)),
        shown="--epochs",
    ).field()
    train_size: int | None = Option(
        None,
        "Train on N examples of the training split, class-stratified, drawn by --seed; validation is --val-split of these N "
        "(the first of the same stratified draw), the rest trains.",
        int,
        check=optional(at_least(2)),
        shown="all",
    ).field()
    eval_every: int = Option(
        1,
        "Evaluate, record and checkpoint every K epochs and after the last (many short epochs of a small --train-size want more).",
        int,
        check=at_least(1),
    ).field()
    batch_size: int = Option(128, "Mini-batch size.", int, check=at_least(1)).field()
    val_split: float = Option(
        0.0, "Fraction of the training set held out for validation (fixed by --seed).", float, check=in_range(0, 1)
    ).field()
    seed: int = Option(0, "Seed of initialisation, batch order and dropout masks.", int, check=_seed).field()
    time_budget: float | None = Option(
        None,
        "Stop each run after the epoch that crosses this, e.g. 90s, 45m, 1.5h.",
        parse=parse_duration,
        check=positive_or_none,
        shown="no limit",
    ).field()  # in seconds
    threads: int = THREADS.field()
    # addressed masks come from (seed, layer, step, sample) (dropkit.sample_addressed), so they do not depend on the split
    masks: str = Option(
        "drawn",
        "drawn (from torch's generator) | addressed (by seed, layer, step and sample: independent of --nproc and --accumulate; "
        "the default with either).",
        check=one_of(MASKS),
    ).field()
    accumulate: int = Option(
        1, "Micro-batches per step (gradient accumulation); the batch stays --batch-size.", int, check=at_least(1)
    ).field()
    # evaluation is forward-only, so large batches are cheap
    eval_batch_size: int = Option(10000, "Evaluation batch size.", None, check=at_least(1)).field()

    def __post_init__(self):
        check_fields(self)
        self.dropout = dropout_rates(self.dropout, len(self.hidden))
        if self.model == "mlp":
            self.dropout_type = dropout_kind(self.dropout_type)
        else:
            self.dropout_type = cnn.check_kind(self.model, self.dropout_type)
            if self.input_dropout > 0:
                raise SettingsError(
                    f"--input-dropout {self.input_dropout} is for the MLP; --model {self.model} drops inside (--dropout-type)"
                )
        if self.dropout_type == "concrete":
            concrete_rates(self.dropout)
            if self.dropout_schedule.split(":")[0] != "constant":
                raise SettingsError(
                    f"--dropout-schedule {self.dropout_schedule!r} cannot drive --dropout-type concrete: "
                    "its rates are learned, so they cannot follow a schedule; use --dropout-schedule constant"
                )
        if self.accumulate != 1 and self.masks != "addressed":
            raise SettingsError(
                f"--accumulate {self.accumulate} needs --masks addressed (drawn masks depend on the micro-batch split)"
            )

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else LEARNING_RATES[self.optimizer]

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
    def from_dict(cls, d: dict) -> Settings:
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls) if f.name in d})


def _count(help: str, default: int, cli: type | None = int) -> Option:
    return Option(default, help, cli, check=at_least(1))


@dataclasses.dataclass(frozen=True)
class ActiveSettings:
    """One active-learning experiment (`dropkit active`); the defaults finish in about 5 minutes on 2 idle cores.

    Examples:
        >>> ActiveSettings(acquire=0)
        Traceback (most recent call last):
        dropkit.lab.errors.SettingsError: --acquire must be at least 1, got 0
    """

    dataset: str = DATASET.field()
    data_dir: str | None = DATA_DIR.field()
    strategies: tuple[str, ...] = Option(
        STRATEGIES, "Acquisition strategies, e.g. --strategies random,bald.", parse=name_list, check=_strategies
    ).field()
    seeds: tuple[int, ...] = Option(
        (0,), "Seeds, e.g. --seeds 0 1 2 (pool, start set, training).", parse=NumberList(int), check=_distinct_seeds
    ).field()
    initial: int = _count("Labelled points per class at the start.", 20).field()
    acquire: int = _count("Points labelled per round.", 50).field()
    budget: int = _count("Labelled points at the last round.", 1000).field()
    pool: int = _count("Candidate points drawn from the training split (the labelled set included).", 3000).field()
    train_size: int | None = Option(
        None,
        "Draw the pool from N examples of the training split, class-stratified, drawn by each seed "
        "(N >= --pool; no validation: active learning selects nothing on it).",
        int,
        check=optional(at_least(1)),
        shown="all",
    ).field()
    samples: int = _count("MC dropout passes T of the scores.", 20).field()
    prefilter: int = _count(
        "batchbald considers the prefilter x acquire candidates with the highest BALD.", 10, None
    ).field()
    joint_samples: int = _count("batchbald's configurations (dropkit.acquisition.batch_bald).", 1024, None).field()
    hidden: tuple[int, ...] = HIDDEN.field()
    dropout: tuple[float, ...] = DROPOUT.field()
    steps: int = _count("SGD steps per round (each round trains from scratch).", 300).field()
    batch_size: int = _count("Mini-batch size.", 64, None).field()
    lr: float = Option(0.05, "Learning rate.", None, check=positive_or_none).field()
    weight_decay: float = Option(5e-4, "Weight decay.", None, check=in_range(0, float("inf"))).field()
    threads: int = THREADS.field()

    def __post_init__(self):
        check_fields(self)
        object.__setattr__(self, "dropout", dropout_rates(self.dropout, len(self.hidden)))
        if self.budget > self.pool:
            raise SettingsError(f"--budget ({self.budget}) must not exceed --pool ({self.pool})")
        if self.train_size is not None and self.train_size < self.pool:
            raise SettingsError(f"--train-size ({self.train_size}) must not be below --pool ({self.pool})")


def from_command_line(cls, given: dict, defaults: dict | None = None):
    """Settings (or ActiveSettings) from the options given on a command line, over the command's own defaults.

    Examples:
        >>> from_command_line(Settings, {"hidden": "1024,1024"}).dropout
        (0.5, 0.5)
    """
    defaults = dict(defaults or {})
    if "hidden" in given and "dropout" not in given:  # the default rates fit the default widths only
        defaults["dropout"] = DROPOUT.default[:1]
    return from_text(cls, given, defaults)


def build_model(s: Settings, n_features: int, n_classes: int, n_train: int | None = None) -> torch.nn.Sequential:
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


def demo_runs(base: Settings, l2: float = DEMO_L2) -> dict[str, Settings]:
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
        raise SettingsError(f"--val-split {s.val_split} of {n} examples leaves none to train on")
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


def scarce_runs(
    base: Settings, l2: float = DEMO_L2, size: int = SCARCE_SIZE, steps: int = SCARCE_STEPS
) -> dict[str, Settings]:
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
            f"{flag(fixed[0])} cannot change on --resume: the run folder has runs {', '.join(saved)}, "
            f"the options given make {', '.join(asked)}; start a new run folder (another --out) for other runs"
        )
    base = next(iter(asked.values()))
    out = {}
    for name, s in saved.items():
        new = asked.get(name, base)
        for option in (g for g in fixed if g in fields):
            if getattr(s, option) != getattr(new, option):
                raise SettingsError(
                    f"{flag(option)} cannot change on --resume: run {name!r} has {shown(getattr(s, option))}, "
                    f"given {shown(getattr(new, option))}; start a new run folder (another --out) for a different run"
                )
        out[name] = dataclasses.replace(s, **{g: getattr(new, g) for g in given if g in RESUMABLE + SAFE_ON_RESUME})
    return out
