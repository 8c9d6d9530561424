"""dropkit.lab.settings and options: each option written once, checked once where it enters, its flag in every message.

The validator tests moved here from test_models.py with the validators (their messages now name the flag).
"""

import dataclasses
import re
from pathlib import Path

import pytest

from dropkit.lab import options, settings
from dropkit.lab.errors import SettingsError
from dropkit.lab.models import DROPOUT_TYPES
from dropkit.lab.settings import ActiveSettings, Settings

# The lab MLP's kinds as its messages list them (every variant built from a rate joins them)
MLP_TYPES = ", ".join(DROPOUT_TYPES)
QUOTED_TYPES = ", ".join(map(repr, DROPOUT_TYPES))

DOCS = Path(__file__).parents[2] / "docs" / "lab.md"


def test_dropout_rates():
    assert settings.dropout_rates(0.5, 3) == (0.5, 0.5, 0.5)
    assert settings.dropout_rates((0.2,), 2) == (0.2, 0.2)
    assert settings.dropout_rates(None, 2) == (0.0, 0.0)
    with pytest.raises(
        SettingsError, match=r"^--dropout needs one rate or one per hidden layer \(3\), got 2: \(0.5, 0.3\)$"
    ):
        Settings(hidden=(8, 8, 8), dropout=(0.5, 0.3))
    with pytest.raises(SettingsError, match="^--dropout must be between 0 and 1, got 1.5$"):
        Settings(dropout=1.5)


def test_bad_layers():
    with pytest.raises(
        SettingsError, match=r"^--hidden must list one or more positive layer widths \(integers\), got \(\)$"
    ):
        Settings(hidden=())
    for hidden in ([1.5], [8, 2.0], [True]):  # never truncated to a width
        with pytest.raises(
            SettingsError, match=r"^--hidden must list one or more positive layer widths \(integers\), got \("
        ):
            Settings(hidden=hidden, dropout=0.5)
    with pytest.raises(SettingsError, match="^--input-dropout must be between 0 and 1, got -0.1$"):
        Settings(input_dropout=-0.1)


@pytest.mark.parametrize(
    "kind, message",
    [
        ("foo", f"--dropout-type must be one of {QUOTED_TYPES}, got 'foo'"),
        (
            "gaussian_noise",
            "--dropout-type 'gaussian_noise' has no rate (it adds noise of a given stddev), so --dropout and "
            f"--dropout-schedule cannot set it; the lab's MLP takes {MLP_TYPES}",
        ),
        (
            "dropout2d",
            "--dropout-type 'dropout2d' drops whole channels or blocks of (N, C, ...) feature maps, and an MLP's "
            f"(batch, features) activations have none; the lab's MLP takes {MLP_TYPES}",
        ),
        (
            "drop_path",
            "--dropout-type 'drop_path' drops whole samples (stochastic depth), which needs a residual branch that "
            f"the MLP does not have; the lab's MLP takes {MLP_TYPES}",
        ),
    ],
)
def test_unusable_kinds_say_why(kind, message):
    with pytest.raises(SettingsError) as e:
        Settings(dropout_type=kind)
    assert str(e.value) == message


def test_concrete_rates_must_be_below_one():
    with pytest.raises(SettingsError) as e:
        Settings(hidden=(3,), dropout=1.0, dropout_type="concrete")
    assert (
        str(e.value)
        == "--dropout with --dropout-type concrete must be below 1 (the rate is learned as a logit), got 1.0"
    )


@pytest.mark.parametrize(
    "spec, message",
    [
        (
            "cosine",
            "--dropout-schedule 'cosine': schedule must be one of 'constant', 'linear', 'early', 'late', got 'cosine'",
        ),
        (
            "early:x",
            "--dropout-schedule 'early:x': schedule must look like NAME or NAME:STEPS with STEPS a non-negative int, "
            "got 'early:x'",
        ),
        ("late", "--dropout-schedule 'late': steps must be >= 1, got 0"),
    ],
)
def test_bad_dropout_schedules(spec, message):
    with pytest.raises(SettingsError) as e:
        Settings(dropout_schedule=spec)
    assert str(e.value) == message


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"batch_size": 0}, "--batch-size must be at least 1, got 0"),
        ({"epochs": 2.5}, "--epochs must be an integer, got 2.5"),
        ({"val_split": 1.0}, "--val-split must be in [0, 1), got 1.0"),
        ({"lr": 0.0}, "--lr must be positive, got 0.0"),
        ({"momentum": -1.0}, "--momentum must be at least 0, got -1.0"),
        ({"masks": "random"}, "--masks must be one of drawn, addressed, got 'random'"),
        ({"accumulate": 2}, "--accumulate 2 needs --masks addressed (drawn masks depend on the micro-batch split)"),
        ({"seed": -1}, "--seed must be in [0, 2**63), got -1"),
        ({"threads": -1}, "--threads must be at least 0, got -1"),
    ],
)
def test_every_message_names_the_flag(kwargs, message):
    with pytest.raises(SettingsError) as e:
        Settings(**kwargs)
    assert str(e.value) == message


def test_active_settings_share_the_options_and_their_checks():
    shared = ("dataset", "data_dir", "hidden", "dropout", "threads")
    for name in shared:  # the same Option object: one default, one help, one check
        assert options.options(ActiveSettings)[name] is options.options(Settings)[name]
        assert getattr(ActiveSettings(), name) == getattr(Settings(), name)
    with pytest.raises(SettingsError, match=r"^--dropout needs one rate or one per hidden layer \(1\), got 2"):
        ActiveSettings(hidden=(16,))
    with pytest.raises(
        SettingsError, match="^--dataset must be one of auto, fashion-mnist, mnist, digits, idx, got 'cifar'$"
    ):
        ActiveSettings(dataset="cifar")


def test_from_command_line_parses_text_and_puts_the_first_rate_on_every_given_layer():
    s = settings.from_command_line(Settings, {"hidden": "64 32 16", "time_budget": "1.5h"}, {"val_split": 0.1})
    assert (s.hidden, s.dropout, s.time_budget, s.val_split) == ((64, 32, 16), (0.5, 0.5, 0.5), 5400.0, 0.1)
    a = settings.from_command_line(ActiveSettings, {"strategies": "random,bald", "seeds": "0 1", "hidden": "16"})
    assert (a.strategies, a.seeds, a.dropout) == (("random", "bald"), (0, 1), (0.5,))
    with pytest.raises(SettingsError, match="^--seeds must be a list of ints like 1,2,3, got 'a'$"):
        settings.from_command_line(ActiveSettings, {"seeds": "a"})


def test_every_field_is_an_option_whose_default_passes_its_check():
    for cls in (Settings, ActiveSettings):
        for f in dataclasses.fields(cls):
            option = f.metadata["option"]  # no field outside the one source
            assert f.default == option.default and option.help.endswith("."), f.name
            assert option.check is None or option.check(f.default, options.flag(f.name)) == f.default, f.name


def _docs_table() -> str:
    text = DOCS.read_text()
    match = re.search(r"<!-- options: generated .*? -->\n(.*?)\n<!-- /options -->", text, re.S)
    assert match, "docs/lab.md has no generated option table"
    return match[1]


def test_the_docs_option_table_is_the_generated_one():
    """docs/lab.md's table is `python -m dropkit.lab.commands.docs`'s output; regenerate it when an option changes."""
    from dropkit.lab.commands import docs

    assert _docs_table() == docs.option_table()
    for name, option in options.options(Settings).items():
        if option.cli is not None:
            assert f"| `{options.flag(name)}` |" in _docs_table()
