"""The lab's conv net and its dropout kinds (issue 27)."""

import dataclasses
import time

import pytest
import torch

from dropkit.lab import cnn, data, family, train
from dropkit.lab.errors import SettingsError
from dropkit.lab.settings import Settings, build_model
from dropkit.nn import DropBlock2d, Dropout, Dropout2d, DropPath

KINDS = {"dropout": Dropout, "dropout2d": Dropout2d, "drop_block": DropBlock2d, "drop_path": DropPath}


@pytest.mark.parametrize("kind", list(KINDS))
def test_each_kind_sits_where_it_belongs_and_keeps_the_twins_weights(kind):
    model = "rescnn" if kind == "drop_path" else "cnn"
    s = Settings(model=model, dropout_type=kind, hidden=(32,), dropout=(0.2,))
    torch.manual_seed(0)
    net = build_model(s, 64, 10)
    torch.manual_seed(0)
    twin = build_model(dataclasses.replace(s, dropout=(0.0,)), 64, 10)
    layers = [m for m in net.modules() if isinstance(m, tuple(KINDS.values()))]
    assert [type(m) for m in layers] == [KINDS[kind]] * (1 if kind == "dropout" else 2)
    assert not any(isinstance(m, tuple(KINDS.values())) for m in twin.modules())
    mine, theirs = (
        list(net.state_dict().values()),
        list(twin.state_dict().values()),
    )  # indices shift by the dropout layers
    assert len(mine) == len(theirs) and all(torch.equal(a, b) for a, b in zip(mine, theirs))
    if kind == "dropout":  # after the dense hidden layer, right before the output layer
        assert isinstance(net[-2], Dropout) and net[-1].out_features == 10
    assert net(torch.randn(5, 64)).shape == (5, 10)


def test_bad_models_and_kinds_are_refused():
    with pytest.raises(SettingsError, match="^--model must be one of mlp, cnn, rescnn, got 'vgg'$"):
        Settings(model="vgg")
    with pytest.raises(
        SettingsError,
        match="^--dropout-type drop_path \\(stochastic depth\\) drops residual branches: use --model rescnn$",
    ):
        Settings(model="cnn", dropout_type="drop_path")
    with pytest.raises(
        SettingsError,
        match="^--dropout-type for --model cnn must be one of dropout, dropout2d, drop_block, drop_path, got 'alpha'$",
    ):
        Settings(model="cnn", dropout_type="alpha")
    with pytest.raises(
        SettingsError, match="^--input-dropout 0.2 is for the MLP; --model cnn drops inside \\(--dropout-type\\)$"
    ):
        Settings(model="cnn", input_dropout=0.2)
    with pytest.raises(
        SettingsError, match="^the conv net needs square images of side >= 4, and 10 features are not one$"
    ):
        build_model(Settings(model="cnn"), 10, 2)


def test_cnn_trains_on_digits_in_seconds(tmp_path):
    s = Settings(
        dataset="digits",
        model="rescnn",
        dropout_type="drop_path",
        hidden=(64,),
        dropout=(0.1,),
        epochs=4,
        lr=0.1,
        val_split=0.1,
        eval_batch_size=500,
        threads=1,
    )
    began = time.perf_counter()
    state = train.fit(s, data.load("digits"), tmp_path / "cnn.pt")
    last = state["history"][-1]
    assert last["test_acc"] > 0.8, last  # chance is 0.1
    assert len(state["history"]) == 4, time.perf_counter() - began


def test_family_summary_compares_each_kind_with_none():
    runs = family.family_runs(Settings(model="rescnn"), ["dropout2d", "drop_path"], [0, 1])
    assert [(n, s.dropout_type, s.dropout[0]) for n, s in runs.items()][::2] == [
        ("none_s0", "dropout", 0.0),
        ("dropout2d_s0", "dropout2d", 0.1),
        ("drop_path_s0", "drop_path", 0.1),
    ]
    acc = {"none": (0.80, 0.82), "dropout2d": (0.81, 0.84), "drop_path": (0.79, 0.80)}
    summary = {
        "dataset": "digits",
        "runs": {f"{k}_s{i}": {"test_acc_at_best_val": a[i], "gap": 0.01} for k, a in acc.items() for i in (0, 1)},
    }
    result = family.family_summary(runs, summary, dict.fromkeys(summary["runs"], 0.05))
    rows = {r["kind"]: r for r in result["rows"]}
    assert rows["dropout2d"]["vs_none_pp"] == pytest.approx(1.5) and rows["drop_path"]["vs_none_pp"] == pytest.approx(
        -1.5
    )
    assert result["best_conv_kind"] == {"kind": "dropout2d", "vs_none_pp": pytest.approx(1.5)}
    with pytest.raises(SettingsError, match="use --model cnn or rescnn"):
        family.family_runs(Settings(), ["dropout"], [0])


def test_knockout_drop_is_zero_for_a_net_that_ignores_its_dense_units():
    net = cnn.build_cnn(8, 10, dense=16).eval()
    with torch.no_grad():
        net[-1].weight.zero_()  # the output no longer reads the dense units: knocking them out changes nothing
    x, y = torch.randn(50, 64), torch.randint(0, 10, (50,))
    assert family.knockout_drop(net, x, y) == 0.0
