"""An option of the lab, written once: its default, help, how text becomes a value, and how a value is checked.

A settings dataclass (dropkit.lab.settings) declares each field with `Option(...).field()`; the
`dropkit` commands are generated from those fields (dropkit.lab.commands.common), docs/lab.md's
option table too (`markdown_table`), and the dataclass checks every value once, in `check_fields`,
with messages that name the command-line flag (`--batch-size must be at least 1, got 0`).

Examples:
    >>> import dataclasses
    >>> @dataclasses.dataclass
    ... class Run:
    ...     epochs: int = Option(20, "Epochs per run.", int, check=at_least(1)).field()
    ...     hidden: tuple = Option((256,), "Hidden widths.", parse=NumberList(int)).field()
    ...     def __post_init__(self):
    ...         check_fields(self)
    >>> Run(epochs=0)
    Traceback (most recent call last):
    dropkit.lab.errors.SettingsError: --epochs must be at least 1, got 0
    >>> from_text(Run, {"hidden": "1024,1024"}, {"epochs": 3})
    Run(epochs=3, hidden=(1024, 1024))
"""

from __future__ import annotations

import dataclasses
import numbers
import re
from collections.abc import Callable, Sequence
from typing import Any, TypeGuard

from .errors import SettingsError

__all__ = [
    "Option",
    "flag",
    "options",
    "check_fields",
    "from_text",
    "take",
    "shown",
    "at_least",
    "one_of",
    "in_range",
    "positive_or_none",
    "optional",
    "NumberList",
    "name_list",
    "markdown_table",
]


@dataclasses.dataclass(frozen=True)
class Option:
    """One option: its default, a one-sentence help, and how the command line gives it.

    Args:
        default: the value when the option is not given (the one place it is written).
        help: one or two sentences, without the default (help texts and docs add it).
        cli: what the command line reads (int, float, str; bool for an on/off flag); None: Python only.
        parse: text -> value for values that are not one `cli` (lists, durations); raises SettingsError.
        check: (value, flag) -> the value to keep; raises SettingsError naming the flag.
        shown: the default in words, where the value alone would mislead (None meaning "per optimizer").
    """

    default: Any
    help: str
    cli: type | None = str
    parse: Callable[[str, str], Any] | None = None
    check: Callable[[Any, str], Any] | None = None
    shown: str | None = None

    def field(self, default: Any = dataclasses.MISSING) -> Any:
        """A dataclass field with this option's default (or a command's own `default`) and the option as metadata."""
        value = self.default if default is dataclasses.MISSING else default
        return dataclasses.field(default=value, metadata={"option": self})


def flag(name: str) -> str:
    """The command-line flag of a setting: `--batch-size` for batch_size.

    Examples:
        >>> flag("batch_size")
        '--batch-size'
    """
    return "--" + name.replace("_", "-")


def options(cls) -> dict[str, Option]:
    """The options of a settings dataclass, by field name, in field order."""
    return {f.name: f.metadata["option"] for f in dataclasses.fields(cls) if "option" in f.metadata}


def check_fields(settings) -> None:
    """Check (and normalise) every field of a settings dataclass instance by its option's check: call in __post_init__."""
    for name, option in options(type(settings)).items():
        if option.check is not None:
            object.__setattr__(settings, name, option.check(getattr(settings, name), flag(name)))  # frozen ones too


def from_text(cls, given: dict[str, Any], defaults: dict[str, Any] | None = None):
    """An instance of `cls` from command-line values (text where the option parses text) over a command's defaults."""
    opts = options(cls)
    values = dict(defaults or {})
    for name, value in given.items():
        parse = opts[name].parse
        values[name] = parse(value, flag(name)) if parse is not None and isinstance(value, str) else value
    return cls(**values)


def take(opts: dict[str, Option], given: dict[str, Any], name: str) -> Any:
    """Pop option `name` from the options given on a command line: its value parsed and checked, or its default.

    Examples:
        >>> take({"seeds": Option((0,), "Seeds.", parse=NumberList(int))}, {"seeds": "1,2"}, "seeds")
        (1, 2)
    """
    option = opts[name]
    value = given.pop(name, option.default)
    if option.parse is not None and isinstance(value, str):
        value = option.parse(value, flag(name))
    return value if option.check is None else option.check(value, flag(name))


def shown(value: Any) -> str:
    """A value as the command line spells it: lists space-separated, None as 'unset'.

    Examples:
        >>> shown((256, 128)), shown(None), shown(5e-4)
        ('256 128', 'unset', '0.0005')
    """
    if isinstance(value, (tuple, list)):
        return " ".join(map(str, value))
    return "unset" if value is None else str(value)


def _integer(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise SettingsError(f"{name} must be an integer, got {value!r}")
    return int(value)


def at_least(low: int) -> Callable[[Any, str], int]:
    """A check: an integer >= low."""

    def check(value: Any, name: str) -> int:
        if _integer(value, name) < low:
            raise SettingsError(f"{name} must be at least {low}, got {value}")
        return int(value)

    return check


def one_of(choices: Sequence[str]) -> Callable[[Any, str], str]:
    """A check: one of `choices`."""

    def check(value: Any, name: str) -> str:
        if value not in choices:
            raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
        return value

    return check


def _real(value: Any) -> TypeGuard[float]:
    """A real number but not a bool (ints, floats, numpy scalars, fractions): a float to a type checker, as in PEP 484."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def in_range(low: float, high: float, *, closed: bool = False) -> Callable[[Any, str], float]:
    """A check: a number in [low, high) ([low, high] if closed), or >= low for high = inf."""

    def check(value: Any, name: str) -> float:
        ok = _real(value) and low <= value and (value <= high if closed else value < high)
        if not ok:
            what = f"at least {low:g}" if high == float("inf") else f"in [{low:g}, {high:g}{']' if closed else ')'}"
            raise SettingsError(f"{name} must be {what}, got {value}")
        return value

    return check


def positive_or_none(value: Any, name: str) -> float | None:
    """A check: unset (None) or a number > 0."""
    if value is not None and not (_real(value) and value > 0):
        raise SettingsError(f"{name} must be positive, got {value}")
    return value


def optional(check: Callable[[Any, str], Any]) -> Callable[[Any, str], Any]:
    """A check: unset (None), or a value that passes `check`.

    Examples:
        >>> optional(at_least(2))(None, "--train-size"), optional(at_least(2))(5, "--train-size")
        (None, 5)
    """

    def check_set(value: Any, name: str) -> Any:
        return None if value is None else check(value, name)

    return check_set


@dataclasses.dataclass(frozen=True)
class NumberList:
    """A parser: '1024,1024' or '1024 1024' to a tuple of `kind` (int or float).

    dropkit.lab.commands.argv joins `--hidden 1024 1024` into one value for the options that take one.

    Examples:
        >>> NumberList(int)("1024, 512", "--hidden")
        (1024, 512)
    """

    kind: type

    def __call__(self, text: str, name: str) -> tuple:
        try:
            return tuple(self.kind(v) for v in re.split(r"[,\s]+", text.strip()) if v)
        except ValueError:
            raise SettingsError(f"{name} must be a list of {self.kind.__name__}s like 1,2,3, got {text!r}") from None


def name_list(text: str, name: str) -> tuple[str, ...]:
    """A parser: 'random,bald' or 'random bald' to a tuple of names."""
    return tuple(v for v in re.split(r"[,\s]+", text.strip()) if v)


def markdown_table(columns: dict[str, dict[str, tuple[Option, Any]]]) -> str:
    """A markdown table of options: one row per option, its default under each command that takes it, its help.

    Args:
        columns: {command: {name: (option, that command's default)}}, in the order of the columns.

    Examples:
        >>> epochs = Option(20, "Epochs per run.", int)
        >>> print(markdown_table({"train": {"epochs": (epochs, 20)}, "tune": {"epochs": (epochs, 10)}}))
        | option | train | tune | what it sets |
        |---|---|---|---|
        | `--epochs` | `20` | `10` | Epochs per run. |
    """
    rows: dict[int, tuple[str, Option, dict[str, str]]] = {}
    for command, opts in columns.items():
        for name, (option, default) in opts.items():
            cell = (
                ("on" if default else "off")
                if option.cli is bool
                else option.shown
                if default is option.default and option.shown
                else shown(default)
            )
            rows.setdefault(id(option), (flag(name), option, {}))[2][command] = cell
    lines = ["| option | " + " | ".join(columns) + " | what it sets |", "|---" * (len(columns) + 2) + "|"]
    for name, option, cells in rows.values():
        row = [f"`{cells[c]}`" if c in cells else "" for c in columns]
        lines.append(f"| `{name}` | " + " | ".join(row) + f" | {option.help.replace('|', chr(92) + '|')} |")
    return "\n".join(lines)
