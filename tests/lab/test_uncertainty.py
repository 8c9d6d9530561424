"""`dropkit uncertainty`: the report on a tiny trained run of the bundled digits."""

import json
import math

import pytest
import torch

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

from dropkit.lab import LabError, train  # noqa: E402
from dropkit.lab import uncertainty as U  # noqa: E402
from dropkit.lab.models import SettingsError  # noqa: E402
from dropkit.lab.runs import load_model  # noqa: E402
from dropkit.lab.settings import Settings  # noqa: E402

SAMPLES = (1, 3, 8)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    settings = Settings(dataset="digits", hidden=(32, 16), epochs=4, batch_size=64, threads=1, val_split=0.2)
    train.run_experiment({"dropout": settings}, out, command="train")
    return out


@pytest.fixture(scope="module")
def result(run_dir):
    calls = []
    res = U.run(run_dir, samples=SAMPLES, batch_size=100, progress=lambda *a: calls.append(a))
    return res, calls


def test_schema_is_exactly_the_documented_one(run_dir, result):
    res, _ = result
    assert json.loads((run_dir / "uncertainty.json").read_text()) == res
    assert set(res) == {"weight_scaling", "mc", "auroc", "plain_forward_seconds", "temperature"}
    assert set(res["weight_scaling"]) == {"acc", "nll", "ece", "brier"}
    assert list(res["mc"]) == ["1", "3", "8"]
    for r in res["mc"].values():
        assert set(r) == {"acc", "nll", "ece", "brier", "seconds"}
        assert 0 <= r["acc"] <= 1 and 0 <= r["ece"] <= 1 and r["seconds"] > 0
    assert set(res["auroc"]) == {"entropy", "mutual_information"}
    assert all(0 <= v <= 1 for v in res["auroc"].values())
    assert res["plain_forward_seconds"] > 0
    for name in U.FILES[:-1]:  # all but ood_hist.png, which --ood writes
        assert (run_dir / name).stat().st_size > 0, name
    assert not (run_dir / "ood_hist.png").exists()


def test_weight_scaling_matches_training_evaluation(run_dir, result):
    model, settings = load_model(run_dir)
    from dropkit.lab import data

    x, y = data.load_test_tensors(settings.dataset, settings.data_dir)
    loss, acc = train.evaluate(model, x, y)
    assert result[0]["weight_scaling"]["acc"] == acc
    assert result[0]["weight_scaling"]["nll"] == pytest.approx(loss, rel=1e-5)


def test_learned_and_uncertainty_ranks_errors(result):
    res, _ = result
    assert res["mc"]["8"]["acc"] > 0.5  # 10 classes: chance is 0.1
    assert res["auroc"]["entropy"] > 0.6


def test_progress_reaches_total(result):
    _, calls = result
    stages = [c[0] for c in calls]
    assert stages[0] == "weight scaling" and stages[-1] == "plain eval forwards"
    assert "MC dropout T=8" in stages
    done = [c[1] for c in calls]
    assert done == sorted(done) and done[-1] == calls[-1][2]


def test_seed_makes_the_figures_reproducible(run_dir, result):
    again = U.run(run_dir, samples=SAMPLES, batch_size=100)
    other = U.run(run_dir, samples=SAMPLES, batch_size=100, seed=1)

    def figures(r):
        return {t: {k: v for k, v in m.items() if k != "seconds"} for t, m in r["mc"].items()}, r["auroc"]

    assert figures(again) == figures(result[0])
    assert figures(other) != figures(result[0])


def test_single_sample_has_no_epistemic_part(run_dir):
    res = U.run(run_dir, samples=(1,), batch_size=1000)
    # With T = 1 mutual information is 0 everywhere: a constant score ranks at chance.
    assert res["auroc"]["mutual_information"] == 0.5
    assert not math.isnan(res["auroc"]["entropy"])


def test_reference_samples():
    assert U.reference_samples(U.SAMPLES) == 50
    assert U.reference_samples((3, 7)) == 7


@pytest.mark.parametrize(
    "kwargs,msg",
    [
        ({"samples": ()}, "--samples must be a non-empty list of ints >= 1, got nothing"),
        ({"samples": (0, 5)}, "--samples must be a non-empty list of ints >= 1, got 0, 5"),
        ({"batch_size": 0}, "batch_size must be an int >= 1, got 0"),
    ],
)
def test_bad_options(run_dir, kwargs, msg):
    with pytest.raises(SettingsError, match=msg):
        U.run(run_dir, **kwargs)


def test_missing_run(run_dir, tmp_path):
    with pytest.raises(LabError, match="is not a run folder"):
        U.run(tmp_path)
    with pytest.raises(LabError, match="has no run 'l2'"):
        U.run(run_dir, run_name="l2")


def test_mc_samples_of_one_batch_differ(run_dir):
    from dropkit import mc_predict

    model, _ = load_model(run_dir)
    r = mc_predict(model, torch.randn(4, 64), samples=4, seed=0)
    assert not torch.equal(r.samples[0], r.samples[1])


def test_cli_json(run_dir):
    from typer.testing import CliRunner

    from dropkit.cli import app, join_list_options

    args = join_list_options(["uncertainty", str(run_dir), "--samples", "1", "4", "--seed", "2", "--json"])
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert list(report["mc"]) == ["1", "4"]
    assert report == json.loads((run_dir / "uncertainty.json").read_text())


@pytest.mark.parametrize(
    "args,msg",
    [
        (["--samples", "1,x"], "error: --samples must be a list of ints like 1,2,3, got '1,x'"),
        (["--samples", "0"], "error: --samples must be a non-empty list of ints >= 1, got 0"),
        (["--run", "nope"], "has no run 'nope'"),
    ],
)
def test_cli_errors_are_one_line(run_dir, args, msg):
    from typer.testing import CliRunner

    from dropkit.cli import app

    result = CliRunner().invoke(app, ["uncertainty", str(run_dir), "--quiet", *args])
    assert result.exit_code == 2
    assert msg in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_cli_help():
    from typer.testing import CliRunner

    from dropkit.cli import app

    result = CliRunner().invoke(app, ["uncertainty", "--help"])
    assert result.exit_code == 0 and "--samples" in result.stdout


@pytest.mark.filterwarnings("error::RuntimeWarning")  # no density of an empty histogram (0 wrong predictions)
def test_auroc_is_null_and_shown_as_n_a_when_every_prediction_is_right(run_dir, tmp_path, monkeypatch):
    # A model without dropout gives the same prediction on every MC pass; label the test split with it.
    from dropkit.lab import data

    model, settings = load_model(run_dir)
    x, _ = data.load_test_tensors(settings.dataset, settings.data_dir)
    plain = torch.nn.Sequential(torch.nn.Linear(x.shape[1], 10)).eval()
    with torch.no_grad():
        y = plain(x).argmax(1)
    monkeypatch.setattr(U, "load_model", lambda *a, **k: (plain, settings))
    monkeypatch.setattr(U.data, "load_test_tensors", lambda *a, **k: (x, y))
    with pytest.warns(UserWarning, match="mc_predict: the first two samples are identical; no dropout is active"):
        res = U.run(
            tmp_path, samples=(1, 2), batch_size=1000, calibration=False
        )  # the run folder is only read through load_model
    assert res["mc"]["2"]["acc"] == res["weight_scaling"]["acc"] == 1.0
    assert res["auroc"] == {"entropy": None, "mutual_information": None}
    assert json.loads((tmp_path / "uncertainty.json").read_text())["auroc"] == {
        "entropy": None,
        "mutual_information": None,
    }
    for name in U.FILES[:-1]:
        assert (tmp_path / name).stat().st_size > 0, name
    caption = U.table(res).caption
    assert caption.startswith("misclassification AUROC: predictive entropy n/a, mutual information n/a; ")


def test_aurocs_are_null_only_when_undefined():
    scores = {"predictive entropy": torch.tensor([0.1, 0.9, 0.2]), "mutual information": torch.tensor([0.0, 0.3, 0.1])}
    assert U._aurocs(scores, torch.tensor([True, False, True])) == {"entropy": 1.0, "mutual_information": 1.0}
    assert U._aurocs(scores, torch.tensor([True, True, True])) == {"entropy": None, "mutual_information": None}
    assert U._aurocs(scores, torch.tensor([False, False, False])) == {"entropy": None, "mutual_information": None}


def test_mc_samples_plot_is_written_atomically(result, tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    U._plot_against_samples(result[0], tmp_path / "mc_samples.png")
    assert (tmp_path / "mc_samples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    def interrupted(self, fname, **kwargs):
        with open(fname, "wb") as f:
            f.write(b"half an image")
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", interrupted)
    with pytest.raises(OSError, match="^disk full$"):
        U._plot_against_samples(result[0], tmp_path / "mc_samples.png")
    assert (tmp_path / "mc_samples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["mc_samples.png"]


def test_temperatures_are_fitted_on_the_validation_split(run_dir, result):
    from dropkit.lab import data
    from dropkit.mc import calibration

    res, _ = result
    temp = res["temperature"]
    model, settings = load_model(run_dir)
    ds = data.load(settings.dataset, settings.data_dir)
    _, _, x_val, y_val = train._split(ds, settings)
    assert temp["validation_points"] == len(y_val) == int(len(ds.x_train) * 0.2)
    with torch.no_grad():
        logits = torch.cat([model(x_val[i : i + 100]) for i in range(0, len(x_val), 100)])
    # the same logits in the same batches, the same LBFGS steps
    assert temp["weight_scaling"]["temperature"] == calibration.fit_temperature(logits, y_val)
    torch.testing.assert_close(
        temp["weight_scaling"]["before"]["nll"], res["weight_scaling"]["nll"]
    )  # one batch vs several
    for key in ("weight_scaling", "mc"):
        assert temp[key]["temperature"] > 0
        assert set(temp[key]["before"]) == set(temp[key]["after"]) == {"nll", "ece"}
    assert temp["mc"]["samples"] == 8
    assert temp["mc"]["before"] == {"nll": res["mc"]["8"]["nll"], "ece": res["mc"]["8"]["ece"]}
    assert U.table(res).row_count == 1 + len(SAMPLES) + 2  # weight scaling, each T, the two scaled rows


def test_a_run_without_validation_split_is_refused_in_one_line(run_dir, tmp_path, monkeypatch):
    import dataclasses

    model, settings = load_model(run_dir)
    monkeypatch.setattr(U, "load_model", lambda *a, **k: (model, dataclasses.replace(settings, val_split=0.0)))
    with pytest.raises(
        SettingsError,
        match=r"run 'dropout' of .* has no validation split to fit temperatures on \(it trained on all its training data\); train it with --val-split 0.1, or pass --no-calibration",
    ):
        U.run(tmp_path, samples=(1,))


def test_ood_digits_needs_28x28_images(run_dir):
    from dropkit.lab.data import DataError

    with pytest.raises(
        DataError,
        match="--ood digits needs a run trained on 28x28 images \\(fashion-mnist or mnist\\); this run's data is digits with 64 features",
    ):
        U.run(run_dir, samples=(1,), ood="digits")
    with pytest.raises(SettingsError, match="--ood must be one of digits, got 'svhn'"):
        U.run(run_dir, samples=(1,), ood="svhn")


def test_ood_report_on_a_28x28_run(tmp_path):
    from _helpers.idx_files import STEMS, make_idx_dir

    from dropkit.lab import data, ood
    from dropkit.mc import metrics

    data_dir = make_idx_dir(tmp_path / "fashion-mnist", n_train=200, n_test=100, side=28)
    settings = Settings(
        dataset="fashion-mnist",
        data_dir=str(data_dir),
        hidden=(16,),
        dropout=(0.5,),
        epochs=1,
        batch_size=50,
        threads=1,
        val_split=0.2,
    )
    train.run_experiment({"dropout": settings}, tmp_path / "run", command="train")
    res = U.run(tmp_path / "run", samples=(4,), ood="digits", batch_size=500)
    figures = res["ood"]
    assert {k: figures[k] for k in ("dataset", "points", "samples")} == {
        "dataset": "digits",
        "points": 1797,
        "samples": 4,
    }
    assert set(figures["scores"]) == {
        "MC predictive entropy",
        "MC mutual information",
        "MC 1 - max probability",
        "weight scaling 1 - max probability",
    }
    assert all(0 <= r["auroc"] <= 1 and 0 <= r["fpr95"] <= 1 for r in figures["scores"].values())
    assert (tmp_path / "run" / "ood_hist.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (
        "out-of-distribution (digits, 1797 points), AUROC / FPR at 95% TPR: MC predictive entropy"
        in U.table(res).caption
    )

    # weight scaling's score recomputed from the model: eval logits of test and digits inputs
    model, _ = load_model(tmp_path / "run")
    ds = data.load("fashion-mnist", str(data_dir))
    x_ood = ood.digits_like(ds)
    with torch.no_grad():
        score = 1 - torch.softmax(model(torch.cat([ds.x_test, x_ood])), 1).amax(1)
    positives = torch.arange(len(score)) >= len(ds.x_test)
    # one forward over both instead of batches of 500: close, not equal
    assert figures["scores"]["weight scaling 1 - max probability"]["auroc"] == pytest.approx(
        metrics.auroc(score, positives), abs=1e-3
    )

    # the digits' dark background is pixel value 0, standardised with the training images' mean and std
    raw = data.read_idx(data_dir / (STEMS["train_images"] + ".gz")).astype("float64")
    torch.testing.assert_close(
        x_ood[:, 0], torch.full((1797,), float(-raw.mean() / raw.std(ddof=1)), dtype=torch.float32)
    )
    assert x_ood.shape == (1797, 784)
