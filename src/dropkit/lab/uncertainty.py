"""`dropkit uncertainty RUN_DIR`: weight scaling against Monte-Carlo dropout on a trained run's test split.

Weight scaling is the seed's inference rule (eval mode: dropout off, inverted
dropout already scaled the weights); MC dropout averages the softmax of T
stochastic passes (Gal and Ghahramani 2016). For each T the report gives
accuracy, NLL, ECE (15 bins) and Brier, and the time of its passes; at the
reference T (50, or the largest T asked for without 50) it ranks test points
by predictive entropy and mutual information and measures how well each finds
the misclassified ones (AUROC). It writes into the run folder:

- uncertainty.json: {"weight_scaling": {"acc", "nll", "ece", "brier"},
  "mc": {"<T>": {"acc", "nll", "ece", "brier", "seconds"}},
  "auroc": {"entropy", "mutual_information"}, "plain_forward_seconds": ...}
  (accuracies as fractions; an AUROC is null when it is undefined, every test
  point right or every one wrong; plain_forward_seconds: 50 eval passes over
  the test split in the same batches, the baseline for `mc["50"]["seconds"]`);
- reliability.png, uncertainty_hist.png (entropy and MI for right and wrong
  predictions) and mc_samples.png (accuracy and NLL against T).

Temperature scaling (calibration=True, the default; Guo et al. 2017): one
temperature for weight scaling's logits and one for the log of MC dropout's
mean probabilities at the reference T, each fitted on the run's validation
split (a run trained with val_split > 0; others are refused with one line),
adds "temperature": {"validation_points", "weight_scaling" and "mc": {"temperature",
"before": {"nll", "ece"}, "after": {"nll", "ece"}} ("mc" also has "samples")}.

Out-of-distribution detection (ood="digits", dropkit.lab.ood): the test split
against scikit-learn's digits made to look like 28x28 inputs, scored by MC
predictive entropy, mutual information and 1 - max probability at the reference
T, and by weight scaling's 1 - max probability, adds "ood": {"dataset",
"points", "samples", "scores": {name: {"auroc", "fpr95"}}} (positives: the
out-of-distribution points) and ood_hist.png.

Examples:
    >>> result = run("runs/demo", samples=(1, 10, 50))  # doctest: +SKIP
    >>> result["mc"]["50"]["acc"] - result["weight_scaling"]["acc"]  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from ..mc import calibration, metrics
from ..mc.predict import mc_predict
from . import data, plots, report, train
from .errors import SettingsError
from .ood import OOD_SETS, digits_like
from .runs import UNCERTAINTY_FILES as FILES
from .runs import load_model, lock

__all__ = ["run", "SAMPLES", "PLAIN_FORWARDS", "FILES", "reference_samples", "table", "progress_bar", "plain_lines"]

SAMPLES = (1, 2, 5, 10, 20, 50, 100)  # T values of the report (Srivastava et al. 2014 section 7.5)
PLAIN_FORWARDS = 50  # eval passes timed as the baseline of MC dropout's cost

ProgressCallback = Callable[[str, int, int], None]  # (stage, done, total): units are single-input forward passes


def reference_samples(samples: Sequence[int]) -> int:
    """The T whose predictions feed the AUROC and the plots: 50 if asked for, else the largest.

    Examples:
        >>> reference_samples((1, 10, 50, 100)), reference_samples((1, 10))
        (50, 10)
    """
    return 50 if 50 in samples else max(samples)


def _check_samples(samples: Sequence[int]) -> tuple[int, ...]:
    samples = tuple(samples)
    if not samples or any(isinstance(t, bool) or not isinstance(t, int) or t < 1 for t in samples):
        raise SettingsError(
            f"--samples must be a non-empty list of ints >= 1, got {', '.join(map(str, samples)) or 'nothing'}"
        )
    return tuple(sorted(set(samples)))


def _scores(probs: torch.Tensor, y: torch.Tensor) -> dict:
    return {
        "acc": float((probs.argmax(1) == y).double().mean()),
        "nll": metrics.nll(probs, y),
        "ece": metrics.ece(probs, y),
        "brier": metrics.brier(probs, y),
    }


def run(
    run_dir,
    *,
    run_name: str = "dropout",
    samples: Sequence[int] = SAMPLES,
    batch_size: int = 500,
    seed: int = 0,
    calibration: bool = True,
    ood: str | None = None,
    progress: ProgressCallback | None = None,
) -> dict:
    """Compute the uncertainty report of one run of a run folder, write its files there, return uncertainty.json's dict.

    Args:
        run_dir: a run folder written by `dropkit demo` or `dropkit train`.
        run_name: which of its runs (default "dropout").
        samples: the T values to compare with weight scaling.
        batch_size: test inputs per mc_predict call (each replicated T times in chunks).
        seed: seed of the MC masks; the same seed gives the same report figures (times aside).
        calibration: fit temperatures on the run's validation split and report ECE and NLL
            before and after (needs a run trained with val_split > 0).
        ood: an out-of-distribution set to score against the test split (one of ood.OOD_SETS), or None.
        progress: called as progress(stage, done, total) after each batch.

    Raises:
        runs.RunFolderError: no such run folder, run or checkpoint; data.DataError: test data missing.
        SettingsError: bad samples, batch_size or ood, or calibration asked of a run without a validation split.
    """
    samples = _check_samples(samples)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise SettingsError(f"batch_size must be an int >= 1, got {batch_size!r}")
    if ood is not None and ood not in OOD_SETS:
        raise SettingsError(f"--ood must be one of {', '.join(OOD_SETS)}, got {ood!r}")
    run_dir = Path(run_dir)
    model, settings = load_model(run_dir, run_name)
    with lock(
        run_dir, hint=""
    ):  # one writer at a time; a run still training would change its checkpoint under the report
        if calibration and settings.val_split == 0:
            raise SettingsError(
                f"run {run_name!r} of {run_dir} has no validation split to fit temperatures on (it trained on all its "
                "training data); train it with --val-split 0.1, or pass --no-calibration"
            )
        x, y = data.load_test_tensors(settings.dataset, settings.data_dir)
        ds = data.load(settings.dataset, settings.data_dir) if calibration or ood is not None else None
        batches = [(x[i : i + batch_size], y[i : i + batch_size]) for i in range(0, len(x), batch_size)]
        ref = reference_samples(samples)
        x_val = y_val = x_ood = None
        if ds is not None:  # loaded for these two, and only then
            if calibration:
                _, _, x_val, y_val = train._split(ds, settings)
            if ood is not None:
                x_ood = digits_like(ds)
        n = len(x)
        extra = sum(0 if z is None else len(z) * (1 + ref) for z in (x_val, x_ood))
        total = n * (1 + sum(samples) + PLAIN_FORWARDS) + extra
        done = 0

        def advance(stage: str, units: int) -> None:
            nonlocal done
            done += units
            if progress is not None:
                progress(stage, done, total)

        model.eval()
        with torch.no_grad():
            eval_logits = torch.cat([model(xb) for xb, _ in batches])
        eval_probs = torch.softmax(eval_logits, 1)
        advance("weight scaling", n)
        result: dict[str, Any] = {"weight_scaling": _scores(eval_probs, y), "mc": {}}

        seeds = torch.Generator().manual_seed(seed)
        curves = {"weight scaling": metrics.reliability(eval_probs, y)}
        for t in samples:
            stage = f"MC dropout T={t}"
            parts, entropy, mi, seconds = [], [], [], 0.0
            for xb, _ in batches:
                call_seed = int(torch.randint(2**63 - 1, (), generator=seeds))
                start = time.perf_counter()
                r = mc_predict(model, xb, t, seed=call_seed)
                seconds += time.perf_counter() - start
                parts.append(r.mean_probs)
                if t == ref:
                    entropy.append(r.predictive_entropy)
                    mi.append(r.mutual_information)
                advance(stage, t * len(xb))
            probs = torch.cat(parts)
            result["mc"][str(t)] = {**_scores(probs, y), "seconds": seconds}
            if t == ref:
                correct = probs.argmax(1) == y
                scores = {"predictive entropy": torch.cat(entropy), "mutual information": torch.cat(mi)}
                curves[f"MC dropout T={t}"] = metrics.reliability(probs, y)
                ref_probs = probs

        result["auroc"] = _aurocs(scores, correct)
        if calibration:
            assert x_val is not None and y_val is not None, "checked above: the run has a validation split"
            val = _predict(model, x_val, ref, seeds, batch_size, lambda units: advance("validation split", units))
            result["temperature"] = _temperatures(val, y_val, eval_logits, ref_probs, y, ref)
            curves.update(_scaled_curves(result["temperature"], eval_logits, ref_probs, y, ref))
        if ood is not None:
            assert ds is not None and x_ood is not None, "loaded above for the OOD set"
            out = _predict(
                model, x_ood, ref, seeds, batch_size, lambda units: advance(f"out-of-distribution: {ood}", units)
            )
            test = {
                "logits": eval_logits,
                "mean_probs": ref_probs,
                "entropy": scores["predictive entropy"],
                "mi": scores["mutual information"],
            }
            ood_scores, in_distribution = _ood_scores(test, out)
            ood_groups = (f"{ds.name} test split", ood)
            result["ood"] = {
                "dataset": ood,
                "points": len(x_ood),
                "samples": ref,
                "scores": _ood_figures(ood_scores, in_distribution),
            }
        result["plain_forward_seconds"] = _time_plain(
            model, batches, lambda units: advance("plain eval forwards", units)
        )

        report.write_json(run_dir / "uncertainty.json", result)
        plots.plot_reliability(curves, run_dir / "reliability.png")
        plots.plot_histograms(scores, correct, run_dir / "uncertainty_hist.png")
        _plot_against_samples(result, run_dir / "mc_samples.png")
        if ood is not None:
            plots.plot_histograms(ood_scores, in_distribution, run_dir / "ood_hist.png", groups=ood_groups, unit="")
        return result


def _predict(
    model: torch.nn.Module,
    x: torch.Tensor,
    t: int,
    seeds: torch.Generator,
    batch_size: int,
    advance: Callable[[int], None],
) -> dict:
    """Eval logits and MC dropout (T = t) mean probabilities, entropy and mutual information of x, in batches."""
    logits, mean_probs, entropy, mi = [], [], [], []
    for i in range(0, len(x), batch_size):
        xb = x[i : i + batch_size]
        with torch.no_grad():
            logits.append(model(xb))
        r = mc_predict(model, xb, t, seed=int(torch.randint(2**63 - 1, (), generator=seeds)))
        mean_probs.append(r.mean_probs)
        entropy.append(r.predictive_entropy)
        mi.append(r.mutual_information)
        advance(len(xb) * (1 + t))
    return {
        "logits": torch.cat(logits),
        "mean_probs": torch.cat(mean_probs),
        "entropy": torch.cat(entropy),
        "mi": torch.cat(mi),
    }


def _nll_ece(probs: torch.Tensor, y: torch.Tensor) -> dict:
    return {"nll": metrics.nll(probs, y), "ece": metrics.ece(probs, y)}


def _temperatures(
    val: dict, y_val: torch.Tensor, test_logits: torch.Tensor, test_mc_probs: torch.Tensor, y: torch.Tensor, t: int
) -> dict:
    """uncertainty.json's "temperature": T fitted on the validation split, test NLL and ECE before and after."""
    t_ws = calibration.fit_temperature(val["logits"], y_val)
    t_mc = calibration.fit_temperature(calibration.log_probs(val["mean_probs"]), y_val)
    return {
        "validation_points": len(y_val),
        "weight_scaling": {
            "temperature": t_ws,
            "before": _nll_ece(torch.softmax(test_logits, 1), y),
            "after": _nll_ece(calibration.apply_temperature(test_logits, t_ws), y),
        },
        "mc": {
            "samples": t,
            "temperature": t_mc,
            "before": _nll_ece(test_mc_probs, y),
            "after": _nll_ece(calibration.apply_temperature(calibration.log_probs(test_mc_probs), t_mc), y),
        },
    }


def _scaled_curves(
    temperature: dict, test_logits: torch.Tensor, test_mc_probs: torch.Tensor, y: torch.Tensor, t: int
) -> dict:
    """The reliability curves after temperature scaling, for reliability.png."""
    ws, mc = temperature["weight_scaling"]["temperature"], temperature["mc"]["temperature"]
    return {
        f"weight scaling, T_s={ws:.3f}": metrics.reliability(calibration.apply_temperature(test_logits, ws), y),
        f"MC dropout T={t}, T_s={mc:.3f}": metrics.reliability(
            calibration.apply_temperature(calibration.log_probs(test_mc_probs), mc), y
        ),
    }


def _ood_scores(test: dict, out: dict) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Each score over test then out-of-distribution points (higher = more likely out), and the in-distribution mask."""

    def cat(a, b):
        return torch.cat([a, b])

    in_distribution = cat(
        torch.ones(len(test["entropy"]), dtype=torch.bool), torch.zeros(len(out["entropy"]), dtype=torch.bool)
    )
    scores = {
        "MC predictive entropy": cat(test["entropy"], out["entropy"]),
        "MC mutual information": cat(test["mi"], out["mi"]),
        "MC 1 - max probability": 1 - cat(test["mean_probs"], out["mean_probs"]).amax(1),
        "weight scaling 1 - max probability": 1 - torch.softmax(cat(test["logits"], out["logits"]), 1).amax(1),
    }
    return scores, in_distribution


def _ood_figures(scores: dict[str, torch.Tensor], in_distribution: torch.Tensor) -> dict:
    return {
        name: {"auroc": metrics.auroc(s, ~in_distribution), "fpr95": metrics.fpr_at_tpr(s, ~in_distribution, 0.95)}
        for name, s in scores.items()
    }


def _aurocs(scores: dict[str, torch.Tensor], correct: torch.Tensor) -> dict:
    """uncertainty.json's "auroc": each score's misclassification AUROC, None where it is undefined
    (every prediction right, or every one wrong: no wrong or no right predictions to tell apart)."""
    defined = bool(correct.any()) and not bool(correct.all())

    def auroc(score: torch.Tensor) -> float | None:
        return metrics.misclassification_auroc(score, correct) if defined else None

    return {"entropy": auroc(scores["predictive entropy"]), "mutual_information": auroc(scores["mutual information"])}


def _auroc_text(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _time_plain(model: torch.nn.Module, batches, advance: Callable[[int], None]) -> float:
    """Seconds of PLAIN_FORWARDS eval passes over the batches: what T = 50 costs without MC batching."""
    seconds = 0.0
    with torch.no_grad():
        for xb, _ in batches:
            start = time.perf_counter()
            for _ in range(PLAIN_FORWARDS):
                model(xb)
            seconds += time.perf_counter() - start
            advance(PLAIN_FORWARDS * len(xb))
    return seconds


def _plot_against_samples(result: dict, path) -> None:
    from matplotlib.figure import Figure

    ts = [int(t) for t in result["mc"]]
    fig = Figure(figsize=(10, 4), layout="constrained")
    for ax, key, label in zip(fig.subplots(1, 2), ("acc", "nll"), ("test accuracy", "test NLL (nats)")):
        ax.plot(ts, [result["mc"][str(t)][key] for t in ts], marker="o", label="MC dropout")
        ax.axhline(result["weight_scaling"][key], color="tab:red", linestyle="--", label="weight scaling")
        ax.set(xscale="log", xlabel="MC samples T", ylabel=label)
        ax.legend(fontsize=8)
    report.save_figure(fig, path, dpi=120)


def table(result: dict):
    """A rich Table of the report: one row for weight scaling, one per T."""
    from rich.table import Table

    t = Table(title="Weight scaling vs MC dropout (test split)")
    for col in ("inference", "accuracy", "NLL", "ECE", "Brier", "seconds"):
        t.add_column(col, justify="left" if col == "inference" else "right")

    def row(name: str, r: dict, seconds: str) -> None:
        t.add_row(name, f"{100 * r['acc']:.2f}%", f"{r['nll']:.4f}", f"{r['ece']:.4f}", f"{r['brier']:.4f}", seconds)

    row("weight scaling", result["weight_scaling"], "")
    for name, r in result["mc"].items():
        row(f"MC T={name}", r, f"{r['seconds']:.2f}")
    if "temperature" in result:
        for key, name in (
            ("weight_scaling", "weight scaling"),
            ("mc", f"MC T={result['temperature']['mc']['samples']}"),
        ):
            r = result["temperature"][key]
            t.add_row(
                f"{name}, temperature {r['temperature']:.3f}",
                "same",
                f"{r['after']['nll']:.4f}",
                f"{r['after']['ece']:.4f}",
                "",
                "",
            )
    lines = [
        f"misclassification AUROC: predictive entropy {_auroc_text(result['auroc']['entropy'])}, "
        f"mutual information {_auroc_text(result['auroc']['mutual_information'])}; "
        f"{PLAIN_FORWARDS} plain eval forwards: {result['plain_forward_seconds']:.2f} s"
    ]
    if "temperature" in result:
        lines.append(
            f"temperatures fitted on {result['temperature']['validation_points']} validation points (accuracy unchanged)"
        )
    if "ood" in result:
        figures = ", ".join(
            f"{name} {r['auroc']:.4f} / {r['fpr95']:.4f}" for name, r in result["ood"]["scores"].items()
        )
        lines.append(
            f"out-of-distribution ({result['ood']['dataset']}, {result['ood']['points']} points), AUROC / FPR at 95% TPR: {figures}"
        )
    t.caption = "\n".join(lines)
    return t


@contextlib.contextmanager
def progress_bar(quiet: bool = False):
    """A rich progress bar on stderr as a `progress` callback for run(); None when quiet.

    When stderr is no terminal (a file, a pipe) the callback writes plain lines instead (plain_lines).

    Examples:
        >>> with progress_bar() as progress:  # doctest: +SKIP
        ...     run("runs/demo", progress=progress)
    """
    if quiet:
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    if not console.is_terminal:
        yield plain_lines(console.file)
        return
    bar = Progress(
        TextColumn("{task.description:<22}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
    )
    with bar:
        task = bar.add_task("loading", total=None)
        yield lambda stage, done, total: bar.update(task, description=stage, completed=done, total=total)


def plain_lines(file, every: float = 10.0) -> ProgressCallback:
    """A progress callback for files and pipes: one flushed line per finished stage, and at most one per
    `every` seconds in between (stage, done/total, seconds since the first call).

    Examples:
        >>> import io
        >>> f = io.StringIO()
        >>> progress = plain_lines(f)
        >>> progress("MC T=10", 5, 10); progress("MC T=10", 10, 10)
        >>> f.getvalue().split()[:2]
        ['MC', 'T=10:']
    """
    started = time.perf_counter()
    last = [started]

    def progress(stage: str, done: int, total: int) -> None:
        now = time.perf_counter()
        if done >= total or now - last[0] >= every:
            last[0] = now
            file.write(f"{stage}: {done}/{total} {now - started:.1f} s\n")
            file.flush()

    return progress
