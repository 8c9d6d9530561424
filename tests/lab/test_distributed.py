"""dropkit train --nproc 2 (torchrun + DDP over gloo): the same result as one process, exact resume after a
real SIGINT, one line for a crashed rank. Each launch stops by itself: a hung rank fails by the timeout."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from dropkit.lab import distributed, runs, train
from dropkit.lab.settings import Settings

ARGS = ["--dataset", "digits", "--hidden", "16", "--dropout", "0.3", "--batch-size", "64", "--lr", "0.1", "--quiet"]
EPOCHS = 6
TIMEOUT = 240  # seconds for one launch: torch's import in three processes on a shared 2-core machine


def _env():
    src = str(Path(distributed.__file__).parents[2])
    return {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}


def _launch(*args, wait=True, torchrun=False):
    """dropkit train --nproc N ..., or with torchrun=True the same through torchrun --nproc-per-node 2 -m dropkit."""
    launcher = ["torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m"] if torchrun else []
    command = [sys.executable, "-m", *launcher, "dropkit", "train", *ARGS, *map(str, args)]
    proc = subprocess.Popen(command, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if wait:
        proc.out, proc.err = proc.communicate(timeout=TIMEOUT)  # kept for the assertions' messages
    return proc


def _weights(out):
    return torch.load(runs.checkpoint_path(out, "dropout"), weights_only=False)


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("nproc2") / "run"
    proc = _launch("--nproc", 2, "--epochs", EPOCHS, "--out", out)
    assert proc.returncode == 0, proc.err
    return out


@pytest.mark.parametrize("n", [0, 1, 5, 64, 65])
@pytest.mark.parametrize("world,accumulate", [(1, 1), (2, 1), (1, 4), (2, 2), (3, 2)])
def test_parts_cut_the_global_batch_in_rank_then_micro_batch_order(n, world, accumulate):
    bounds = [
        distributed.part_bounds(n, rank=r, world=world, micro=m, accumulate=accumulate)
        for r in range(world)
        for m in range(accumulate)
    ]
    assert [lo for lo, _ in bounds][1:] == [hi for _, hi in bounds][:-1]
    assert bounds[0][0] == 0 and bounds[-1][1] == n


def test_two_ranks_train_as_one_process_does(two_ranks, tmp_path):
    s = Settings(
        dataset="digits", hidden=(16,), dropout=(0.3,), batch_size=64, lr=0.1, epochs=EPOCHS, masks="addressed"
    )
    train.run_experiment({"dropout": s}, tmp_path / "one")
    one, two = _weights(tmp_path / "one"), _weights(two_ranks)
    # Same masks; only the order of the gradient sums differs (DDP's all-reduce): close, not equal.
    for name, w in one["model"].items():
        torch.testing.assert_close(two["model"][name], w, msg=name)
    for a, b in zip(two["history"], one["history"], strict=True):
        assert abs(a["test_acc"] - b["test_acc"]) <= 0.0005, (a["epoch"], a["test_acc"], b["test_acc"])


def test_sigint_then_resume_ends_with_the_uninterrupted_weights(two_ranks, tmp_path):
    out = tmp_path / "run"
    proc = _launch("--nproc", 2, "--epochs", EPOCHS, "--out", out, wait=False)
    checkpoint = runs.checkpoint_path(out, "dropout")
    deadline = time.monotonic() + TIMEOUT
    while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)  # what Ctrl-C sends the launcher; torchrun forwards it to each rank once
    _, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 130, err
    assert "resume with: dropkit train" in err
    assert not _weights(out)["done"]
    resumed = _launch("--out", out, "--resume", torchrun=True)  # torchrun -m dropkit train works the same
    assert resumed.returncode == 0, resumed.err
    whole = _weights(two_ranks)
    # The same two processes, the same masks and the same sums: exactly the uninterrupted weights.
    for name, w in whole["model"].items():
        assert torch.equal(_weights(out)["model"][name], w), name


def _rank_pid(launcher: int, rank: int) -> int | None:
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            env = (stat.parent / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == launcher and f"RANK={rank}".encode() in env:
            return int(stat.parent.name)
    return None


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds the rank's process through /proc")
def test_a_killed_rank_is_one_error_line_and_nothing_hangs(tmp_path):
    out = tmp_path / "run"
    proc = _launch("--nproc", 2, "--epochs", 200, "--out", out, wait=False)
    deadline = time.monotonic() + TIMEOUT
    pid = None
    while pid is None and proc.poll() is None and time.monotonic() < deadline:
        pid = _rank_pid(proc.pid, 1) if runs.checkpoint_path(out, "dropout").exists() else None
        time.sleep(0.05)
    assert pid is not None, "rank 1 never started training"
    os.kill(pid, signal.SIGKILL)
    _, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 1
    assert err.strip().splitlines() == ["error: training process failed: rank 1 was killed by SIGKILL"], err
