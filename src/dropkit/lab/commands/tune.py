"""`dropkit tune`: the dropout rates searched on validation with Optuna, the best retrained, test accuracy reported once."""

from pathlib import Path
from typing import Annotated

import typer

from .. import distributed, experiment, report, train
from .. import tune as tuning
from ..errors import Interrupted
from ..settings import SELECTION_VAL_SPLIT, Settings, parse_duration
from .common import Json, Nproc, Out, Quiet, known_errors, launch_workers, options, show, with_options

__all__ = ["DEFAULTS", "run"]

DEFAULTS = {"epochs": tuning.DEFAULT_EPOCHS, "val_split": SELECTION_VAL_SPLIT}  # per trial; rates chosen on validation


@known_errors
@with_options(options(Settings), exclude=("dropout", "input_dropout"), defaults=DEFAULTS)  # the rates are searched
def run(
    given: dict,
    ctx: typer.Context,
    trials: Annotated[
        int,
        typer.Option(
            help="Finished trials this worker (host and --out) should reach; each worker of a shared study runs its own."
        ),
    ] = 20,
    timeout: Annotated[str | None, typer.Option(help="Start no new trial after this long, e.g. 15m.")] = None,
    storage: Annotated[
        str | None,
        typer.Option(help="Optuna storage URL, e.g. postgresql://user:pw@host/db (default: SQLite in --out)."),
    ] = None,
    study: Annotated[
        str, typer.Option(help="Study name in the storage; workers of one search pass the same.")
    ] = "dropkit-tune",
    shared_rate: Annotated[
        bool, typer.Option("--shared-rate", help="One hidden rate for all layers instead of one per layer.")
    ] = False,
    tune_lr: Annotated[
        bool, typer.Option("--tune-lr", help="Also search the learning rate (0.2x to 5x of --lr or the default).")
    ] = False,
    tune_max_norm: Annotated[
        bool, typer.Option("--tune-max-norm", help="Also search the max-norm bound (1 to 6).")
    ] = False,
    prune: Annotated[
        bool, typer.Option("--prune/--no-prune", help="Median pruning on per-epoch validation accuracy.")
    ] = True,
    retrain: Annotated[
        bool,
        typer.Option(
            "--retrain/--no-retrain", help="Retrain the best on train+validation and report its test accuracy."
        ),
    ] = True,
    out: Out = None,
    quiet: Quiet = False,
    as_json: Json = False,
    nproc: Nproc = 1,
):
    """Search the dropout rates on validation with Optuna, retrain the best, report test accuracy once: tune.json."""
    launch_workers(ctx, nproc)
    if not distributed.lead():
        quiet, as_json = True, False  # rank 0 alone reports
    base = experiment.settings(given, DEFAULTS)
    out = out or Path("runs") / "tune"
    search = tuning.Search(shared_rate=shared_rate, lr=tune_lr, max_norm=tune_max_norm)
    progress = train.Progress() if quiet else report.RichProgress()
    try:
        with distributed.process_group(), progress:
            result = tuning.run(
                base,
                out,
                trials=trials,
                timeout=None if timeout is None else parse_duration(timeout, "--timeout"),
                storage=storage,
                study_name=study,
                search=search,
                prune=prune,
                retrain=retrain,
                progress=progress,
            )
    except Interrupted as e:
        raise Interrupted(f"{e}; the same command continues the study") from None
    if distributed.lead():
        show(
            result,
            tuning.table(result),
            quiet,
            as_json,
            f"folder: {out} (tune.json, tune_history.png, tune_rates.png, trials/)",
        )
