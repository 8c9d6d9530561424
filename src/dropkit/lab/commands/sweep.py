"""`dropkit sweep`: test error and knock-out robustness against the hidden dropout rate, over seeds."""

from pathlib import Path

from .. import analyze, experiment, report
from ..options import NumberList, Option, options, take
from ..settings import SELECTION_VAL_SPLIT, Settings, rate, sweep_runs
from .common import Json, Out, Overwrite, Quiet, Resume, known_errors, show, with_options

__all__ = ["OPTIONS", "DEFAULTS", "run"]

DEFAULTS = {"val_split": SELECTION_VAL_SPLIT}  # the rate is selected on validation
OPTIONS = {  # sweep's own, besides the settings (--dropout is what it sweeps)
    "rates": Option(
        (0.0, 0.2, 0.4, 0.5, 0.6, 0.8),
        "Hidden dropout rates, e.g. --rates 0 0.2 0.5 0.8.",
        parse=NumberList(float),
        check=lambda rates, name: tuple(rate(r, name) for r in rates),
    ),
    "seeds": Option((0, 1), "Seeds per rate, e.g. --seeds 0 1 2.", parse=NumberList(int)),
}


@known_errors
@with_options({**options(Settings), **OPTIONS}, exclude=("dropout",), defaults=DEFAULTS)
def run(
    given: dict,
    out: Out = None,
    resume: Resume = False,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
    as_json: Json = False,
):
    """Test error and knock-out robustness against the dropout rate over seeds (Srivastava et al. Figure 9): sweep.json, sweep.png."""
    names = list(given)  # rates and seeds too: --resume checks them against the folder's runs
    rates, seeds = take(OPTIONS, given, "rates"), take(OPTIONS, given, "seeds")
    asked = sweep_runs(experiment.settings(given, DEFAULTS), rates=rates, seeds=seeds)
    out = out or Path("runs") / "sweep"

    def reports(_summary) -> dict:
        analyze.run(out)
        return experiment.write_sweep(out)

    result = experiment.run(
        "sweep",
        asked,
        out,
        given=names,
        resume=resume,
        overwrite=overwrite,
        quiet=quiet,
        keep_going=True,
        after=reports,
    )
    show(
        result,
        report.sweep_table(result),
        quiet,
        as_json,
        f"run folder: {out} (sweep.json, sweep.png, summary.json, {', '.join(analyze.FILES)})",
    )
