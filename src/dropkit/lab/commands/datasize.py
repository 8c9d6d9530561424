"""`dropkit datasize`: dropout against its no-dropout twin over training-set sizes and seeds (Srivastava et al. 7.4)."""

from pathlib import Path
from typing import Annotated

import typer

from .. import datasize as curve
from .. import experiment, report, train
from ..errors import Interrupted
from ..options import NumberList, Option, options, take
from ..settings import SELECTION_VAL_SPLIT, Settings
from .common import Json, Out, Overwrite, Quiet, Resume, known_errors, show, with_options

__all__ = ["OPTIONS", "DEFAULTS", "run"]

# each run is read at validation's epoch; every size gets the same updates (--epochs instead: epochs at each size)
DEFAULTS = {"val_split": SELECTION_VAL_SPLIT, "steps": curve.DEFAULT_STEPS}
OPTIONS = {  # datasize's own, besides the settings (--train-size is what it varies)
    "sizes": Option(curve.DEFAULT_SIZES, "Training-set sizes N, e.g. --sizes 500 1000 2000.", parse=NumberList(int)),
    "seeds": Option(
        (0, 1, 2),
        "Seeds per size, e.g. --seeds 0 1 2 (each draws the subset, the weights, batches and masks).",
        parse=NumberList(int),
    ),
}
Full = Annotated[bool, typer.Option("--full/--no-full", help="Add the whole training split as the last size.")]


@known_errors
@with_options({**options(Settings), **OPTIONS}, exclude=("train_size", "eval_every"), defaults=DEFAULTS)
def run(
    given: dict,
    full: Full = True,
    out: Out = None,
    resume: Resume = False,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
    as_json: Json = False,
):
    """Dropout vs its no-dropout twin against training-set size, over seeds, read at validation's epoch: datasize.json, datasize.png."""
    sizes, seeds = take(OPTIONS, given, "sizes"), take(OPTIONS, given, "seeds")
    defaults = {**DEFAULTS, "steps": None} if "epochs" in given and "steps" not in given else DEFAULTS
    base = experiment.settings(given, defaults)
    out = out or Path("runs") / "datasize"
    progress = train.Progress() if quiet else report.RichProgress()
    try:
        with progress:
            result = curve.run(
                base, out, sizes=sizes, seeds=seeds, full=full, resume=resume, overwrite=overwrite, progress=progress
            )
    except Interrupted as e:
        raise Interrupted(f"{e}; resume with the same command and --resume") from None
    show(result, curve.table(result), quiet, as_json, f"folder: {out} ({', '.join(curve.FILES)}, cells/)")
