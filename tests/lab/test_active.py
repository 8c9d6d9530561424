"""`dropkit active`: a tiny active-learning run on the bundled digits, end to end, resumed, and its errors."""

import json

import pytest
import torch
from typer.testing import CliRunner

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

from dropkit import cli  # noqa: E402
from dropkit.lab import active  # noqa: E402
from dropkit.lab.errors import SettingsError  # noqa: E402
from dropkit.lab.models import build_mlp  # noqa: E402
from dropkit.mc.acquisition import bald  # noqa: E402

TINY = dict(
    dataset="digits",
    initial=1,
    acquire=4,
    budget=18,
    pool=120,
    samples=3,
    steps=4,
    batch_size=16,
    joint_samples=16,
    hidden=(16,),
    dropout=(0.5,),
    threads=1,
)


def test_cli_end_to_end(tmp_path):
    out = tmp_path / "al"
    args = [
        "active",
        "--out",
        str(out),
        "--dataset",
        "digits",
        "--initial",
        "1",
        "--acquire",
        "4",
        "--budget",
        "18",
        "--pool",
        "120",
        "--samples",
        "3",
        "--steps",
        "4",
        "--threads",
        "1",
        "--hidden",
        "16",
        "--dropout",
        "0.5",
        "--seeds",
        "3",
        "--quiet",
    ]
    result = CliRunner().invoke(cli.app, cli.join_list_options(args))
    assert result.exit_code == 0, result.output
    state = json.loads((out / "active.json").read_text())
    assert (out / "active.png").stat().st_size > 0
    assert sorted(state["runs"]) == sorted(f"{s}/{seed}" for s in active.STRATEGIES for seed in (3,))
    starts = {}
    for key, record in state["runs"].items():
        strategy, seed = key.split("/")
        assert record["done"]
        assert [p["labels"] for p in record["curve"]] == [10, 14, 18]  # 1 per class, then 4 per round
        assert len(record["labelled"]) == 18 == len(set(record["labelled"]))
        assert all(0 <= i < 120 for i in record["labelled"])
        assert all(0 <= p["test_acc"] <= 1 for p in record["curve"])
        starts.setdefault(seed, set()).add(tuple(sorted(record["labelled"][:10])))
    assert all(len(s) == 1 for s in starts.values())  # every strategy starts from the seed's same labelled set


def test_interrupted_run_resumes_to_the_uninterrupted_result(tmp_path):
    s = active.ActiveSettings(strategies=("random", "batchbald"), **TINY)
    whole = active.run(tmp_path / "whole", s)

    def stop_after_four(stage, done, total):
        if done == 4:
            raise KeyboardInterrupt

    with pytest.raises(active.Interrupted, match=r"interrupted: 4 of 6 rounds saved in .*active.json"):
        active.run(tmp_path / "cut", s, progress=stop_after_four)
    partial = json.loads((tmp_path / "cut" / "active.json").read_text())
    assert sum(len(r["curve"]) for r in partial["runs"].values()) == 4
    resumed = active.run(tmp_path / "cut", s, resume=True)
    for key in whole["runs"]:
        assert resumed["runs"][key]["labelled"] == whole["runs"][key]["labelled"]
        # the same labelled points and seeds: the same weights, hence the same accuracies
        assert [p["test_acc"] for p in resumed["runs"][key]["curve"]] == [
            p["test_acc"] for p in whole["runs"][key]["curve"]
        ]


def test_acquisition_picks_unlabelled_points_by_the_strategy():
    torch.manual_seed(0)
    model = active._unfused(build_mlp(5, (16,), 3, dropout=0.5)).eval()
    x = torch.randn(40, 5, generator=torch.Generator().manual_seed(1))
    s = active.ActiveSettings(samples=6, prefilter=2, joint_samples=16)
    probs = active._mc_probs(model, x, s, seed=3)

    assert active.acquire("bald", model, x, 5, s, seed=3) == bald(probs).topk(5).indices.tolist()
    picks = active.acquire("batchbald", model, x, 5, s, seed=3)
    assert len(set(picks)) == 5 and set(picks) <= set(bald(probs).topk(10).indices.tolist())  # within the prefilter
    assert len(set(active.acquire("random", model, x, 5, s, seed=3))) == 5


def test_settings_errors(tmp_path):
    with pytest.raises(
        SettingsError, match="^--strategies must be one or more of random, entropy, bald, batchbald, got margin"
    ):
        active.ActiveSettings(strategies=("margin",))
    with pytest.raises(SettingsError, match=r"^--budget \(200\) must not exceed --pool \(100\)$"):
        active.ActiveSettings(budget=200, pool=100)
    with pytest.raises(SettingsError, match="^--acquire must be at least 1, got 0$"):
        active.ActiveSettings(acquire=0)
    s = active.ActiveSettings(strategies=("random",), **TINY)
    active.run(tmp_path, s)
    with pytest.raises(
        SettingsError, match="active.json exists; pass --resume to continue it or --overwrite to start again"
    ):
        active.run(tmp_path, s)
    other = active.ActiveSettings(strategies=("bald",), **TINY)
    with pytest.raises(SettingsError, match="was written with other settings"):
        active.run(tmp_path, other, resume=True)
