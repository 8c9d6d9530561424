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


def test_state_dict_with_no_steps_is_rejected_as_the_constructor_rejects_it():
    m = model()
    sched = dropkit.DropoutSchedule(m, 0.4, "linear", steps=10)
    sched.step()
    before = sched.state_dict()
    with pytest.raises(ValueError, match=r"^steps must be >= 1, got 0$"):
        sched.load_state_dict({**before, "steps": 0})
    assert sched.state_dict() == before and sched.rate_at(2) == pytest.approx(0.08)
    constant = dropkit.DropoutSchedule(model(), 0.1, "constant")
    constant.load_state_dict({"p": 0.3, "schedule": "constant", "steps": 0, "last_step": 5})
    assert constant.p == 0.3


@pytest.mark.parametrize("schedule, steps", [("late", 3), ("early", 2), ("linear", 2)])
def test_schedule_drives_a_model_with_concrete_dropout_and_leaves_its_learned_rate(schedule, steps):
    m = nn.Sequential(dnn.ConcreteDropout(nn.Linear(2, 2), 0.2), nn.Dropout(0.5))
    logit = m[0].p_logit.detach().clone()
    sched = dropkit.DropoutSchedule(m, 0.5, schedule, steps=steps)  # sets 0.0 at step 0 for "late" and "linear"
    rates = [sched.p] + [sched.step() for _ in range(3)]
    assert m[1].p == rates[-1] == 0.5 - (schedule == "early") * 0.5
    assert torch.equal(m[0].p_logit.detach(), logit)


def test_types_and_from_string():
    m = model()
    sched = dropkit.DropoutSchedule.from_string(m, 0.3, "late:2", types=nn.Dropout2d)
    assert (sched.schedule, sched.steps, m[2].p, m[1].p) == ("late", 2, 0.0, 0.5)
    assert dropkit.DropoutSchedule.from_string(m, 0.3, "constant").schedule == "constant"


@pytest.mark.parametrize(
    "call, exc, message",
    [
        (
            lambda m: dropkit.DropoutSchedule(m, 0.2, "cosine"),
            ValueError,
            r"schedule must be one of 'constant', 'linear', 'early', 'late', got 'cosine'",
        ),
        (lambda m: dropkit.DropoutSchedule(m, 0.2, "early"), ValueError, r"steps must be >= 1, got 0"),
        (lambda m: dropkit.DropoutSchedule(m, 1.2), ValueError, r"p must be between 0 and 1, got 1.2"),
        (
            lambda m: dropkit.DropoutSchedule.from_string(m, 0.2, "early:ten"),
            ValueError,
            r"schedule must look like NAME or NAME:STEPS with STEPS a non-negative int, got 'early:ten'",
        ),
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
