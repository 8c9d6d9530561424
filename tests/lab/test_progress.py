"""Progress on a terminal is rich bars; on a file or pipe, one plain line per epoch, at once and at full width."""

import io
import os
import re
import subprocess
import sys

from rich.console import Console

from dropkit.lab import report
from dropkit.lab.uncertainty import plain_lines

LINE = re.compile(r"^dropout epoch (\d+) loss \d+\.\d{4} train acc \d+\.\d\d% test acc \d+\.\d\d% \d+\.\d s$")


def test_a_pipe_gets_one_full_line_per_epoch_as_it_ends(tmp_path):
    env = {**os.environ, "COLUMNS": "30"}  # narrower than a line: nothing may be cut or wrapped
    command = [
        sys.executable,
        "-m",
        "dropkit",
        "train",
        "--dataset",
        "digits",
        "--hidden",
        "16",
        "--epochs",
        "3",
        "--batch-size",
        "200",
        "--out",
        str(tmp_path / "run"),
    ]
    with subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env) as process:
        first = process.stderr.readline().rstrip("\n")
        # the first epoch's line arrives while the run still trains two more epochs and writes its reports
        running = process.poll() is None
        rest = process.stderr.read().splitlines()
    assert process.returncode == 0, rest
    assert running, "the first epoch's line came only when the process ended"
    epochs = [first] + [line for line in rest if line.startswith("dropout epoch")]
    assert [LINE.match(line).group(1) for line in epochs] == ["1", "2", "3"], epochs


def test_a_terminal_gets_bars_and_no_plain_lines():
    file = io.StringIO()
    progress = report.RichProgress(Console(file=file, force_terminal=True, width=100))
    record = {
        "epoch": 1,
        "train_loss": 0.5,
        "train_acc": 0.5,
        "test_loss": 0.5,
        "test_acc": 0.5,
        "epoch_seconds": 1.0,
        "eval_seconds": 0.1,
    }
    with progress:
        progress.run_started("dropout", 10, 0)
        progress.step("dropout", 0.5)
        progress.epoch_done("dropout", record)
        progress.run_done("dropout")
    assert progress.live and "dropout epoch 1 loss" not in file.getvalue()


def test_report_progress_on_a_pipe_is_a_line_per_finished_stage():
    file = io.StringIO()
    progress = plain_lines(file, every=3600)
    for done in range(1, 5):
        progress("MC T=10", done, 4)
    progress("MC T=20", 8, 8)
    assert [line.split(" ")[:3] for line in file.getvalue().splitlines()] == [
        ["MC", "T=10:", "4/4"],
        ["MC", "T=20:", "8/8"],
    ]
