"""`dropkit bench`: dropkit's dropout timed against torch on this CPU."""

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from .. import bench as benchmark
from .common import Json, Quiet, known_errors

__all__ = ["run"]


@known_errors
def run(
    quick: Annotated[
        bool, typer.Option("--quick", help="Small sizes, short timings: a smoke test, not numbers.")
    ] = False,
    as_json: Json = False,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Also write the result as JSON to FILE.")] = None,
    quiet: Quiet = False,
):
    """Time dropkit's dropout against torch on this CPU and print the table."""
    console = Console(stderr=True)
    progress = None if quiet or as_json else (lambda message: console.print(message, style="dim", highlight=False))
    result = benchmark.run(quick=quick, progress=progress)
    if out is not None:
        benchmark.save(result, out)
    typer.echo(json.dumps(result, indent=2) if as_json else benchmark.format_table(result))
