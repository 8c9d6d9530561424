"""`dropkit analyze RUN_DIR`: unit knock-outs, activation sparsity and correlation, first-layer features of every run."""

import json
from pathlib import Path
from typing import Annotated

import typer

from .. import analyze as analysis
from .. import experiment
from .common import Json, Quiet, known_errors, show

__all__ = ["run"]


@known_errors
def run(
    run_dir: Annotated[Path, typer.Argument(help="Run folder written by dropkit demo, train or sweep.")],
    repeats: Annotated[int, typer.Option(help="Random knock-outs per fraction and layer.")] = 5,
    seed: Annotated[int, typer.Option(help="Seed of the knock-out masks.")] = 0,
    quiet: Quiet = False,
    as_json: Json = False,
):
    """Unit knock-outs, activation sparsity and correlation, first-layer features of every run: coadaptation.json."""
    result = analysis.run(run_dir, repeats=repeats, seed=seed)
    if json.loads((run_dir / "config.json").read_text())["command"] == "sweep" and (run_dir / "summary.json").is_file():
        experiment.write_sweep(run_dir)  # sweep.png's robustness panel
    show(
        result,
        analysis.table(result),
        quiet,
        as_json,
        f"wrote {', '.join(analysis.FILES)} in {run_dir} ({result['seconds']:.1f} s)",
    )
