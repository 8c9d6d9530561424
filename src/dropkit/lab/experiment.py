"""A training command's experiment: the runs built from its settings, trained into a locked run folder, then its reports.

This is what `dropkit demo`, `train` and `sweep` share (dropkit.lab.commands): the mask policy for
split batches, the order "check the settings, then the folder, then write", the lock held until the
reports are written, and the sweep's report files.

Example:
    >>> from dropkit.lab.settings import Settings
    >>> run("train", {"dropout": Settings(dataset="digits", epochs=1)}, Path("runs/x"), given=[])  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Collection
from pathlib import Path

from . import distributed, report, runs, train
from .errors import Interrupted
from .settings import Settings, from_command_line

__all__ = ["settings", "run", "write_sweep"]


def settings(given: dict, defaults: dict | None = None) -> Settings:
    """The Settings of the options given on a command line over the command's defaults; checked before anything is written.

    --masks is addressed by default where batches are split (--accumulate, several processes): the
    masks must not depend on the split.
    """
    split = (given.get("accumulate") or 1) * int(os.environ.get("WORLD_SIZE", "1")) > 1
    if split and "masks" not in given:
        given = {**given, "masks": "addressed"}
    return from_command_line(Settings, given, defaults)


def run(
    command: str,
    asked: dict[str, Settings],
    out: Path,
    *,
    given: Collection[str],
    resume: bool = False,
    overwrite: bool = False,
    quiet: bool = False,
    keep_going: bool = False,
    after: Callable[[dict], dict] | None = None,
) -> dict:
    """Train the runs `asked` into `out` with progress bars unless quiet; return after(summary), or the summary.

    The run folder stays locked until `after` (the reports made from the runs) has written its files too.
    `given` names the options set on the command line (sweep's rates too); on --resume each is checked
    against the run folder's runs (dropkit.lab.settings.resume_runs).
    """
    lead = distributed.lead()  # under torchrun, rank 0 owns the folder and the terminal
    progress = report.RichProgress() if lead and not quiet else train.Progress()
    if lead:
        runs.check(out, resume, overwrite)
    with distributed.process_group(), runs.lock(out) if lead else contextlib.nullcontext():
        try:
            with progress:
                summary = train.run_experiment(
                    asked,
                    out,
                    command=command,
                    resume=resume,
                    overwrite=overwrite,
                    given=given,
                    keep_going=keep_going,
                    progress=progress,
                )
        except Interrupted as e:
            raise Interrupted(f"{e}; resume with: dropkit {command} --out {out} --resume") from None
        return summary if after is None or not lead else after(summary)


def write_sweep(out: Path) -> dict:
    """sweep.json and sweep.png of a sweep's run folder, from its config.json and summary.json; the sweep's dict."""
    config = runs.read_config(out)  # on --resume the rates come from here
    summary = json.loads((out / "summary.json").read_text())  # with the knock-out drops
    result = report.sweep_summary({n: Settings.from_dict(d) for n, d in config["runs"].items()}, summary)
    report.write_json(out / "sweep.json", result)
    report.plot_sweep(result, out / "sweep.png")
    return result
