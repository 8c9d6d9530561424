"""What a run leaves behind: summary.json, metrics.jsonl, tables, curves.png, sweep.json and sweep.png.

Every file is written atomically (a temp file in the same folder, then os.replace), so
an interrupted run never leaves a half-written report. JSON has no NaN or infinity: a
number that is not finite (a loss that overflowed) is written as null, so strict parsers
and jq read every file.

Examples:
    >>> summary = json.load(open("runs/demo/summary.json"))  # doctest: +SKIP
    >>> rich.print(summary_table(summary))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import statistics

from .._atomic import save_figure, write_atomic
from .progress import Progress

__all__ = [
    "write_atomic",
    "write_text",
    "write_json",
    "write_metrics",
    "finite_or_null",
    "save_figure",
    "select_on_validation",
    "summarize",
    "summary_table",
    "regime_sentence",
    "sweep_summary",
    "sweep_table",
    "plot_curves",
    "plot_sweep",
    "RichProgress",
    "epoch_line",
    "KNOCKOUT_FIELDS",
]

# What `dropkit analyze` adds to each run of summary.json: the mean test accuracy drop with 50% and
# 75% of the first hidden layer's units knocked out.
KNOCKOUT_FIELDS = ("knockout_drop_50", "knockout_drop_75")


def write_text(path, text: str) -> None:
    """Write a text file atomically."""
    write_atomic(path, lambda tmp: tmp.write_text(text))


def finite_or_null(obj):
    """`obj` with every float that is not finite (NaN, +-inf) replaced by None, in nested dicts, lists and tuples.

    Examples:
        >>> finite_or_null({"loss": float("nan"), "acc": [0.5, float("inf")]})
        {'loss': None, 'acc': [0.5, None]}
    """
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_or_null(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_or_null(v) for v in obj]
    return obj


def _json(obj, **options) -> str:
    return json.dumps(finite_or_null(obj), allow_nan=False, **options)


def write_json(path, obj) -> None:
    """Write JSON atomically, indented for people and stable for scripts; non-finite numbers become null."""
    write_text(path, _json(obj, indent=2) + "\n")


def write_metrics(path, histories: dict[str, list[dict]]) -> None:
    """metrics.jsonl: one JSON line per epoch per run, runs in order; non-finite numbers become null."""
    write_text(path, "".join(_json(r) + "\n" for history in histories.values() for r in history))


def select_on_validation(history: list[dict]) -> dict | None:
    """The epoch validation selects (highest val_acc; ties: lower val_loss, then earlier) and its figures.

    Returns None for a history without validation records (val_split 0): nothing can be selected honestly.

    Examples:
        >>> h = [{"epoch": 1, "val_acc": 0.8, "val_loss": 0.5, "test_acc": 0.79},
        ...      {"epoch": 2, "val_acc": 0.7, "val_loss": 0.6, "test_acc": 0.81}]
        >>> select_on_validation(h)
        {'best_val_epoch': 1, 'best_val_acc': 0.8, 'test_acc_at_best_val': 0.79}
    """
    records = [r for r in history if "val_acc" in r]
    if not records:
        return None
    best = min(records, key=lambda r: (-r["val_acc"], r["val_loss"], r["epoch"]))
    return {"best_val_epoch": best["epoch"], "best_val_acc": best["val_acc"], "test_acc_at_best_val": best["test_acc"]}


_SELECTED = ("best_val_epoch", "best_val_acc", "test_acc_at_best_val")


def summarize(dataset: str, runs: dict, results: dict) -> dict:
    """The stable summary: per run final test accuracy, test accuracy at the best validation epoch (None without a
    validation split), the oracle best test accuracy, final train accuracy, gap, median epoch time, wall time.

    Args:
        dataset: the data set's name. runs: name -> settings.Settings.
        results: name -> the dict train.fit returns (its "history" and "elapsed"); a run that diverged has
            "diverged" ({"epoch", "step"}) instead, and its entry gives that and "epochs_run" only.

    Examples:
        >>> summarize("digits", {"dropout": s}, {"dropout": state})["runs"]["dropout"]["gap"]  # doctest: +SKIP
        0.012
    """
    out = {"dataset": dataset, "epochs": max(s.epochs for s in runs.values()), "runs": {}}
    first = next(iter(runs.values()))
    if first.steps is not None or first.train_size is not None:  # the budget and data that replace epochs in the title
        out.update(steps=first.steps, train_size=first.train_size)
    for name, s in runs.items():
        history = results[name]["history"]
        if "diverged" in results[name]:  # stopped at a non-finite loss: no final figures to give
            out["runs"][name] = {
                "dropout": list(s.dropout) if any(s.dropout) else None,
                "input_dropout": s.input_dropout,
                "diverged": results[name]["diverged"],
                "epochs_run": len(history),
            }
            continue
        last = history[-1]
        out["runs"][name] = {
            "dropout": list(s.dropout) if any(s.dropout) else None,
            "input_dropout": s.input_dropout,
            "final_test_acc": last["test_acc"],
            # an oracle figure (the epoch chosen on the test set), kept for compatibility; never a result
            "best_test_acc": max(r["test_acc"] for r in history),
            **(select_on_validation(history) or dict.fromkeys(_SELECTED)),
            "final_train_acc": last["train_acc"],
            "gap": last["train_acc"] - last["test_acc"],
            "epoch_seconds": statistics.median(r["epoch_seconds"] for r in history),
            "wall_seconds": results[name]["elapsed"],
            "epochs_run": len(history),
        }
    return out


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def summary_table(summary: dict):
    """A rich Table of a summary: one row per run; dropout reads "input | hidden rates".

    Examples:
        >>> rich.print(summary_table(summary))  # doctest: +SKIP
    """
    from rich import box
    from rich.table import Table

    budget = f"{summary['steps']} steps" if summary.get("steps") else f"{summary['epochs']} epochs"
    examples = f", {summary['train_size']} training examples" if summary.get("train_size") else ""
    table = Table(
        title=f"{summary['dataset']}{examples}, {budget}: accuracy",
        box=box.SIMPLE,
        pad_edge=False,
        collapse_padding=True,
    )
    table.caption = (
        "test: last epoch. test@val: at the epoch of best validation accuracy (- without --val-split). "
        "oracle: best test accuracy over epochs, chosen on the test set: not a result."
    )
    for column in ("run", "dropout", "test", "test@val", "oracle", "train", "gap", "s/epoch", "wall s"):
        table.add_column(column, justify="left" if column in ("run", "dropout") else "right", no_wrap=True)
    for name, r in summary["runs"].items():
        rates = " ".join(f"{p:g}" for p in r["dropout"]) if r["dropout"] else "-"
        if r.get("input_dropout"):
            rates = f"{r['input_dropout']:g} | {rates}"
        if "diverged" in r:
            where = f"diverged at epoch {r['diverged']['epoch']}, step {r['diverged']['step']}"
            table.add_row(name, rates, where, *["-"] * (len(table.columns) - 3))
            continue
        table.add_row(
            name,
            rates,
            _pct(r["final_test_acc"]),
            "-" if r.get("test_acc_at_best_val") is None else _pct(r["test_acc_at_best_val"]),
            _pct(r["best_test_acc"]),
            _pct(r["final_train_acc"]),
            _pct(r["gap"]),
            f"{r['epoch_seconds']:.2f}",
            f"{r['wall_seconds']:.1f}",
        )
    return table


def regime_sentence(summary: dict, label: str) -> str:
    """One sentence on what a demo summary shows: does dropout win on test at validation's epoch, and the gaps.

    Examples:
        >>> r = {"test_acc_at_best_val": 0.9, "gap": 0.01}
        >>> print(regime_sentence({"runs": {"dropout": r, "no_dropout": {**r, "test_acc_at_best_val": 0.8, "gap": 0.1}}}, "Scarce"))
        Scarce: dropout wins on test at validation's epoch (90.00% against 80.00% without it); train-test gap 1.00% with dropout, 10.00% without.
    """
    runs = summary["runs"]
    mine, twin = runs["dropout"]["test_acc_at_best_val"], runs["no_dropout"]["test_acc_at_best_val"]
    verdict = "wins" if mine > twin else "ties" if mine == twin else "loses"
    l2 = f", {_pct(runs['l2']['test_acc_at_best_val'])} with L2" if "l2" in runs else ""
    return (
        f"{label}: dropout {verdict} on test at validation's epoch ({_pct(mine)} against {_pct(twin)} without it{l2}); "
        f"train-test gap {_pct(runs['dropout']['gap'])} with dropout, {_pct(runs['no_dropout']['gap'])} without."
    )


def sweep_summary(runs: dict, summary: dict) -> dict:
    """Per dropout rate over seeds: final test error (mean, sample std, min, max) and, with a validation split,
    validation error and test error at the best validation epoch; "selected" is the rate validation picks.

    Selection: the rate with the lowest mean validation error (ties: the lower rate); its test error is
    the one to report. "selected" is None without a validation split. Seeds whose run diverged are
    listed in "diverged_seeds" and left out of the statistics (None where every seed of a rate diverged).

    Examples:
        >>> sweep_summary(sweep_runs(base, [0, 0.5], [0, 1]), summary)["results"][0]["rate"]  # doctest: +SKIP
        0.0
    """
    knockout = _knockout_by_rate(runs, summary)
    by_rate: dict[float, list[tuple[int, dict]]] = {}
    diverged: dict[float, list[int]] = {}
    for name, s in runs.items():
        by_rate.setdefault(s.dropout[0], [])
        if "diverged" in summary["runs"][name]:  # recorded, left out of the statistics
            diverged.setdefault(s.dropout[0], []).append(s.seed)
            continue
        by_rate[s.dropout[0]].append((s.seed, summary["runs"][name]))
    results = []
    for rate in sorted(by_rate):
        per_seed = [r for _, r in sorted(by_rate[rate], key=lambda item: item[0])]
        errors = [1.0 - r["final_test_acc"] for r in per_seed]
        row = {
            "rate": rate,
            "test_error_mean": statistics.fmean(errors) if errors else None,
            "test_error_std": (statistics.stdev(errors) if len(errors) > 1 else 0.0) if errors else None,
            "test_error_min": min(errors, default=None),
            "test_error_max": max(errors, default=None),
            "test_errors": errors,
            "val_error_mean": None,
            "test_error_at_best_val_mean": None,
            "diverged_seeds": sorted(diverged.get(rate, [])),
        }
        if per_seed and all(r.get("best_val_acc") is not None for r in per_seed):
            row["val_error_mean"] = statistics.fmean(1.0 - r["best_val_acc"] for r in per_seed)
            row["test_error_at_best_val_mean"] = statistics.fmean(1.0 - r["test_acc_at_best_val"] for r in per_seed)
        row.update(knockout.get(rate, {}))
        results.append(row)
    selected = None
    trained = [r for r in results if r["test_errors"]]  # a rate whose every seed diverged cannot be selected
    if trained and all(r["val_error_mean"] is not None for r in trained):
        best = min(trained, key=lambda r: (r["val_error_mean"], r["rate"]))
        selected = {k: best[k] for k in ("rate", "val_error_mean", "test_error_at_best_val_mean", "test_error_mean")}
    seeds = sorted({s.seed for s in runs.values()})
    return {
        "dataset": summary["dataset"],
        "epochs": summary["epochs"],
        "seeds": seeds,
        "results": results,
        "selected": selected,
    }


def _knockout_by_rate(runs: dict, summary: dict) -> dict[float, dict]:
    """Per rate, the mean and std over seeds of the runs' knock-out drops (dropkit analyze), where every run of it has them."""
    by_rate: dict[float, list[dict]] = {}
    for name, s in runs.items():
        by_rate.setdefault(s.dropout[0], []).append(summary["runs"][name])
    out: dict[float, dict] = {}
    for rate, rows in by_rate.items():
        for key in KNOCKOUT_FIELDS:
            if all(key in r for r in rows):
                values = [r[key] for r in rows]
                out.setdefault(rate, {})[f"{key}_mean"] = statistics.fmean(values)
                out[rate][f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
    return out


def sweep_table(sweep: dict):
    """A rich Table of a sweep: final test error against dropout rate; validation and test@val where measured."""
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE, title=f"{sweep['dataset']}: test error vs dropout rate ({len(sweep['seeds'])} seeds)")
    any_diverged = any(r.get("diverged_seeds") for r in sweep["results"])
    for column in ("rate", "mean", "std", "min", "max", "val", "test@val") + (("diverged",) if any_diverged else ()):
        table.add_column(column, justify="right")
    selected = (sweep.get("selected") or {}).get("rate")
    for r in sweep["results"]:
        table.add_row(
            f"{r['rate']:g}" + (" *" if r["rate"] == selected else ""),
            *(
                "-" if r.get(k) is None else _pct(r[k])
                for k in ("test_error_mean", "test_error_std", "test_error_min", "test_error_max")
            ),
            *("-" if r.get(k) is None else _pct(r[k]) for k in ("val_error_mean", "test_error_at_best_val_mean")),
            *((", ".join(f"seed {seed}" for seed in r.get("diverged_seeds", [])) or "-",) if any_diverged else ()),
        )
    table.caption = (
        "errors over seeds. mean/std/min/max: last epoch's test error. val: mean validation error at the best "
        "validation epoch; test@val: mean test error at that epoch. *: the rate validation selects (lowest val)."
        if selected is not None
        else "last epoch's test error over seeds; no validation split, so no rate is selected (use --val-split)"
    )
    return table


def _save_figure(fig, path) -> None:
    save_figure(fig, path, dpi=120, bbox_inches="tight")


def plot_curves(histories: dict[str, list[dict]], path) -> None:
    """curves.png: train (dashed) and test (solid) accuracy and loss per epoch, one colour per run, gap shaded.

    Examples:
        >>> plot_curves({"dropout": history}, "curves.png")  # doctest: +SKIP
    """
    from matplotlib.figure import Figure  # no pyplot: no global state, no display needed

    fig = Figure(figsize=(11, 4.2))
    acc, loss = fig.subplots(1, 2)
    colours = [f"C{i}" for i in range(10)]
    for (name, history), colour in zip(histories.items(), colours * 10):
        epochs = [r["epoch"] for r in history]
        train_acc = [100 * r["train_acc"] for r in history]
        test_acc = [100 * r["test_acc"] for r in history]
        acc.plot(epochs, test_acc, color=colour, label=f"{name} test")
        acc.plot(epochs, train_acc, color=colour, linestyle="--", label=f"{name} train")
        acc.fill_between(epochs, test_acc, train_acc, color=colour, alpha=0.12)
        loss.plot(epochs, [r["test_loss"] for r in history], color=colour, label=f"{name} test")
        loss.plot(epochs, [r["train_loss"] for r in history], color=colour, linestyle="--", label=f"{name} train")
    acc.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy (shaded: train - test gap)")
    loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    for ax in (acc, loss):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    _save_figure(fig, path)


def plot_sweep(sweep: dict, path) -> None:
    """sweep.png: test error (mean and min-max over seeds) against the dropout rate (Srivastava et al. Figure 9).

    Where the runs were analyzed (dropkit analyze), a second panel shows the accuracy drop with 50% and
    75% of the first hidden layer's units removed, against the rate.
    """
    from matplotlib.figure import Figure

    trained = [
        r for r in sweep["results"] if r["test_error_mean"] is not None
    ]  # not the rates where every seed diverged
    robustness = all(f"{key}_mean" in r for r in trained for key in KNOCKOUT_FIELDS)
    fig = Figure(figsize=(11, 4) if robustness else (5.5, 4))
    ax, *second = fig.subplots(1, 2 if robustness else 1, squeeze=False)[0]
    rates = [r["rate"] for r in trained]
    mean = [100 * r["test_error_mean"] for r in trained]
    ax.fill_between(
        rates,
        [100 * r["test_error_min"] for r in trained],
        [100 * r["test_error_max"] for r in trained],
        alpha=0.2,
        label="min-max over seeds",
    )
    ax.errorbar(
        rates, mean, yerr=[100 * r["test_error_std"] for r in trained], marker="o", capsize=3, label="mean ± std"
    )
    ax.set(
        xlabel="dropout rate p (hidden layers)",
        ylabel="test error (%)",
        title=f"{sweep['dataset']}, {sweep['epochs']} epochs",
    )
    if robustness:
        drops = second[0]
        for key, marker in zip(KNOCKOUT_FIELDS, "os"):
            drops.errorbar(
                rates,
                [100 * r[f"{key}_mean"] for r in trained],
                yerr=[100 * r[f"{key}_std"] for r in trained],
                marker=marker,
                capsize=3,
                label=f"{key.rsplit('_', 1)[1]}% of hidden layer 1 removed",
            )
        drops.set(
            xlabel="dropout rate p (hidden layers)",
            ylabel="test accuracy drop (pp)",
            title="knock-out robustness (mean ± std over seeds)",
        )
    for a in (ax, *second):
        a.grid(alpha=0.3)
        a.legend(fontsize=8)
    _save_figure(fig, path)


class RichProgress(Progress):
    """A Progress that draws one rich progress bar per run on stderr: loss, test accuracy, ETA.

    When stderr is no terminal (a file, a pipe, CI) there are no bars: each epoch writes one plain
    line (run, epoch, loss, accuracy, seconds), flushed at once and never cut to the console's width.

    Examples:
        >>> with RichProgress() as progress:  # doctest: +SKIP
        ...     train.run_experiment(runs, "runs/x", progress=progress)
    """

    def __init__(self, console=None):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.console = console or Console(stderr=True)
        self._progress = Progress(
            TextColumn("{task.description:<12}"),
            BarColumn(),
            TextColumn("epoch {task.fields[epoch]}"),
            TextColumn("loss {task.fields[loss]:.4f}"),
            TextColumn("test acc {task.fields[acc]}"),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
        )
        self._tasks: dict[str, int] = {}
        self._loss: dict[str, float] = {}
        self._started = False
        self.live = self.console.is_terminal

    # The live display starts with the first run, so an early error leaves stderr with its one line only.
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._started:
            self._progress.stop()
        return False

    def _start(self):
        if not self._started:
            self._progress.start()
            self._started = True

    def log(self, message: str) -> None:
        self.console.print(message, markup=False, highlight=False, soft_wrap=True)  # one line, never wrapped

    def run_started(self, name: str, total_steps: int, done_steps: int) -> None:
        if self.live:
            self._start()
            self._tasks[name] = self._progress.add_task(
                name, total=total_steps, completed=done_steps, epoch="-", loss=float("nan"), acc="-"
            )

    def step(self, name: str, loss: float) -> None:
        if self.live:
            # A moving average: single-batch losses jump too much to read.
            previous = self._loss.get(name)
            self._loss[name] = loss if previous is None else 0.98 * previous + 0.02 * loss
            self._progress.update(self._tasks[name], advance=1, loss=self._loss[name])

    def epoch_done(self, name: str, record: dict) -> None:
        if self.live:
            self._progress.update(self._tasks[name], epoch=record["epoch"], acc=_pct(record["test_acc"]))
        else:
            self.console.file.write(epoch_line(name, record) + "\n")
            self.console.file.flush()

    def run_done(self, name: str) -> None:
        if self.live:
            task = self._tasks[name]
            self._progress.update(task, completed=self._progress.tasks[task].total)


def epoch_line(name: str, record: dict) -> str:
    """One epoch of run `name` (its metrics.jsonl record) as the plain progress line written when stderr is no terminal.

    Examples:
        >>> epoch_line("dropout", {"epoch": 3, "train_loss": 0.41234, "train_acc": 0.9, "test_loss": 0.5,
        ...             "test_acc": 0.8512, "epoch_seconds": 5.25, "eval_seconds": 0.5})
        'dropout epoch 3 loss 0.4123 train acc 90.00% test acc 85.12% 5.8 s'
    """
    val = f" val acc {_pct(record['val_acc'])}" if "val_acc" in record else ""
    return (
        f"{name} epoch {record['epoch']} loss {record['train_loss']:.4f} train acc {_pct(record['train_acc'])}"
        f"{val} test acc {_pct(record['test_acc'])} {record['epoch_seconds'] + record['eval_seconds']:.1f} s"
    )
