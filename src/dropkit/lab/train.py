"""Training runs: settings, the loop, atomic checkpoints, exact resume, and multi-run experiments.

The seed controls initialisation (torch.manual_seed before the model is built),
batch order (a generator seeded from (seed, epoch), identical for every run of an
experiment) and dropout masks (drawn from torch's generator, whose state every
checkpoint saves). So the same command gives the same numbers, and a resumed run
ends with exactly the weights of an uninterrupted one.

Run folder layout:
    config.json          settings of every run, data set, versions
    metrics.jsonl        one line per epoch per run
    summary.json         the result (see report.summarize)
    curves.png           accuracy and loss per epoch
    checkpoints/<run>.pt model, optimizer, RNG and dropout-schedule state and history, rewritten atomically

With dropout_type="concrete" each hidden dropout layer is a ConcreteDropout (Gal et al. 2017)
wrapping the next Linear: its rate is a parameter (in the model and optimizer state, so
resume stays exact), the loss adds every layer's .regularization(), with regularisers
derived from the training set size (models.concrete_regularizers), and each epoch's
record holds the learned rates.

Examples:
    >>> s = Settings(dataset="digits", epochs=2)
    >>> summary = run_experiment({"dropout": s}, "runs/digits")  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from .. import __version__
from . import LabError, data, models, report
from .models import SettingsError

__all__ = [
    "Settings",
    "Progress",
    "Interrupted",
    "RunFolderError",
    "fit",
    "evaluate",
    "run_experiment",
    "demo_runs",
    "sweep_runs",
    "load_model",
    "parse_duration",
]

OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("constant", "cosine", "step")
_FORMAT = 1  # checkpoint format version


class RunFolderError(LabError):
    """The run folder cannot be used as asked (not empty, no run to resume, unknown run, unreadable checkpoint)."""


class Interrupted(LabError):
    """Training stopped on Ctrl-C after saving a checkpoint; resume continues exactly from it."""


@dataclasses.dataclass
class Settings:
    """Everything that defines one training run. The defaults are the seed network and `dropkit demo`'s recipe.

    Examples:
        >>> Settings(hidden=(1024, 1024), dropout=0.5, input_dropout=0.2, max_norm=3.0).dropout
        (0.5, 0.5)
    """

    dataset: str = "auto"  # auto | fashion-mnist | mnist | digits; auto = Fashion-MNIST if found, else digits
    data_dir: str | None = None  # searched before $DROPKIT_DATA, /usr/share/datasets, ~/.cache/dropkit
    download: bool = False  # fetch (Fashion-)MNIST if not found; sha256 checked
    hidden: tuple[int, ...] = (256, 128)  # hidden widths: the seed network 784-256-128-10
    dropout: tuple[float, ...] = (0.5, 0.3)  # rate after each hidden activation (one rate = all layers)
    # hidden dropout kind: dropout | alpha | gaussian | concrete (models.DROPOUT_TYPES); concrete learns
    # each hidden layer's rate, starting from `dropout`, and takes only the constant dropout schedule
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
    batch_size: int = 128
    val_split: float = 0.0  # fraction of the training set held out as validation (fixed by seed)
    seed: int = 0  # initialisation, batch order and dropout masks
    time_budget: float | None = None  # seconds; stop after the epoch that crosses it (None = no limit)
    threads: int = 0  # torch threads; 0 = torch's default (one per core)
    eval_batch_size: int = 10000  # evaluation is forward-only, so large batches are cheap

    def __post_init__(self):
        self.hidden = models.hidden_widths(self.hidden)
        self.dropout = models.dropout_rates(self.dropout, len(self.hidden))
        self.input_dropout = models.rate(self.input_dropout, "input_dropout")
        self.dropout_type = models.dropout_kind(self.dropout_type)
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
            (self.schedule in SCHEDULES, f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}"),
            (self.epochs >= 1, f"epochs must be at least 1, got {self.epochs}"),
            (self.batch_size >= 1, f"batch_size must be at least 1, got {self.batch_size}"),
            (self.eval_batch_size >= 1, f"eval_batch_size must be at least 1, got {self.eval_batch_size}"),
            (0.0 <= self.val_split < 1.0, f"val_split must be in [0, 1), got {self.val_split}"),
            (self.lr is None or self.lr > 0, f"lr must be positive, got {self.lr}"),
            (self.momentum >= 0, f"momentum must be non-negative, got {self.momentum}"),
            (self.l1 >= 0 and self.l2 >= 0, f"l1 and l2 must be non-negative, got {self.l1} and {self.l2}"),
            (self.max_norm is None or self.max_norm > 0, f"max_norm must be positive, got {self.max_norm}"),
            (self.time_budget is None or self.time_budget > 0, f"time_budget must be positive, got {self.time_budget}"),
            (self.threads >= 0, f"threads must be non-negative, got {self.threads}"),
            (0 <= self.seed < 2**63, f"seed must be in [0, 2**63), got {self.seed}"),
        ]
        for ok, message in checks:
            if not ok:
                raise SettingsError(message)

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else (0.05 if self.optimizer == "sgd" else 1e-3)

    @property
    def uses_dropout(self) -> bool:
        return self.input_dropout > 0 or any(p > 0 for p in self.dropout)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Settings":
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls) if f.name in d})


class Progress:
    """What a training loop reports; subclass and override what you display (report.RichProgress does)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def log(self, message: str) -> None: ...

    def run_started(self, name: str, total_steps: int, done_steps: int) -> None: ...

    def step(self, name: str, loss: float) -> None: ...

    def epoch_done(self, name: str, record: dict) -> None: ...

    def run_done(self, name: str) -> None: ...


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


def _lr_factor(schedule: str, t: int, total: int) -> float:
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * t / total))
    if schedule == "step":
        return 0.1 ** ((t >= total // 2) + (t >= (3 * total) // 4))
    return 1.0


def _optimizer(model: torch.nn.Module, s: Settings) -> torch.optim.Optimizer:
    decay = models.weights(model)
    ids = {id(w) for w in decay}
    groups = [
        {"params": decay, "weight_decay": s.l2},
        {"params": [p for p in model.parameters() if id(p) not in ids], "weight_decay": 0.0},
    ]
    if s.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=s.learning_rate, momentum=s.momentum)
    return torch.optim.Adam(groups, lr=s.learning_rate)


@torch.no_grad()
def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 10000) -> tuple[float, float]:
    """Mean cross-entropy and accuracy (a fraction) of `model` in eval() mode; restores the previous mode.

    Examples:
        >>> loss, acc = evaluate(model, ds.x_test, ds.y_test)  # doctest: +SKIP
    """
    was_training = model.training
    model.eval()
    loss, correct = 0.0, 0
    for i in range(0, len(x), batch_size):
        out = model(x[i : i + batch_size])
        loss += F.cross_entropy(out, y[i : i + batch_size], reduction="sum").item()
        correct += (out.argmax(1) == y[i : i + batch_size]).sum().item()
    model.train(was_training)
    return loss / max(len(x), 1), correct / max(len(x), 1)


def _split(ds: data.Dataset, s: Settings):
    """(x_train, y_train, x_val, y_val): a held-out validation part of the training set, fixed by the seed."""
    if s.val_split == 0:
        return ds.x_train, ds.y_train, None, None
    order = torch.randperm(len(ds.x_train), generator=torch.Generator().manual_seed(s.seed))
    n_val = max(1, int(len(order) * s.val_split))
    val, train = order[:n_val], order[n_val:]
    return ds.x_train[train], ds.y_train[train], ds.x_train[val], ds.y_train[val]


class _StopOnSigint:
    """First Ctrl-C asks the loop to stop at the next step boundary (so the checkpoint is consistent);
    a second one interrupts at once."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def _mlp(s: Settings, n_features: int, n_classes: int, n_train: int | None = None) -> torch.nn.Module:
    return models.build_mlp(n_features, s.hidden, n_classes, s.dropout, s.input_dropout, s.dropout_type, n_train)


def _build(s: Settings, n_features: int, n_classes: int, n_train: int) -> torch.nn.Module:
    torch.manual_seed(s.seed)  # same seed, same initial weights for dropout and no-dropout twins
    return _mlp(s, n_features, n_classes, n_train)


_CHECKPOINT_KEYS = ("model", "optimizer", "rng", "epoch", "step", "history", "elapsed", "done", "stopped")


def _reason(e: BaseException) -> str:
    """An exception's message as one line (its first sentence), or its type's name when it has none."""
    lines = str(e).strip().splitlines()
    return lines[0].split(". ")[0] if lines else type(e).__name__


def _read_checkpoint(path: Path, keys: tuple[str, ...] = _CHECKPOINT_KEYS) -> dict:
    """The checkpoint dict at `path`; RunFolderError naming the file and the reason if it cannot be read."""
    try:
        saved = torch.load(path, weights_only=False)
    except Exception as e:  # truncated or corrupt files raise RuntimeError, EOFError, UnpicklingError ... by where they break
        raise RunFolderError(f"checkpoint {path} cannot be read (truncated or corrupt?): {_reason(e)}") from None
    missing = [k for k in keys if k not in saved] if isinstance(saved, dict) else list(keys)
    if missing:
        raise RunFolderError(f"checkpoint {path} is not a dropkit run checkpoint: it lacks {', '.join(missing)}")
    return saved


def _restore(path: Path, what: str, load: Callable[[], None]) -> None:
    """Run `load` (a load_state_dict); RunFolderError in one line if the checkpoint does not fit the run."""
    try:
        load()
    except (RuntimeError, ValueError, TypeError, KeyError) as e:
        reason = " ".join(str(e).split()) or type(e).__name__  # load_state_dict lists the keys on further lines
        reason = reason if len(reason) <= 200 else reason[:197] + "..."
        raise RunFolderError(f"checkpoint {path}: its {what} does not fit the run's settings: {reason}") from None


def _load_schedules(schedules: list, saved: dict) -> None:
    """Set each dropout layer's schedule (and so its rate) to where the checkpoint left it."""
    states = saved.get("dropout_schedules")
    if states is None:  # written before dropout schedules existed: those runs were constant, nothing to restore
        return
    for schedule, state in zip(schedules, states, strict=True):
        schedule.load_state_dict(state)


def fit(
    s: Settings,
    ds: data.Dataset,
    checkpoint: Path,
    *,
    name: str = "run",
    progress: Progress | None = None,
    on_epoch: Callable[[str, list[dict]], None] | None = None,
) -> dict:
    """Train one run to its end (or its time budget), resuming from `checkpoint` if it exists.

    The checkpoint is rewritten atomically after every epoch and on Ctrl-C (mid-epoch,
    at a step boundary), then Interrupted is raised.

    Returns:
        The final checkpoint dict: "model" (state dict), "history" (one record per epoch),
        "elapsed" (seconds), "done", "stopped" ("epochs" or "time budget").

    Examples:
        >>> state = fit(Settings(dataset="digits", epochs=2), data.load("digits"), Path("run.pt"))  # doctest: +SKIP
    """
    progress = progress or Progress()
    if s.threads:
        torch.set_num_threads(s.threads)
    x, y, x_val, y_val = _split(ds, s)
    model = _build(s, ds.n_features, ds.n_classes, len(x))  # N of concrete dropout's regularisers: the training part
    concrete = models.concrete_modules(model)
    # Stepped once per epoch: N in "early:N" counts epochs, like --epochs, whatever the batch size.
    schedules = models.schedule_dropout(model, s.dropout_schedule)
    opt = _optimizer(model, s)
    steps = math.ceil(len(x) / s.batch_size)
    state = {"epoch": 0, "step": 0, "history": [], "elapsed": 0.0, "done": False, "stopped": None}
    if checkpoint.exists():
        saved = _read_checkpoint(checkpoint)
        _restore(checkpoint, "model", lambda: model.load_state_dict(saved["model"]))
        _restore(checkpoint, "optimizer state", lambda: opt.load_state_dict(saved["optimizer"]))
        _restore(checkpoint, "RNG state", lambda: torch.set_rng_state(saved["rng"]))
        _restore(checkpoint, "dropout schedule state", lambda: _load_schedules(schedules, saved))
        state = {k: saved[k] for k in state}
        if state["done"]:
            return saved

    def save(done=False, stopped=None):
        state.update(done=done, stopped=stopped)
        blob = {"format": _FORMAT, "settings": s.to_dict(), "model": model.state_dict(), "optimizer": opt.state_dict()}
        blob["n_train"] = len(x)  # concrete dropout's N, for load_model
        blob["dropout_schedules"] = [schedule.state_dict() for schedule in schedules]
        report.write_atomic(checkpoint, lambda tmp: torch.save({**blob, **state, "rng": torch.get_rng_state()}, tmp))
        return {**blob, **state}

    progress.run_started(name, s.epochs * steps, state["epoch"] * steps + state["step"])
    started = time.perf_counter() - state["elapsed"]
    model.train()
    with _StopOnSigint() as stop:
        for epoch in range(state["epoch"], s.epochs):
            # Batch order depends only on (seed, epoch): every run of an experiment sees the same batches.
            order = torch.randperm(len(x), generator=torch.Generator().manual_seed(s.seed * 100003 + epoch))
            t0 = time.perf_counter()
            for step in range(state["step"], steps):
                for group in opt.param_groups:
                    group["lr"] = s.learning_rate * _lr_factor(s.schedule, epoch * steps + step, s.epochs * steps)
                idx = order[step * s.batch_size : (step + 1) * s.batch_size]
                loss = F.cross_entropy(model(x[idx]), y[idx])
                if s.l1:
                    loss = loss + s.l1 * sum(w.abs().sum() for w in models.weights(model))
                if concrete:
                    loss = loss + sum(m.regularization() for m in concrete)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if s.max_norm is not None:
                    models.apply_max_norm(model, s.max_norm)
                progress.step(name, loss.item())
                if stop.requested:
                    state.update(epoch=epoch, step=step + 1, elapsed=time.perf_counter() - started)
                    save()
                    raise Interrupted(f"interrupted: run {name!r} saved at epoch {epoch + 1}, step {step + 1}")
            train_seconds = time.perf_counter() - t0
            # the rates this epoch trained with, input layer first; a schedule changes them between epochs,
            # and concrete dropout's are learned during it (recorded as the epoch left them)
            record = {"run": name, "epoch": epoch + 1, "lr": opt.param_groups[0]["lr"]}
            record["dropout_rates"] = [m.p for m in models.dropout_modules(model)]
            record["train_loss"], record["train_acc"] = evaluate(model, x, y, s.eval_batch_size)
            if x_val is not None:
                record["val_loss"], record["val_acc"] = evaluate(model, x_val, y_val, s.eval_batch_size)
            record["test_loss"], record["test_acc"] = evaluate(model, ds.x_test, ds.y_test, s.eval_batch_size)
            record["epoch_seconds"] = train_seconds
            record["eval_seconds"] = time.perf_counter() - t0 - train_seconds
            state["history"].append(record)
            for schedule in schedules:
                schedule.step()  # before the save, so the checkpoint's schedule state matches its epoch
            state.update(epoch=epoch + 1, step=0, elapsed=time.perf_counter() - started)
            over_budget = s.time_budget is not None and state["elapsed"] >= s.time_budget
            finished = epoch + 1 == s.epochs or over_budget
            result = save(done=finished, stopped=("epochs" if epoch + 1 == s.epochs else "time budget") if finished else None)
            progress.epoch_done(name, record)
            if on_epoch is not None:
                on_epoch(name, state["history"])
            if finished:
                break
            if stop.requested:
                raise Interrupted(f"interrupted: run {name!r} saved after epoch {epoch + 1}")
    progress.run_done(name)
    return result


def demo_runs(base: Settings, l2: float = 5e-4) -> dict[str, Settings]:
    """The demo's three runs: `base` with its dropout, the same without dropout, and without dropout but with L2.

    Examples:
        >>> list(demo_runs(Settings()))
        ['dropout', 'no_dropout', 'l2']
    """
    plain = dataclasses.replace(base, dropout=(0.0,), input_dropout=0.0, l2=0.0)
    return {"dropout": dataclasses.replace(base, l2=0.0), "no_dropout": plain, "l2": dataclasses.replace(plain, l2=l2)}


def sweep_runs(base: Settings, rates, seeds) -> dict[str, Settings]:
    """One run per (rate, seed): hidden dropout `rate` on every hidden layer, named 'p<rate>_s<seed>'.

    Examples:
        >>> list(sweep_runs(Settings(), [0.0, 0.5], [0]))
        ['p0_s0', 'p0.5_s0']
    """
    return {
        f"p{rate:g}_s{seed}": dataclasses.replace(base, dropout=(rate,), seed=seed) for rate in rates for seed in seeds
    }


_OURS = ("config.json", "metrics.jsonl", "summary.json", "curves.png", "sweep.json", "sweep.png", "checkpoints")


def _run_files() -> tuple[str, ...]:
    """Every file the lab writes into a run folder: a run's own, and the reports made from it (uncertainty, analyze)."""
    # Imported here, not at the top: lab.uncertainty and lab.analyze import this module (for load_model).
    from . import analyze, uncertainty

    return _OURS + uncertainty.FILES + analyze.FILES


def _prepare(out: Path, resume: bool, overwrite: bool) -> None:
    if resume and overwrite:
        raise RunFolderError("--resume and --overwrite exclude each other")
    if resume:
        if not (out / "config.json").is_file():
            raise RunFolderError(f"nothing to resume in {out}: no config.json")
    elif out.exists() and not out.is_dir():
        raise RunFolderError(f"run folder {out} is a file")
    elif out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise RunFolderError(f"run folder {out} is not empty; pass --resume to continue it or --overwrite to replace it")
        # Remove only what the lab writes: --overwrite on the wrong folder must not wipe a user's files,
        # and a report made from the replaced run (uncertainty.json ...) would describe a model that is gone.
        for entry in _run_files():
            path = out / entry
            if path.is_dir():
                for f in path.iterdir():
                    f.unlink()
                path.rmdir()
            elif path.exists():
                path.unlink()
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)


def run_experiment(
    runs: dict[str, Settings],
    out,
    *,
    command: str = "train",
    resume: bool = False,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> dict:
    """Train several runs on one data set into the run folder `out`; write its reports; return the summary.

    With resume=True the settings come from out/config.json (those passed are ignored),
    finished runs are kept and unfinished ones continue from their checkpoints.

    Raises:
        RunFolderError: out is not empty (without resume or overwrite), has nothing to resume, or a
            checkpoint to resume from cannot be read.
        data.DataError, SettingsError: bad data or settings.
        Interrupted: Ctrl-C; every checkpoint is saved.

    Examples:
        >>> summary = run_experiment(demo_runs(Settings(dataset="digits", epochs=3)), "runs/demo", command="demo")  # doctest: +SKIP
    """
    out = Path(out)
    progress = progress or Progress()
    _prepare(out, resume, overwrite)
    if resume:
        config = json.loads((out / "config.json").read_text())
        runs = {name: Settings.from_dict(d) for name, d in config["runs"].items()}
    first = next(iter(runs.values()))
    ds = data.load(first.dataset, first.data_dir, first.download)
    if ds.notice:
        progress.log(ds.notice)
    # Record the resolved data set, so load_model and a resume read the same data as this run did.
    runs = {name: dataclasses.replace(s, dataset=ds.name, download=False) for name, s in runs.items()}
    if not resume:
        config = {
            "command": command,
            "dataset": ds.name,
            "source": ds.source,
            "n_features": ds.n_features,
            "n_classes": ds.n_classes,
            "versions": {"dropkit": __version__, "torch": torch.__version__},
            "threads": torch.get_num_threads(),
            "runs": {name: s.to_dict() for name, s in runs.items()},
        }
        report.write_json(out / "config.json", config)
    histories: dict[str, list[dict]] = {}

    def on_epoch(name, history):
        histories[name] = history
        report.write_metrics(out / "metrics.jsonl", histories)

    results = {}
    for name, s in runs.items():
        state = fit(s, ds, out / "checkpoints" / f"{name}.pt", name=name, progress=progress, on_epoch=on_epoch)
        histories[name] = state["history"]
        results[name] = state
    report.write_metrics(out / "metrics.jsonl", histories)
    summary = report.summarize(ds.name, runs, results)
    for name, s in runs.items():
        if s.dropout_type == "concrete" and any(s.dropout):
            summary["runs"][name]["learned_dropout"] = _learned_rates(s, results[name]["history"][-1])
    report.write_json(out / "summary.json", summary)
    report.plot_curves(histories, out / "curves.png")
    return summary


def _learned_rates(s: Settings, record: dict) -> list[float]:
    """A concrete run's hidden rates as its last epoch left them, one per hidden layer like Settings.dropout (0: no layer)."""
    learned = iter(record["dropout_rates"][1 if s.input_dropout > 0 else 0 :])
    return [next(learned) if p > 0 else 0.0 for p in s.dropout]


def load_model(run_dir, run_name: str = "dropout") -> tuple[torch.nn.Module, Settings]:
    """The trained model of one run of a run folder (in eval() mode, dropout rates as training left them) and its settings.

    Pair it with data.load_test_tensors(settings.dataset, settings.data_dir) to get the
    test split it was evaluated on.

    Raises:
        RunFolderError: no such run folder, run, or checkpoint, or a checkpoint that cannot be read.

    Examples:
        >>> model, settings = load_model("runs/demo", "dropout")  # doctest: +SKIP
        >>> x, y = data.load_test_tensors(settings.dataset, settings.data_dir)  # doctest: +SKIP
    """
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        raise RunFolderError(f"{run_dir} is not a run folder: no config.json")
    config = json.loads((run_dir / "config.json").read_text())
    if run_name not in config["runs"]:
        raise RunFolderError(f"{run_dir} has no run {run_name!r}; its runs: {', '.join(config['runs'])}")
    checkpoint = run_dir / "checkpoints" / f"{run_name}.pt"
    if not checkpoint.is_file():
        raise RunFolderError(f"run {run_name!r} of {run_dir} has no checkpoint yet: {checkpoint}")
    settings = Settings.from_dict(config["runs"][run_name])
    saved = _read_checkpoint(checkpoint, ("model",))
    # n_train only sets concrete dropout's regularisers, which inference does not use (1 for checkpoints without it)
    model = _mlp(settings, config["n_features"], config["n_classes"], saved.get("n_train", 1))
    _restore(checkpoint, "model", lambda: model.load_state_dict(saved["model"]))
    # The rates the run ended with (an early-dropout run ends at 0), so MC dropout samples the trained model;
    # concrete dropout's learned rates are in the model's state.
    schedules = models.schedule_dropout(model, settings.dropout_schedule)
    _restore(checkpoint, "dropout schedule state", lambda: _load_schedules(schedules, saved))
    return model.eval(), settings
