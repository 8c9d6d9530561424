"""DropoutSchedule: constant, linear warm-up, early and late dropout; checkpoints."""

import pytest
import torch
from torch import nn

import dropkit
import dropkit.nn as dnn


def model():
    return nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5), dnn.Dropout2d(0.5), dnn.GaussianNoise(0.3))


@pytest.mark.parametrize(
    "schedule, steps, expected",
    [
        ("constant", 0, [0.2, 0.2, 0.2, 0.2, 0.2]),
        ("linear", 4, [0.0, 0.05, 0.1, 0.15, 0.2]),
        ("early", 2, [0.2, 0.2, 0.0, 0.0, 0.0]),
        ("late", 3, [0.0, 0.0, 0.0, 0.2, 0.2]),
    ],
)
def test_rates_per_step_reach_every_dropout_module(schedule, steps, expected):
    m = model()
    sched = dropkit.DropoutSchedule(m, 0.2, schedule, steps=steps)
    seen = [sched.p] + [sched.step() for _ in range(4)]
    assert seen == pytest.approx(expected)
    assert m[1].p == m[2].p == pytest.approx(expected[-1]) and m[3].stddev == 0.3


def test_state_dict_resumes_where_it_stopped():
    a = dropkit.DropoutSchedule(model(), 0.4, "linear", steps=10)
    for _ in range(3):
        a.step()
    m = model()
    b = dropkit.DropoutSchedule(m, 0.1, "constant")
    b.load_state_dict(a.state_dict())
    assert b.state_dict() == a.state_dict() and m[1].p == pytest.approx(0.12)
    assert b.step() == a.step()


def test_types_and_from_string():
    m = model()
    sched = dropkit.DropoutSchedule.from_string(m, 0.3, "late:2", types=nn.Dropout2d)
    assert (sched.schedule, sched.steps, m[2].p, m[1].p) == ("late", 2, 0.0, 0.5)
    assert dropkit.DropoutSchedule.from_string(m, 0.3, "constant").schedule == "constant"


@pytest.mark.parametrize(
    "call, exc, message",
    [
        (lambda m: dropkit.DropoutSchedule(m, 0.2, "cosine"), ValueError, r"schedule must be one of 'constant', 'linear', 'early', 'late', got 'cosine'"),
        (lambda m: dropkit.DropoutSchedule(m, 0.2, "early"), ValueError, r"steps must be >= 1, got 0"),
        (lambda m: dropkit.DropoutSchedule(m, 1.2), ValueError, r"p must be between 0 and 1, got 1.2"),
        (lambda m: dropkit.DropoutSchedule.from_string(m, 0.2, "early:ten"), ValueError, r"schedule must look like NAME or NAME:STEPS with STEPS a non-negative int, got 'early:ten'"),
        (lambda m: dropkit.DropoutSchedule(m, 0.2).rate_at(-1), ValueError, r"step must be a non-negative int, got -1"),
    ],
)
def test_bad_arguments(call, exc, message):
    with pytest.raises(exc, match=message):
        call(model())


def test_usable_in_a_plain_training_loop():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), dnn.Dropout(0.5), nn.Linear(16, 1))
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    sched = dropkit.DropoutSchedule(m, 0.5, "early", steps=3)
    rates = []
    for _ in range(5):
        opt.zero_grad()
        m(torch.randn(8, 4)).pow(2).mean().backward()
        opt.step()
        rates.append(m[2].p)
        sched.step()
    assert rates == [0.5, 0.5, 0.5, 0.0, 0.0]
