"""dropkit.lab.train: learning, determinism, exact resume after Ctrl-C, run folders, reports."""

import dataclasses
import json
import math
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from _helpers.sigint import InterruptAt

import dropkit
from dropkit.lab import data, models, report, train
from dropkit.lab import uncertainty as U
from dropkit.lab.errors import Diverged, Interrupted, RunFolderError, SettingsError
from dropkit.lab.runs import LOCK, load_model
from dropkit.lab.settings import Settings, demo_runs, parse_duration, sweep_runs


@pytest.fixture(scope="module")
def digits():
    return data.load("digits")


@pytest.fixture(scope="module")
def small(digits):
    """600 training images of digits: enough to learn, quick to train."""
    return dataclasses.replace(digits, x_train=digits.x_train[:600], y_train=digits.y_train[:600])


TINY = Settings(dataset="digits", hidden=(64, 32), dropout=(0.5, 0.3), epochs=2, batch_size=50, lr=0.1)
EARLY = dataclasses.replace(TINY, dropout_schedule="early:1")  # dropout in epoch 1 only: the schedule's state matters
CONCRETE = dataclasses.replace(TINY, dropout_type="concrete", input_dropout=0.2)  # learned rates: parameters carry them


def test_a_short_run_learns(small, tmp_path):
    s = dataclasses.replace(TINY, epochs=4)
    state = train.fit(s, small, tmp_path / "run.pt")
    h = state["history"]
    assert [r["epoch"] for r in h] == [1, 2, 3, 4]
    assert h[-1]["train_loss"] < h[0]["train_loss"] < 2.31  # ln(10): a net that guesses
    assert h[-1]["test_acc"] > 0.8, "10 classes: chance is 0.1"
    assert state["done"] and state["stopped"] == "epochs"


def test_same_settings_same_numbers(small, tmp_path):
    a = train.fit(TINY, small, tmp_path / "a.pt")
    b = train.fit(TINY, small, tmp_path / "b.pt")
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert [r["test_loss"] for r in a["history"]] == [r["test_loss"] for r in b["history"]]
    c = train.fit(dataclasses.replace(TINY, seed=1), small, tmp_path / "c.pt")
    assert not torch.equal(a["model"]["0.weight"], c["model"]["0.weight"])


@pytest.mark.parametrize("s", [TINY, EARLY, CONCRETE], ids=["constant", "early-dropout", "concrete"])
@pytest.mark.parametrize("at", [5, 12, 19], ids=["mid-epoch-1", "end-of-epoch-1", "mid-epoch-2"])
def test_interrupted_and_resumed_run_ends_with_the_same_weights(small, tmp_path, at, s):
    # 600 / 50 = 12 steps per epoch; dropout, momentum, the cosine and the dropout schedules all carry state.
    whole = train.fit(s, small, tmp_path / "whole.pt")
    with pytest.raises(Interrupted, match="interrupted: run 'r' saved"):
        train.fit(s, small, tmp_path / "cut.pt", name="r", progress=InterruptAt(at))
    saved = torch.load(tmp_path / "cut.pt", weights_only=False)
    assert not saved["done"] and (saved["epoch"], saved["step"]) in {(0, at), (1, at - 12), (1, 0)}
    assert [d["last_step"] for d in saved["dropout_schedules"]] == [saved["epoch"]] * (1 if s is CONCRETE else 2)
    resumed = train.fit(s, small, tmp_path / "cut.pt")
    assert resumed["done"]
    for key, value in whole["model"].items():
        assert torch.equal(resumed["model"][key], value), key
    assert [r["test_acc"] for r in resumed["history"]] == [r["test_acc"] for r in whole["history"]]


def _resume_after_tampering(settings, small, tmp_path, step, tamper):
    """Train whole; train again cut at `step`, tamper with the checkpoint, resume; return both results."""
    whole = train.fit(settings, small, tmp_path / "whole.pt")
    with pytest.raises(Interrupted):
        train.fit(settings, small, tmp_path / "cut.pt", progress=InterruptAt(step))
    saved = torch.load(tmp_path / "cut.pt", weights_only=False)
    tamper(saved)
    torch.save(saved, tmp_path / "cut.pt")
    return whole, train.fit(settings, small, tmp_path / "cut.pt")


def test_resume_without_the_rng_state_would_differ(small, tmp_path):
    """Guards the resume test: dropout masks really depend on the saved RNG state."""

    def tamper(saved):
        saved["rng"] = torch.manual_seed(12345).get_state()

    whole, resumed = _resume_after_tampering(TINY, small, tmp_path, 5, tamper)
    assert not torch.equal(resumed["model"]["0.weight"], whole["model"]["0.weight"])


def test_resume_without_the_dropout_schedule_state_would_differ(small, tmp_path):
    """Guards the resume test: a resumed early-dropout run must not start its schedule over."""

    def tamper(saved):
        saved["dropout_schedules"] = [{**d, "last_step": 0} for d in saved["dropout_schedules"]]

    whole, resumed = _resume_after_tampering(EARLY, small, tmp_path, 19, tamper)
    assert not torch.equal(resumed["model"]["0.weight"], whole["model"]["0.weight"])


def test_resume_without_the_learned_rates_would_differ(small, tmp_path):
    """Guards the concrete resume test: the learned rates (p_logit) are state that resume must restore."""

    def tamper(saved):
        keys = [k for k in saved["model"] if k.endswith("p_logit")]
        assert keys == ["3.p_logit", "5.p_logit"]
        for k in keys:
            saved["model"][k] = torch.zeros(())

    whole, resumed = _resume_after_tampering(CONCRETE, small, tmp_path, 19, tamper)
    assert not torch.equal(resumed["model"]["1.weight"], whole["model"]["1.weight"])


def test_a_concrete_run_learns_its_rates(small, tmp_path, monkeypatch):
    regularisers = []
    original = dropkit.nn.ConcreteDropout.regularization

    def recorded(self):
        regularisers.append(original(self))
        return regularisers[-1]

    monkeypatch.setattr(dropkit.nn.ConcreteDropout, "regularization", recorded)
    s = dataclasses.replace(TINY, dropout_type="concrete", epochs=4)
    state = train.fit(s, small, tmp_path / "c.pt")
    h = state["history"]
    assert h[-1]["train_loss"] < h[0]["train_loss"] < 2.31  # ln(10): a net that guesses
    assert h[-1]["test_acc"] > 0.8, "10 classes: chance is 0.1"
    # each step adds both layers' regularisers to the loss, differentiably: 4 epochs x 12 steps x 2 layers
    assert len(regularisers) == 96 and all(r.requires_grad and r.dim() == 0 for r in regularisers)
    rates = [r["dropout_rates"] for r in h]
    learned = [float(torch.sigmoid(state["model"][k])) for k in ("2.p_logit", "4.p_logit")]
    assert rates[-1] == learned  # the record is the rates the epoch left, which the checkpoint holds
    for layer, initial in enumerate((0.5, 0.3)):
        assert abs(rates[-1][layer] - initial) > 0.05, rates  # learned, not held
        assert len({r[layer] for r in rates}) == len(rates), rates  # and still moving every epoch


def test_dropout_schedule_and_type_drive_the_run(small, tmp_path):
    s = dataclasses.replace(EARLY, dropout_type="gaussian", input_dropout=0.2)
    state = train.fit(s, small, tmp_path / "g.pt")
    assert [r["dropout_rates"] for r in state["history"]] == [[0.2, 0.5, 0.3], [0.0, 0.0, 0.0]]
    plain = train.fit(dataclasses.replace(s, dropout_type="dropout"), small, tmp_path / "p.pt")
    assert not torch.equal(state["model"]["1.weight"], plain["model"]["1.weight"])
    assert [r["dropout_rates"] for r in train.fit(TINY, small, tmp_path / "c.pt")["history"]] == [[0.5, 0.3]] * 2


def test_time_budget_stops_after_the_epoch_that_crosses_it(small, tmp_path):
    state = train.fit(dataclasses.replace(TINY, epochs=5, time_budget=1e-6), small, tmp_path / "t.pt")
    assert len(state["history"]) == 1 and state["done"] and state["stopped"] == "time budget"


def test_max_norm_and_penalties_train(small, tmp_path):
    s = dataclasses.replace(
        TINY, max_norm=0.5, l1=1e-4, l2=1e-3, optimizer="adam", lr=None, schedule="step", val_split=0.2
    )
    state = train.fit(s, small, tmp_path / "m.pt")
    for key in ("0.weight", "3.weight", "6.weight"):
        assert (state["model"][key].norm(dim=1) <= 0.5 + 1e-5).all(), key
    assert "val_acc" in state["history"][-1]


def test_run_experiment_writes_the_run_folder(tmp_path):
    runs = demo_runs(dataclasses.replace(TINY, epochs=2))
    summary = train.run_experiment(runs, tmp_path / "demo", command="demo")
    assert set(os.listdir(tmp_path / "demo")) == {
        "config.json",
        "metrics.jsonl",
        "summary.json",
        "curves.png",
        "checkpoints",
    }
    assert summary == json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert summary["dataset"] == "digits" and summary["epochs"] == 2
    assert list(summary["runs"]) == ["dropout", "no_dropout", "l2"]
    r = summary["runs"]["dropout"]
    assert r["dropout"] == [0.5, 0.3] and summary["runs"]["no_dropout"]["dropout"] is None
    assert "learned_dropout" not in r  # concrete runs only
    assert r["gap"] == pytest.approx(r["final_train_acc"] - r["final_test_acc"])
    assert r["best_test_acc"] >= r["final_test_acc"] and r["wall_seconds"] > 0
    lines = [json.loads(l) for l in (tmp_path / "demo" / "metrics.jsonl").read_text().splitlines()]
    assert [(l["run"], l["epoch"]) for l in lines] == [(n, e) for n in ("dropout", "no_dropout", "l2") for e in (1, 2)]
    config = json.loads((tmp_path / "demo" / "config.json").read_text())
    assert config["runs"]["l2"]["l2"] == 5e-4 and config["runs"]["no_dropout"]["dropout"] == [0.0, 0.0]
    assert (tmp_path / "demo" / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_twins_share_initial_weights_and_batches(small, tmp_path):
    """With every rate 0, the dropout twin is the no-dropout twin: same start, same batches, same result."""
    runs = demo_runs(dataclasses.replace(TINY, dropout=(0.0,), epochs=1))
    summary = train.run_experiment(runs, tmp_path / "twins")
    assert summary["runs"]["dropout"]["final_test_acc"] == summary["runs"]["no_dropout"]["final_test_acc"]


def test_run_folder_is_never_overwritten_silently(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    s = {"dropout": dataclasses.replace(TINY, epochs=1)}
    with pytest.raises(
        RunFolderError,
        match=f"run folder {out} is not empty; pass --resume to continue it or --overwrite to replace it",
    ):
        train.run_experiment(s, out)
    train.run_experiment(s, out, overwrite=True)
    assert (out / "notes.txt").read_text() == "mine"  # --overwrite removes only what a run writes
    for name in U.FILES:  # the uncertainty report of the run being replaced would be stale
        (out / name).write_text("stale")
    train.run_experiment(s, out, overwrite=True)
    assert sorted(os.listdir(out)) == [
        "checkpoints",
        "config.json",
        "curves.png",
        "metrics.jsonl",
        "notes.txt",
        "summary.json",
    ]
    with pytest.raises(RunFolderError, match="nothing to resume in .*: no config.json"):
        train.run_experiment(s, tmp_path / "empty", resume=True)
    with pytest.raises(RunFolderError, match="--resume and --overwrite exclude each other"):
        train.run_experiment(s, out, resume=True, overwrite=True)


def test_resume_of_a_finished_experiment_changes_nothing(tmp_path):
    s = {"dropout": dataclasses.replace(TINY, epochs=1)}
    first = train.run_experiment(s, tmp_path / "r")
    again = train.run_experiment({"ignored": Settings()}, tmp_path / "r", resume=True)
    assert again == first


def test_load_model_gives_the_trained_model(tmp_path):
    s = {"dropout": dataclasses.replace(EARLY, epochs=1, dropout_type="alpha")}
    summary = train.run_experiment(s, tmp_path / "r")
    model, settings = load_model(tmp_path / "r")
    assert not model.training and settings.dataset == "digits" and settings.hidden == (64, 32)
    # the kind it trained with, at the rates the early-dropout schedule left after its epoch
    assert [(type(model[i]).__name__, model[i].p) for i in (2, 5)] == [("AlphaDropout", 0.0)] * 2
    x, y = data.load_test_tensors(settings.dataset, settings.data_dir)
    _, acc = train.evaluate(model, x, y)
    assert acc == summary["runs"]["dropout"]["final_test_acc"]
    with pytest.raises(RunFolderError, match="has no run 'l2'; its runs: dropout"):
        load_model(tmp_path / "r", "l2")
    with pytest.raises(RunFolderError, match="is not a run folder: no config.json"):
        load_model(tmp_path)


def test_a_concrete_run_folder_records_and_reloads_its_learned_rates(digits, tmp_path):
    summary = train.run_experiment({"dropout": dataclasses.replace(CONCRETE, epochs=1)}, tmp_path / "r")
    r = summary["runs"]["dropout"]
    (line,) = [json.loads(l) for l in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert r["dropout"] == [0.5, 0.3]  # the initial rates, as given
    assert line["dropout_rates"][0] == 0.2 and r["learned_dropout"] == line["dropout_rates"][1:]  # input dropout stays
    assert all(abs(a - b) > 1e-3 for a, b in zip(r["learned_dropout"], [0.5, 0.3])), r["learned_dropout"]
    model, settings = load_model(tmp_path / "r")
    assert [m.p for m in models.dropout_modules(model)] == line["dropout_rates"]
    assert model[3].dropout_regularizer == 2 / len(digits.x_train)  # N: the training set the run used
    x, y = data.load_test_tensors(settings.dataset, settings.data_dir)
    assert train.evaluate(model, x, y)[1] == r["final_test_acc"]


def test_an_unreadable_checkpoint_is_a_run_folder_error(tmp_path):
    s = {"dropout": dataclasses.replace(TINY, epochs=1)}
    train.run_experiment(s, tmp_path / "r")
    ckpt = tmp_path / "r" / "checkpoints" / "dropout.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:1000])  # truncated
    unreadable = f"^checkpoint {re.escape(str(ckpt))} cannot be read \\(truncated or corrupt\\?\\): [^\\n]+$"
    with pytest.raises(RunFolderError, match=unreadable):
        train.run_experiment(s, tmp_path / "r", resume=True)
    with pytest.raises(RunFolderError, match=unreadable):
        load_model(tmp_path / "r")
    ckpt.write_bytes(b"")
    with pytest.raises(RunFolderError, match=unreadable):
        load_model(tmp_path / "r")
    torch.save({"model": {}}, ckpt)
    with pytest.raises(
        RunFolderError,
        match="is not a dropkit run checkpoint: it lacks optimizer, rng, epoch, step, history, elapsed, done, stopped$",
    ):
        train.run_experiment(s, tmp_path / "r", resume=True)
    with pytest.raises(
        RunFolderError,
        match=f"^checkpoint {re.escape(str(ckpt))}: its model does not fit the run's "
        "settings: Error\\(s\\) in loading state_dict for Sequential: Missing key\\(s\\) in state_dict: ",
    ):
        load_model(tmp_path / "r")


def test_settings_validation():
    with pytest.raises(SettingsError, match="^--optimizer must be one of sgd, adam, got 'rmsprop'"):
        Settings(optimizer="rmsprop")
    with pytest.raises(SettingsError, match=r"^--val-split must be in \[0, 1\), got 1.0"):
        Settings(val_split=1.0)
    with pytest.raises(SettingsError, match="^--epochs must be at least 1, got 0$"):
        Settings(epochs=0)
    with pytest.raises(
        SettingsError, match=f"^--dropout-type must be one of {', '.join(map(repr, models.DROPOUT_TYPES))}, got 'drop'$"
    ):
        Settings(dropout_type="drop")
    with pytest.raises(
        SettingsError,
        match="^--dropout-schedule 'late:3' cannot drive --dropout-type concrete: its rates are "
        "learned, so they cannot follow a schedule; use --dropout-schedule constant$",
    ):
        Settings(dropout_type="concrete", dropout_schedule="late:3")
    with pytest.raises(SettingsError, match=r"^--dropout with --dropout-type concrete must be below 1 .*, got 1.0$"):
        Settings(dropout_type="concrete", dropout=(0.5, 1.0))
    assert Settings(dropout_type="concrete", dropout=(0.5, 0.0)).dropout == (0.5, 0.0)
    with pytest.raises(SettingsError, match="^--dropout-schedule 'early:0': steps must be >= 1, got 0$"):
        Settings(dropout_schedule="early:0")
    assert Settings(hidden=(8, 8, 8), dropout=0.5).dropout == (0.5, 0.5, 0.5)
    assert Settings.from_dict(Settings(max_norm=3.0).to_dict()) == Settings(max_norm=3.0)
    old = {k: v for k, v in Settings().to_dict().items() if not k.startswith("dropout_")}  # a config.json from before
    assert Settings.from_dict(old) == Settings()


def test_parse_duration():
    assert [parse_duration(t) for t in ("90", "90s", "45m", "1.5h")] == [90, 90, 2700, 5400]
    with pytest.raises(SettingsError, match="^--time-budget must look like 90s, 45m or 1.5h, got '10 minutes'$"):
        parse_duration("10 minutes")


def test_sweep_summary_statistics():
    runs = sweep_runs(Settings(), [0.0, 0.5], [0, 1])
    assert list(runs) == ["p0_s0", "p0_s1", "p0.5_s0", "p0.5_s1"]
    accs = {"p0_s0": 0.8, "p0_s1": 0.9, "p0.5_s0": 0.7, "p0.5_s1": 0.7}
    summary = {"dataset": "x", "epochs": 1, "runs": {n: {"final_test_acc": a} for n, a in accs.items()}}
    sweep = report.sweep_summary(runs, summary)
    assert [r["rate"] for r in sweep["results"]] == [0.0, 0.5] and sweep["seeds"] == [0, 1]
    assert sweep["results"][0]["test_error_mean"] == pytest.approx(0.15)
    assert sweep["results"][0]["test_error_std"] == pytest.approx(0.0707107, rel=1e-5)
    assert sweep["results"][1]["test_error_std"] == pytest.approx(0.0, abs=1e-12)


# Divergence: a non-finite loss stops the run at once; the last finite checkpoint stays; JSON never holds NaN.

HUGE = dataclasses.replace(
    TINY, lr=1e6, schedule="constant"
)  # SGD with momentum at this rate overflows within an epoch


def test_a_diverging_run_stops_at_once_and_keeps_nothing_non_finite(small, tmp_path):
    steps = []

    class Count(train.Progress):
        def step(self, name, loss):
            steps.append(loss)

    with pytest.raises(Diverged) as e:
        train.fit(HUGE, small, tmp_path / "d.pt", name="r", progress=Count())
    message = str(e.value)
    assert "\n" not in message and e.value.epoch == 1 and e.value.step == len(steps) + 1 <= 12
    assert re.fullmatch(
        rf"run 'r' diverged at epoch 1, step {e.value.step}: (the training loss is (nan|inf)|its weights "
        r"are no longer finite); no checkpoint was written yet\. Lower --lr \(it is 1e\+06\) or bound the "
        r"weights with --max-norm, and --resume",
        message,
    ), message
    assert all(math.isfinite(loss) for loss in steps)  # the progress never sees the non-finite loss
    assert not (tmp_path / "d.pt").exists()


def test_divergence_keeps_the_last_finite_checkpoint_and_a_lower_lr_resumes(small, tmp_path):
    first = train.fit(dataclasses.replace(TINY, epochs=1), small, tmp_path / "d.pt")  # one finite epoch
    before = torch.load(tmp_path / "d.pt", weights_only=False)
    with pytest.raises(Diverged, match=r"diverged at epoch 2, step \d+: .*; its checkpoint after epoch 1 is kept\. "):
        train.fit(dataclasses.replace(HUGE, epochs=2), small, tmp_path / "d.pt")
    kept = torch.load(tmp_path / "d.pt", weights_only=False)
    assert kept["epoch"] == 1 and all(torch.equal(kept["model"][k], before["model"][k]) for k in before["model"])
    resumed = train.fit(dataclasses.replace(TINY, epochs=2), small, tmp_path / "d.pt")  # the lower lr continues
    assert resumed["done"] and [r["epoch"] for r in resumed["history"]] == [1, 2]
    assert resumed["history"][0] == first["history"][0]


def test_run_experiment_stops_on_divergence_or_records_it_in_a_sweep(tmp_path):
    with pytest.raises(Diverged):
        train.run_experiment({"dropout": HUGE}, tmp_path / "t")
    assert not (tmp_path / "t" / "summary.json").exists()
    runs = {"ok": dataclasses.replace(TINY, epochs=1), "bad": dataclasses.replace(HUGE, epochs=1)}
    summary = train.run_experiment(runs, tmp_path / "s", keep_going=True)
    assert set(summary["runs"]["bad"]) == {"dropout", "input_dropout", "diverged", "epochs_run"}
    assert summary["runs"]["bad"]["diverged"]["epoch"] == 1 and summary["runs"]["bad"]["epochs_run"] == 0
    assert summary["runs"]["ok"]["final_test_acc"] > 0.5  # the other run trained all the same


def test_sweep_summary_leaves_diverged_seeds_out():
    runs = sweep_runs(Settings(), [0.0, 0.5], [0, 1])
    summary = {
        "dataset": "x",
        "epochs": 1,
        "runs": {
            "p0_s0": {"final_test_acc": 0.8},
            "p0_s1": {"diverged": {"epoch": 1, "step": 2}},
            "p0.5_s0": {"diverged": {}},
            "p0.5_s1": {"diverged": {}},
        },
    }
    sweep = report.sweep_summary(runs, summary)
    assert sweep["results"][0]["test_errors"] == [pytest.approx(0.2)] and sweep["results"][0]["diverged_seeds"] == [1]
    assert sweep["results"][1]["test_error_mean"] is None and sweep["results"][1]["diverged_seeds"] == [0, 1]


def test_json_files_never_hold_nan(tmp_path):
    record = {
        "run": "r",
        "epoch": 1,
        "train_loss": float("nan"),
        "test_loss": float("inf"),
        "rates": [0.5, float("-inf")],
    }
    report.write_metrics(tmp_path / "metrics.jsonl", {"r": [record]})
    text = (tmp_path / "metrics.jsonl").read_text()
    assert "NaN" not in text and "Infinity" not in text
    strict = json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c} in metrics.jsonl"))
    assert strict == {"run": "r", "epoch": 1, "train_loss": None, "test_loss": None, "rates": [0.5, None]}
    report.write_json(tmp_path / "s.json", {"x": float("nan")})
    assert json.loads((tmp_path / "s.json").read_text()) == {"x": None}


# Exact resume after SIGKILL: nothing runs on the way out, so only what was on disk counts.

_KILLED = """
import os, signal, sys
from dropkit.lab import settings, train

class KillAt(train.Progress):
    steps = 0
    def step(self, name, loss):
        KillAt.steps += 1
        if KillAt.steps == int(sys.argv[2]):
            os.kill(os.getpid(), signal.SIGKILL)

s = settings.Settings(dataset="digits", hidden=(32,), dropout=(0.5,), epochs=3, batch_size=100, lr=0.1, threads=1)
train.run_experiment({"dropout": s}, sys.argv[1], progress=KillAt())
"""


def test_sigkill_mid_epoch_then_resume_gives_exactly_the_uninterrupted_run(tmp_path):
    # digits' 1438 training images in batches of 100: 15 steps an epoch; step 22 is in the middle of epoch 2.
    out = tmp_path / "killed"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(Path(dropkit.__file__).parents[1]), os.environ.get("PYTHONPATH")) if p
        ),
    }
    done = subprocess.run(
        [sys.executable, "-c", _KILLED, str(out), "22"], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    saved = torch.load(out / "checkpoints" / "dropout.pt", weights_only=False)
    assert (saved["epoch"], saved["step"]) == (1, 0)  # epoch 1's checkpoint; epoch 2 was cut mid-way
    assert (out / LOCK).exists()  # the killed process left its lock file, but no lock
    s = Settings(dataset="digits", hidden=(32,), dropout=(0.5,), epochs=3, batch_size=100, lr=0.1, threads=1)
    resumed = train.run_experiment({"dropout": s}, out, resume=True)
    whole = train.run_experiment({"dropout": s}, tmp_path / "whole")
    assert resumed == {
        **whole,
        "runs": {
            "dropout": {
                **whole["runs"]["dropout"],
                **{k: resumed["runs"]["dropout"][k] for k in ("epoch_seconds", "wall_seconds")},
            }
        },
    }
    a, b = (
        torch.load(p / "checkpoints" / "dropout.pt", weights_only=False)["model"] for p in (out, tmp_path / "whole")
    )
    assert all(torch.equal(a[k], b[k]) for k in b)  # same ops in the same order: bit for bit
