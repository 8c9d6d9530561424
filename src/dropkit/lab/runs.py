"""The run folder: its layout, how it is prepared, checkpoints read and written, and load_model.

Run folder layout:
    config.json          settings of every run, data set, versions
    metrics.jsonl        one line per epoch per run
    summary.json         the result (see report.summarize)
    curves.png           accuracy and loss per epoch
    sweep.json, sweep.png  `dropkit sweep`'s result
    checkpoints/<run>.pt model, optimizer, RNG and dropout-schedule state and history, rewritten atomically
    .lock                the writer's lock, naming it (pid, command), while a process writes the folder
    uncertainty.json, reliability.png, uncertainty_hist.png, mc_samples.png  `dropkit uncertainty`'s report
    coadaptation.json, coadaptation.png, features.png, activations.png  `dropkit analyze`'s report

Examples:
    >>> model, settings = load_model("runs/demo", "dropout")  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from .._atomic import write_atomic
from . import models
from .errors import RunFolderError
from .settings import Settings, build_model

__all__ = [
    "RunFolderError",
    "CONFIG",
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_KEYS",
    "UNCERTAINTY_FILES",
    "ANALYZE_FILES",
    "RUN_FILES",
    "checkpoint_path",
    "read_config",
    "check",
    "prepare",
    "LOCK",
    "lock",
    "read_checkpoint",
    "restore",
    "load_schedules",
    "write_checkpoint",
    "load_model",
]

CONFIG = "config.json"
LOCK = ".lock"  # held by the process writing the folder (lock)
CHECKPOINT_FORMAT = 1  # checkpoint format version
CHECKPOINT_KEYS = ("model", "optimizer", "rng", "epoch", "step", "history", "elapsed", "done", "stopped")
UNCERTAINTY_FILES = ("uncertainty.json", "reliability.png", "uncertainty_hist.png", "mc_samples.png", "ood_hist.png")
ANALYZE_FILES = ("coadaptation.json", "coadaptation.png", "features.png", "activations.png")
# Every file the lab writes into a run folder: a run's own, and the reports made from it (uncertainty, analyze).
RUN_FILES = (
    (CONFIG, "metrics.jsonl", "summary.json", "curves.png", "sweep.json", "sweep.png", "checkpoints")
    + UNCERTAINTY_FILES
    + ANALYZE_FILES
)


def checkpoint_path(run_dir, run_name: str) -> Path:
    """Where run `run_name` of the run folder `run_dir` keeps its checkpoint.

    Examples:
        >>> checkpoint_path("runs/demo", "dropout")
        PosixPath('runs/demo/checkpoints/dropout.pt')
    """
    return Path(run_dir) / "checkpoints" / f"{run_name}.pt"


def read_config(run_dir) -> dict:
    """The run folder's config.json as a dict (its "runs" hold each run's settings)."""
    return json.loads((Path(run_dir) / CONFIG).read_text())


def check(out: Path, resume: bool, overwrite: bool) -> None:
    """The refusals that need no lock and write nothing: both flags, a file in the way, nothing to resume."""
    if resume and overwrite:
        raise RunFolderError("--resume and --overwrite exclude each other")
    if resume:
        if not (out / CONFIG).is_file():
            raise RunFolderError(f"nothing to resume in {out}: no config.json")
    elif out.exists() and not out.is_dir():
        raise RunFolderError(f"run folder {out} is a file")


def prepare(out: Path, resume: bool, overwrite: bool) -> None:
    """Make `out` ready for a new run, or check that it holds one to resume; RunFolderError otherwise.

    Call it holding the folder's lock: --overwrite then never removes files another process is writing.
    """
    check(out, resume, overwrite)
    if not resume and out.is_dir() and not _only_leftovers(out):
        if not overwrite:
            raise RunFolderError(
                f"run folder {out} is not empty; pass --resume to continue it or --overwrite to replace it"
            )
        # Remove only what the lab writes: --overwrite on the wrong folder must not wipe a user's files,
        # and a report made from the replaced run (uncertainty.json ...) would describe a model that is gone.
        for entry in RUN_FILES:
            path = out / entry
            if path.is_dir():
                for f in path.iterdir():
                    f.unlink()
                path.rmdir()
            elif path.exists():
                path.unlink()
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)


def _only_leftovers(out: Path) -> bool:
    """Whether `out` holds nothing but what a start that failed before writing can leave: the lock file
    (stale after a SIGKILL) and an empty checkpoints/ (dropkit 0.x made it before loading the data)."""
    return all(
        entry.name == LOCK or (entry.name == "checkpoints" and entry.is_dir() and not any(entry.iterdir()))
        for entry in out.iterdir()
    )


_held: dict[Path, int] = {}  # lock files this process holds, with how many nested lock() calls hold each


@contextlib.contextmanager
def lock(run_dir, *, hint: str = ", or use another --out") -> Iterator[Path]:
    """Hold the run folder's exclusive writer lock while the block runs (the folder is created if missing).

    The lock is an fcntl.flock on `run_dir/.lock`, which names its holder (pid and command).
    The kernel releases it when the holder exits in any way, SIGKILL included, so a crashed
    run never leaves a folder locked (its stale file is taken over); on a normal exit the file
    is removed, and so is the folder if this call created it and nothing was written there
    (a start refused for bad data leaves no trace). Nested calls in one process share one
    lock. With several processes per run (torchrun), rank 0 holds it.
    `hint` ends the refusal (readers of a finished run, which write reports beside it, pass "").

    Raises:
        RunFolderError: another process holds it; the message names that process.

    Examples:
        >>> with lock("runs/demo"):  # doctest: +SKIP
        ...     write_checkpoint(checkpoint_path("runs/demo", "dropout"), state)
    """
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise RunFolderError(f"run folder {run_dir} is a file")
    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir.resolve() / LOCK
    if path in _held:
        _held[path] += 1
        try:
            yield run_dir
        finally:
            _held[path] -= 1
        return
    fd = _acquire(path, run_dir, hint)
    _held[path] = 1
    try:
        yield run_dir
    finally:
        del _held[path]
        path.unlink(missing_ok=True)  # while still locked: a process that opened this file retries on a new one
        if created:
            with contextlib.suppress(OSError):  # not empty (the normal case), or taken by another process already
                run_dir.rmdir()
        os.close(fd)


def _acquire(path: Path, run_dir: Path, hint: str) -> int:
    while True:
        run_dir.mkdir(parents=True, exist_ok=True)  # again: a holder that created it removes it if it stayed empty
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 400, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise RunFolderError(
                f"run folder {run_dir} is being written by {holder}; wait for it to end or stop it{hint}"
            ) from None
        # The holder removes the file as it lets go: if that happened between our open and our flock,
        # we locked a file nobody else will see. Lock the file that is there now instead.
        try:
            current = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            current = False
        if current:
            break
        os.close(fd)
    command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv and sys.argv[0] else "python"
    command = " ".join(command.split())  # one line
    holder = f"process {os.getpid()} ({command if len(command) <= 200 else command[:197] + '...'})"
    os.ftruncate(fd, 0)
    os.pwrite(fd, holder.encode(), 0)
    return fd


def _reason(e: BaseException) -> str:
    """An exception's message as one line (its first sentence), or its type's name when it has none."""
    lines = str(e).strip().splitlines()
    return lines[0].split(". ")[0] if lines else type(e).__name__


def read_checkpoint(path: Path, keys: tuple[str, ...] = CHECKPOINT_KEYS) -> dict:
    """The checkpoint dict at `path`; RunFolderError naming the file and the reason if it cannot be read."""
    try:
        saved = torch.load(path, weights_only=False)
    except (
        Exception
    ) as e:  # truncated or corrupt files raise RuntimeError, EOFError, UnpicklingError ... by where they break
        raise RunFolderError(f"checkpoint {path} cannot be read (truncated or corrupt?): {_reason(e)}") from None
    missing = [k for k in keys if k not in saved] if isinstance(saved, dict) else list(keys)
    if missing:
        raise RunFolderError(f"checkpoint {path} is not a dropkit run checkpoint: it lacks {', '.join(missing)}")
    return saved


def restore(path: Path, what: str, load: Callable[[], None]) -> None:
    """Run `load` (a load_state_dict); RunFolderError in one line if the checkpoint does not fit the run."""
    try:
        load()
    except (RuntimeError, ValueError, TypeError, KeyError) as e:
        reason = " ".join(str(e).split()) or type(e).__name__  # load_state_dict lists the keys on further lines
        reason = reason if len(reason) <= 200 else reason[:197] + "..."
        raise RunFolderError(f"checkpoint {path}: its {what} does not fit the run's settings: {reason}") from None


def load_schedules(schedules: list, saved: dict) -> None:
    """Set each dropout layer's schedule (and so its rate) to where the checkpoint left it."""
    states = saved.get("dropout_schedules")
    if states is None:  # written before dropout schedules existed: those runs were constant, nothing to restore
        return
    for schedule, state in zip(schedules, states, strict=True):
        schedule.load_state_dict(state)


def write_checkpoint(path: Path, checkpoint: dict) -> None:
    """Save a checkpoint dict atomically, with torch's RNG state as it is now (so a resume draws the same masks)."""
    write_atomic(path, lambda tmp: torch.save({**checkpoint, "rng": torch.get_rng_state()}, tmp))


def load_model(run_dir, run_name: str = "dropout") -> tuple[torch.nn.Sequential, Settings]:
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
    if not (run_dir / CONFIG).is_file():
        raise RunFolderError(f"{run_dir} is not a run folder: no config.json")
    config = read_config(run_dir)
    if run_name not in config["runs"]:
        raise RunFolderError(f"{run_dir} has no run {run_name!r}; its runs: {', '.join(config['runs'])}")
    checkpoint = checkpoint_path(run_dir, run_name)
    if not checkpoint.is_file():
        raise RunFolderError(f"run {run_name!r} of {run_dir} has no checkpoint yet: {checkpoint}")
    settings = Settings.from_dict(config["runs"][run_name])
    saved = read_checkpoint(checkpoint, ("model",))
    # n_train only sets concrete dropout's regularisers, which inference does not use (1 for checkpoints without it)
    model = build_model(settings, config["n_features"], config["n_classes"], saved.get("n_train", 1))
    restore(checkpoint, "model", lambda: model.load_state_dict(saved["model"]))
    # The rates the run ended with (an early-dropout run ends at 0), so MC dropout samples the trained model;
    # concrete dropout's learned rates are in the model's state.
    schedules = models.schedule_dropout(model, settings.dropout_schedule)
    restore(checkpoint, "dropout schedule state", lambda: load_schedules(schedules, saved))
    return model.eval(), settings
