"""`dropkit tune`: search the dropout rates on validation accuracy with Optuna, then report test accuracy once.

Each trial is one ordinary training run (its own run folder, trials/<number>/, with the run named
"dropout", so `dropkit uncertainty` and `dropkit analyze` work on it) whose settings are the base
settings with the searched values: the hidden rates (one per layer, or one shared), the input rate and,
optionally, the learning rate and the max-norm bound. Its objective is the validation accuracy of the
epoch validation selects (report.select_on_validation); every epoch's validation accuracy goes to the
pruner. The test set is never looked at to choose anything: after the search the best configuration is
retrained on train+validation (final-<number>/) and its last epoch's test accuracy is the result.

The study lives in its storage (default: SQLite, study.db in the output folder), so running the same
command again continues it: finished trials are kept, a trial stopped by Ctrl-C continues from its
checkpoint, and the search runs until this worker has finished --trials trials. With --storage (a
PostgreSQL URL, or any URL Optuna accepts) and --study, processes on one or many machines share one study
as ordinary Optuna workers, each running its own --trials (Optuna's n_trials, exact by construction); the
storage is the only coordination.
With --nproc N each trial trains on N processes (torchrun + DDP, sample-addressed masks); rank 0 is the
study's worker and the other ranks train what it sends.

Output folder layout:
    tune.json            the trials, the best parameters, the final test figure
    tune_history.png     validation accuracy per trial and the best so far
    tune_rates.png       test error (at the best validation epoch) against each searched rate, by trial
    study.db             the default storage
    trials/<n>/          trial n's run folder
    final-<n>/           the retrain of the best trial n on train+validation

Examples:
    >>> result = run(Settings(dataset="digits", epochs=3, val_split=0.1), "runs/tune", trials=4)  # doctest: +SKIP
    >>> result["final"]["test_acc"]  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.util
import os
import socket
import time
import warnings
from pathlib import Path

from . import distributed, report, runs, train
from .errors import LabError, SettingsError
from .settings import Settings

__all__ = ["Search", "DEFAULT_EPOCHS", "suggest", "anchors", "run", "table", "plot_history", "plot_rates"]

DEFAULT_EPOCHS = 10  # per trial: 20 trials of the seed network fit in 15 minutes on 2 idle cores
HIDDEN_RATES = (0.0, 0.8)  # Srivastava et al. find 0.4-0.8 best for hidden units; 0 keeps "no dropout" reachable
INPUT_RATES = (0.0, 0.5)  # they use 0.2 on inputs; more destroys the input
MAX_NORMS = (1.0, 6.0)  # they use 3-4
LR_FACTORS = (0.2, 5.0)  # around the optimizer's default (or --lr), log-uniform
_CHECKED = ("data_dir", "download", "threads")  # settings that may differ between workers of one study


@dataclasses.dataclass(frozen=True)
class Search:
    """What the search varies besides the hidden and input rates.

    Examples:
        >>> Search(shared_rate=True, lr=True)
        Search(shared_rate=True, lr=True, max_norm=False)
    """

    shared_rate: bool = False  # one hidden rate for every layer instead of one per layer
    lr: bool = False  # also the learning rate
    max_norm: bool = False  # also the max-norm bound (otherwise the base settings' value)


def suggest(trial, base: Settings, search: Search) -> Settings:
    """The trial's settings: `base` with the values the trial's sampler proposes.

    Examples:
        >>> s = suggest(optuna.trial.FixedTrial({"dropout": 0.4, "input_dropout": 0.1}), Settings(), Search(shared_rate=True))  # doctest: +SKIP
        >>> s.dropout, s.input_dropout  # doctest: +SKIP
        ((0.4, 0.4), 0.1)
    """
    if search.shared_rate:
        rates = (trial.suggest_float("dropout", *HIDDEN_RATES),) * len(base.hidden)
    else:
        rates = tuple(trial.suggest_float(f"dropout_{i}", *HIDDEN_RATES) for i in range(len(base.hidden)))
    changes = {"dropout": rates, "input_dropout": trial.suggest_float("input_dropout", *INPUT_RATES)}
    if search.lr:
        low, high = (f * base.learning_rate for f in LR_FACTORS)
        changes["lr"] = trial.suggest_float("lr", low, high, log=True)
    if search.max_norm:
        changes["max_norm"] = trial.suggest_float("max_norm", *MAX_NORMS)
    return dataclasses.replace(base, **changes)


def anchors(base: Settings, search: Search) -> list[dict]:
    """The first trials of a new study: the base settings' own rates, then no dropout at all.

    A search that never tried them could end below what one gets without searching (the sweep's grid
    has both corners); values outside the searched ranges are clipped into them. With --shared-rate the
    base point takes the first layer's rate.

    Examples:
        >>> anchors(Settings(), Search())
        [{'dropout_0': 0.5, 'dropout_1': 0.3, 'input_dropout': 0.0}, {'dropout_0': 0.0, 'dropout_1': 0.0, 'input_dropout': 0.0}]
    """

    def point(rates, input_rate):
        names = ["dropout"] if search.shared_rate else [f"dropout_{i}" for i in range(len(rates))]
        params = {n: _clip(r, HIDDEN_RATES) for n, r in zip(names, rates)} | {
            "input_dropout": _clip(input_rate, INPUT_RATES)
        }
        if search.lr:
            params["lr"] = base.learning_rate
        if search.max_norm and base.max_norm is not None:
            params["max_norm"] = _clip(base.max_norm, MAX_NORMS)
        return params

    return [point(base.dropout, base.input_dropout), point((0.0,) * len(base.dropout), 0.0)]


def _clip(value: float, bounds: tuple[float, float]) -> float:
    return min(max(value, bounds[0]), bounds[1])


class _TrialProgress(train.Progress):
    """Passes a trial's progress on (its bar named after the trial) and reports each epoch to the pruner."""

    def __init__(self, trial, inner: train.Progress, prune: bool, epochs: int):
        self.trial, self.inner, self.prune, self.epochs = trial, inner, prune, epochs
        self.name = f"trial {trial.number}"

    def log(self, message):
        self.inner.log(message)

    def run_started(self, name, total_steps, done_steps):
        self.inner.run_started(self.name, total_steps, done_steps)

    def step(self, name, loss):
        self.inner.step(self.name, loss)

    def epoch_done(self, name, record):
        import optuna

        self.inner.epoch_done(self.name, record)
        self.trial.report(record["val_acc"], record["epoch"])
        # fit saved this epoch's checkpoint before calling here, so a pruned trial's folder is consistent;
        # the last epoch is never pruned: the trial has cost all it will, and its result is worth keeping
        prune = self.prune and record["epoch"] < self.epochs and self.trial.should_prune()
        if distributed.from_rank0(prune):  # --nproc: the other ranks stop this trial with rank 0 (_Follower)
            raise optuna.TrialPruned(f"validation accuracy {record['val_acc']:.4f} at epoch {record['epoch']}")

    def run_done(self, name):
        self.inner.run_done(self.name)


class _Follower(train.Progress):
    """A rank above 0 under --nproc: silent, and it stops a trial when rank 0's pruner does."""

    def epoch_done(self, name, record):
        import optuna

        if distributed.from_rank0(None):
            raise optuna.TrialPruned()


def _train(s: Settings, folder: Path, command: str, resume: bool, progress: train.Progress) -> dict:
    """Train one run of the search (a trial, the retrain) into `folder`, on every rank under --nproc."""
    # the other ranks wait in _follow for this; a trial's progress sends them a prune decision each epoch
    distributed.from_rank0((s, folder, command, resume, isinstance(progress, _TrialProgress)))
    return _fit(s, folder, command, resume, progress)


def _fit(s: Settings, folder: Path, command: str, resume: bool, progress: train.Progress) -> dict:
    return train.run_experiment(
        {"dropout": s}, folder, command=command, resume=resume, overwrite=not resume, progress=progress
    )


def _follow() -> None:
    """Ranks above 0 under --nproc: train what rank 0 sends (_train) until it sends None.

    Rank 0 alone talks to the study. A trial that ends in an error ends the same way on every rank (the
    training's collectives agree); rank 0 then sends None or the next trial, so this loop goes on to that.
    """
    import optuna

    while (job := distributed.from_rank0(None)) is not None:
        s, folder, command, resume, pruned = job
        try:
            _fit(s, folder, command, resume, _Follower() if pruned else train.Progress())
        except (optuna.TrialPruned, train.Interrupted, LabError):
            continue


def _driver_url(url: str) -> str:
    """A bare postgresql:// URL with the driver that is installed: SQLAlchemy 2.1 assumes psycopg 3, 2.0 psycopg2."""
    if url.startswith("postgresql://"):
        for module, dialect in (("psycopg", "psycopg"), ("psycopg2", "psycopg2")):
            if importlib.util.find_spec(module) is not None:
                return f"postgresql+{dialect}://{url[len('postgresql://') :]}"
        raise LabError(
            "--storage postgresql://... needs a PostgreSQL driver: pip install 'dropkit[tune]' (psycopg2-binary)"
        )
    return url


def _storage(url: str):
    import optuna

    url = _driver_url(url)
    if not url.startswith(("sqlite", "postgresql", "mysql", "oracle", "mssql")):
        return optuna.storages.get_storage(url)
    # The heartbeat marks a worker that died without a word (power cut, kill -9) so its trial stops counting as running.
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # the heartbeat is stable since Optuna 2
        for attempt in range(3):
            try:
                return optuna.storages.RDBStorage(url, heartbeat_interval=30, grace_period=120)
            except (IntegrityError, ProgrammingError):
                # Workers started together on an empty database race to create Optuna's tables; the loser
                # finds them made a moment later.
                if attempt == 2:
                    raise
                time.sleep(1.0 + attempt)


def _shown_url(url: str) -> str:
    """The storage URL without its password, for tune.json and messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not an SQLAlchemy URL (a journal file ...): no password to hide
        return url


def _sampler_seed(seed: int, shared: bool, n_trials: int) -> int:
    # A continued study must not replay its first proposals, so the seed counts the trials already made;
    # workers of a shared study must not propose the same points, so each one's sampler gets its own
    # stream. Alone in its own storage, the search is reproducible from --seed.
    key = f"{seed}/{n_trials}/{socket.gethostname()}/{os.getpid()}" if shared else f"{seed}/{n_trials}"
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "little")


def _study(storage, name: str, base: Settings, search: Search, shared: bool, prune: bool):
    """The study, loaded or made; made by this process, it starts with the anchors queued."""
    import optuna

    # Warm-up: high rates learn slower at first, so comparing before half the epochs would prune them unfairly.
    pruner = (
        optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=base.epochs // 2)
        if prune
        else optuna.pruners.NopPruner()
    )
    # The storage holds one study per name, so of workers starting together exactly one makes it and queues
    # the anchors (looking for queued trials first would race).
    try:
        study = optuna.create_study(storage=storage, study_name=name, direction="maximize", pruner=pruner)
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=name, storage=storage, pruner=pruner)
    else:
        for params in anchors(base, search):
            study.enqueue_trial(params)
    seed = _sampler_seed(base.seed, shared, len(study.get_trials(deepcopy=False)))
    study.sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=5)
    defined = {
        "base": {k: v for k, v in base.to_dict().items() if k not in _CHECKED},
        "search": dataclasses.asdict(search),
    }
    defined["base"]["hidden"], defined["base"]["dropout"] = list(base.hidden), list(base.dropout)
    known = study.user_attrs.get("definition")
    if known is None:
        study.set_user_attr("definition", defined)
    else:
        differ = sorted(
            f"{k}={known[part].get(k)!r} (now {v!r})"
            for part in ("base", "search")
            for k, v in defined[part].items()
            if k not in ("dropout", "input_dropout") and known[part].get(k) != v
        )
        if differ:
            raise SettingsError(
                f"study {name!r} in its storage was made with other settings: {', '.join(differ)}; "
                "use the same options to continue it, or another --study (or --out) for a new search"
            )
    return study


def _worker(out: Path) -> str:
    """Who ran a trial: the host and the resolved --out, the identity a repeated command keeps."""
    return f"{socket.gethostname()}:{out.resolve()}"


def _own(trials: list, worker: str | None) -> list:
    """The trials of `worker`; all of them for worker None (a study in its own SQLite file has one worker)."""
    return [t for t in trials if worker is None or t.user_attrs.get("worker") == worker]


def _resume_interrupted(study, worker: str | None) -> None:
    """Queue each of this worker's trials a Ctrl-C stopped (and nothing has continued yet) again, with its folder."""
    import optuna

    trials = study.get_trials(deepcopy=False)
    continued = {t.user_attrs.get("continues") for t in trials}
    for t in _own(trials, worker):
        if t.state == optuna.trial.TrialState.FAIL and t.user_attrs.get("interrupted") and t.number not in continued:
            attrs = {
                "continues": t.number,
                "run_dir": t.user_attrs["run_dir"],
                "earlier_values": dict(t.intermediate_values),
            }
            study.enqueue_trial(t.params, user_attrs=attrs)


def _objective(base: Settings, search: Search, out: Path, progress: train.Progress, prune: bool):
    def objective(trial):
        s = suggest(trial, base, search)
        folder = Path(trial.user_attrs.get("run_dir", out / "trials" / str(trial.number)))
        resume = "continues" in trial.user_attrs and (folder / "config.json").is_file()
        if not resume:
            folder = out / "trials" / str(trial.number)
        for step, value in trial.user_attrs.get("earlier_values", {}).items() if resume else ():
            trial.report(value, int(step))  # the pruner compares this trial's whole curve, before and after Ctrl-C
        trial.set_user_attr("run_dir", str(folder))
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("worker", _worker(out))
        try:
            # A new trial number owns its folder: anything there is left from another study in this --out.
            summary = _train(s, folder, "tune", resume, _TrialProgress(trial, progress, prune, s.epochs))
        except (train.Interrupted, KeyboardInterrupt):  # a second Ctrl-C: the checkpoint of the last epoch stays
            trial.set_user_attr("interrupted", True)
            raise
        r = summary["runs"]["dropout"]
        for key in (
            "best_val_epoch",
            "best_val_acc",
            "test_acc_at_best_val",
            "final_test_acc",
            "epochs_run",
            "wall_seconds",
        ):
            trial.set_user_attr(key, r[key])
        progress.log(
            f"trial {trial.number}: val {100 * r['best_val_acc']:.2f}% at epoch {r['best_val_epoch']} "
            f"(test there {100 * r['test_acc_at_best_val']:.2f}%), {_params_text(trial.params)}"
        )
        return r["best_val_acc"]

    return objective


def _params_text(params: dict) -> str:
    return " ".join(f"{k}={v:.3g}" for k, v in params.items())


def _trial_record(t) -> dict:
    record = {"number": t.number, "state": t.state.name, "params": t.params, "value": t.value}
    record.update(
        {
            k: t.user_attrs.get(k)
            for k in ("best_val_epoch", "test_acc_at_best_val", "final_test_acc", "epochs_run", "run_dir", "host")
        }
    )
    record["continues"] = t.user_attrs.get("continues")
    record["pruned_at_epoch"] = (
        max(t.intermediate_values) if t.state.name == "PRUNED" and t.intermediate_values else None
    )
    record["validation_curve"] = [t.intermediate_values[k] for k in sorted(t.intermediate_values)]
    record["seconds"] = (
        (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete and t.datetime_start else None
    )
    return record


def _settings_of(best, base: Settings, search: Search) -> Settings:
    import optuna

    return suggest(optuna.trial.FixedTrial(best.params), base, search)


def run(
    base: Settings,
    out,
    *,
    trials: int = 20,
    timeout: float | None = None,
    storage: str | None = None,
    study_name: str = "dropkit-tune",
    search: Search = Search(),
    prune: bool = True,
    retrain: bool = True,
    progress: train.Progress | None = None,
) -> dict:
    """Run (or continue) the search until this worker has finished `trials` trials, retrain the best; tune.json.

    Args:
        base: settings of every trial apart from the searched values; needs val_split > 0.
        out: output folder (see the module docstring); created if missing.
        trials: finished (complete or pruned) trials this worker should reach: the trials of its host and
            `out` in a shared `storage`, every trial of the study in the default one.
        timeout: seconds after which this process starts no new trial (None: no limit).
        storage: an Optuna storage URL; None = SQLite in `out`.
        study_name: the study's name in the storage; workers of one search pass the same.
        search: what is searched besides the rates. prune: median pruning on validation accuracy.
        retrain: retrain the best configuration on train+validation and report its test accuracy.
        progress: where training progress goes.

    In a process group (`dropkit tune --nproc N`) every rank calls this: rank 0 alone runs the study and
    sends each trial (and the retrain) to the others, which train it with it (DDP) and return {}.

    Raises:
        SettingsError: bad settings, or a study of that name made with other settings.
        train.Interrupted: Ctrl-C; the study and the trial's checkpoint are saved, the same call continues.

    Examples:
        >>> run(Settings(dataset="digits", epochs=3, val_split=0.1), "runs/tune", trials=4)["best"]["params"]  # doctest: +SKIP
    """
    if importlib.util.find_spec("optuna") is None:
        raise LabError("dropkit tune needs Optuna: pip install 'dropkit[tune]'")
    if base.val_split <= 0:
        raise SettingsError(
            f"--val-split must be above 0 for tuning (rates are chosen on validation), got {base.val_split}"
        )
    if trials < 1:
        raise SettingsError(f"--trials must be at least 1, got {trials}")
    if timeout is not None and timeout <= 0:
        raise SettingsError(f"--timeout must be positive, got {timeout}")
    if not distributed.lead():  # --nproc: rank 0 runs the search, the others train with it
        _follow()
        return {}
    try:
        with runs.lock(out):  # one writer per tune folder (workers of a shared study each have their own --out)
            return _search(
                base,
                Path(out),
                trials,
                timeout,
                storage,
                study_name,
                search,
                prune,
                retrain,
                progress or train.Progress(),
            )
    finally:
        with contextlib.suppress(RuntimeError):  # a rank that is gone already (a crash) needs no word
            distributed.from_rank0(None)  # --nproc: the other ranks stop waiting for runs to train


def _search(
    base: Settings,
    out: Path,
    trials: int,
    timeout,
    storage,
    study_name: str,
    search: Search,
    prune: bool,
    retrain: bool,
    progress: train.Progress,
) -> dict:
    """run() on rank 0 (or the only process): the study, its trials, the retrain, tune.json and the plots."""
    import optuna

    out.mkdir(parents=True, exist_ok=True)
    # One line per trial comes from the objective; Optuna's own would log a Ctrl-C'd trial with a traceback.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    started = time.perf_counter()
    url = storage or f"sqlite:///{(out / 'study.db').resolve()}"
    study = _study(_storage(url), study_name, base, search, storage is not None, prune)
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    # Each worker counts its own trials, as Optuna's n_trials does: a count over the whole study would let
    # two workers that finish together both start the last trial.
    worker = _worker(out) if storage is not None else None
    _resume_interrupted(study, worker)
    remaining = trials - len(_own(study.get_trials(deepcopy=False, states=finished), worker))
    if remaining > 0:
        try:
            study.optimize(_objective(base, search, out, progress, prune), n_trials=remaining, timeout=timeout)
        except KeyboardInterrupt:  # between trials, outside fit's own Ctrl-C handling: nothing to save
            raise train.Interrupted("interrupted between trials; the study is saved") from None
    result = _result(study, base, search, url, trials)
    result["final"] = _final(study, base, search, out, retrain, progress)
    result["wall_seconds"] = time.perf_counter() - started
    report.write_json(out / "tune.json", result)
    plot_history(result, out / "tune_history.png")
    plot_rates(result, out / "tune_rates.png")
    return result


def _result(study, base: Settings, search: Search, url: str, trials: int) -> dict:
    # A WAITING trial (an anchor the --trials count left unrun) has not run: it is no trial of the result.
    records = [_trial_record(t) for t in study.get_trials(deepcopy=False) if t.state.name != "WAITING"]
    complete = [r for r in records if r["state"] == "COMPLETE"]
    best = None
    if complete:
        b = study.best_trial
        best = {
            "number": b.number,
            "params": b.params,
            "val_acc": b.value,
            **{k: b.user_attrs.get(k) for k in ("best_val_epoch", "test_acc_at_best_val", "run_dir")},
        }
    return {
        "study": study.study_name,
        "storage": _shown_url(url),
        "objective": "validation accuracy at the epoch validation selects (maximised)",
        "trials_wanted": trials,
        "settings": {**base.to_dict(), "dropout": None, "input_dropout": None},
        "search": dataclasses.asdict(search),
        "counts": {
            state: sum(r["state"] == state for r in records) for state in ("COMPLETE", "PRUNED", "FAIL", "RUNNING")
        },
        "trials": records,
        "best": best,
    }


def _final(study, base: Settings, search: Search, out: Path, retrain: bool, progress: train.Progress) -> dict:
    """Retrain the best trial's configuration on train+validation and report its test accuracy, or say why not."""
    import optuna

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        return {"retrained": False, "reason": "no trial has completed yet", "test_acc": None}
    best = study.best_trial
    fallback = {
        "retrained": False,
        "test_acc": best.user_attrs["test_acc_at_best_val"],
        "trial": best.number,
        "test_acc_is": "the best trial's test accuracy at its best validation epoch (trained without the validation part)",
    }
    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    if not retrain:
        return {**fallback, "reason": "--no-retrain"}
    if running:
        return {
            **fallback,
            "reason": f"{len(running)} trial(s) of the study still run on other workers; the same command retrains once they end",
        }
    s = dataclasses.replace(_settings_of(best, base, search), val_split=0.0)
    folder = out / f"final-{best.number}"
    resume = (folder / "config.json").is_file()  # a retrain Ctrl-C stopped (or one already done) continues
    progress.log(f"retraining trial {best.number} on train+validation ({s.epochs} epochs): {_params_text(best.params)}")
    summary = _train(s, folder, "tune-final", resume, progress)
    r = summary["runs"]["dropout"]
    return {
        "retrained": True,
        "trial": best.number,
        "run_dir": str(folder),
        "epochs": r["epochs_run"],
        "test_acc": r["final_test_acc"],
        "test_acc_is": "the last epoch's test accuracy of the retrain on train+validation: measured once, chose nothing",
    }


def table(result: dict, top: int = 10):
    """A rich Table of the best `top` complete trials and the final figure.

    Examples:
        >>> rich.print(table(json.load(open("runs/tune/tune.json"))))  # doctest: +SKIP
    """
    from rich import box
    from rich.table import Table

    c = result["counts"]
    title = f"{result['study']}: {c['COMPLETE']} complete, {c['PRUNED']} pruned, {c['FAIL']} failed trials (best {top} by validation)"
    t = Table(title=title, box=box.SIMPLE, pad_edge=False, collapse_padding=True)
    names = sorted({k for r in result["trials"] for k in r["params"]})
    for column in ("trial", *names, "val", "epoch", "test@val"):
        t.add_column(column, justify="right", no_wrap=True)
    complete = sorted((r for r in result["trials"] if r["state"] == "COMPLETE"), key=lambda r: -r["value"])
    for r in complete[:top]:
        t.add_row(
            str(r["number"]),
            *(f"{r['params'][n]:.3g}" if n in r["params"] else "-" for n in names),
            f"{100 * r['value']:.2f}%",
            str(r["best_val_epoch"]),
            f"{100 * r['test_acc_at_best_val']:.2f}%",
        )
    final = result["final"]
    if final["test_acc"] is not None:
        how = "retrained on train+validation" if final["retrained"] else f"not retrained: {final['reason']}"
        t.caption = f"test accuracy of trial {final['trial']}'s configuration, {how}: {100 * final['test_acc']:.2f}%"
    else:
        t.caption = f"no test figure: {final['reason']}"
    return t


def plot_history(result: dict, path) -> None:
    """tune_history.png: each finished trial's validation accuracy (pruned ones at their last epoch) and the best so far."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    for state, marker in (("COMPLETE", "o"), ("PRUNED", "x")):
        points = [
            (r["number"], 100 * r["validation_curve"][-1])
            for r in result["trials"]
            if r["state"] == state and r["validation_curve"]
        ]
        if points:
            ax.scatter(*zip(*points), marker=marker, label=state.lower())
    complete = sorted((r["number"], 100 * r["value"]) for r in result["trials"] if r["state"] == "COMPLETE")
    if complete:
        best, running = [], 0.0
        for _, v in complete:
            running = max(running, v)
            best.append(running)
        ax.step([n for n, _ in complete], best, where="post", color="k", label="best so far")
    ax.set(xlabel="trial", ylabel="validation accuracy (%)", title=f"{result['study']}: optimisation history")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    report.save_figure(fig, path, dpi=120, bbox_inches="tight")


def plot_rates(result: dict, path) -> None:
    """tune_rates.png: test error at the best validation epoch against each searched rate, coloured by trial number."""
    from matplotlib.figure import Figure

    complete = [r for r in result["trials"] if r["state"] == "COMPLETE"]
    names = sorted({k for r in complete for k in r["params"] if "dropout" in k})
    fig = Figure(figsize=(4.2 * max(len(names), 1), 3.8))
    axes = fig.subplots(1, max(len(names), 1), squeeze=False, sharey=True)[0]
    last = max((r["number"] for r in result["trials"]), default=0)
    for ax, name in zip(axes, names):
        points = ax.scatter(
            [r["params"][name] for r in complete],
            [100 * (1 - r["test_acc_at_best_val"]) for r in complete],
            c=[r["number"] for r in complete],
            cmap="viridis",
            vmin=0,
            vmax=max(last, 1),
        )
        ax.set(xlabel=name)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test error at best val epoch (%)")
    if names:
        fig.colorbar(points, ax=list(axes), label="trial")
    fig.suptitle(f"{result['study']}: test error vs rate (shown, never used to choose)")
    report.save_figure(fig, path, dpi=120, bbox_inches="tight")
