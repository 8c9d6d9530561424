"""dropkit.lab.tune and selection on validation: a tiny search end to end, resume after a real SIGINT,
the selection rules on hand-made histories, and two worker processes sharing one PostgreSQL study."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import torch

optuna = pytest.importorskip("optuna", reason="dropkit tune needs the [tune] extra (Optuna)")

from _helpers.dist import run_ranks  # noqa: E402
from _helpers.sigint import InterruptAt  # noqa: E402

from dropkit import cli  # noqa: E402
from dropkit.lab import analyze, report, train, tune  # noqa: E402
from dropkit.lab import uncertainty as U  # noqa: E402
from dropkit.lab.models import SettingsError  # noqa: E402
from dropkit.lab.settings import Settings, sweep_runs  # noqa: E402

# digits: 1294 training images after the 10% validation split, 13 steps of 100 per epoch
BASE = Settings(dataset="digits", hidden=(16, 16), epochs=2, batch_size=100, lr=0.1, val_split=0.1)
TINY = ["--dataset", "digits", "--hidden", "16", "16", "--epochs", "2", "--batch-size", "100", "--lr", "0.1"]
ROOT = Path(__file__).resolve().parents[2]


def _epoch(epoch, val_acc, val_loss, test_acc):
    return {
        "epoch": epoch,
        "val_acc": val_acc,
        "val_loss": val_loss,
        "test_acc": test_acc,
        "train_acc": 0.9,
        "epoch_seconds": 1.0,
    }


def test_selection_takes_the_best_validation_epoch_not_the_best_test_epoch():
    # epoch 2 has the best validation accuracy, epoch 3 the best test accuracy
    history = [
        _epoch(1, 0.80, 0.60, 0.79),
        _epoch(2, 0.86, 0.40, 0.84),
        _epoch(3, 0.85, 0.41, 0.87),
        _epoch(4, 0.86, 0.45, 0.85),
    ]
    assert report.select_on_validation(history) == {
        "best_val_epoch": 2,
        "best_val_acc": 0.86,
        "test_acc_at_best_val": 0.84,
    }
    s = dataclasses.replace(BASE, epochs=4)
    r = report.summarize("digits", {"dropout": s}, {"dropout": {"history": history, "elapsed": 4.0}})["runs"]["dropout"]
    # the tie at 0.86 goes to the lower validation loss (epoch 2), never to the higher test accuracy (epoch 4)
    assert (r["test_acc_at_best_val"], r["best_val_epoch"], r["best_test_acc"], r["final_test_acc"]) == (
        0.84,
        2,
        0.87,
        0.85,
    )


def test_without_validation_nothing_is_selected_and_the_table_says_so():
    history = [{k: v for k, v in _epoch(1, 0.8, 0.6, 0.79).items() if not k.startswith("val")}]
    assert report.select_on_validation(history) is None
    summary = report.summarize("digits", {"dropout": BASE}, {"dropout": {"history": history, "elapsed": 1.0}})
    assert summary["runs"]["dropout"]["test_acc_at_best_val"] is None
    table = report.summary_table(summary)
    assert [c.header for c in table.columns][2:5] == ["test", "test@val", "oracle"]
    assert list(table.columns[3].cells) == ["-"]


def test_sweep_marks_the_rate_validation_selects():
    runs = sweep_runs(BASE, [0.0, 0.5], [0, 1])
    # rate 0.5 has the better validation error; rate 0 the better test error: validation decides
    figures = {"p0_s0": (0.80, 0.90), "p0_s1": (0.82, 0.90), "p0.5_s0": (0.85, 0.88), "p0.5_s1": (0.87, 0.86)}
    summary = {
        "dataset": "x",
        "epochs": 2,
        "runs": {
            n: {"final_test_acc": t, "best_val_acc": v, "test_acc_at_best_val": t - 0.01}
            for n, (v, t) in figures.items()
        },
    }
    sweep = report.sweep_summary(runs, summary)
    assert sweep["selected"]["rate"] == 0.5
    assert sweep["selected"]["val_error_mean"] == pytest.approx(0.14)
    assert sweep["selected"]["test_error_at_best_val_mean"] == pytest.approx(0.14)
    assert sweep["results"][0]["test_error_mean"] < sweep["results"][1]["test_error_mean"]
    assert list(report.sweep_table(sweep).columns[0].cells) == ["0", "0.5 *"]


def test_tune_end_to_end_on_sqlite(tmp_path):
    out = tmp_path / "tune"
    result = cli_json("tune", *TINY, "--trials", "3", "--out", out)
    assert result["counts"] == {"COMPLETE": 3, "PRUNED": 0, "FAIL": 0, "RUNNING": 0}
    assert [t["number"] for t in result["trials"]] == [0, 1, 2]
    # the CLI's default hidden rate is 0.5 on every layer, no input dropout: the first anchor
    assert [t["params"] for t in result["trials"][:2]] == [
        {"dropout_0": 0.5, "dropout_1": 0.5, "input_dropout": 0.0},
        {"dropout_0": 0.0, "dropout_1": 0.0, "input_dropout": 0.0},
    ]
    for t in result["trials"]:
        assert set(t["params"]) == {"dropout_0", "dropout_1", "input_dropout"}
        assert (
            0 <= t["params"]["input_dropout"] <= tune.INPUT_RATES[1]
            and 0 <= t["params"]["dropout_1"] <= tune.HIDDEN_RATES[1]
        )
        summary = json.loads((out / "trials" / str(t["number"]) / "summary.json").read_text())["runs"]["dropout"]
        assert t["value"] == summary["best_val_acc"] and t["test_acc_at_best_val"] == summary["test_acc_at_best_val"]
    best = max(result["trials"], key=lambda t: t["value"])
    assert result["best"]["number"] == best["number"] and result["best"]["params"] == best["params"]
    final = result["final"]
    assert final["retrained"] and final["trial"] == best["number"]
    config = json.loads((out / f"final-{best['number']}" / "config.json").read_text())["runs"]["dropout"]
    assert config["val_split"] == 0.0 and config["input_dropout"] == best["params"]["input_dropout"]
    assert config["dropout"] == [best["params"]["dropout_0"], best["params"]["dropout_1"]]
    final_summary = json.loads((out / f"final-{best['number']}" / "summary.json").read_text())["runs"]["dropout"]
    assert final["test_acc"] == final_summary["final_test_acc"] > 0.2, "10 classes: chance is 0.1"
    assert json.loads((out / "tune.json").read_text())["final"] == final
    assert (out / "tune_history.png").stat().st_size > 0 and (out / "tune_rates.png").stat().st_size > 0
    # the best trial's folder is an ordinary run folder
    mc = U.run(best["run_dir"], samples=(1, 2), seed=0)
    assert set(mc["mc"]) == {"1", "2"}
    # the same model on the same test set; close, not equal: another batch shape may flip a near-tie's argmax
    assert mc["weight_scaling"]["acc"] == pytest.approx(best["final_test_acc"], abs=0.005)
    knocked = analyze.run(best["run_dir"], repeats=1, seed=0)
    assert list(knocked["runs"]) == ["dropout"] and (Path(best["run_dir"]) / "coadaptation.json").is_file()
    # the same command again: the study is complete, nothing is trained, the figures stay
    again = cli_json("tune", *TINY, "--trials", "3", "--out", out)
    assert again["trials"] == result["trials"] and again["final"] == final


def test_tune_continues_after_a_real_sigint_with_the_weights_of_an_uninterrupted_search(tmp_path):
    whole = tune.run(BASE, tmp_path / "whole", trials=2, retrain=False)
    # trial 0 takes 26 steps; the SIGINT lands in trial 1's first epoch
    with pytest.raises(train.Interrupted, match="interrupted: run 'dropout' saved at epoch 1, step 5"):
        tune.run(BASE, tmp_path / "cut", trials=2, retrain=False, progress=InterruptAt(26 + 5))
    cut = tune.run(BASE, tmp_path / "cut", trials=2, retrain=False)
    assert cut["counts"] == {"COMPLETE": 2, "PRUNED": 0, "FAIL": 1, "RUNNING": 0}
    failed, continued = cut["trials"][1], cut["trials"][2]
    assert failed["state"] == "FAIL" and continued["continues"] == 1 and continued["params"] == failed["params"]
    assert continued["run_dir"] == str(tmp_path / "cut" / "trials" / "1")
    assert continued["params"] == whole["trials"][1]["params"]
    # exact: the same elementwise steps on the same shapes, resumed from the checkpoint of the interrupted step
    assert continued["validation_curve"] == whole["trials"][1]["validation_curve"]
    a = torch.load(tmp_path / "cut/trials/1/checkpoints/dropout.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "whole/trials/1/checkpoints/dropout.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in b)
    assert cut["final"]["reason"] == "--no-retrain" and cut["final"]["test_acc"] == cut["best"]["test_acc_at_best_val"]
    assert cut["best"]["val_acc"] == max(whole["trials"][0]["value"], whole["trials"][1]["value"])


def test_a_new_study_starts_from_the_base_rates_then_no_dropout(tmp_path):
    assert tune.anchors(BASE, tune.Search()) == [
        {"dropout_0": 0.5, "dropout_1": 0.3, "input_dropout": 0.0},
        {"dropout_0": 0.0, "dropout_1": 0.0, "input_dropout": 0.0},
    ]
    wide = dataclasses.replace(BASE, dropout=(0.9,), input_dropout=0.2, max_norm=8.0)
    assert tune.anchors(wide, tune.Search(shared_rate=True, lr=True, max_norm=True))[0] == {
        "dropout": tune.HIDDEN_RATES[1],
        "input_dropout": 0.2,
        "lr": 0.1,
        "max_norm": tune.MAX_NORMS[1],
    }
    one = tune.run(BASE, tmp_path / "t", trials=1, retrain=False)
    # the no-dropout anchor waits in the study, unrun and unlisted, until the study is continued
    assert [(t["number"], t["params"]) for t in one["trials"]] == [(0, tune.anchors(BASE, tune.Search())[0])]
    two = tune.run(BASE, tmp_path / "t", trials=2, retrain=False)
    assert [(t["number"], t["params"]) for t in two["trials"]] == list(enumerate(tune.anchors(BASE, tune.Search())))
    assert two["trials"][0] == one["trials"][0]


def test_tune_refuses_what_cannot_be_tuned(tmp_path):
    with pytest.raises(
        SettingsError, match=r"--val-split must be above 0 for tuning \(rates are chosen on validation\), got 0.0"
    ):
        tune.run(dataclasses.replace(BASE, val_split=0.0), tmp_path / "t", trials=1)
    tune.run(BASE, tmp_path / "t", trials=1, retrain=False)
    with pytest.raises(
        SettingsError, match=r"study 'dropkit-tune' in its storage was made with other settings: epochs=2 \(now 3\)"
    ):
        tune.run(dataclasses.replace(BASE, epochs=3), tmp_path / "t", trials=1)


def test_the_last_epoch_is_never_pruned():
    class AlwaysPrune:
        number, reported = 0, []

        def report(self, value, step):
            self.reported.append((step, value))

        def should_prune(self):
            return True

    progress = tune._TrialProgress(AlwaysPrune(), train.Progress(), prune=True, epochs=2)
    with pytest.raises(optuna.TrialPruned, match="validation accuracy 0.5000 at epoch 1"):
        progress.epoch_done("dropout", _epoch(1, 0.5, 1.0, 0.5))
    progress.epoch_done("dropout", _epoch(2, 0.6, 0.9, 0.6))
    assert AlwaysPrune.reported == [(1, 0.5), (2, 0.6)]


def test_trials_train_with_the_dropout_type_and_schedule_given(tmp_path):
    out = tmp_path / "t"
    result = cli_json(
        "tune",
        *TINY,
        "--trials",
        "2",
        "--dropout-type",
        "gaussian",
        "--dropout-schedule",
        "linear:2",
        "--no-retrain",
        "--out",
        out,
    )
    for t in result["trials"]:
        folder = Path(t["run_dir"])
        config = json.loads((folder / "config.json").read_text())["runs"]["dropout"]
        assert (config["dropout_type"], config["dropout_schedule"]) == ("gaussian", "linear:2")
        assert config["dropout"] == [t["params"]["dropout_0"], t["params"]["dropout_1"]]
    # the anchors: 0.5 on both hidden layers, then none. linear:2 ramps each rate up from 0 over 2 epochs
    rates = [
        [
            json.loads(line)["dropout_rates"]
            for line in (out / "trials" / str(n) / "metrics.jsonl").read_text().splitlines()
        ]
        for n in (0, 1)
    ]
    assert rates == [[[0.0, 0.0], [0.25, 0.25]], [[], []]]


def test_tune_nproc_trains_every_trial_on_two_processes(tmp_path):
    command = [
        sys.executable,
        "-m",
        "dropkit.cli",
        "tune",
        *TINY,
        "--trials",
        "3",
        "--nproc",
        "2",
        "--no-prune",
        "--out",
        str(tmp_path / "two"),
        "--quiet",
        "--json",
    ]
    done = subprocess.run(
        command, env={**os.environ, "PYTHONPATH": str(ROOT / "src")}, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    two = json.loads(done.stdout)
    one = cli_json("tune", *TINY, "--trials", "3", "--no-prune", "--masks", "addressed", "--out", tmp_path / "one")
    assert [t["params"] for t in two["trials"]] == [t["params"] for t in one["trials"]]
    # the same batches and masks; the gradient sums split over 2 ranks may round otherwise: within 2 of 143 images
    assert [t["value"] for t in two["trials"]] == pytest.approx([t["value"] for t in one["trials"]], abs=2 / 143)
    for folder in [*(tmp_path / "two" / "trials").iterdir(), Path(two["final"]["run_dir"])]:
        config = json.loads((folder / "config.json").read_text())
        assert config["processes"] == 2 and config["runs"]["dropout"]["masks"] == "addressed", folder
    assert two["final"]["retrained"] and two["final"]["test_acc"] == pytest.approx(one["final"]["test_acc"], abs=0.02)


def _prune_on_two_ranks(rank, world):
    class PruneAtEpoch2:
        number, epoch = 0, 0

        def report(self, value, step):
            self.epoch = step

        def should_prune(self):
            return self.epoch == 2

    progress = (
        tune._TrialProgress(PruneAtEpoch2(), train.Progress(), prune=True, epochs=3) if rank == 0 else tune._Follower()
    )
    progress.epoch_done("dropout", _epoch(1, 0.5, 1.0, 0.5))  # rank 0 keeps the trial: no rank stops
    with pytest.raises(optuna.TrialPruned):
        progress.epoch_done("dropout", _epoch(2, 0.5, 1.0, 0.5))


def test_a_trial_rank_0_prunes_stops_on_every_rank():
    run_ranks(_prune_on_two_ranks, 2, timeout=120)


def cli_json(*args):
    from typer.testing import CliRunner

    result = CliRunner().invoke(cli.app, cli.join_list_options([str(a) for a in (*args, "--quiet", "--json")]))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


POSTGRES = os.environ.get("DROPKIT_TEST_POSTGRES")


@pytest.mark.skipif(not POSTGRES, reason="no PostgreSQL server: set DROPKIT_TEST_POSTGRES (.ci/with-postgres does)")
def test_two_workers_share_one_postgresql_study(tmp_path):
    study = f"workers-{uuid.uuid4().hex[:8]}"
    # --trials is each worker's own count (Optuna's n_trials), so the study's total is exact: 2 x 4.
    command = [
        sys.executable,
        "-m",
        "dropkit.cli",
        "tune",
        *TINY,
        "--trials",
        "4",
        "--storage",
        POSTGRES,
        "--study",
        study,
        "--no-retrain",
        "--threads",
        "1",
        "--quiet",
        "--json",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    workers = [
        subprocess.Popen(
            [*command, "--out", str(tmp_path / f"w{i}")],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    deadline = time.monotonic() + 240
    try:
        outputs = [w.communicate(timeout=max(deadline - time.monotonic(), 1)) for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.send_signal(signal.SIGKILL)
    assert [w.returncode for w in workers] == [0, 0], [err for _, err in outputs]
    trials = optuna.load_study(study_name=study, storage=tune._driver_url(POSTGRES)).get_trials()
    assert sorted(t.number for t in trials) == list(range(8)), "8 trials, each recorded once"
    assert all(t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) for t in trials)
    # distinct points: the two anchors were queued once, by the worker that made the study
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 8, [t.params for t in trials]
    folders = [{int(p.name) for p in (tmp_path / f"w{i}" / "trials").iterdir()} for i in range(2)]
    assert folders[0].isdisjoint(folders[1]) and folders[0] | folders[1] == set(range(8))
    assert [len(f) for f in folders] == [4, 4], f"each worker ran its 4 trials: {folders}"
    # a worker's tune.json is the study as it stood when that worker ended, wherever the trials ran
    listed = [{t["number"] for t in json.loads(out)["trials"]} for out, _ in outputs]
    assert all(f <= seen for f, seen in zip(folders, listed)) and set(range(8)) in listed, listed
    # the same command again is the same worker (host and --out): its 4 are done, it starts none
    again = subprocess.run(
        [*command, "--out", str(tmp_path / "w0")], env=env, capture_output=True, text=True, timeout=120
    )
    assert again.returncode == 0, again.stderr
    result = json.loads(again.stdout)
    assert result["counts"]["RUNNING"] == 0 and len(result["trials"]) == 8
    assert len(optuna.load_study(study_name=study, storage=tune._driver_url(POSTGRES)).get_trials()) == 8
