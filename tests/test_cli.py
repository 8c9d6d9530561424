"""The `dropkit` command through typer's CliRunner: every command end to end, --help, errors, Ctrl-C."""

import json
import os
import re
import signal

import numpy as np
import pytest
from _helpers.idx_files import STEMS, make_idx_dir, write_idx
from typer.testing import CliRunner

from dropkit import cli
from dropkit.lab import commands, report
from dropkit.lab.models import DROPOUT_TYPES

# The lab MLP's kinds as its messages list them (every variant built from a rate joins them)
MLP_TYPES = ", ".join(DROPOUT_TYPES)
QUOTED_TYPES = ", ".join(map(repr, DROPOUT_TYPES))

runner = CliRunner()
TINY = ["--dataset", "digits", "--hidden", "32", "--epochs", "1", "--batch-size", "100", "--quiet"]


def invoke(*args):
    return runner.invoke(cli.app, cli.join_list_options([str(a) for a in args]))


def assert_one_line_error(result, message):
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [f"error: {message}"] or message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert result.stderr.startswith("error: ")


@pytest.mark.parametrize("command", [[], ["demo"], ["train"], ["sweep"], ["tune"], ["bench"], ["analyze"]])
def test_help(command):
    result = invoke(*command, "--help")
    assert result.exit_code == 0 and "Usage: dropkit" in result.output


def test_no_command_shows_help():
    result = invoke()
    assert "demo" in result.output and "sweep" in result.output


def test_demo_end_to_end(tmp_path):
    out = tmp_path / "demo"
    result = invoke(
        "demo", "--dataset", "digits", "--hidden", "64", "32", "--epochs", "1", "--dropout-type", "alpha", "--out", out
    )
    assert result.exit_code == 0, result.output
    assert json.loads((out / "config.json").read_text())["runs"]["dropout"]["dropout_type"] == "alpha"
    for column in ("test", "test@val", "oracle", "train", "gap", "s/epoch", "wall s"):
        assert column in result.stdout
    assert "dropout" in result.stdout and "no_dropout" in result.stdout and "l2" in result.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["runs"]) == ["dropout", "no_dropout", "l2"]
    # the demo holds out 10% for validation by default, so each run has its selected figure
    assert json.loads((out / "config.json").read_text())["runs"]["l2"]["val_split"] == 0.1
    assert all(r["test_acc_at_best_val"] is not None and r["best_val_epoch"] == 1 for r in summary["runs"].values())
    assert (out / "curves.png").exists() and len((out / "metrics.jsonl").read_text().splitlines()) == 3
    assert "co-adaptation" in result.stdout and "75% out" in result.stdout  # the analysis runs by default
    assert all("knockout_drop_75" in r for r in summary["runs"].values()) and (out / "coadaptation.png").exists()
    # the scarce part: a quarter of digits' 1438 training examples, as many updates as the full part's epoch
    scarce = json.loads((out / "scarce" / "summary.json").read_text())
    assert (
        list(scarce["runs"]) == ["dropout", "no_dropout", "l2"]
        and scarce["train_size"] == 359
        and scarce["steps"] == 11
    )
    assert "All data: dropout" in result.stdout and "Scarce data: dropout" in result.stdout
    again = invoke("demo", "--dataset", "digits", "--epochs", "1", "--out", out)
    assert_one_line_error(
        again, f"run folder {out} is not empty; pass --resume to continue it or --overwrite to replace it"
    )


def test_auto_without_fashion_mnist_says_how_to_get_it(tmp_path, monkeypatch):
    from dropkit.lab import data

    monkeypatch.setattr(data, "SYSTEM_ROOT", tmp_path / "system")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DROPKIT_DATA", raising=False)
    result = invoke("train", "--hidden", "16", "--epochs", "1", "--out", tmp_path / "run")
    assert result.exit_code == 0, result.output
    assert (
        "Fashion-MNIST not found, using scikit-learn's digits (8x8); to use Fashion-MNIST: apt-get install"
        in result.stderr
    )
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["dataset"] == "digits"


def test_the_command_each_torchrun_worker_runs_keeps_every_option_given():
    import typer

    tune = typer.main.get_command(cli.app).commands["tune"]
    given = ["--hidden", "16", "16", "--no-prune", "--no-retrain", "--trials", "3", "--nproc", "2", "--shared-rate"]
    ctx = tune.make_context("tune", list(cli.join_list_options(given)))
    argv = commands.command_line(ctx, skip=("nproc",))
    assert argv[0] == "tune" and "--nproc" not in argv
    assert sorted(argv[1:]) == sorted(
        ["--trials", "3", "--shared-rate", "--no-prune", "--no-retrain", "--hidden", "16,16"]
    )


def test_train_json_and_list_options(tmp_path):
    out = tmp_path / "t"
    result = invoke(
        "train",
        *TINY[:2],
        "--hidden",
        "32",
        "16",
        "--dropout",
        "0.4",
        "0.2",
        "--input-dropout",
        "0.1",
        "--max-norm",
        "3",
        "--optimizer",
        "adam",
        "--schedule",
        "step",
        "--epochs",
        "1",
        "--json",
        "--out",
        out,
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["runs"]["dropout"]["dropout"] == [0.4, 0.2] and summary["runs"]["dropout"]["input_dropout"] == 0.1
    config = json.loads((out / "config.json").read_text())["runs"]["dropout"]
    assert config["hidden"] == [32, 16] and config["max_norm"] == 3.0 and config["optimizer"] == "adam"
    assert (config["dropout_type"], config["dropout_schedule"]) == ("dropout", "constant")  # the defaults


def test_train_dropout_type_and_schedule(tmp_path):
    out = tmp_path / "t"
    result = invoke(
        "train",
        *TINY,
        "--dropout",
        "0.4",
        "--epochs",
        "2",
        "--dropout-type",
        "gaussian",
        "--dropout-schedule",
        "linear:2",
        "--out",
        out,
    )
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())["runs"]["dropout"]
    assert (config["dropout_type"], config["dropout_schedule"]) == ("gaussian", "linear:2")
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [line["dropout_rates"] for line in lines] == [[0.0], [0.2]]  # warm-up over 2 epochs toward 0.4


def test_train_concrete_then_resume_from_a_truncated_checkpoint(tmp_path):
    out = tmp_path / "c"
    result = invoke("train", *TINY[:-1], "--dropout", "0.4", "--dropout-type", "concrete", "--json", "--out", out)
    assert result.exit_code == 0, result.output
    run = json.loads(result.stdout)["runs"]["dropout"]
    assert run["dropout"] == [0.4] and len(run["learned_dropout"]) == 1 and run["learned_dropout"] != [0.4]
    (line,) = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert line["dropout_rates"] == run["learned_dropout"]
    checkpoint = out / "checkpoints" / "dropout.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[: checkpoint.stat().st_size // 2])
    result = invoke("train", "--out", out, "--resume", "--quiet")
    assert result.exit_code == 2 and result.stdout == "" and "Traceback" not in result.output, result.output
    pattern = f"error: checkpoint {re.escape(str(checkpoint))} cannot be read \\(truncated or corrupt\\?\\): [^\\n]+\n"
    assert re.fullmatch(pattern, result.stderr), result.stderr


def test_train_without_dropout_is_named_so(tmp_path):
    result = invoke("train", *TINY, "--dropout", "0", "--out", tmp_path / "t")
    assert result.exit_code == 0 and result.stdout == ""
    assert list(json.loads((tmp_path / "t" / "summary.json").read_text())["runs"]) == ["no_dropout"]


def test_sweep_end_to_end(tmp_path):
    out = tmp_path / "s"
    result = invoke(
        "sweep",
        *TINY[:-1],
        "--rates",
        "0",
        "0.5",
        "--seeds",
        "0",
        "1",
        "--dropout-schedule",
        "late:1",
        "--out",
        out,
        "--json",
    )
    assert result.exit_code == 0, result.output
    assert {d["dropout_schedule"] for d in json.loads((out / "config.json").read_text())["runs"].values()} == {"late:1"}
    sweep = json.loads(result.stdout)
    assert [r["rate"] for r in sweep["results"]] == [0.0, 0.5] and sweep["seeds"] == [0, 1]
    # validated by default (10% held out): the rate with the lower mean validation error is selected
    assert sweep["selected"]["rate"] == min(sweep["results"], key=lambda r: (r["val_error_mean"], r["rate"]))["rate"]
    assert sweep == json.loads((out / "sweep.json").read_text()) and (out / "sweep.png").exists()


def test_ctrl_c_saves_and_resume_finishes(tmp_path, monkeypatch):
    out = tmp_path / "r"

    def interrupt_once(self, name, loss):
        monkeypatch.undo()
        os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(report.RichProgress, "step", interrupt_once)
    args = ["train", "--dataset", "digits", "--hidden", "32", "--epochs", "2", "--out", out]
    result = invoke(*args)
    assert result.exit_code == 130, result.output
    assert result.stderr.strip().splitlines()[-1] == (
        f"interrupted: run 'dropout' saved at epoch 1, step 1; resume with: dropkit train --out {out} --resume"
    )
    result = invoke("train", "--out", out, "--resume", "--quiet")
    assert result.exit_code == 0, result.output
    assert json.loads((out / "summary.json").read_text())["runs"]["dropout"]["epochs_run"] == 2


@pytest.mark.parametrize(
    "args, message",
    [
        (["--dropout", "1.5"], "--dropout must be between 0 and 1, got 1.5"),
        (["--input-dropout", "2"], "--input-dropout must be between 0 and 1, got 2.0"),
        (["--dropout", "0.5", "0.3"], "--dropout needs one rate or one per hidden layer (1), got 2: (0.5, 0.3)"),
        (["--hidden", "abc"], "--hidden must be a list of ints like 1,2,3, got 'abc'"),
        (["--optimizer", "rmsprop"], "--optimizer must be one of sgd, adam, got 'rmsprop'"),
        (["--time-budget", "soon"], "--time-budget must look like 90s, 45m or 1.5h, got 'soon'"),
        (["--dataset", "cifar"], "--dataset must be one of auto, fashion-mnist, mnist, digits, idx, got 'cifar'"),
    ],
)
def test_bad_settings_are_one_line(tmp_path, args, message):
    assert_one_line_error(invoke("train", *TINY, "--out", tmp_path / "x", *args), message)


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--dropout-type", "dropconnect"],
            f"--dropout-type must be one of {QUOTED_TYPES}, got 'dropconnect'",
        ),
        (
            ["--dropout-type", "gaussian_noise"],
            "--dropout-type 'gaussian_noise' has no rate (it adds noise of a given stddev), "
            f"so --dropout and --dropout-schedule cannot set it; the lab's MLP takes {MLP_TYPES}",
        ),
        (
            ["--dropout-type", "locked"],
            "--dropout-type 'locked' shares one mask over the time steps of a sequence, and an "
            f"MLP's activations have no time axis; the lab's MLP takes {MLP_TYPES}",
        ),
        (
            ["--dropout-schedule", "early:two"],
            "--dropout-schedule 'early:two': schedule must look like NAME or NAME:STEPS "
            "with STEPS a non-negative int, got 'early:two'",
        ),
        (
            ["--dropout-schedule", "warmup:5"],
            "--dropout-schedule 'warmup:5': schedule must be one of 'constant', 'linear', 'early', 'late', got 'warmup'",
        ),
        (
            ["--dropout-type", "concrete", "--dropout-schedule", "early:2"],
            "--dropout-schedule 'early:2' cannot drive "
            "--dropout-type concrete: its rates are learned, so they cannot follow a schedule; use --dropout-schedule constant",
        ),
    ],
)
@pytest.mark.parametrize("command", ["train", "demo", "sweep"])
def test_bad_dropout_type_or_schedule_is_exactly_one_line(tmp_path, command, args, message):
    result = invoke(command, *TINY, "--out", tmp_path / "x", *args)
    assert result.exit_code == 2 and result.stdout == "", result.output
    assert result.stderr == f"error: {message}\n"
    assert not (tmp_path / "x").exists()  # refused before anything is written


def _corrupt(directory, kind):
    if kind == "wrong magic":
        write_idx(directory / (STEMS["train_labels"] + ".gz"), np.zeros(60, np.uint8), magic=0x803)
    elif kind == "truncated":
        path = directory / (STEMS["test_images"] + ".gz")
        path.write_bytes(path.read_bytes()[:-20])
    elif kind == "mismatched counts":
        write_idx(directory / (STEMS["train_labels"] + ".gz"), np.zeros(59, np.uint8))


@pytest.mark.parametrize(
    "kind, message",
    [
        ("wrong magic", "magic number 0x00000803, expected 0x00000801"),
        ("truncated", "cannot read"),
        ("mismatched counts", "train images and labels disagree: 60 images, 59 labels"),
    ],
)
def test_data_errors_are_one_line(tmp_path, kind, message):
    directory = make_idx_dir(tmp_path / "mnist")
    _corrupt(directory, kind)
    result = invoke("train", "--dataset", "mnist", "--data-dir", directory, "--out", tmp_path / "run", "--quiet")
    assert_one_line_error(result, message)


def test_missing_data_directory_is_one_line(tmp_path):
    result = invoke("demo", "--dataset", "fashion-mnist", "--data-dir", tmp_path / "nope", "--out", tmp_path / "run")
    assert_one_line_error(result, f"data directory not found: {tmp_path / 'nope'}")


def test_mnist_from_idx_files(tmp_path):
    directory = make_idx_dir(tmp_path / "idx", n_train=200, n_test=50)
    result = invoke(
        "train",
        "--dataset",
        "mnist",
        "--data-dir",
        tmp_path / "idx",
        "--hidden",
        "16",
        "--epochs",
        "1",
        "--out",
        tmp_path / "run",
        "--json",
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["dataset"] == "mnist"
    assert json.loads((tmp_path / "run" / "config.json").read_text())["source"] == str(directory)


def test_join_list_options():
    assert cli.join_list_options(
        ["train", "--hidden", "1024", "1024", "1024", "--dropout", "0.5", "--epochs", "3"]
    ) == ["train", "--hidden", "1024,1024,1024", "--dropout", "0.5", "--epochs", "3"]
    assert cli.join_list_options(["uncertainty", "runs/demo", "--hidden"]) == ["uncertainty", "runs/demo", "--hidden"]


def _bench_result():
    """A result with the shape of dropkit.lab.bench.run's, for the wiring test."""
    rows = [
        dict(n=1024, impl=i, forward_ms=1.0, forward_backward_ms=2.0, saved_bytes_per_element=0.0)
        for i in ("dropkit (recompute)", "torch eager", "x.clone()")
    ]
    return dict(
        machine=dict(cpu="x", cores=2, torch_threads=2, torch="t", numba="n", python="p", platform="l"),
        p=0.5,
        elementwise=rows,
        training_step=[dict(batch=16, impl="torch.nn.Dropout", step_ms=1.0)],
        jit=dict(first_process_call_s=1.0, import_s=0.1, first_call_warm_cache_s=0.5),
    )


def test_bench_wiring(tmp_path, monkeypatch):
    from dropkit.lab import bench

    calls = []
    monkeypatch.setattr(bench, "run", lambda **kw: calls.append(kw) or _bench_result())
    result = invoke("bench", "--quick", "--out", tmp_path / "b.json")
    assert result.exit_code == 0 and calls[0]["quick"] is True and callable(calls[0]["progress"])
    assert "| 2^10 | dropkit (recompute) |" in result.stdout
    assert json.loads((tmp_path / "b.json").read_text()) == _bench_result()
    result = invoke("bench", "--json")
    assert json.loads(result.stdout) == _bench_result() and calls[1] == {"quick": False, "progress": None}


def test_bench_quick_for_real(tmp_path):
    """The real benchmark end to end, in its quick mode (about 10 s on 2 cores)."""
    result = invoke("bench", "--quick", "--json", "--out", tmp_path / "b.json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == json.loads((tmp_path / "b.json").read_text())


def test_a_label_outside_the_classes_is_one_line(tmp_path):
    directory = make_idx_dir(tmp_path / "mnist")
    labels = np.zeros(60, np.uint8)
    labels[0] = 200
    path = write_idx(directory / (STEMS["train_labels"] + ".gz"), labels)
    result = invoke("train", "--dataset", "mnist", "--data-dir", directory, "--out", tmp_path / "run", "--quiet")
    assert_one_line_error(result, f"{path}: label 200 at index 0 (byte 8) is outside mnist's classes 0-9")


def test_a_diverging_run_is_one_line_and_exit_2(tmp_path):
    out = tmp_path / "run"
    result = invoke("train", *TINY, "--lr", "1e6", "--schedule", "constant", "--out", out)
    assert_one_line_error(result, "run 'dropout' diverged at epoch 1, step ")
    assert "Lower --lr (it is 1e+06) or bound the weights with --max-norm, and --resume" in result.stderr
    result = invoke("train", "--out", out, "--resume", "--lr", "0.1", "--quiet", "--json")  # a lower lr continues
    assert result.exit_code == 0, result.output
    assert json.loads((out / "config.json").read_text())["resumed_with"] == [{"lr": [1e6, 0.1]}]


def test_resume_refuses_a_model_option_and_takes_epochs_threads_quiet(tmp_path):
    out = tmp_path / "run"
    assert invoke("train", *TINY, "--out", out).exit_code == 0
    result = invoke("train", "--out", out, "--resume", "--epochs", "3", "--hidden", "64")
    assert_one_line_error(
        result,
        "--hidden cannot change on --resume: run 'dropout' has 32, given 64; "
        "start a new run folder (another --out) for a different run",
    )
    result = invoke("train", "--out", out, "--resume", "--epochs", "2", "--threads", "1", "--quiet", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["runs"]["dropout"]["epochs_run"] == 2
    result = invoke("demo", "--out", out, "--resume", "--quiet")
    assert_one_line_error(result, f"{out} holds a dropkit train run; resume it with dropkit train --resume")


def test_version():
    from dropkit import __version__

    result = invoke("--version")
    assert result.exit_code == 0 and result.stdout == f"dropkit {__version__}\n"


@pytest.mark.parametrize(
    "command", ["demo", "train", "sweep", "datasize", "family", "tune", "bench", "uncertainty", "analyze", "active"]
)
def test_flags_show_no_placeholder_and_options_their_default(command):
    result = runner.invoke(cli.app, [command, "--help"], env={"COLUMNS": "250", "NO_COLOR": "1"})
    assert result.exit_code == 0 and "<bool>" not in result.stdout
    if command in (
        "demo",
        "train",
        "sweep",
        "tune",
    ):  # generated from Settings: the command's default, from the one source
        epochs = 10 if command == "tune" else 20
        assert re.search(rf"--epochs +<int> +Epochs per run\. \(default: {epochs}\)", result.stdout), result.stdout


def test_without_the_lab_extra_dropkit_says_what_to_install():
    """typer missing (a plain `pip install dropkit`): one line on stderr, exit 2, no traceback."""
    import subprocess
    import sys

    blocker = (
        "import sys\n"
        "class NoTyper:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'typer' or name.startswith('typer.'):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, NoTyper())\n"
        "sys.argv = ['dropkit', 'train', '--help']\n"
        "from dropkit.cli import main\n"
        "main()\n"
    )
    done = subprocess.run([sys.executable, "-c", blocker], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == "", done.stderr
    assert done.stderr == 'dropkit: the command line needs the [lab] extra: pip install "dropkit[lab]"\n'


def test_the_demo_prints_knock_out_drops_in_percentage_points(tmp_path):
    result = invoke("demo", *TINY[:-1], "--out", tmp_path / "d")
    assert result.exit_code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if line.strip().startswith("dropout") and " pp" in line)
    assert re.search(r"-?\d+\.\d\d pp .* -?\d+\.\d\d pp", row), row


def test_datasize_end_to_end_and_its_list_options(tmp_path):
    out = tmp_path / "ds"
    result = invoke(
        "datasize",
        "--dataset",
        "digits",
        "--hidden",
        "16",
        "--sizes",
        "100",
        "200",
        "--seeds",
        "0",
        "1",
        "--no-full",
        "--steps",
        "5",
        "--threads",
        "1",
        "--out",
        out,
        "--json",
    )
    assert result.exit_code == 0, result.output
    state = json.loads((out / "datasize.json").read_text())
    assert state["sizes"] == [100, 200] and state["seeds"] == [0, 1] and state["settings"]["steps"] == 5
    assert sorted(state["cells"]) == ["n100_s0", "n100_s1", "n200_s0", "n200_s1"] and (out / "datasize.png").exists()
    assert json.loads(result.stdout)["sizes"] == [100, 200]


def test_family_end_to_end_with_a_list_of_kinds(tmp_path):
    out = tmp_path / "fam"
    result = invoke(
        "family",
        "--dataset",
        "digits",
        "--hidden",
        "16",
        "--dropout-types",
        "dropout2d",
        "drop_block",
        "--seeds",
        "0",
        "--steps",
        "5",
        "--threads",
        "1",
        "--out",
        out,
        "--quiet",
    )
    assert result.exit_code == 0, result.output
    runs = json.loads((out / "config.json").read_text())["runs"]
    assert list(runs) == ["none_s0", "dropout2d_s0", "drop_block_s0"]
    assert {r["model"] for r in runs.values()} == {"cnn"} and runs["drop_block_s0"]["eval_batch_size"] == 1000
    assert [r["kind"] for r in json.loads((out / "family.json").read_text())["rows"]] == [
        "none",
        "dropout2d",
        "drop_block",
    ]


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--train-size", "1"], "--train-size must be at least 2, got 1"),
        (["train", "--steps", "0"], "--steps must be at least 1, got 0"),
        (
            ["train", "--model", "cnn", "--input-dropout", "0.2"],
            "--input-dropout 0.2 is for the MLP; --model cnn drops inside (--dropout-type)",
        ),
        (
            ["family", "--dropout-types", "dropout2d", "bogus"],
            "--dropout-types must be one or more of dropout, dropout2d, drop_block, drop_path, got dropout2d, bogus",
        ),
        (["active", "--train-size", "100"], "--train-size (100) must not be below --pool (3000)"),
    ],
)
def test_the_issue_27_options_are_refused_by_their_flag(tmp_path, args, message):
    assert_one_line_error(invoke(*args, "--dataset", "digits", "--out", tmp_path / "x"), message)
