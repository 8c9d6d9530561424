"""`dropkit analyze`: unit knock-outs, activation statistics and features on tiny trained runs of the bundled digits."""

import dataclasses
import json
import re

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

from dropkit import cli, rng  # noqa: E402
from dropkit.lab import analyze as A  # noqa: E402
from dropkit.lab import data, models, report, train  # noqa: E402
from dropkit.lab.models import SettingsError  # noqa: E402
from dropkit.lab.runs import load_model  # noqa: E402
from dropkit.lab.settings import Settings, demo_runs  # noqa: E402

TINY = Settings(dataset="digits", hidden=(32, 16), epochs=1, batch_size=64, threads=1)
# One run of each kind the lab makes: input dropout and three widths, alpha, gaussian, concrete, a schedule.
KINDS = {
    "dropout": dataclasses.replace(TINY, hidden=(48, 32, 16), dropout=(0.5,), input_dropout=0.2),
    "no_dropout": dataclasses.replace(TINY, dropout=(0.0,)),
    "alpha": dataclasses.replace(TINY, dropout_type="alpha"),
    "gaussian": dataclasses.replace(TINY, dropout_type="gaussian"),
    "concrete": dataclasses.replace(TINY, dropout_type="concrete", input_dropout=0.2),
    "early": dataclasses.replace(TINY, epochs=2, dropout_schedule="early:1"),
}


def invoke(*args):
    return CliRunner().invoke(cli.app, [str(a) for a in args])


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    train.run_experiment(KINDS, out, command="train")
    return out


@pytest.fixture(scope="module")
def test_set():
    return data.load_test_tensors("digits")


@pytest.fixture(scope="module")
def result(run_dir):
    return A.run(run_dir)


def test_every_run_kind_is_analyzed_layer_by_layer(result):
    assert list(result["runs"]) == list(KINDS)
    for name, r in result["runs"].items():
        assert [layer["width"] for layer in r["layers"]] == list(KINDS[name].hidden), name
        for layer in r["layers"]:
            assert len(layer["random"]["acc"]) == len(A.FRACTIONS) and all(
                len(a) == A.REPEATS for a in layer["random"]["acc"]
            )
            assert len(layer["worst"]["acc"]) == len(A.FRACTIONS)
            assert layer["random"]["removed"][0] == 0.0 and layer["worst"]["removed"][0] == 0.0
    dropout = result["runs"]["dropout"]["layers"][0]
    assert 0.7 < dropout["random"]["removed"][-1] < 1.0  # 5 masks of 48 units at 0.9: about 216 of 240 removed
    assert dropout["worst"]["removed"][A.FRACTIONS.index(0.5)] == 0.5  # exactly round(0.5 * 48) units


def test_knockout_at_fraction_0_is_the_plain_test_accuracy_exactly(run_dir, result, test_set):
    # Exact: at fraction 0 every multiplier is 1.0, so the layers run the same ops on the same batch shapes as evaluate.
    x, y = test_set
    for name in KINDS:
        model, settings = load_model(run_dir, name)
        _, acc = train.evaluate(model, x, y, settings.eval_batch_size)
        r = result["runs"][name]
        assert r["test_acc"] == acc, name
        assert r["test_acc"] == json.loads((run_dir / "summary.json").read_text())["runs"][name]["final_test_acc"], name
        for layer in r["layers"]:
            assert layer["random"]["acc"][0] == [acc] * A.REPEATS and layer["worst"]["acc"][0] == acc, name


def test_knockouts_hurt_and_the_worst_case_hurts_most(result):
    for name, r in result["runs"].items():
        first = r["layers"][0]
        assert first["random"]["acc_mean"][-1] < r["test_acc"], name
        assert first["worst"]["acc"][-1] <= first["random"]["acc_max"][-1], name
        assert r["drop_75"] == pytest.approx(
            r["test_acc"] - first["random"]["acc_mean"][A.FRACTIONS.index(0.75)], abs=0
        )


def test_knockout_masks_are_the_spec_shared_over_the_batch_and_nested():
    # Exact: the masks are the spec's bits compared with the numpy reference, times one float32 scale.
    masks = A.knockout_masks(40, 0.3, 5, layer=1, seed=7)
    for r, row in enumerate(masks):
        keep = rng.keep_mask((40,), 0.3, 7, 2**48 + r * 2**32)
        expected = torch.from_numpy(keep).to(torch.float32) * torch.tensor(rng.scale(0.3), dtype=torch.float32)
        assert torch.equal(row, expected), r
    assert not torch.equal(masks[0], masks[1])
    more = A.knockout_masks(40, 0.6, 5, layer=1, seed=7)
    assert not ((masks == 0) & (more != 0)).any(), "a unit removed at 0.3 must stay removed at 0.6"
    assert torch.equal(A.knockout_masks(4, 0.0, 2, layer=0, seed=3), torch.ones(2, 4))


def test_knockouts_reproduce_from_their_seed(run_dir, test_set):
    x, y = test_set
    model, _ = load_model(run_dir, "dropout")
    a = A.analyze_model(model, x, y, repeats=5, seed=11)
    assert A.analyze_model(model, x, y, repeats=5, seed=11) == a
    b = A.analyze_model(model, x, y, repeats=5, seed=12)
    assert b["layers"][0]["random"]["acc"] != a["layers"][0]["random"]["acc"]
    assert b["layers"][0]["worst"] == a["layers"][0]["worst"]  # the worst case draws nothing
    assert torch.equal(A.knockout_masks(48, 0.5, 5, layer=0, seed=11), A.knockout_masks(48, 0.5, 5, layer=0, seed=11))
    assert not torch.equal(
        A.knockout_masks(48, 0.5, 5, layer=0, seed=11), A.knockout_masks(48, 0.5, 5, layer=1, seed=11)
    )


def test_worst_case_removes_the_largest_mean_activation_first():
    mean = torch.tensor([0.3, 2.0, 0.0, 1.0, 0.5])
    assert torch.equal(A.worst_case_multipliers(mean, 0.4), torch.tensor([5 / 3, 0.0, 5 / 3, 0.0, 5 / 3]))
    assert torch.equal(A.worst_case_multipliers(mean, 0.0), torch.ones(5))
    assert torch.equal(A.worst_case_multipliers(torch.ones(1), 0.9), torch.zeros(1))  # round(0.9) = 1 unit: none left
    assert torch.equal(
        A.worst_case_multipliers(torch.ones(4), 0.5), torch.tensor([0.0, 0.0, 2.0, 2.0])
    )  # ties: lower index first


def test_activation_stats_against_numpy():
    g = torch.Generator().manual_seed(0)
    h = torch.relu(torch.randn(500, 6, generator=g, dtype=torch.float64))
    h[:, 2] = 0.0  # never fires
    stats = A.activation_stats(h)
    assert stats["never_firing"] == 1 and stats["correlated_units"] == 5
    assert stats["zeros"] == float((h == 0).double().mean()) and stats["mean"] == pytest.approx(
        float(h.mean()), rel=1e-12
    )
    live = np.delete(h.numpy(), 2, axis=1)
    corr = np.abs(np.corrcoef(live, rowvar=False))
    # Close, not exact: numpy and torch reduce in different orders.
    assert stats["mean_abs_corr"] == pytest.approx((corr.sum() - np.trace(corr)) / 20, rel=1e-10)
    assert sum(stats["histogram"]["counts"]) == int((h != 0).sum())
    assert A.activation_stats(torch.zeros(10, 3))["mean_abs_corr"] is None


def test_first_layer_features_are_the_first_units_incoming_weights():
    net = models.build_mlp(64, (100, 10), 10, dropout=0.5, input_dropout=0.2)
    assert torch.equal(A.first_layer_features(net), net[1].weight[:64])
    assert A.first_layer_features(models.build_mlp(64, (8,), 10)).shape == (8, 64)


def test_files_schema_and_summary(run_dir, result):
    assert json.loads((run_dir / "coadaptation.json").read_text()) == result
    assert set(result) == {"dataset", "n_test", "fractions", "repeats", "seed", "runs", "seconds"}
    assert result["fractions"] == list(A.FRACTIONS) and result["dataset"] == "digits"
    for r in result["runs"].values():
        assert set(r) == {"test_acc", "layers", "drop_50", "drop_75"}
        for layer in r["layers"]:
            assert set(layer) == {"width", "random", "worst", "activations"}
            assert set(layer["random"]) == {"acc", "acc_mean", "acc_std", "acc_min", "acc_max", "removed"}
            assert set(layer["activations"]) == {
                "zeros",
                "mean",
                "mean_abs_corr",
                "never_firing",
                "correlated_units",
                "histogram",
            }
    summary = json.loads((run_dir / "summary.json").read_text())
    for name, r in result["runs"].items():
        assert summary["runs"][name]["knockout_drop_50"] == r["drop_50"]
        assert summary["runs"][name]["knockout_drop_75"] == r["drop_75"]
    for name in A.FILES:
        assert (run_dir / name).stat().st_size > 0, name


def test_command_end_to_end(tmp_path):
    out = tmp_path / "run"
    train.run_experiment(demo_runs(TINY), out, command="demo")
    result = invoke("analyze", out, "--repeats", "6", "--seed", "3")
    assert result.exit_code == 0, result.output
    for text in ("co-adaptation", "50% out", "75% out", "dropout", "no_dropout", "l2", "coadaptation.json"):
        assert text in result.stdout, text
    saved = json.loads((out / "coadaptation.json").read_text())
    assert saved["repeats"] == 6 and saved["seed"] == 3
    as_json = invoke("analyze", out, "--repeats", "6", "--seed", "3", "--json")
    again = json.loads(as_json.stdout)
    assert {k: v for k, v in again.items() if k != "seconds"} == {k: v for k, v in saved.items() if k != "seconds"}


def test_sweep_shows_robustness_against_the_rate(tmp_path):
    out = tmp_path / "sweep"
    result = invoke(
        "sweep",
        "--dataset",
        "digits",
        "--hidden",
        "32",
        "--epochs",
        "1",
        "--batch-size",
        "100",
        "--rates",
        "0,0.5",
        "--seeds",
        "0,1",
        "--out",
        out,
        "--json",
    )
    assert result.exit_code == 0, result.output
    sweep = json.loads(result.stdout)
    summary = json.loads((out / "summary.json").read_text())
    drops = [summary["runs"][f"p0.5_s{seed}"]["knockout_drop_75"] for seed in (0, 1)]
    assert sweep["results"][1]["knockout_drop_75_mean"] == pytest.approx(np.mean(drops), abs=1e-15)
    assert sweep["results"][1]["knockout_drop_75_std"] == pytest.approx(np.std(drops, ddof=1), abs=1e-15)
    assert (out / "sweep.png").stat().st_size > 0 and (out / "coadaptation.png").exists()
    assert invoke("analyze", out, "--seed", "1", "--quiet").exit_code == 0  # new knock-outs: the sweep's panel follows
    redrawn = json.loads((out / "sweep.json").read_text())
    drops = [
        json.loads((out / "summary.json").read_text())["runs"][f"p0.5_s{seed}"]["knockout_drop_75"] for seed in (0, 1)
    ]
    assert redrawn["results"][1]["knockout_drop_75_mean"] == pytest.approx(np.mean(drops), abs=1e-15)
    assert redrawn["results"][1]["knockout_drop_75_mean"] != sweep["results"][1]["knockout_drop_75_mean"]


@pytest.mark.parametrize(
    "setup, message",
    [
        ("nothing", "{out} is not a run folder: no config.json"),
        ("no checkpoints", "{out} has no checkpoints to analyze: train it first (dropkit demo --out {out})"),
    ],
)
def test_a_folder_without_checkpoints_is_refused_in_one_line(tmp_path, setup, message):
    out = tmp_path / "run"
    out.mkdir()
    if setup == "no checkpoints":
        report.write_json(out / "config.json", {"command": "train", "runs": {"dropout": TINY.to_dict()}})
        (out / "checkpoints").mkdir()
    result = invoke("analyze", out)
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [f"error: {message.format(out=out)}"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"repeats": 0}, "--repeats must be an int in [1, 65536], got 0"),
        ({"repeats": 2.5}, "--repeats must be an int in [1, 65536], got 2.5"),
        ({"seed": -1}, "--seed must be in [0, 2**64), got -1"),
    ],
)
def test_bad_settings_name_the_argument(run_dir, kwargs, message):
    with pytest.raises(SettingsError, match=re.escape(message)):
        A.run(run_dir, **kwargs)


def test_overwrite_removes_the_report_of_the_replaced_run(tmp_path):
    out = tmp_path / "run"
    runs = {"dropout": dataclasses.replace(TINY, epochs=1)}
    train.run_experiment(runs, out)
    for name in A.FILES:
        (out / name).write_text("stale")
    train.run_experiment(runs, out, overwrite=True)
    assert [name for name in A.FILES if (out / name).exists()] == []
