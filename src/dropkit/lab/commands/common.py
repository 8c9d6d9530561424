"""What every `dropkit` command is made of: options generated from the settings, known errors as one line, output.

A command module (dropkit.lab.commands.<name>) defines `run`, a typed function with a one-line
docstring, decorated with `@known_errors` and, for settings it shares, `@with_options(...)`. Its
own options are typer parameters, or Options when they take a list.

Examples:
    >>> from dropkit.lab.settings import Settings
    >>> [p.name for p in parameters({"epochs": (options(Settings)["epochs"], 10)})]
    ['epochs']
"""

import functools
import inspect
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from .. import distributed
from ..errors import Interrupted, LabError
from ..options import NumberList, Option, flag, name_list, options, shown
from .argv import LIST, NAMES, command_line

__all__ = [
    "Command",
    "Group",
    "Out",
    "Resume",
    "Overwrite",
    "Quiet",
    "Json",
    "Nproc",
    "LIST",
    "options",
    "parameters",
    "with_options",
    "known_errors",
    "launch_workers",
    "show",
]

Out = Annotated[Path | None, typer.Option("--out", "-o", help="Run folder (default runs/<command>).")]
Resume = Annotated[bool, typer.Option("--resume", help="Continue the run in --out from its checkpoints.")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace the run files in a non-empty --out.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars and no table.")]
Json = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout instead of a table.")]
Nproc = Annotated[
    int,
    typer.Option(
        "--nproc",
        min=1,
        help="Train on N processes (torchrun + DDP: gloo on CPU, nccl on GPU); the result does not depend on N.",
    ),
]


class _NoFlagPlaceholder:
    """On/off flags show no `<bool>` placeholder in --help: they take no value."""

    def get_params(self, ctx):
        params = super().get_params(ctx)
        for param in params:
            if getattr(param, "is_flag", False):
                param.metavar = ""
        return params


class Command(_NoFlagPlaceholder, TyperCommand):
    """A `dropkit` command (typer's, with flags shown as flags)."""


class Group(_NoFlagPlaceholder, TyperGroup):
    """The `dropkit` command group (typer's, with flags shown as flags)."""


def parameters(added: dict[str, tuple[Option, Any]]) -> list[inspect.Parameter]:
    """Keyword-only typer parameters for options {name: (option, the command's default)}; unset ones arrive as None.

    Help shows the command's default, from the option's one source: the default is written once.
    """
    out = []
    for name, (option, default) in added.items():
        if option.cli is bool:  # an on/off flag: unset is False
            annotation, value = Annotated[bool, typer.Option(flag(name), help=option.help)], False
        else:
            assert option.cli is not None, "with_options adds command-line options only"
            text = option.shown if default is option.default and option.shown else shown(default)
            metavar = LIST if isinstance(option.parse, NumberList) else NAMES if option.parse is name_list else None
            annotation = Annotated[
                option.cli | None, typer.Option(flag(name), help=f"{option.help} (default: {text})", metavar=metavar)
            ]
            value = None
        out.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=value))
    return out


def with_options(opts: dict[str, Option], *, exclude=(), defaults: dict[str, Any] | None = None):
    """Add the command-line options of `opts` (but `exclude`) to a command, with the command's own `defaults`.

    The command receives those given on the command line as `given`, a dict {name: value}; the
    options it took are its `.options` ({name: (option, default)}: docs/lab.md's table is made from them).
    """
    defaults = defaults or {}
    added = {
        name: (option, defaults.get(name, option.default))
        for name, option in opts.items()
        if option.cli is not None and name not in exclude
    }

    def decorate(fn):
        own = [p for p in inspect.signature(fn).parameters.values() if p.name != "given"]

        @functools.wraps(fn)
        def wrapper(**kwargs):
            given = {name: kwargs.pop(name) for name in added}
            return fn(given={n: v for n, v in given.items() if v is not None and v is not False}, **kwargs)

        wrapper.__signature__ = inspect.Signature(own + parameters(added))
        wrapper.options = added
        return wrapper

    return decorate


def known_errors(fn):
    """Turn dropkit.lab's known errors into one line on stderr: exit status 2, or 130 for Ctrl-C."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except LabError as e:
            typer.echo(str(e) if isinstance(e, Interrupted) else f"error: {e}", err=True)
            raise typer.Exit(130 if isinstance(e, Interrupted) else 2) from None
        except Exception as e:
            if not distributed.is_worker():
                raise
            distributed.record_crash(e)  # the launcher prints one line for the rank that failed first
            raise typer.Exit(1) from None

    return wrapper


def launch_workers(ctx: typer.Context, nproc: int) -> None:
    """With --nproc N > 1 in the launching process, run the same command in N torchrun workers and exit with their status."""
    if nproc > 1 and not distributed.is_worker():
        raise typer.Exit(distributed.launch(nproc, command_line(ctx, skip=("nproc",))))


def show(result: dict, table, quiet: bool, as_json: bool, footer: str) -> None:
    """The result as JSON, or its table and a footer line (nothing with --quiet)."""
    from rich.console import Console

    if as_json:
        typer.echo(json.dumps(result, indent=2))
    elif not quiet:
        Console().print(table)
        typer.echo(footer)
