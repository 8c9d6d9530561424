"""The training loop: fit trains one run with exact resume; run_experiment trains several into a run folder.

The seed controls initialisation (torch.manual_seed before the model is built),
batch order (a generator seeded from (seed, epoch), identical for every run of an
experiment) and dropout masks (drawn from torch's generator, whose state every
checkpoint saves). So the same command gives the same numbers, and a resumed run
ends with exactly the weights of an uninterrupted one. The run folder's layout and
its checkpoints are dropkit.lab.runs'; what defines a run is dropkit.lab.settings'.

With masks="addressed" the masks come from (seed, layer, step, sample) instead
(dropkit.sample_addressed), and fit trains the same way on several processes
(torchrun, DDP; dropkit.lab.distributed) and with --accumulate micro-batches.

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

import contextlib
import dataclasses
import math
import signal
import threading
import time
from collections.abc import Callable, Collection
from pathlib import Path

import torch
import torch.nn.functional as F

from .. import __version__
from ..scale import addressing
from . import data, distributed, models, report
from .errors import Diverged, Interrupted, RunFolderError, SettingsError
from .progress import Progress
from .runs import (
    CHECKPOINT_FORMAT,
    CONFIG,
    check,
    checkpoint_path,
    load_schedules,
    lock,
    prepare,
    read_checkpoint,
    read_config,
    restore,
    write_checkpoint,
)
from .settings import Settings, build_model, resume_runs, split_sizes

__all__ = ["Progress", "Interrupted", "Diverged", "fit", "evaluate", "run_experiment"]


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
    """(x_train, y_train, x_val, y_val): a held-out validation part of the training set, fixed by the seed.

    With s.train_size, the training set is its class-stratified subset (data.train_subset) and validation
    is the first val_split of the subset's stratified order: stratified too, and nested like the subsets.
    """
    if s.train_size is not None:
        subset = data.train_subset(ds.y_train, s.train_size, s.seed)
        n_val = split_sizes(s, len(subset))[1]
        train, val = subset[n_val:], subset[:n_val]
        return ds.x_train[train], ds.y_train[train], *((ds.x_train[val], ds.y_train[val]) if n_val else (None, None))
    if s.val_split == 0:
        return ds.x_train, ds.y_train, None, None
    order = torch.randperm(len(ds.x_train), generator=torch.Generator().manual_seed(s.seed))
    n_val = split_sizes(s, len(order))[1]
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


@dataclasses.dataclass
class _Run:
    """One run in training: its model and optimizer, its part of the data, and the counters its checkpoint keeps."""

    s: Settings
    model: torch.nn.Module
    opt: torch.optim.Optimizer
    schedules: list  # one DropoutSchedule per dropout layer, stepped once per epoch
    concrete: list  # the ConcreteDropout layers, whose regularisers join the loss
    x: torch.Tensor
    y: torch.Tensor
    x_val: torch.Tensor | None
    y_val: torch.Tensor | None
    steps: int  # optimizer steps per epoch
    total: int  # optimizer steps of the whole run (Settings.total_steps)
    state: dict = dataclasses.field(
        default_factory=lambda: {"epoch": 0, "step": 0, "history": [], "elapsed": 0.0, "done": False, "stopped": None}
    )
    net: torch.nn.Module = dataclasses.field(init=False)  # what trains: the model, or its DDP wrapper
    masks: addressing.SampleAddressing | None = None  # set while fit trains with masks="addressed"

    def __post_init__(self) -> None:
        self.net = torch.nn.parallel.DistributedDataParallel(self.model) if distributed.world_size() > 1 else self.model


def _new_run(s: Settings, ds: data.Dataset) -> _Run:
    x, y, x_val, y_val = _split(ds, s)
    torch.manual_seed(s.seed)  # same seed, same initial weights for dropout and no-dropout twins
    model = build_model(
        s, ds.n_features, ds.n_classes, len(x)
    )  # N of concrete dropout's regularisers: the training part
    # Stepped once per epoch: N in "early:N" counts epochs, like --epochs, whatever the batch size.
    schedules = models.schedule_dropout(model, s.dropout_schedule)
    steps = math.ceil(len(x) / s.batch_size)
    return _Run(
        s,
        model,
        _optimizer(model, s),
        schedules,
        models.concrete_modules(model),
        x,
        y,
        x_val,
        y_val,
        steps,
        s.total_steps(steps),
    )


def _resume(run: _Run, checkpoint: Path) -> dict:
    """Load the checkpoint into the run (model, optimizer, RNG, schedules, counters); return the checkpoint."""
    saved = read_checkpoint(checkpoint)
    restore(checkpoint, "model", lambda: run.model.load_state_dict(saved["model"]))
    restore(checkpoint, "optimizer state", lambda: run.opt.load_state_dict(saved["optimizer"]))
    restore(checkpoint, "RNG state", lambda: torch.set_rng_state(saved["rng"]))
    restore(checkpoint, "dropout schedule state", lambda: load_schedules(run.schedules, saved))
    run.state = {k: saved[k] for k in run.state}
    return saved


def _save(run: _Run, checkpoint: Path, done: bool = False, stopped: str | None = None) -> dict:
    """Write the run's checkpoint atomically; return it (without the RNG state)."""
    run.state.update(done=done, stopped=stopped)
    blob = {"format": CHECKPOINT_FORMAT, "settings": run.s.to_dict(), "model": run.model.state_dict()}
    blob["optimizer"] = run.opt.state_dict()
    blob["n_train"] = len(run.x)  # concrete dropout's N, for load_model
    blob["dropout_schedules"] = [schedule.state_dict() for schedule in run.schedules]
    if distributed.lead():  # the other processes hold the same state
        write_checkpoint(checkpoint, {**blob, **run.state})
    return {**blob, **run.state}


def _batch_order(s: Settings, n: int, epoch: int) -> torch.Tensor:
    # Batch order depends only on (seed, epoch): every run of an experiment sees the same batches.
    return torch.randperm(n, generator=torch.Generator().manual_seed(s.seed * 100003 + epoch))


def _train_step(run: _Run, order: torch.Tensor, epoch: int, step: int, stop: bool) -> tuple[float, bool]:
    """One optimizer step on batch `step` of the epoch's order; returns its loss and whether any process asked to stop.

    Each process trains its part of the batch, in s.accumulate micro-batches (distributed.part_bounds),
    each weighted by its share of the batch so that the summed gradients are the whole batch's mean.
    The loss and the stop request are summed over the processes, so every process decides alike.
    """
    s = run.s
    for group in run.opt.param_groups:
        group["lr"] = s.learning_rate * _lr_factor(s.schedule, epoch * run.steps + step, run.total)
    idx = order[step * s.batch_size : (step + 1) * s.batch_size]
    rank, world = distributed.rank(), distributed.world_size()
    run.opt.zero_grad(set_to_none=True)
    local = 0.0
    for micro in range(s.accumulate):
        lo, hi = distributed.part_bounds(len(idx), rank=rank, world=world, micro=micro, accumulate=s.accumulate)
        if run.masks is not None:
            run.masks.set_step(epoch * run.steps + step, sample_offset=lo)
        last = micro == s.accumulate - 1
        with contextlib.nullcontext() if last or world == 1 else _ddp(run).no_sync():  # all-reduce once per step
            out = run.net(run.x[idx[lo:hi]])
            # DDP averages over the processes, so each part weighs its share of the batch times their number
            loss = (
                F.cross_entropy(out, run.y[idx[lo:hi]]) * ((hi - lo) / len(idx) * world) if hi > lo else out.sum() * 0.0
            )
            if micro == 0 and s.l1:
                loss = loss + s.l1 * sum(w.abs().sum() for w in models.weights(run.model))
            if micro == 0 and run.concrete:
                loss = loss + sum(m.regularization() for m in run.concrete)
            loss.backward()
        local += loss.item()
    value, stops = distributed.all_sum([local, float(stop)])
    value /= world
    if math.isfinite(value):  # else leave the weights as the last finite step left them
        run.opt.step()
        if s.max_norm is not None:
            models.apply_max_norm(run.model, s.max_norm)
    return value, stops > 0


def _ddp(run: _Run) -> torch.nn.parallel.DistributedDataParallel:
    """The run's DDP wrapper: what trains when there are several processes."""
    assert isinstance(run.net, torch.nn.parallel.DistributedDataParallel), "several processes: _Run wraps in DDP"
    return run.net


def _finite(model: torch.nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


def _diverged(run: _Run, name: str, epoch: int, step: int, what: str) -> Diverged:
    """The one line for a run that diverged at (epoch, step), both from 0, saying which checkpoint is kept."""
    done = run.state["epoch"], run.state["step"]
    kept = (
        "no checkpoint was written yet"
        if done == (0, 0)
        else f"its checkpoint after epoch {done[0]} is kept"
        if done[1] == 0
        else f"its checkpoint at epoch {done[0] + 1}, step {done[1]} is kept"
    )
    return Diverged(
        f"run {name!r} diverged at epoch {epoch + 1}, step {step + 1}: {what}; {kept}. "
        f"Lower --lr (it is {run.s.learning_rate:g}) or bound the weights with --max-norm, and --resume",
        epoch=epoch + 1,
        step=step + 1,
    )


def _epoch_record(run: _Run, ds: data.Dataset, name: str, epoch: int, train_seconds: float) -> dict:
    """metrics.jsonl's line for an epoch that just trained: rates, lr, and train (val) test loss and accuracy."""
    s, t0 = run.s, time.perf_counter()
    # the rates this epoch trained with, input layer first; a schedule changes them between epochs,
    # and concrete dropout's are learned during it (recorded as the epoch left them)
    record = {
        "run": name,
        "epoch": epoch + 1,
        "step": min((epoch + 1) * run.steps, run.total),
        "lr": run.opt.param_groups[0]["lr"],
    }
    record["dropout_rates"] = [m.p for m in models.dropout_modules(run.model)]
    record["train_loss"], record["train_acc"] = evaluate(run.model, run.x, run.y, s.eval_batch_size)
    if run.x_val is not None:
        assert run.y_val is not None, "_split gives both validation tensors or neither"
        record["val_loss"], record["val_acc"] = evaluate(run.model, run.x_val, run.y_val, s.eval_batch_size)
    record["test_loss"], record["test_acc"] = evaluate(run.model, ds.x_test, ds.y_test, s.eval_batch_size)
    record["epoch_seconds"] = train_seconds
    record["eval_seconds"] = time.perf_counter() - t0
    return record


def _stop_reason(run: _Run, state: dict) -> str | None:
    """Why the run stops after the epoch it just trained ("epochs", "steps" or "time budget"), or None to go on."""
    s = run.s
    if state["epoch"] * run.steps + state["step"] >= run.total:
        return "epochs" if s.steps is None else "steps"
    if s.time_budget is not None and state["elapsed"] >= s.time_budget:
        return "time budget"
    return None


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
    at a step boundary), then Interrupted is raised. A non-finite training loss (or
    weights) raises Diverged at once and leaves the last finite checkpoint in place.
    Resumed with other settings (settings.resume_runs: more or fewer epochs, another lr),
    the run continues under them from where its checkpoint stopped.

    Returns:
        The final checkpoint dict: "model" (state dict), "history" (one record per epoch),
        "elapsed" (seconds), "done", "stopped" ("epochs" or "time budget").

    Examples:
        >>> state = fit(Settings(dataset="digits", epochs=2), data.load("digits"), Path("run.pt"))  # doctest: +SKIP
    """
    progress = progress or Progress()
    if distributed.world_size() > 1 and s.masks != "addressed":
        raise SettingsError(
            f"run {name!r} has masks {s.masks!r}, which depend on how the batch is split: "
            "train it in one process, or start a new run folder with --masks addressed"
        )
    if s.threads:
        torch.set_num_threads(s.threads)
    run = _new_run(s, ds)
    if checkpoint.exists():
        saved = _resume(run, checkpoint)
        trained = run.state["epoch"] * run.steps + run.state["step"]
        if trained > run.total:
            budget = (
                f"--epochs {s.epochs} is fewer than the {run.state['epoch']} epochs"
                if s.steps is None
                else f"--steps {s.steps} are fewer than the {trained} steps"
            )
            raise SettingsError(f"{budget} run {name!r} has trained")
        stopped = _stop_reason(run, run.state)
        if stopped is not None:  # finished; or finished now, with fewer --epochs or a shorter --time-budget
            return saved if saved["done"] and saved["stopped"] == stopped else _save(run, checkpoint, True, stopped)
    progress.run_started(name, run.total, run.state["epoch"] * run.steps + run.state["step"])
    started = time.perf_counter() - run.state["elapsed"]
    run.model.train()
    masks = addressing.sample_addressed(run.model, seed=s.seed) if s.masks == "addressed" else contextlib.nullcontext()
    with _StopOnSigint() as stop, masks as run.masks:
        for epoch in range(run.state["epoch"], math.ceil(run.total / run.steps)):
            order = _batch_order(s, len(run.x), epoch)
            t0 = time.perf_counter()
            for step in range(run.state["step"], min(run.steps, run.total - epoch * run.steps)):
                loss, stopping = _train_step(run, order, epoch, step, stop.requested)
                if not math.isfinite(loss):
                    raise _diverged(run, name, epoch, step, f"the training loss is {loss}")
                progress.step(name, loss)
                # One process: the request as it stands now; several: as they all agreed in the step's all-reduce.
                if stopping or (stop.requested and distributed.world_size() == 1):
                    run.state.update(epoch=epoch, step=step + 1, elapsed=time.perf_counter() - started)
                    _save(run, checkpoint)
                    raise Interrupted(f"interrupted: run {name!r} saved at epoch {epoch + 1}, step {step + 1}")
            if not _finite(run.model):  # the epoch's last update overflowed: never checkpoint it
                raise _diverged(run, name, epoch, run.steps - 1, "its weights are no longer finite")
            seconds = time.perf_counter() - t0
            # decided before the evaluation (one clock for all processes), which the last epoch always gets
            ended = {"epoch": epoch + 1, "step": 0, "elapsed": time.perf_counter() - started}
            stopped = distributed.from_rank0(_stop_reason(run, ended))
            interrupted = distributed.all_sum([float(stop.requested)])[0] > 0
            evaluated = stopped is not None or (epoch + 1) % s.eval_every == 0
            if evaluated:
                record = _epoch_record(run, ds, name, epoch, seconds)
                run.state["history"].append(record)
            for schedule in run.schedules:
                schedule.step()  # before the save, so the checkpoint's schedule state matches its epoch
            run.state.update(epoch=epoch + 1, step=0, elapsed=time.perf_counter() - started)
            if evaluated or interrupted:
                result = _save(run, checkpoint, done=stopped is not None, stopped=stopped)
            if evaluated:
                progress.epoch_done(name, record)
                if on_epoch is not None:
                    on_epoch(name, run.state["history"])
            if stopped is not None:
                break
            if interrupted:
                raise Interrupted(f"interrupted: run {name!r} saved after epoch {epoch + 1}")
    progress.run_done(name)
    return result


def run_experiment(
    runs: dict[str, Settings],
    out,
    *,
    command: str = "train",
    resume: bool = False,
    overwrite: bool = False,
    given: Collection[str] | None = None,
    keep_going: bool = False,
    progress: Progress | None = None,
) -> dict:
    """Train several runs on one data set into the run folder `out`; write its reports; return the summary.

    The folder is locked for the whole call (runs.lock): a second writer is refused.
    With resume=True the settings come from out/config.json, finished runs are kept and
    unfinished ones continue from their checkpoints. The runs passed are ignored unless
    `given` names the options they were built from: those are checked against the
    folder's runs, and the RESUMABLE ones applied (settings.resume_runs).

    Args:
        given: on resume, the options set explicitly (Settings field names); None: ignore `runs`.
        keep_going: a run that diverges is recorded in the summary as diverged and the others
            still train (a sweep); otherwise Diverged stops the experiment.

    Raises:
        RunFolderError: out is not empty (without resume or overwrite), has nothing to resume, is
            locked by another process, or a checkpoint to resume from cannot be read.
        data.DataError, SettingsError: bad data or settings (or options a resume cannot change).
        Interrupted: Ctrl-C; every checkpoint is saved.
        Diverged: a non-finite training loss (unless keep_going); the last finite checkpoint is kept.

    Examples:
        >>> summary = run_experiment(demo_runs(Settings(dataset="digits", epochs=3)), "runs/demo", command="demo")  # doctest: +SKIP
    """
    out = Path(out)
    progress = progress or Progress()
    if not distributed.lead():  # rank 0 checks, locks, prepares and writes the folder; the others read it
        distributed.barrier()
        runs = _runs_to_train(out, command, runs, resume, given)[0]
        return _train_runs(runs, _load_data(runs, progress), out, None, command, keep_going, progress)
    check(out, resume, overwrite)  # refused before the folder is created
    with lock(out):
        runs, config, saved = _runs_to_train(out, command, runs, resume, given)
        ds = _load_data(runs, progress)  # bad data is refused before anything is written into the folder
        prepare(out, resume, overwrite)
        if resume:
            _record_changes(out, config, saved, runs)
        distributed.barrier()
        return _train_runs(runs, ds, out, config, command, keep_going, progress)


def _load_data(runs: dict[str, Settings], progress: Progress) -> data.Dataset:
    """The runs' data set (they share one), its notice (a download, a fallback) logged."""
    first = next(iter(runs.values()))
    ds = data.load(first.dataset, first.data_dir, first.download)
    if ds.notice:
        progress.log(ds.notice)
    return ds


def _runs_to_train(out: Path, command: str, runs: dict[str, Settings], resume: bool, given):
    """(runs, config, saved): the runs as given, or on resume the folder's (config.json) with the given changes."""
    if not resume:
        return runs, None, None
    config = read_config(out)
    if config["command"] != command:
        raise RunFolderError(
            f"{out} holds a dropkit {config['command']} run; resume it with dropkit {config['command']} --resume"
        )
    saved = {name: Settings.from_dict(d) for name, d in config["runs"].items()}
    return (saved if given is None else resume_runs(saved, runs, given)), config, saved


def _record_changes(out: Path, config: dict, saved: dict[str, Settings], runs: dict[str, Settings]) -> None:
    """Write a resume's changed settings into config.json, each with its old and new value, under "resumed_with"."""
    changes: dict[str, list] = {}
    for name, s in runs.items():
        old = saved[name].to_dict()
        for field, value in s.to_dict().items():
            if value != old[field]:
                changes.setdefault(field, [old[field], value])
    if changes:
        config["runs"] = {name: s.to_dict() for name, s in runs.items()}
        config.setdefault("resumed_with", []).append(changes)
        report.write_json(out / CONFIG, config)


def _train_runs(runs, ds, out: Path, config: dict | None, command: str, keep_going: bool, progress: Progress) -> dict:
    # Record the resolved data set, so load_model and a resume read the same data as this run did.
    runs = {name: dataclasses.replace(s, dataset=ds.name, download=False) for name, s in runs.items()}
    writer = distributed.lead()
    if config is None and writer:
        config = {
            "command": command,
            "dataset": ds.name,
            "source": ds.source,
            "n_features": ds.n_features,
            "n_classes": ds.n_classes,
            "versions": {"dropkit": __version__, "torch": torch.__version__},
            "threads": torch.get_num_threads(),
            "processes": distributed.world_size(),
            "runs": {name: s.to_dict() for name, s in runs.items()},
        }
        report.write_json(out / CONFIG, config)
    histories: dict[str, list[dict]] = {}

    def on_epoch(name, history):
        histories[name] = history
        if writer:
            report.write_metrics(out / "metrics.jsonl", histories)

    results = {}
    for name, s in runs.items():
        try:
            state = fit(s, ds, checkpoint_path(out, name), name=name, progress=progress, on_epoch=on_epoch)
        except Diverged as e:
            if not keep_going:
                raise
            progress.log(f"warning: {e}")
            histories.setdefault(name, [])
            state = {"history": histories[name], "diverged": {"epoch": e.epoch, "step": e.step}}
        histories[name] = state["history"]
        results[name] = state
    summary = report.summarize(ds.name, runs, results)
    for name, s in runs.items():
        if s.dropout_type == "concrete" and any(s.dropout) and "diverged" not in results[name]:
            summary["runs"][name]["learned_dropout"] = _learned_rates(s, results[name]["history"][-1])
    if writer:
        report.write_metrics(out / "metrics.jsonl", histories)
        report.write_json(out / "summary.json", summary)
        report.plot_curves(histories, out / "curves.png")
    return summary


def _learned_rates(s: Settings, record: dict) -> list[float]:
    """A concrete run's hidden rates as its last epoch left them, one per hidden layer like Settings.dropout (0: no layer)."""
    learned = iter(record["dropout_rates"][1 if s.input_dropout > 0 else 0 :])
    return [next(learned) if p > 0 else 0.0 for p in s.dropout]
