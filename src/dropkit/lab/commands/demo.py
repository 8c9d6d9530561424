"""`dropkit demo`: the seed network with dropout, without, and with L2 from the same start, then unit knock-outs."""

import json
from pathlib import Path

from rich.console import Group

from .. import analyze, experiment, report
from ..settings import DEMO_L2, SELECTION_VAL_SPLIT, Settings, demo_runs
from .common import Json, Out, Overwrite, Quiet, Resume, known_errors, options, show, with_options

__all__ = ["DEFAULTS", "run"]

DEFAULTS = {"val_split": SELECTION_VAL_SPLIT}  # the demo's epoch is chosen on validation


@known_errors
@with_options(options(Settings), defaults={**DEFAULTS, "l2": DEMO_L2})  # --l2: the l2 run's weight decay
def run(given: dict, out: Out = None, resume: Resume = False, overwrite: Overwrite = False, quiet: Quiet = False, as_json: Json = False):
    """Train the seed network with dropout, without, and with L2 from the same start; compare them, knock units out."""
    names = list(given)  # l2 included: demo_runs gives it to the l2 run
    l2 = given.pop("l2", DEMO_L2)
    asked = demo_runs(experiment.settings(given, DEFAULTS), l2=l2)
    out = out or Path("runs") / "demo"
    coadaptation = experiment.run(
        "demo", asked, out, given=names, resume=resume, overwrite=overwrite, quiet=quiet, after=lambda _: analyze.run(out)
    )
    summary = json.loads((out / "summary.json").read_text())  # now with each run's knock-out drops
    tables = Group(report.summary_table(summary), analyze.table(coadaptation))
    show(summary, tables, quiet, as_json, f"run folder: {out} (summary.json, metrics.jsonl, curves.png, {', '.join(analyze.FILES)})")
