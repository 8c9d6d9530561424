"""dropkit.lab.runs and resume semantics: the run folder's writer lock, and what --resume accepts or refuses."""

import dataclasses
import multiprocessing
import os
import re
import signal
import time

import pytest

from dropkit.lab import runs, train
from dropkit.lab.errors import DataError, RunFolderError, SettingsError
from dropkit.lab.settings import Settings, resume_runs

TINY = Settings(dataset="digits", hidden=(16,), dropout=(0.5,), epochs=1, batch_size=200, lr=0.1)


def _hold(out, ready):
    with runs.lock(out):
        ready.set()
        time.sleep(60)


@pytest.fixture
def holder(tmp_path):
    """Another process holding the lock of tmp_path/run until the test ends, when it is killed."""
    context = multiprocessing.get_context("fork")  # the child needs nothing but this module's lock()
    ready = context.Event()
    process = context.Process(target=_hold, args=(tmp_path / "run", ready))
    process.start()
    assert ready.wait(30), "the holder never took the lock"
    yield process
    process.kill()
    process.join(30)


def test_a_second_writer_is_stopped_with_the_holders_pid(tmp_path, holder):
    out = tmp_path / "run"
    message = f"^run folder {re.escape(str(out))} is being written by process {holder.pid} \\(.*\\); wait for it to end or stop it, or use another --out$"
    with pytest.raises(RunFolderError, match=message):
        train.run_experiment({"dropout": TINY}, out)
    (out / "config.json").write_text("{}")  # a resume is refused as well, before it reads anything
    with pytest.raises(RunFolderError, match=message):
        train.run_experiment({"dropout": TINY}, out, resume=True)


def test_reports_wait_for_the_writer_of_their_run_folder(tmp_path, holder):
    from dropkit.lab import analyze, uncertainty

    out = tmp_path / "run"
    train.run_experiment({"dropout": dataclasses.replace(TINY, val_split=0.1)}, tmp_path / "done")
    for f in (tmp_path / "done").iterdir():  # a finished run, now in the folder the holder writes
        f.rename(out / f.name)
    message = f"^run folder {re.escape(str(out))} is being written by process {holder.pid} \\(.*\\); wait for it to end or stop it$"
    with pytest.raises(RunFolderError, match=message):
        analyze.run(out, repeats=1)
    with pytest.raises(RunFolderError, match=message):
        uncertainty.run(out, samples=(1,))
    assert not any((out / name).exists() for name in ("coadaptation.json", "uncertainty.json"))


def test_overwrite_never_deletes_a_folder_being_written(tmp_path, holder):
    out = tmp_path / "run"
    (out / "metrics.jsonl").write_text("the other process's\n")
    with pytest.raises(RunFolderError, match=f"is being written by process {holder.pid}"):
        train.run_experiment({"dropout": TINY}, out, overwrite=True)
    assert (out / "metrics.jsonl").read_text() == "the other process's\n"


def test_the_lock_is_released_on_exit_and_by_a_crash(tmp_path, holder):
    out = tmp_path / "run"
    os.kill(holder.pid, signal.SIGKILL)  # no cleanup runs: the kernel drops the flock
    holder.join(30)
    assert (out / runs.LOCK).exists()  # the stale file stays, and does not count as a lock
    train.run_experiment({"dropout": TINY}, out)
    assert not (out / runs.LOCK).exists()  # a normal exit removes it


def test_a_live_lock_stops_active_learning_too_and_a_stale_one_does_not(tmp_path, holder):
    from dropkit.lab import active

    out = tmp_path / "run"
    settings = active.ActiveSettings(
        dataset="digits", strategies=("random",), initial=2, acquire=5, budget=25, pool=200, steps=5
    )
    message = f"^run folder {re.escape(str(out))} is being written by process {holder.pid} \\(.*\\); wait for it to end or stop it, or use another --out$"
    with pytest.raises(RunFolderError, match=message):
        active.run(out, settings)
    assert not (out / "active.json").exists()
    os.kill(holder.pid, signal.SIGKILL)
    holder.join(30)
    assert (out / runs.LOCK).read_text().startswith(f"process {holder.pid} (")  # stale: its holder is dead
    assert active.run(out, settings)["runs"]["random/0"]["done"]
    assert not (out / runs.LOCK).exists()


def test_a_start_refused_for_its_data_leaves_nothing_and_the_next_run_starts(tmp_path):
    from dropkit.lab import active

    out = tmp_path / "runs" / "train"
    missing = dataclasses.replace(TINY, dataset="fashion-mnist", data_dir=str(tmp_path / "nonexistent"))
    for start in (
        lambda: train.run_experiment({"dropout": missing}, out),
        lambda: active.run(out, active.ActiveSettings(dataset="mnist", data_dir=str(tmp_path / "nonexistent"))),
    ):
        with pytest.raises(DataError, match="data directory not found"):
            start()
        assert not out.exists()
    train.run_experiment({"dropout": TINY}, out)
    assert (out / "config.json").is_file()


def test_what_an_older_failed_start_left_does_not_block_the_next_run(tmp_path):
    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)  # what dropkit train --data-dir /nonexistent left before
    (out / runs.LOCK).write_text("process 1 (dropkit train)")  # and a stale lock file, no flock on it
    with pytest.raises(RunFolderError, match="nothing to resume"):
        train.run_experiment({"dropout": TINY}, out, resume=True)
    train.run_experiment({"dropout": TINY}, out)
    assert (out / "config.json").is_file()
    mine = tmp_path / "mine"  # a folder with anything else in it is still refused
    (mine / "checkpoints").mkdir(parents=True)
    (mine / "notes.txt").write_text("my notes")
    with pytest.raises(RunFolderError, match="is not empty"):
        train.run_experiment({"dropout": TINY}, mine)


def test_a_file_in_place_of_the_folder_is_refused_by_every_writer(tmp_path):
    path = tmp_path / "run"
    path.write_text("not a folder")
    with pytest.raises(RunFolderError, match=f"^run folder {re.escape(str(path))} is a file$"):
        with runs.lock(path):
            pass


def test_the_lock_is_reentrant_in_one_process(tmp_path):
    out = tmp_path / "run"
    with runs.lock(out):  # e.g. rank 0 of a torchrun job, around its own run_experiment
        with runs.lock(out):
            assert (out / runs.LOCK).read_text().startswith(f"process {os.getpid()} (")
        assert (out / runs.LOCK).exists()
        train.run_experiment({"dropout": TINY}, out)
    assert not (out / runs.LOCK).exists()


# Resume: one test per class of option (settings.RESUMABLE, SAFE_ON_RESUME, and the rest).


def test_resume_refuses_options_that_change_the_model_or_data():
    saved = {"dropout": TINY}
    for option, value, old, new in [
        ("hidden", (64, 32), "16", "64 32"),
        ("dropout", (0.2,), "0.5", "0.2"),
        ("dataset", "mnist", "digits", "mnist"),
        ("batch_size", 100, "200", "100"),
        ("seed", 3, "0", "3"),
        ("optimizer", "adam", "sgd", "adam"),
    ]:
        asked = {"dropout": dataclasses.replace(TINY, **{option: value})}
        flag = "--" + option.replace("_", "-")
        with pytest.raises(
            SettingsError,
            match=f"^{flag} cannot change on --resume: run 'dropout' has {old}, given {new}; "
            "start a new run folder \\(another --out\\) for a different run$",
        ):
            resume_runs(saved, asked, [option])
    same = {"dropout": dataclasses.replace(TINY)}
    assert resume_runs(saved, same, ["hidden", "dropout"]) == saved  # given again, unchanged: accepted
    with pytest.raises(
        SettingsError,
        match="^--dropout cannot change on --resume: the run folder has runs dropout, "
        "the options given make no_dropout; ",
    ):
        resume_runs(saved, {"no_dropout": dataclasses.replace(TINY, dropout=(0.0,))}, ["dropout"])


def test_resume_takes_the_schedule_options_and_the_safe_ones():
    saved = {"dropout": TINY, "no_dropout": dataclasses.replace(TINY, dropout=(0.0,))}
    asked = {
        "dropout": dataclasses.replace(TINY, epochs=4, lr=0.01, max_norm=3.0, time_budget=60.0, threads=1, hidden=(99,))
    }
    out = resume_runs(saved, asked, ["epochs", "lr", "max_norm", "time_budget", "threads"])
    for name, s in out.items():  # every run takes them; what was not given (hidden) stays the run's own
        assert (s.epochs, s.lr, s.max_norm, s.time_budget, s.threads, s.hidden) == (4, 0.01, 3.0, 60.0, 1, (16,)), name
    assert out["no_dropout"].dropout == (0.0,)
    assert resume_runs(saved, asked, []) == saved  # nothing given: the folder's settings


def test_resume_with_more_epochs_continues_exactly_with_a_constant_schedule(tmp_path):
    """With a constant LR, training 2 epochs and resuming to 4 is the 4-epoch run, to the bit (same ops, same order)."""
    s = dataclasses.replace(TINY, schedule="constant", epochs=2)
    train.run_experiment({"dropout": s}, tmp_path / "short")
    longer = train.run_experiment(
        {"dropout": dataclasses.replace(s, epochs=4)}, tmp_path / "short", resume=True, given=["epochs"]
    )
    whole = train.run_experiment({"dropout": dataclasses.replace(s, epochs=4)}, tmp_path / "whole")
    assert longer["runs"]["dropout"]["epochs_run"] == 4
    assert longer["runs"]["dropout"]["final_test_acc"] == whole["runs"]["dropout"]["final_test_acc"]
    a = runs.read_checkpoint(runs.checkpoint_path(tmp_path / "short", "dropout"))["model"]
    b = runs.read_checkpoint(runs.checkpoint_path(tmp_path / "whole", "dropout"))["model"]
    assert all(a[k].equal(b[k]) for k in b)
    assert runs.read_config(tmp_path / "short")["resumed_with"] == [{"epochs": [2, 4]}]
    with pytest.raises(SettingsError, match="^--epochs 3 is fewer than the 4 epochs run 'dropout' has trained$"):
        train.run_experiment(
            {"dropout": dataclasses.replace(s, epochs=3)}, tmp_path / "short", resume=True, given=["epochs"]
        )


def test_resume_refuses_another_command(tmp_path):
    train.run_experiment({"dropout": TINY}, tmp_path / "r", command="demo")
    with pytest.raises(RunFolderError, match="holds a dropkit demo run; resume it with dropkit demo --resume$"):
        train.run_experiment({"dropout": TINY}, tmp_path / "r", command="train", resume=True)
