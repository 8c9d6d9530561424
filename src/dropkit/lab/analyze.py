"""`dropkit analyze RUN_DIR`: does dropout stop hidden units from co-adapting? (Srivastava et al. 2014, section 7.2)

For every run of a run folder, on its test split:

- knock-out robustness of each hidden layer: test accuracy when a fraction of the layer's units is
  removed at test time (zeroed, the others rescaled by 1/keep as inverted dropout does), the other
  layers intact. Random knock-outs take dropkit's own keep_mask over the layer's features, one mask
  shared by the whole test set; the worst case removes the units with the largest mean activation
  first. A network whose units co-adapted falls apart when teammates go missing;
- activation statistics of each hidden layer: the fraction of exact zeros, the mean activation, and
  the mean absolute correlation between units (units that never fire are left out, and counted);
- first-layer features: the incoming weights of the first 64 units, as images.

The random knock-out r of hidden layer l (both counted from 0) at fraction f keeps unit j iff
keep_mask((width,), f, seed=seed, offset=l * 2**48 + r * 2**32)[j]: the same units are knocked out
in every run of the same width (the twins of a demo face the same injuries), a unit removed at
fraction f is also removed at every larger fraction (the spec keeps iff r >= t(f)), and the figures
reproduce exactly from the seed.

Files written into the run folder: coadaptation.json (schema in docs/lab.md), coadaptation.png,
features.png and activations.png; summary.json gets knockout_drop_50 and knockout_drop_75 per run.

Examples:
    >>> result = run("runs/demo")  # doctest: +SKIP
    >>> result["runs"]["dropout"]["drop_75"], result["runs"]["no_dropout"]["drop_75"]  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from .. import _validate, rng
from ..functional import keep_mask
from ..nn import ReLUDropout
from . import data, report
from .errors import RunFolderError, SettingsError
from .runs import ANALYZE_FILES as FILES
from .runs import load_model, lock

__all__ = [
    "FRACTIONS",
    "REPEATS",
    "FEATURES",
    "FILES",
    "hidden_layers",
    "knockout_masks",
    "worst_case_multipliers",
    "knockout_accuracies",
    "activation_stats",
    "first_layer_features",
    "analyze_model",
    "run",
    "summary_fields",
    "table",
    "plot_knockout",
    "plot_features",
    "plot_activations",
]

# 0, 0.1, ..., 0.9 and the table's 0.25 and 0.75 (Srivastava et al.'s figures go to 0.9).
FRACTIONS = (0.0, 0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.9)
REPEATS = 5  # random knock-outs per fraction and layer
FEATURES = 64  # first-layer units drawn as images
_HISTOGRAM_BINS = 40
# Stream offsets: layer l, knock-out r start at l * 2**48 + r * 2**32, so streams of width < 2**32 never overlap.
_MAX_REPEATS = 2**16
_MAX_WIDTH = 2**32


def hidden_layers(model: nn.Module) -> list[int]:
    """Positions, in the Sequential `model`, of its hidden activations (the lab's MLP: each ReLU, or the ReLUDropout fusing it with its dropout).

    In eval mode a ReLUDropout is its ReLU, so model[: position + 1] gives the activations either way.

    Examples:
        >>> from dropkit.lab.models import build_mlp
        >>> hidden_layers(build_mlp(64, (32, 16), 10, dropout=0.5, input_dropout=0.2))
        [3, 6]
    """
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"model must be an nn.Sequential (the lab's MLP), got {type(model).__name__}")
    return [i for i, m in enumerate(model) if isinstance(m, (nn.ReLU, ReLUDropout))]


def _check(repeats: int, seed: int) -> None:
    if isinstance(repeats, bool) or not isinstance(repeats, int) or not 1 <= repeats <= _MAX_REPEATS:
        raise SettingsError(f"--repeats must be an int in [1, {_MAX_REPEATS}], got {repeats!r}")
    if seed is None:
        raise SettingsError("--seed must be an int in [0, 2**64), got None: knock-outs need an explicit seed")
    try:
        _validate.seed(seed, "--seed")
    except (TypeError, ValueError) as e:
        raise SettingsError(str(e)) from None


def knockout_masks(width: int, fraction: float, repeats: int, *, layer: int, seed: int) -> torch.Tensor:
    """Multipliers of `repeats` random knock-outs of a hidden layer: 0 for a removed unit, 1/(1-fraction) for a kept one.

    Row r is keep_mask((width,), fraction, seed=seed, offset=layer * 2**48 + r * 2**32) scaled as inverted
    dropout scales (the spec's scale, rounded once to float32).

    Shape:
        (repeats, width), float32.

    Examples:
        >>> knockout_masks(4, 0.5, 2, layer=0, seed=0)
        tensor([[0., 2., 2., 2.],
                [2., 0., 0., 2.]])
    """
    _check(repeats, seed)
    if not 1 <= width < _MAX_WIDTH:
        raise SettingsError(f"width must be in [1, 2**32), got {width}")
    keep = torch.stack(
        [keep_mask((width,), fraction, seed=seed, offset=layer * 2**48 + r * 2**32) for r in range(repeats)]
    )
    return keep.to(torch.float32) * rng.scale(fraction)


def worst_case_multipliers(mean_activation: torch.Tensor, fraction: float) -> torch.Tensor:
    """Multipliers that remove the round(fraction * width) units of largest mean activation, the others scaled by width/kept.

    Ties go to the lower unit index (a stable sort), so the result is deterministic.

    Shape:
        mean_activation: (width,); result: (width,), float32.

    Examples:
        >>> worst_case_multipliers(torch.tensor([0.1, 0.9, 0.5, 0.0]), 0.5)
        tensor([2., 0., 0., 2.])
    """
    width = mean_activation.numel()
    removed = round(fraction * width)
    order = torch.argsort(mean_activation, descending=True, stable=True)
    out = torch.full((width,), width / (width - removed) if removed < width else 0.0, dtype=torch.float32)
    out[order[:removed]] = 0.0
    return out


@torch.no_grad()
def knockout_accuracies(
    suffix: nn.Module, hidden: Sequence[torch.Tensor], labels: Sequence[torch.Tensor], multipliers: torch.Tensor
) -> list[float]:
    """Test accuracy of the network after a hidden layer, fed that layer's activations times each row of `multipliers`.

    Args:
        suffix: the layers after the hidden activation (in eval mode).
        hidden: the activations of the intact network, in the batches it was evaluated in.
        labels: the labels of those batches.
        multipliers: (k, width) rows, e.g. from knockout_masks.

    Returns:
        k accuracies, fractions of the test set.
    """
    n = sum(len(y) for y in labels)
    out = []
    for m in multipliers:
        correct = sum(int((suffix(h * m).argmax(1) == y).sum()) for h, y in zip(hidden, labels))
        out.append(correct / n)
    return out


def activation_stats(h: torch.Tensor) -> dict:
    """Sparsity and co-activation of one hidden layer's activations over a data set.

    Units whose activation is constant (for ReLU units: those that never fire) have no correlation;
    they are left out of mean_abs_corr. Computed in float64.

    Shape:
        h: (n, width).

    Returns:
        {"zeros": fraction of exact zeros, "mean": mean activation, "mean_abs_corr": mean |corr| over
        pairs of non-constant units (None with fewer than 2), "never_firing": units that are 0 on every
        input, "correlated_units": units in mean_abs_corr, "histogram": {"edges", "counts"} of the
        non-zero activations}.

    Examples:
        >>> activation_stats(torch.tensor([[0.0, 1.0, 2.0], [0.0, 2.0, 4.0], [0.0, 3.0, 1.0]]))["never_firing"]
        1
    """
    h = h.to(torch.float64)
    n, width = h.shape
    std = h.std(0, correction=0)
    live = std > 0
    centred = h[:, live] - h[:, live].mean(0)
    k = int(live.sum())
    if k >= 2:
        corr = (centred.T @ centred) / n / torch.outer(std[live], std[live])
        mean_abs_corr = float((corr.abs().sum() - corr.diagonal().abs().sum()) / (k * (k - 1)))
    else:
        mean_abs_corr = None
    positive = h[h != 0]
    top = float(positive.max()) if positive.numel() else 1.0
    counts = torch.histc(positive, bins=_HISTOGRAM_BINS, min=0.0, max=top)
    return {
        "zeros": float((h == 0).double().mean()),
        "mean": float(h.mean()),
        "mean_abs_corr": mean_abs_corr,
        "never_firing": int((h == 0).all(0).sum()),
        "correlated_units": k,
        "histogram": {
            "edges": torch.linspace(0.0, top, _HISTOGRAM_BINS + 1).tolist(),
            "counts": [int(c) for c in counts],
        },
    }


def first_layer_features(model: nn.Module, units: int = FEATURES) -> torch.Tensor:
    """The incoming weights of the first `units` units of the model's first Linear layer (fewer if it is narrower).

    The first units, not chosen ones: twins built after the same seed start with the same weights
    in unit j, so their images show what each training did to the same start.

    Shape:
        (min(units, width), in_features).
    """
    first = next(m for m in model.modules() if isinstance(m, nn.Linear))
    return first.weight.detach()[:units].clone()


def _stats(values: list[float]) -> dict:
    t = torch.tensor(values, dtype=torch.float64)
    return {
        "mean": float(t.mean()),
        "std": float(t.std()) if len(values) > 1 else 0.0,
        "min": float(t.min()),
        "max": float(t.max()),
    }


@torch.no_grad()
def analyze_model(
    model: nn.Sequential,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    repeats: int = REPEATS,
    seed: int = 0,
    batch_size: int = 10000,
) -> dict:
    """Knock-out curves and activation statistics of every hidden layer of a trained lab MLP on (x, y).

    The activations are computed once per layer in batches of `batch_size` (as train.evaluate does,
    so at fraction 0 the accuracy is exactly evaluate's); each knock-out runs only the layers after it.

    Args:
        model: a Sequential MLP (set to eval mode here).
        x: the test inputs (n, features).
        y: their labels (n,).
        repeats: random knock-outs per fraction and layer.
        seed: the knock-outs' mask seed.
        batch_size: inputs per forward pass.

    Returns:
        coadaptation.json's entry of one run (see docs/lab.md), without its drop_50/drop_75 fields.

    Examples:
        >>> result = analyze_model(model, x_test, y_test, repeats=5, seed=0)  # doctest: +SKIP
        >>> result["layers"][0]["random"]["acc_mean"][0] == train.evaluate(model, x_test, y_test)[1]  # doctest: +SKIP
        True
    """
    _check(repeats, seed)
    model.eval()
    labels = [y[i : i + batch_size] for i in range(0, len(x), batch_size)]
    inputs = [x[i : i + batch_size] for i in range(0, len(x), batch_size)]
    layers: list[dict] = []
    for layer, position in enumerate(hidden_layers(model)):
        prefix, suffix = model[: position + 1], model[position + 1 :]
        hidden = [prefix(xb) for xb in inputs]
        h = torch.cat(hidden)
        width = h.shape[1]
        mean_activation = h.mean(0)
        random_acc, removed, worst_acc, worst_removed = [], [], [], []
        for f in FRACTIONS:
            masks = knockout_masks(width, f, repeats, layer=layer, seed=seed)
            random_acc.append(knockout_accuracies(suffix, hidden, labels, masks))
            removed.append(float((masks == 0).double().mean()))
            worst = worst_case_multipliers(mean_activation, f)
            worst_acc.append(knockout_accuracies(suffix, hidden, labels, worst[None])[0])
            worst_removed.append(float((worst == 0).double().mean()))
        spread = [_stats(a) for a in random_acc]
        layers.append(
            {
                "width": width,
                "random": {
                    "acc": random_acc,
                    **{f"acc_{k}": [s[k] for s in spread] for k in ("mean", "std", "min", "max")},
                    "removed": removed,
                },
                "worst": {"acc": worst_acc, "removed": worst_removed},
                "activations": activation_stats(h),
            }
        )
    return {"test_acc": layers[0]["random"]["acc"][0][0], "layers": layers}


def _at(entry: dict, fraction: float) -> float:
    return entry["layers"][0]["random"]["acc_mean"][FRACTIONS.index(fraction)]


def _run_names(run_dir: Path) -> list[str]:
    """The runs of the folder that have a checkpoint; RunFolderError if it is no run folder or has none."""
    config_path = run_dir / "config.json"
    if not config_path.is_file():
        raise RunFolderError(f"{run_dir} is not a run folder: no config.json")
    names = [n for n in json.loads(config_path.read_text())["runs"] if (run_dir / "checkpoints" / f"{n}.pt").is_file()]
    if not names:
        raise RunFolderError(f"{run_dir} has no checkpoints to analyze: train it first (dropkit demo --out {run_dir})")
    return names


def run(run_dir, *, repeats: int = REPEATS, seed: int = 0) -> dict:
    """Analyze every run of a run folder that has a checkpoint, write the files, add two numbers per run to summary.json.

    Args:
        run_dir: a folder written by `dropkit demo`, `train` or `sweep`.
        repeats: random knock-outs per fraction and layer (at least 5 for the report's spread).
        seed: the knock-out mask seed; the same seed gives the same figures (seconds aside).

    Returns:
        coadaptation.json's dict.

    Raises:
        runs.RunFolderError: no run folder, no checkpoint, or one that cannot be read.
        data.DataError: the test data is missing. SettingsError: bad repeats or seed.
    """
    _check(repeats, seed)
    started = time.perf_counter()
    run_dir = Path(run_dir)
    names = _run_names(run_dir)
    with lock(run_dir, hint=""):  # a run still training would change its checkpoints under the analysis
        tests: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}
        runs, features = {}, {}
        for name in names:
            model, settings = load_model(run_dir, name)
            key = (settings.dataset, settings.data_dir)
            if key not in tests:
                tests[key] = data.load_test_tensors(*key)
            entry = analyze_model(model, *tests[key], repeats=repeats, seed=seed, batch_size=settings.eval_batch_size)
            entry["drop_50"] = entry["test_acc"] - _at(entry, 0.5)
            entry["drop_75"] = entry["test_acc"] - _at(entry, 0.75)
            runs[name] = entry
            features[name] = first_layer_features(model)
        result = {
            "dataset": next(iter(tests))[0],
            "n_test": len(next(iter(tests.values()))[1]),
            "fractions": list(FRACTIONS),
            "repeats": repeats,
            "seed": seed,
            "runs": runs,
        }
        plot_knockout(result, run_dir / "coadaptation.png")
        plot_features(features, run_dir / "features.png")
        plot_activations(result, run_dir / "activations.png")
        _add_to_summary(run_dir / "summary.json", summary_fields(result))
        result["seconds"] = time.perf_counter() - started
        report.write_json(run_dir / "coadaptation.json", result)
        return result


def summary_fields(result: dict) -> dict[str, dict]:
    """Per run, summary.json's knock-out fields: the mean accuracy drop with 50% and 75% of the first hidden layer removed.

    Examples:
        >>> summary_fields({"runs": {"dropout": {"drop_50": 0.01, "drop_75": 0.04}}})
        {'dropout': {'knockout_drop_50': 0.01, 'knockout_drop_75': 0.04}}
    """
    return {name: dict(zip(report.KNOCKOUT_FIELDS, (r["drop_50"], r["drop_75"]))) for name, r in result["runs"].items()}


def _add_to_summary(path: Path, fields: dict[str, dict]) -> None:
    """Merge the fields into the runs of summary.json, if the folder has one (an interrupted run may not)."""
    if not path.is_file():
        return
    summary = json.loads(path.read_text())
    for name, values in fields.items():
        if name in summary["runs"]:
            summary["runs"][name].update(values)
    report.write_json(path, summary)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def _pp(x: float | None) -> str:
    """A difference of two accuracies, in percentage points."""
    return "-" if x is None else f"{100 * x:.2f} pp"


def table(result: dict):
    """A rich Table: per run, intact accuracy, accuracy with 50% and 75% of the first hidden layer removed, and the drops."""
    from rich import box
    from rich.table import Table

    t = Table(
        title="co-adaptation: hidden layer 1's units removed at test time",
        caption=f"test accuracy, mean of {result['repeats']} random knock-outs; zeros and mean |corr| of the layer's activations",
        box=box.SIMPLE,
        pad_edge=False,
        collapse_padding=True,
    )
    for column in ("run", "intact", "50% out", "drop", "75% out", "drop", "zeros", "|corr|"):
        t.add_column(column, justify="left" if column == "run" else "right", no_wrap=True)
    for name, r in result["runs"].items():
        stats = r["layers"][0]["activations"]
        corr = stats["mean_abs_corr"]
        t.add_row(
            name,
            _pct(r["test_acc"]),
            _pct(_at(r, 0.5)),
            _pp(r["drop_50"]),
            _pct(_at(r, 0.75)),
            _pp(r["drop_75"]),
            _pct(stats["zeros"]),
            "-" if corr is None else f"{corr:.3f}",
        )
    return t


def _colours(n: int) -> list:
    from matplotlib import colormaps

    return [f"C{i}" for i in range(n)] if n <= 10 else [colormaps["viridis"](i / (n - 1)) for i in range(n)]


def _grid(fig, n: int, columns: int = 4):
    """n axes in rows of at most `columns`, as a flat list."""
    cols = min(n, columns)
    axes = fig.subplots(math.ceil(n / cols), cols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return list(axes[:n])


def plot_knockout(result: dict, path) -> None:
    """coadaptation.png: test accuracy against the fraction of a hidden layer's units removed, one panel per layer.

    Solid: mean of the random knock-outs, band: their min-max; dashed: the worst case (largest mean activation first).
    """
    from matplotlib.figure import Figure

    n_layers = max(len(r["layers"]) for r in result["runs"].values())
    fig = Figure(figsize=(5.2 * n_layers, 4.2), layout="constrained")
    axes = fig.subplots(1, n_layers, squeeze=False)[0]
    fractions = [100 * f for f in result["fractions"]]
    for (name, r), colour in zip(result["runs"].items(), _colours(len(result["runs"]))):
        for ax, layer in zip(axes, r["layers"]):
            random = layer["random"]
            ax.fill_between(
                fractions,
                [100 * a for a in random["acc_min"]],
                [100 * a for a in random["acc_max"]],
                color=colour,
                alpha=0.2,
            )
            ax.plot(fractions, [100 * a for a in random["acc_mean"]], color=colour, marker=".", label=f"{name} random")
            ax.plot(
                fractions,
                [100 * a for a in layer["worst"]["acc"]],
                color=colour,
                linestyle="--",
                label=f"{name} largest first",
            )
    for i, ax in enumerate(axes):
        ax.set(xlabel="units removed at test time (%)", ylabel="test accuracy (%)", title=f"hidden layer {i + 1}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"{result['dataset']}: knock-out robustness (band: min-max of {result['repeats']} random knock-outs)")
    report.save_figure(fig, path, dpi=120)


def _tiles(weights: torch.Tensor) -> torch.Tensor:
    """The rows of `weights` as square images (zero-padded where the input is not a square), tiled with 1-pixel gaps.

    Each tile is scaled to [0, 1] by its own largest |weight|, 0.5 meaning zero.
    """
    k, n = weights.shape
    side = math.isqrt(n - 1) + 1 if n > 1 else 1
    images = torch.zeros(k, side * side)
    scale = weights.abs().amax(1, keepdim=True).clamp_min(torch.finfo(weights.dtype).tiny)
    images[:, :n] = weights / scale
    images = images.view(k, side, side) / 2 + 0.5
    per_row = math.isqrt(k - 1) + 1
    rows = math.ceil(k / per_row)
    sheet = torch.ones(rows * (side + 1) + 1, per_row * (side + 1) + 1)
    for i, image in enumerate(images):
        r, c = divmod(i, per_row)
        sheet[1 + r * (side + 1) : 1 + r * (side + 1) + side, 1 + c * (side + 1) : 1 + c * (side + 1) + side] = image
    return sheet


def plot_features(features: dict[str, torch.Tensor], path) -> None:
    """features.png: each run's first-layer units' incoming weights as images (Srivastava et al. Figure 7), one panel per run."""
    from matplotlib.figure import Figure

    n = len(features)
    cols = min(n, 4)
    fig = Figure(figsize=(4 * cols, 4.3 * math.ceil(n / cols)), layout="constrained")
    for ax, (name, w) in zip(_grid(fig, n), features.items()):
        ax.imshow(_tiles(w.float()).numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"{name}: first {len(w)} units", fontsize=9)
        ax.set_axis_off()
    fig.suptitle("first-layer features: incoming weights (grey = 0)")
    report.save_figure(fig, path, dpi=120)


def plot_activations(result: dict, path) -> None:
    """activations.png: one panel per run, the histogram of each hidden layer's non-zero activations (Srivastava et al. Figure 8)."""
    from matplotlib.figure import Figure

    n = len(result["runs"])
    cols = min(n, 4)
    fig = Figure(figsize=(4.2 * cols, 3.4 * math.ceil(n / cols)), layout="constrained")
    for ax, (name, r) in zip(_grid(fig, n), result["runs"].items()):
        for i, layer in enumerate(r["layers"]):
            stats = layer["activations"]
            hist = stats["histogram"]
            total = result["n_test"] * layer["width"]
            ax.stairs(
                [c / total for c in hist["counts"]],
                hist["edges"],
                label=f"layer {i + 1}: {100 * stats['zeros']:.1f}% zeros, mean {stats['mean']:.2f}",
            )
        ax.set(yscale="log", xlabel="activation (non-zero)", ylabel="fraction of activations", title=name)
        ax.legend(fontsize=7)
    fig.suptitle(f"{result['dataset']}: hidden activations on the test set")
    report.save_figure(fig, path, dpi=120)
