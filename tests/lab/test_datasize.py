"""The training-set subset, the step budget and the data-size curve (issue 27)."""

import dataclasses
import json

import pytest
import torch
from _helpers.sigint import InterruptAt

from dropkit.lab import data, datasize, train
from dropkit.lab.errors import DataError, Interrupted, RunFolderError, SettingsError
from dropkit.lab.settings import Settings, split_sizes

TINY = Settings(dataset="digits", hidden=(32,), dropout=(0.5,), epochs=2, batch_size=50, lr=0.1, val_split=0.2)


@pytest.fixture(scope="module")
def digits():
    return data.load("digits")


def test_subset_is_stratified_in_every_prefix(digits):
    y = digits.y_train
    order = data.stratified_order(y, seed=3)
    assert torch.equal(order.sort().values, torch.arange(len(y)))  # a permutation
    share = torch.bincount(y).double() / len(y)
    for n in (10, 57, 100, 500, 1000):
        counts = torch.bincount(y[order[:n]], minlength=10).double()
        assert (counts - n * share).abs().max() <= 1.0, (n, counts.tolist())


def test_subset_is_reproducible_nested_and_seeded(digits):
    y = digits.y_train
    a, b = data.train_subset(y, 300, seed=1), data.train_subset(y, 300, seed=1)
    assert torch.equal(a, b)
    assert torch.equal(data.train_subset(y, 600, seed=1)[:300], a)  # a larger subset holds the smaller one
    assert not torch.equal(data.train_subset(y, 300, seed=2), a)
    with pytest.raises(DataError, match="^train_size 5000 is more than the 1438 examples of the training split$"):
        data.train_subset(y, 5000, seed=0)


def test_train_size_splits_validation_from_the_subset(digits):
    s = dataclasses.replace(TINY, train_size=200, seed=4)
    x, _, x_val, y_val = train._split(digits, s)
    assert (len(x), len(x_val)) == (160, 40) == split_sizes(s, 200)
    subset = data.train_subset(digits.y_train, 200, seed=4)
    assert torch.equal(x_val, digits.x_train[subset[:40]]) and torch.equal(x, digits.x_train[subset[40:]])
    assert torch.bincount(y_val, minlength=10).tolist() == [4] * 10  # the first 40 of a stratified order


def test_settings_check_the_new_fields():
    for field, value, message in (
        ("steps", 0, "--steps must be at least 1, got 0"),
        ("train_size", 1, "--train-size must be at least 2, got 1"),
        ("eval_every", 0, "--eval-every must be at least 1, got 0"),
    ):
        with pytest.raises(SettingsError, match=f"^{message}$"):
            Settings(**{field: value})


def test_train_size_is_refused_on_resume(tmp_path):
    s = dataclasses.replace(TINY, train_size=300)
    train.run_experiment({"dropout": s}, tmp_path)
    with pytest.raises(
        SettingsError, match="^--train-size cannot change on --resume: run 'dropout' has 300, given 400"
    ):
        train.run_experiment(
            {"dropout": dataclasses.replace(s, train_size=400)}, tmp_path, resume=True, given=["train_size"]
        )
    assert json.loads((tmp_path / "config.json").read_text())["runs"]["dropout"]["train_size"] == 300


def test_steps_give_the_weights_of_the_matching_epochs(digits, tmp_path):
    s = dataclasses.replace(TINY, train_size=300, epochs=3)  # 240 training examples: 5 steps per epoch
    by_epochs = train.fit(s, digits, tmp_path / "epochs.pt")
    by_steps = train.fit(dataclasses.replace(s, epochs=1, steps=15), digits, tmp_path / "steps.pt")
    for key, value in by_epochs["model"].items():
        assert torch.equal(by_steps["model"][key], value), key
    assert [r["test_acc"] for r in by_steps["history"]] == [r["test_acc"] for r in by_epochs["history"]]
    assert by_steps["stopped"] == "steps" and [r["step"] for r in by_steps["history"]] == [5, 10, 15]


def test_steps_end_inside_an_epoch_and_eval_every_thins_the_records(digits, tmp_path):
    s = dataclasses.replace(TINY, train_size=300, steps=23, eval_every=2)  # 5 steps per epoch: 4 epochs and 3 steps
    state = train.fit(s, digits, tmp_path / "r.pt")
    assert [(r["epoch"], r["step"]) for r in state["history"]] == [(2, 10), (4, 20), (5, 23)]
    whole = train.fit(dataclasses.replace(s, eval_every=1), digits, tmp_path / "every.pt")
    assert torch.equal(whole["model"]["0.weight"], state["model"]["0.weight"])  # evaluating changes nothing trained


def test_twins_differ_in_dropout_alone():
    pair = datasize.twins(dataclasses.replace(TINY, input_dropout=0.2, max_norm=3.0, steps=100), 400, seed=2)
    d, t = pair["dropout"], pair["no_dropout"]
    assert dataclasses.replace(t, dropout=d.dropout, input_dropout=d.input_dropout) == d
    assert (t.dropout, t.input_dropout, t.max_norm, t.train_size, t.seed) == ((0.0,), 0.0, 3.0, 400, 2)
    with pytest.raises(SettingsError, match="compares dropout with its twin"):
        datasize.twins(dataclasses.replace(TINY, dropout=(0.0,)), 400, seed=0)


CURVE = {"sizes": (100, 300), "seeds": (0, 1), "full": False}


def _strip_time(state):
    cells = {k: {f: v for f, v in c.items() if f != "wall_seconds"} for k, c in state["cells"].items()}
    return cells, state["curve"]


def test_curve_resumes_exactly_after_sigint(tmp_path):
    s = dataclasses.replace(TINY, steps=30)
    whole = datasize.run(s, tmp_path / "whole", **CURVE)
    assert [row["size"] for row in whole["curve"]] == [100, 300] and len(whole["cells"]) == 4
    assert (tmp_path / "whole" / "datasize.png").is_file()
    # 2 runs x 30 steps per cell: step 75 is inside the second cell's dropout run
    with pytest.raises(Interrupted, match="^interrupted: 1 of 4 cells of the curve done, cell n100_s1 saved$"):
        datasize.run(s, tmp_path / "cut", progress=InterruptAt(75), **CURVE)
    with pytest.raises(RunFolderError, match="holds a data-size curve; pass --resume"):
        datasize.run(s, tmp_path / "cut", **CURVE)
    with pytest.raises(SettingsError, match="holds a curve with other settings"):
        datasize.run(dataclasses.replace(s, steps=31), tmp_path / "cut", resume=True, **CURVE)
    resumed = datasize.run(s, tmp_path / "cut", resume=True, **CURVE)
    assert _strip_time(resumed) == _strip_time(whole)
    gain = whole["cells"]["n100_s0"]
    assert gain["gain_pp"] == pytest.approx(100 * (gain["no_dropout"]["test_error"] - gain["dropout"]["test_error"]))
