"""`dropkit uncertainty RUN_DIR`: weight scaling against MC dropout on a trained run, calibration, out-of-distribution scores."""

from pathlib import Path
from typing import Annotated

import typer

from .. import uncertainty as mc
from ..options import NumberList, Option, take
from .common import Json, Quiet, known_errors, show, with_options

__all__ = ["OPTIONS", "run"]

OPTIONS = {
    "samples": Option((1, 2, 5, 10, 20, 50, 100), "MC sample counts T, e.g. --samples 1 10 50.", parse=NumberList(int))
}


@known_errors
@with_options(OPTIONS)
def run(
    given: dict,
    run_dir: Annotated[Path, typer.Argument(help="Run folder written by dropkit demo or train.")],
    run: Annotated[str, typer.Option("--run", help="Which run of the folder.")] = "dropout",
    seed: Annotated[int, typer.Option(help="Seed of the MC dropout masks.")] = 0,
    calibration: Annotated[
        bool, typer.Option("--calibration/--no-calibration", help="Temperature scaling on the run's validation split.")
    ] = True,
    ood: Annotated[
        str | None, typer.Option(help="Out-of-distribution set scored against the test split: digits.")
    ] = None,
    quiet: Quiet = False,
    as_json: Json = False,
):
    """Weight scaling vs MC dropout on a trained run: accuracy, NLL, ECE, Brier per T, temperature scaling, OOD; uncertainty.json."""
    samples = take(OPTIONS, given, "samples")
    with mc.progress_bar(quiet) as progress:
        result = mc.run(
            run_dir, run_name=run, samples=samples, seed=seed, calibration=calibration, ood=ood, progress=progress
        )
    written = [f for f in mc.FILES if f != "ood_hist.png" or ood is not None]
    show(result, mc.table(result), quiet, as_json, f"wrote {', '.join(written)} in {run_dir}")
