"""`dropkit train`: one network (MLP or conv net) with the given settings, on one process or N (torchrun + DDP), into a run folder."""

from pathlib import Path

import typer

from .. import distributed, experiment, report
from ..settings import Settings
from .common import (
    Json,
    Nproc,
    Out,
    Overwrite,
    Quiet,
    Resume,
    known_errors,
    launch_workers,
    options,
    show,
    with_options,
)

__all__ = ["run"]


@known_errors
@with_options(options(Settings))
def run(
    given: dict,
    ctx: typer.Context,
    out: Out = None,
    resume: Resume = False,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
    as_json: Json = False,
    nproc: Nproc = 1,
):
    """Train one network (the MLP, or a conv net with --model) with the given settings and write a run folder."""
    launch_workers(ctx, nproc)
    if not distributed.lead():
        quiet, as_json = True, False  # rank 0 alone reports
    s = experiment.settings(given)
    out = out or Path("runs") / "train"
    asked = {"dropout" if s.uses_dropout else "no_dropout": s}
    summary = experiment.run("train", asked, out, given=list(given), resume=resume, overwrite=overwrite, quiet=quiet)
    show(
        summary,
        report.summary_table(summary),
        quiet,
        as_json,
        f"run folder: {out} (summary.json, metrics.jsonl, curves.png)",
    )
