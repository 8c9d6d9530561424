"""The data-size curve: dropout against its no-dropout twin on growing training sets (Srivastava et al. 2014, 7.4).

Each cell of the curve is one training-set size N and one seed: a run folder under `out/cells/`
with two runs of dropkit.lab.train (the dropout net and its twin without dropout, built from the
same seed, so the same initial weights and the same batches), on the class-stratified subset of N
examples that the seed draws (data.train_subset; validation is Settings.val_split of it). Every run
gets the same step budget, so a small set gets as many updates as the full one, and each run is
read at the epoch its validation accuracy selects: test error and test NLL there.

datasize.json is rewritten atomically after every cell; Ctrl-C saves the running cell's checkpoints,
and resume=True continues it exactly, so an interrupted curve ends with the numbers of a whole one.

Examples:
    >>> s = Settings(dataset="digits", hidden=(64,), dropout=0.5, val_split=0.2, steps=40)
    >>> result = run(s, "runs/datasize", sizes=(100, 400), seeds=(0, 1))  # doctest: +SKIP
    >>> [row["size"] for row in result["curve"]]  # doctest: +SKIP
    [100, 400, 1438]
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import statistics
from pathlib import Path

from . import data, report, runs, train
from .errors import Interrupted, RunFolderError, SettingsError
from .settings import Settings, on_subset, split_sizes

__all__ = ["FILES", "DEFAULT_SIZES", "DEFAULT_STEPS", "EVALUATIONS", "twins", "run", "curve", "table", "plot"]

FILES = ("datasize.json", "datasize.png")
DEFAULT_SIZES = (500, 1000, 2000, 5000, 10000)  # the full training split is added last
DEFAULT_STEPS = 3000  # updates per run at every size: 500 examples overfit, the full set sees ~7 epochs
EVALUATIONS = 20  # evaluations per run (Settings.eval_every is set to give about this many)


def twins(base: Settings, size: int, seed: int) -> dict[str, Settings]:
    """The cell's two runs: `base` with dropout and its twin without (input and hidden), on `size` examples.

    Both keep every other setting (max-norm included), so they differ in dropout alone. Evaluation
    runs every Settings.eval_every epochs, chosen to give about EVALUATIONS records per run.

    Examples:
        >>> pair = twins(Settings(dataset="digits", steps=100), 400, seed=1)
        >>> pair["no_dropout"].dropout, pair["dropout"].train_size, pair["dropout"].eval_every
        ((0.0, 0.0), 400, 2)
    """
    if not base.uses_dropout:
        raise SettingsError(
            "the data-size curve compares dropout with its twin without: give a nonzero --dropout or --input-dropout"
        )
    s = on_subset(dataclasses.replace(base, seed=seed), size, EVALUATIONS)
    return {"dropout": s, "no_dropout": dataclasses.replace(s, dropout=(0.0,), input_dropout=0.0)}


def _at_validation(history: list[dict]) -> dict:
    """A run's test error and NLL at the epoch validation selects, and its train-test gap there."""
    chosen = report.select_on_validation(history)
    assert chosen is not None, "run() refuses val_split 0, so every run has validation records"
    record = next(r for r in history if r["epoch"] == chosen["best_val_epoch"])
    return {
        "test_error": 1.0 - record["test_acc"],
        "test_nll": record["test_loss"],
        "gap": record["train_acc"] - record["test_acc"],
        "epoch": record["epoch"],
        "step": record["step"],
    }


def _cell(pair: dict[str, Settings], folder: Path, progress: train.Progress) -> dict:
    """Train (or continue) one cell's two runs in `folder`; their figures at validation's epoch and the gain."""
    resume = (folder / runs.CONFIG).is_file()
    summary = train.run_experiment(
        pair, folder, command="datasize", resume=resume, overwrite=not resume, progress=progress
    )
    histories: dict[str, list[dict]] = {}
    for line in (folder / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        histories.setdefault(record["run"], []).append(record)
    s = pair["dropout"]
    assert s.train_size is not None, "twins() sets each cell's training-set size"
    n_train, n_val = split_sizes(s, s.train_size)
    cell = {
        "size": s.train_size,
        "seed": s.seed,
        "n_train": n_train,
        "n_val": n_val,
        "steps": histories["dropout"][-1]["step"],
    }
    cell.update({name: _at_validation(histories[name]) for name in pair})
    cell["gain_pp"] = 100 * (cell["no_dropout"]["test_error"] - cell["dropout"]["test_error"])
    cell["nll_gain"] = cell["no_dropout"]["test_nll"] - cell["dropout"]["test_nll"]
    cell["wall_seconds"] = sum(r["wall_seconds"] for r in summary["runs"].values())
    return cell


def _spread(values: list[float]) -> dict:
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
    }


def curve(cells: list[dict]) -> list[dict]:
    """Per training-set size, over its seeds: test error and NLL of both runs, and the gain (pp) of dropout.

    Examples:
        >>> c = {"size": 500, "no_dropout": {"test_error": 0.2, "test_nll": 0.6}, "dropout": {"test_error": 0.19, "test_nll": 0.5},
        ...      "gain_pp": 1.0, "nll_gain": 0.1}
        >>> curve([c, {**c, "gain_pp": 3.0}])[0]["gain_pp"]["mean"]
        2.0
    """
    rows = []
    for size in sorted({c["size"] for c in cells}):
        at = [c for c in cells if c["size"] == size]
        row = {"size": size, "seeds": len(at)}
        for name in ("dropout", "no_dropout"):
            row[name] = {k: _spread([c[name][k] for c in at]) for k in ("test_error", "test_nll")}
        row["gain_pp"] = _spread([c["gain_pp"] for c in at])
        row["nll_gain"] = _spread([c["nll_gain"] for c in at])
        row["every_seed_gains"] = all(c["gain_pp"] > 0 for c in at)
        rows.append(row)
    return rows


def _fresh(path: Path, out: Path, asked: dict, resume: bool, overwrite: bool) -> dict:
    """datasize.json's state to continue: the file's on resume (same settings only), else a new one."""
    if resume:
        if not path.is_file():
            raise RunFolderError(f"nothing to resume in {out}: no datasize.json")
        state = json.loads(path.read_text())
        for key, value in asked.items():
            if state[key] != value:
                raise SettingsError(
                    f"{out} holds a curve with other {key}; run it with the same options, or use another --out"
                )
        return state
    if path.exists() or (out / "cells").exists():
        if not overwrite:
            raise RunFolderError(
                f"{out} holds a data-size curve; pass --resume to continue it or --overwrite to replace it"
            )
        shutil.rmtree(out / "cells", ignore_errors=True)
    return {**asked, "cells": {}}


def run(
    base: Settings,
    out,
    *,
    sizes=DEFAULT_SIZES,
    seeds=(0, 1, 2),
    full: bool = True,
    resume: bool = False,
    overwrite: bool = False,
    progress: train.Progress | None = None,
) -> dict:
    """Train the curve's cells (or continue them), write datasize.json and datasize.png; return the result.

    Args:
        base: the dropout net's settings (dataset, model, rates, optimizer, steps or epochs, val_split > 0).
        sizes: training-set sizes N (validation is held out of each). full: add the whole training split last.
        seeds: one cell per size and seed; the seed draws the subset, the initial weights, batches and masks.

    Raises:
        SettingsError: no dropout, no validation split, bad sizes or seeds, or other options on resume.
        RunFolderError: `out` holds a curve (without resume or overwrite), or nothing to resume.
        Interrupted: Ctrl-C; the running cell's checkpoints are saved and resume=True continues exactly.
    """
    out, progress = Path(out), progress or train.Progress()
    if base.val_split <= 0:
        raise SettingsError(
            f"--val-split must be above 0 for the data-size curve (each run is read at validation's epoch), got {base.val_split}"
        )
    if not seeds or len(set(seeds)) != len(seeds):
        raise SettingsError(f"--seeds must be distinct ints, got {', '.join(map(str, seeds)) or 'none'}")
    ds = data.load(base.dataset, base.data_dir, base.download)
    base = dataclasses.replace(base, dataset=ds.name, download=False)
    n_full = len(ds.y_train)
    points = sorted(set(sizes)) + ([n_full] if full and n_full not in sizes else [])
    bad = [n for n in points if not 2 <= n <= n_full]
    if not points or bad:
        raise SettingsError(
            f"--sizes must be between 2 and the {n_full} training examples of {ds.name}, got {', '.join(map(str, bad)) or 'none'}"
        )
    # as the file gives it back (tuples as lists), so a resume compares like with like
    asked = json.loads(json.dumps({"settings": base.to_dict(), "sizes": points, "seeds": list(seeds)}))
    path = out / FILES[0]
    with runs.lock(out):
        state = _fresh(path, out, asked, resume, overwrite)
        todo = [(n, seed) for n in points for seed in seeds]
        for n, seed in todo:
            name = f"n{n}_s{seed}"
            if name in state["cells"]:
                continue
            try:
                state["cells"][name] = _cell(twins(base, n, seed), out / "cells" / name, progress)
            except Interrupted:
                raise Interrupted(
                    f"interrupted: {len(state['cells'])} of {len(todo)} cells of the curve done, cell {name} saved"
                ) from None
            cell = state["cells"][name]
            progress.log(
                f"N={n} seed {seed}: test error {100 * cell['dropout']['test_error']:.2f}% with dropout, "
                f"{100 * cell['no_dropout']['test_error']:.2f}% without: gain {cell['gain_pp']:+.2f} pp"
            )
            state["curve"] = curve(list(state["cells"].values()))
            state["load_average"] = os.getloadavg()[0]
            report.write_json(path, state)
        state["curve"] = curve(list(state["cells"].values()))
        report.write_json(path, state)
        plot(state, out / FILES[1])
    return state


def table(state: dict):
    """A rich Table of the curve: per size, test error of both runs, dropout's gain over seeds, NLL.

    Examples:
        >>> rich.print(table(json.load(open("runs/datasize/datasize.json"))))  # doctest: +SKIP
    """
    from rich import box
    from rich.table import Table

    s = Settings.from_dict(state["settings"])
    net = "-".join(map(str, s.hidden))
    rates = f"input {s.input_dropout:g}, hidden {' '.join(f'{p:g}' for p in s.dropout)}" + (
        f", max-norm {s.max_norm:g}" if s.max_norm else ""
    )
    table = Table(
        title=f"{s.dataset}, hidden {net}, dropout {rates}: test error at validation's epoch",
        box=box.SIMPLE,
        pad_edge=False,
        collapse_padding=True,
    )
    table.caption = (
        "gain: the twin's test error minus dropout's, pp, mean (min..max) over seeds; NLL: test cross-entropy"
    )
    for column in ("N", "seeds", "twin", "dropout", "gain pp", "all>0", "NLL twin", "NLL drop"):
        table.add_column(column, justify="right", no_wrap=True)
    for row in state["curve"]:
        gain = row["gain_pp"]
        table.add_row(
            str(row["size"]),
            str(row["seeds"]),
            f"{100 * row['no_dropout']['test_error']['mean']:.2f}%",
            f"{100 * row['dropout']['test_error']['mean']:.2f}%",
            f"{gain['mean']:+.2f} ({gain['min']:+.2f}..{gain['max']:+.2f})",
            "yes" if row["every_seed_gains"] else "no",
            f"{row['no_dropout']['test_nll']['mean']:.3f}",
            f"{row['dropout']['test_nll']['mean']:.3f}",
        )
    return table


def plot(state: dict, path) -> None:
    """datasize.png: test error of both runs, dropout's gain in error and in NLL against N (log axis); seeds' range shaded."""
    from matplotlib.figure import Figure

    rows = state["curve"]
    sizes = [r["size"] for r in rows]
    fig = Figure(figsize=(13, 4.2), layout="constrained")
    error, gain, nll = fig.subplots(1, 3)
    for name, colour in (("no_dropout", "C0"), ("dropout", "C1")):
        spread = [r[name]["test_error"] for r in rows]
        error.plot(sizes, [100 * v["mean"] for v in spread], "o-", color=colour, label=name.replace("_", " "))
        error.fill_between(
            sizes, [100 * v["min"] for v in spread], [100 * v["max"] for v in spread], color=colour, alpha=0.2
        )
    for ax, key, label in ((gain, "gain_pp", "test error gain (pp)"), (nll, "nll_gain", "test NLL gain (nats)")):
        cells = list(state["cells"].values())
        ax.scatter([c["size"] for c in cells], [c[key] for c in cells], color="C2", alpha=0.5, s=14, label="seeds")
        ax.plot(sizes, [r[key]["mean"] for r in rows], "o-", color="C2", label="mean")
        ax.fill_between(sizes, [r[key]["min"] for r in rows], [r[key]["max"] for r in rows], color="C2", alpha=0.15)
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set(ylabel=label, title=f"dropout's gain in {label.split(' gain')[0]} (> 0: better)")
    error.set(ylabel="test error (%)", title="test error at validation's epoch")
    for ax in (error, gain, nll):
        ax.set(xscale="log", xlabel="training-set size N (validation held out of it)")
        ax.set_xticks(sizes, [f"{n:,}" for n in sizes], fontsize=7)
        ax.minorticks_off()
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    report.save_figure(fig, path, dpi=120)
