"""`dropkit demo`: the seed network with dropout, without, and with L2 from the same start, on all data and on scarce data."""

import json
import math
from pathlib import Path

from rich.console import Group

from .. import analyze, data, experiment, report
from ..settings import (
    DEMO_L2,
    SCARCE_SIZE,
    SCARCE_STEPS,
    SELECTION_VAL_SPLIT,
    Settings,
    demo_runs,
    scarce_runs,
    split_sizes,
)
from .common import Json, Out, Overwrite, Quiet, Resume, known_errors, options, show, with_options

__all__ = ["DEFAULTS", "scarce", "run"]

DEFAULTS = {"val_split": SELECTION_VAL_SPLIT}  # the demo's epoch is chosen on validation


def scarce(base: Settings, given, l2: float = DEMO_L2) -> dict[str, Settings]:
    """The scarce-data part's runs: demo_runs on SCARCE_SIZE examples (at most a quarter of the split) for SCARCE_STEPS updates.

    Given --steps or --epochs, the scarce part takes as many updates as the full-data part.
    """
    n_train = len(data.load(base.dataset, base.data_dir, base.download).y_train)
    steps = SCARCE_STEPS
    if "steps" in given or "epochs" in given:
        steps = base.total_steps(math.ceil(split_sizes(base, n_train)[0] / base.batch_size))
    return scarce_runs(base, l2, size=min(SCARCE_SIZE, n_train // 4), steps=steps)


@known_errors
@with_options(options(Settings), defaults={**DEFAULTS, "l2": DEMO_L2})  # --l2: the l2 run's weight decay
def run(
    given: dict,
    out: Out = None,
    resume: Resume = False,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
    as_json: Json = False,
):
    """Train the seed network with dropout, without, and with L2 from the same start, on all data and on scarce data."""
    names = list(given)  # l2 included: demo_runs gives it to the l2 run
    l2 = given.pop("l2", DEMO_L2)
    base = experiment.settings(given, DEFAULTS)
    out = out or Path("runs") / "demo"
    coadaptation = experiment.run(
        "demo",
        demo_runs(base, l2=l2),
        out,
        given=names,
        resume=resume,
        overwrite=overwrite,
        quiet=quiet,
        after=lambda _: analyze.run(out),
    )
    summary = json.loads((out / "summary.json").read_text())  # now with each run's knock-out drops
    # the scarce-data part: the same three runs on a small stratified subset, in out/scarce (resumed if it got that far)
    started = (out / "scarce" / "config.json").is_file()
    scarce_summary = experiment.run(
        "demo",
        scarce(base, given, l2),
        out / "scarce",
        given=names,
        resume=resume and started,
        overwrite=overwrite or not started,
        quiet=quiet,
    )
    tables = Group(report.summary_table(summary), report.summary_table(scarce_summary), analyze.table(coadaptation))
    sentences = "\n".join(
        (report.regime_sentence(summary, "All data"), report.regime_sentence(scarce_summary, "Scarce data"))
    )
    show(
        {**summary, "scarce": scarce_summary},
        tables,
        quiet,
        as_json,
        f"{sentences}\nrun folder: {out} (summary.json, metrics.jsonl, curves.png, {', '.join(analyze.FILES)}; scarce/)",
    )
