"""The `dropkit` command: thin typed commands over dropkit.lab, registered in one flat list.

    dropkit demo                      # dropout vs no dropout vs L2 on Fashion-MNIST (or digits)
    dropkit train --hidden 1024 1024 --dropout 0.5 --input-dropout 0.2 --max-norm 3
    dropkit sweep --rates 0 0.2 0.5 0.8 --seeds 0 1 2
    dropkit tune --trials 20                          # Optuna search of the rates on validation
    dropkit bench --quick
    dropkit uncertainty runs/demo --samples 1 10 50   # weight scaling vs MC dropout on a trained run
    dropkit analyze runs/demo                         # unit knock-outs, sparsity, features (demo runs it too)
    dropkit active --seeds 0 1 2                      # active learning: random, entropy, BALD, BatchBALD
    dropkit datasize --seeds 0 1 2                    # dropout vs its twin against training-set size
    dropkit family --model rescnn --dropout-types dropout dropout2d drop_block drop_path

Known errors (bad data, bad settings, a run folder in the way) print one line on
stderr and exit with status 2; Ctrl-C saves a checkpoint and exits with 130.

To add a command, write a function with a one-line docstring and decorate it with
`@app.command()` and then `@known_errors` (see `demo`).
"""

import contextlib
import functools
import inspect
import json
import os
import re
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from .lab.errors import Interrupted, LabError, SettingsError

app = typer.Typer(
    name="dropkit",
    help="Dropout experiments on real data: demo, train, sweep, datasize, family, tune, bench, uncertainty, analyze, active.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

Out = Annotated[Optional[Path], typer.Option("--out", "-o", help="Run folder (default runs/<command>).")]
Resume = Annotated[bool, typer.Option("--resume", help="Continue the run in --out from its checkpoints.")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace the run files in a non-empty --out.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars and no table.")]
Json = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout instead of a table.")]
Nproc = Annotated[int, typer.Option("--nproc", min=1, help="Train on N processes (torchrun + DDP: gloo on CPU, nccl on GPU); the result does not depend on N.")]


def _opt(kind, help: str, *names: str):
    return Annotated[Optional[kind], typer.Option(*names, help=help)]


# Options shared by demo, train and sweep, each mapped onto a field of dropkit.lab.settings.Settings.
# Unset options (None) keep the Settings default, so the defaults live in one place.
_TRAINING_OPTIONS = {
    "dataset": _opt(str, "auto | fashion-mnist | mnist | digits | idx (auto: Fashion-MNIST if found, else digits; idx: your own IDX files in --data-dir)."),
    "data_dir": _opt(str, "Directory with the IDX files (searched before $DROPKIT_DATA, /usr/share/datasets)."),
    "download": Annotated[bool, typer.Option("--download", help="Fetch MNIST/Fashion-MNIST if missing; sha256 checked.")],
    "model": _opt(str, "mlp | cnn | rescnn: the MLP, or two conv blocks and a dense head of width --hidden's first (rescnn: with residual blocks). Default mlp."),
    "hidden": _opt(str, "Hidden widths, e.g. --hidden 1024 1024 (or 1024,1024). Default 256 128."),
    "dropout": _opt(str, "Hidden dropout: one rate or one per layer (initial rates for concrete). Default 0.5 0.3, or 0.5 each with --hidden."),
    "dropout_type": _opt(str, "Hidden dropout kind: dropout | alpha | gaussian | concrete (learned rates; Gal et al. 2017). Default dropout; input dropout stays dropout."),
    "dropout_schedule": _opt(str, "Rates over epochs: constant | linear:N | early:N | late:N (N epochs; Liu et al. 2023); concrete takes constant only."),
    "input_dropout": _opt(float, "Dropout rate on the inputs (Srivastava et al.: 0.2)."),
    "max_norm": _opt(float, "Max L2 norm of each unit's incoming weights (Srivastava et al.: 3-4)."),
    "l1": _opt(float, "L1 penalty on weights."),
    "l2": _opt(float, "L2 penalty (weight decay) on weights; in demo, the l2 run's (default 5e-4)."),
    "optimizer": _opt(str, "sgd | adam."),
    "lr": _opt(float, "Learning rate (default 0.05 for sgd, 0.001 for adam)."),
    "momentum": _opt(float, "SGD momentum (default 0.9)."),
    "schedule": _opt(str, "constant | cosine | step (default cosine)."),
    "epochs": _opt(int, "Epochs per run (default 20)."),
    "steps": _opt(int, "Optimizer steps per run, instead of --epochs (the last epoch may be partial; the lr schedule spans them)."),
    "train_size": _opt(int, "Train on N examples of the training split, class-stratified, drawn by --seed; validation is --val-split of these N (the first of the same stratified draw), the rest trains."),
    "eval_batch_size": _opt(int, "Examples per forward pass when evaluating (default 10000; family: 1000)."),
    "eval_every": _opt(int, "Evaluate, record and checkpoint every K epochs and after the last (default 1; many short epochs of a small --train-size want more)."),
    "batch_size": _opt(int, "Mini-batch size (default 128)."),
    "val_split": _opt(float, "Fraction of the training set held out for validation (default 0.1 in demo, sweep and tune; 0 in train)."),
    "seed": _opt(int, "Seed of initialisation, batch order and dropout masks (default 0)."),
    "time_budget": _opt(str, "Stop each run after the epoch that crosses this, e.g. 90s, 45m, 1.5h."),
    "threads": _opt(int, "torch threads (default: one per core)."),
    "masks": _opt(str, "drawn (from torch's generator) | addressed (by seed, layer, step and sample: independent of --nproc and --accumulate; the default with either)."),
    "accumulate": _opt(int, "Micro-batches per step (gradient accumulation); the batch stays --batch-size."),
}

# `--hidden 1024 1024` is joined into `--hidden 1024,1024` before parsing: click options take one value.
_LIST_OPTIONS = ("--hidden", "--dropout", "--rates", "--seeds", "--samples", "--sizes")
_NUMBER = re.compile(r"[0-9][0-9.,eE+-]*|\.[0-9][0-9.,eE+-]*")
_WORD_LIST_OPTIONS = ("--dropout-types",)  # their values are names, e.g. --dropout-types dropout2d drop_block
_WORD = re.compile(r"[a-z][a-z0-9_,]*")


def join_list_options(argv: list[str]) -> list[str]:
    """Join the space-separated values of list options into one comma-separated value.

    Examples:
        >>> join_list_options(["train", "--hidden", "1024", "1024", "--epochs", "3"])
        ['train', '--hidden', '1024,1024', '--epochs', '3']
    """
    out, i = [], 0
    while i < len(argv):
        out.append(argv[i])
        i += 1
        if out[-1] in _LIST_OPTIONS + _WORD_LIST_OPTIONS:
            values, value = [], _NUMBER if out[-1] in _LIST_OPTIONS else _WORD
            while i < len(argv) and value.fullmatch(argv[i]):
                values.append(argv[i])
                i += 1
            if values:
                out.append(",".join(values))
    return out


def _numbers(text: str, kind, name: str) -> tuple:
    try:
        return tuple(kind(v) for v in re.split(r"[,\s]+", text.strip()) if v)
    except ValueError:
        raise SettingsError(f"{name} must be a list of {kind.__name__}s like 1,2,3, got {text!r}") from None


def _settings(options: dict):
    from .lab.settings import Settings, parse_duration

    given = {k: v for k, v in options.items() if v is not None and v is not False}
    if "hidden" in given:
        given["hidden"] = _numbers(given["hidden"], int, "hidden")
        given.setdefault("dropout", "0.5")
    if "dropout" in given:
        given["dropout"] = _numbers(given["dropout"], float, "dropout")
    if "time_budget" in given:
        given["time_budget"] = parse_duration(given["time_budget"])
    return Settings(**given)


def training_options(exclude: tuple[str, ...] = ()):
    """Add the shared training options to a command; it receives them as `settings`, a dict (None = not given)."""

    def decorate(fn):
        names = [n for n in _TRAINING_OPTIONS if n not in exclude]
        own = [p for p in inspect.signature(fn).parameters.values() if p.name != "settings"]
        shared = [
            inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, annotation=_TRAINING_OPTIONS[n], default=None if n != "download" else False)
            for n in names
        ]

        @functools.wraps(fn)
        def wrapper(**kwargs):
            options = {n: kwargs.pop(n) for n in names}
            return fn(settings=options, **kwargs)  # options become Settings inside known_errors' reach

        wrapper.__signature__ = inspect.Signature(own + shared)
        return wrapper

    return decorate


def known_errors(fn):
    """Turn dropkit.lab's known errors into one line on stderr: exit status 2, or 130 for Ctrl-C."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from .lab import distributed

        try:
            return fn(*args, **kwargs)
        except LabError as e:
            typer.echo(str(e) if isinstance(e, Interrupted) else f"error: {e}", err=True)
            raise typer.Exit(130 if isinstance(e, Interrupted) else 2) from None
        except Exception as e:
            if not distributed.is_worker():
                raise
            distributed.record_crash(e)  # the launcher prints one line for the rank that failed first
            raise typer.Exit(1) from None

    return wrapper


def _hold_out_validation(options: dict) -> None:
    """Default --val-split for the commands that choose something (an epoch, a rate): choose on validation, not test."""
    from .lab.tune import DEFAULT_VAL_SPLIT

    if options["val_split"] is None:
        options["val_split"] = DEFAULT_VAL_SPLIT


def _split_masks(options: dict) -> dict:
    """The options with --masks addressed by default when batches are split (--accumulate, several processes)."""
    if options.get("masks") is None and (options.get("accumulate") or 1) * int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return {**options, "masks": "addressed"}  # the masks must not depend on the split
    return options


def _given(options: dict) -> list[str]:
    """The training options set on the command line (before any command fills in its own defaults)."""
    return [name for name, value in options.items() if value is not None and value is not False]


def _experiment(command: str, runs_of, options: dict, out: Path, resume: bool, overwrite: bool, quiet: bool, given, keep_going=False, after=None):
    """Build the runs from the options, train them with progress bars unless quiet; return after(summary), or the summary.

    The run folder stays locked until `after` (the reports made from the runs) has written its files too.
    `given` names the options set on the command line (sweep's rates too); on --resume each is checked
    against the run folder's runs (dropkit.lab.settings.resume_runs).
    """
    from .lab import distributed, report, runs, train

    asked = runs_of(_settings(_split_masks(options)))  # bad settings are refused before anything is written
    lead = distributed.lead()  # under torchrun, rank 0 owns the folder and the terminal
    progress = report.RichProgress() if lead and not quiet else train.Progress()
    if lead:
        runs.check(out, resume, overwrite)
    with distributed.process_group(), runs.lock(out) if lead else contextlib.nullcontext():
        try:
            with progress:
                summary = train.run_experiment(
                    asked, out, command=command, resume=resume, overwrite=overwrite, given=given, keep_going=keep_going, progress=progress
                )
        except Interrupted as e:
            raise Interrupted(f"{e}; resume with: dropkit {command} --out {out} --resume") from None
        return summary if after is None or not lead else after(summary)


def _command_line(ctx: typer.Context, skip=()) -> list[str]:
    """The command's arguments as parsed (defaults left out, `skip` too): what each torchrun worker runs."""
    argv = [ctx.info_name]
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if param.name in skip or value is None or value == param.default:
            continue
        if isinstance(value, bool):  # a flag, or the second half of a --x/--no-x pair
            argv.append(param.opts[0] if value else param.secondary_opts[0])
        else:
            argv += [param.opts[0], str(value)]
    return argv


def _show(result: dict, table, quiet: bool, as_json: bool, footer: str) -> None:
    from rich.console import Console

    if as_json:
        typer.echo(json.dumps(result, indent=2))
    elif not quiet:
        Console().print(table)
        typer.echo(footer)


@app.command()
@known_errors
@training_options()
def demo(settings, out: Out = None, resume: Resume = False, overwrite: Overwrite = False, quiet: Quiet = False, as_json: Json = False):
    """Train the seed network with dropout, without, and with L2 from the same start, on all data and on scarce data."""
    from rich.console import Group

    from .lab import analyze as analysis
    from .lab import report
    from .lab.settings import demo_runs, scarce_runs

    given = _given(settings)  # l2 included: demo_runs gives it to the l2 run
    _hold_out_validation(settings)
    l2 = settings.pop("l2")
    runs_of = functools.partial(demo_runs, **({"l2": l2} if l2 is not None else {}))
    out = out or Path("runs") / "demo"
    coadaptation = _experiment("demo", runs_of, settings, out, resume, overwrite, quiet, given, after=lambda _: analysis.run(out))
    summary = json.loads((out / "summary.json").read_text())  # now with each run's knock-out drops
    # the scarce-data part: the same three runs on a small stratified subset, in out/scarce (resumed if it got that far)
    scarce_of = functools.partial(scarce_runs, **({"l2": l2} if l2 is not None else {}))
    started = (out / "scarce" / "config.json").is_file()
    scarce = _experiment("demo", scarce_of, settings, out / "scarce", resume and started, overwrite or not started, quiet, given)
    tables = Group(report.summary_table(summary), report.summary_table(scarce), analysis.table(coadaptation))
    sentences = "\n".join((report.regime_sentence(summary, "All data"), report.regime_sentence(scarce, "Scarce data")))
    _show({**summary, "scarce": scarce}, tables, quiet, as_json,
          f"{sentences}\nrun folder: {out} (summary.json, metrics.jsonl, curves.png, {', '.join(analysis.FILES)}; scarce/)")


@app.command("train")
@known_errors
@training_options()
def train_(settings, ctx: typer.Context, out: Out = None, resume: Resume = False, overwrite: Overwrite = False, quiet: Quiet = False, as_json: Json = False, nproc: Nproc = 1):
    """Train one MLP with the given settings and write a run folder."""
    from .lab import distributed, report

    if nproc > 1 and not distributed.is_worker():
        raise typer.Exit(distributed.launch(nproc, _command_line(ctx, skip=("nproc",))))
    if not distributed.lead():
        quiet, as_json = True, False  # rank 0 alone reports
    out = out or Path("runs") / "train"
    runs_of = lambda s: {"dropout" if s.uses_dropout else "no_dropout": s}  # noqa: E731
    summary = _experiment("train", runs_of, settings, out, resume, overwrite, quiet, _given(settings))
    _show(summary, report.summary_table(summary), quiet, as_json, f"run folder: {out} (summary.json, metrics.jsonl, curves.png)")


@app.command()
@known_errors
@training_options(exclude=("dropout",))
def sweep(
    settings,
    rates: Annotated[Optional[str], typer.Option(help="Hidden dropout rates, e.g. --rates 0 0.2 0.5 0.8 (default 0 0.2 0.4 0.5 0.6 0.8).")] = None,
    seeds: Annotated[Optional[str], typer.Option(help="Seeds per rate, e.g. --seeds 0 1 2 (default 0 1).")] = None,
    out: Out = None,
    resume: Resume = False,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
    as_json: Json = False,
):
    """Test error and knock-out robustness against the dropout rate over seeds (Srivastava et al. Figure 9): sweep.json, sweep.png."""
    from .lab import analyze as analysis
    from .lab import report
    from .lab.settings import sweep_runs

    given = _given(settings) + [name for name, value in (("rates", rates), ("seeds", seeds)) if value is not None]
    _hold_out_validation(settings)
    runs_of = functools.partial(
        sweep_runs, rates=_numbers(rates or "0,0.2,0.4,0.5,0.6,0.8", float, "rates"), seeds=_numbers(seeds or "0,1", int, "seeds")
    )
    out = out or Path("runs") / "sweep"

    def reports(_summary) -> dict:
        analysis.run(out)
        return _write_sweep(out)

    result = _experiment("sweep", runs_of, settings, out, resume, overwrite, quiet, given, keep_going=True, after=reports)
    _show(result, report.sweep_table(result), quiet, as_json, f"run folder: {out} (sweep.json, sweep.png, summary.json, {', '.join(analysis.FILES)})")


def _write_sweep(out: Path) -> dict:
    """sweep.json and sweep.png of a sweep's run folder, from its config.json and summary.json; the sweep's dict."""
    from .lab import report, runs
    from .lab.settings import Settings

    config = runs.read_config(out)  # on --resume the rates come from here
    summary = json.loads((out / "summary.json").read_text())  # with the knock-out drops
    result = report.sweep_summary({n: Settings.from_dict(d) for n, d in config["runs"].items()}, summary)
    report.write_json(out / "sweep.json", result)
    report.plot_sweep(result, out / "sweep.png")
    return result


@app.command()
@known_errors
@training_options(exclude=("train_size", "eval_every"))
def datasize(
    settings,
    sizes: Annotated[Optional[str], typer.Option(help="Training-set sizes N, e.g. --sizes 500 1000 2000 (default 500 1000 2000 5000 10000).")] = None,
    seeds: Annotated[Optional[str], typer.Option(help="Seeds per size, e.g. --seeds 0 1 2 (default 0 1 2).")] = None,
    full: Annotated[bool, typer.Option("--full/--no-full", help="Add the whole training split as the last size.")] = True,
    out: Out = None,
    resume: Resume = False,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
    as_json: Json = False,
):
    """Dropout vs its no-dropout twin against training-set size, over seeds, read at validation's epoch: datasize.json, datasize.png."""
    from .lab import datasize as curve
    from .lab import report, train

    _hold_out_validation(settings)
    if settings["steps"] is None and settings["epochs"] is None:
        settings["steps"] = curve.DEFAULT_STEPS
    out = out or Path("runs") / "datasize"
    progress = train.Progress() if quiet else report.RichProgress()
    try:
        with progress:
            result = curve.run(
                _settings(settings), out, sizes=_numbers(sizes, int, "sizes") if sizes else curve.DEFAULT_SIZES,
                seeds=_numbers(seeds or "0,1,2", int, "seeds"), full=full, resume=resume, overwrite=overwrite, progress=progress,
            )
    except Interrupted as e:
        raise Interrupted(f"{e}; resume with the same command and --resume") from None
    _show(result, curve.table(result), quiet, as_json, f"folder: {out} ({', '.join(curve.FILES)}, cells/)")


@app.command()
@known_errors
@training_options(exclude=("dropout_type", "input_dropout"))
def family(
    settings,
    dropout_types: Annotated[str, typer.Option(help="Kinds besides none: dropout (dense head), dropout2d, drop_block, drop_path (--model rescnn).")] = "dropout,dropout2d,drop_block",
    seeds: Annotated[Optional[str], typer.Option(help="Seeds per kind, e.g. --seeds 0 1 2 (default 0 1 2).")] = None,
    out: Out = None,
    resume: Resume = False,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
    as_json: Json = False,
):
    """The conv net with each dropout kind and without, over seeds: test at validation's epoch, gap, knock-outs; family.json."""
    from .lab import cnn, data, report, runs
    from .lab.settings import Settings

    given = _given(settings) + [n for n, v in (("dropout_types", dropout_types), ("seeds", seeds)) if v is not None]
    _hold_out_validation(settings)
    settings["model"] = settings["model"] or "cnn"
    settings["eval_batch_size"] = settings["eval_batch_size"] or 1000  # conv maps of 10,000 images at once take gigabytes
    rate = _numbers(settings.pop("dropout"), float, "dropout")[0] if settings["dropout"] else None
    kinds = [k for k in re.split(r"[,\s]+", dropout_types) if k]
    runs_of = functools.partial(cnn.family_runs, kinds=kinds, seeds=_numbers(seeds or "0,1,2", int, "seeds"), rate=rate)
    out = out or Path("runs") / "family"

    def reports(summary) -> dict:
        config = runs.read_config(out)
        x, y = data.load_test_tensors(config["dataset"])
        knockouts = {name: cnn.knockout_drop(runs.load_model(out, name)[0], x, y) for name in summary["runs"] if "diverged" not in summary["runs"][name]}
        result = cnn.family_summary({n: Settings.from_dict(d) for n, d in config["runs"].items()}, summary, knockouts)
        report.write_json(out / cnn.FILES[0], result)
        return result

    result = _experiment("family", runs_of, settings, out, resume, overwrite, quiet, given, keep_going=True, after=reports)
    _show(result, cnn.family_table(result), quiet, as_json, f"run folder: {out} ({', '.join(cnn.FILES)}, summary.json, metrics.jsonl)")


@app.command()
@known_errors
@training_options(exclude=("dropout", "input_dropout"))
def tune(
    settings,
    ctx: typer.Context,
    trials: Annotated[int, typer.Option(help="Finished trials this worker (host and --out) should reach; each worker of a shared study runs its own.")] = 20,
    timeout: Annotated[Optional[str], typer.Option(help="Start no new trial after this long, e.g. 15m.")] = None,
    storage: Annotated[Optional[str], typer.Option(help="Optuna storage URL, e.g. postgresql://user:pw@host/db (default: SQLite in --out).")] = None,
    study: Annotated[str, typer.Option(help="Study name in the storage; workers of one search pass the same.")] = "dropkit-tune",
    shared_rate: Annotated[bool, typer.Option("--shared-rate", help="One hidden rate for all layers instead of one per layer.")] = False,
    tune_lr: Annotated[bool, typer.Option("--tune-lr", help="Also search the learning rate (0.2x to 5x of --lr or the default).")] = False,
    tune_max_norm: Annotated[bool, typer.Option("--tune-max-norm", help="Also search the max-norm bound (1 to 6).")] = False,
    prune: Annotated[bool, typer.Option("--prune/--no-prune", help="Median pruning on per-epoch validation accuracy.")] = True,
    retrain: Annotated[bool, typer.Option("--retrain/--no-retrain", help="Retrain the best on train+validation and report its test accuracy.")] = True,
    out: Out = None,
    quiet: Quiet = False,
    as_json: Json = False,
    nproc: Nproc = 1,
):
    """Search the dropout rates on validation with Optuna, retrain the best, report test accuracy once: tune.json."""
    from .lab import distributed, report, train
    from .lab import tune as tuning
    from .lab.settings import parse_duration

    if nproc > 1 and not distributed.is_worker():
        raise typer.Exit(distributed.launch(nproc, _command_line(ctx, skip=("nproc",))))
    if not distributed.lead():
        quiet, as_json = True, False  # rank 0 alone reports
    settings["epochs"] = tuning.DEFAULT_EPOCHS if settings["epochs"] is None else settings["epochs"]
    _hold_out_validation(settings)
    base = _settings(_split_masks(settings))
    out = out or Path("runs") / "tune"
    search = tuning.Search(shared_rate=shared_rate, lr=tune_lr, max_norm=tune_max_norm)
    progress = train.Progress() if quiet else report.RichProgress()
    try:
        with distributed.process_group(), progress:
            result = tuning.run(
                base, out, trials=trials, timeout=None if timeout is None else parse_duration(timeout),
                storage=storage, study_name=study, search=search, prune=prune, retrain=retrain, progress=progress,
            )
    except Interrupted as e:
        raise Interrupted(f"{e}; the same command continues the study") from None
    if distributed.lead():
        _show(result, tuning.table(result), quiet, as_json, f"folder: {out} (tune.json, tune_history.png, tune_rates.png, trials/)")


@app.command()
@known_errors
def bench(
    quick: Annotated[bool, typer.Option("--quick", help="Small sizes, short timings: a smoke test, not numbers.")] = False,
    as_json: Json = False,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Also write the result as JSON to FILE.")] = None,
    quiet: Quiet = False,
):
    """Time dropkit's dropout against torch on this CPU and print the table."""
    from rich.console import Console

    from .lab import bench as benchmark

    console = Console(stderr=True)
    progress = None if quiet or as_json else (lambda message: console.print(message, style="dim", highlight=False))
    result = benchmark.run(quick=quick, progress=progress)
    if out is not None:
        benchmark.save(result, out)
    typer.echo(json.dumps(result, indent=2) if as_json else benchmark.format_table(result))


@app.command()
@known_errors
def uncertainty(
    run_dir: Annotated[Path, typer.Argument(help="Run folder written by dropkit demo or train.")],
    run: Annotated[str, typer.Option("--run", help="Which run of the folder.")] = "dropout",
    samples: Annotated[str, typer.Option(help="MC sample counts T, e.g. --samples 1 10 50.")] = "1,2,5,10,20,50,100",
    seed: Annotated[int, typer.Option(help="Seed of the MC dropout masks.")] = 0,
    calibration: Annotated[bool, typer.Option("--calibration/--no-calibration", help="Temperature scaling on the run's validation split.")] = True,
    ood: _opt(str, "Out-of-distribution set scored against the test split: digits.") = None,
    quiet: Quiet = False,
    as_json: Json = False,
):
    """Weight scaling vs MC dropout on a trained run: accuracy, NLL, ECE, Brier per T, temperature scaling, OOD; uncertainty.json."""
    from .lab import uncertainty as mc

    with mc.progress_bar(quiet) as progress:
        result = mc.run(run_dir, run_name=run, samples=_numbers(samples, int, "samples"), seed=seed, calibration=calibration, ood=ood, progress=progress)
    written = [f for f in mc.FILES if f != "ood_hist.png" or ood is not None]
    _show(result, mc.table(result), quiet, as_json, f"wrote {', '.join(written)} in {run_dir}")


@app.command()
@known_errors
def active(
    out: Out = None,
    dataset: Annotated[str, typer.Option(help="auto | fashion-mnist | mnist | digits.")] = "auto",
    data_dir: _opt(str, "Directory with the IDX files.") = None,
    strategies: Annotated[str, typer.Option(help="Acquisition strategies, e.g. --strategies random,bald.")] = "random,entropy,bald,batchbald",
    seeds: Annotated[str, typer.Option(help="Seeds, e.g. --seeds 0 1 2 (pool, start set, training).")] = "0",
    initial: Annotated[int, typer.Option(help="Labelled points per class at the start.")] = 20,
    acquire: Annotated[int, typer.Option(help="Points labelled per round.")] = 50,
    budget: Annotated[int, typer.Option(help="Labelled points at the last round.")] = 1000,
    pool: Annotated[int, typer.Option(help="Candidate points drawn from the training split.")] = 3000,
    train_size: _opt(int, "Draw the pool from N examples of the training split, class-stratified, drawn by each seed (N >= --pool; no validation: active learning selects nothing on it).") = None,
    samples: Annotated[int, typer.Option(help="MC dropout passes T of the scores.")] = 20,
    steps: Annotated[int, typer.Option(help="SGD steps per round (each round trains from scratch).")] = 300,
    hidden: Annotated[str, typer.Option(help="Hidden widths of the MLP, e.g. --hidden 256 128.")] = "256,128",
    dropout: Annotated[str, typer.Option(help="Dropout rate after each hidden layer, e.g. --dropout 0.5 0.3.")] = "0.5,0.3",
    threads: _opt(int, "torch threads (default: torch's).") = None,
    resume: Resume = False,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
    as_json: Json = False,
):
    """Active learning with MC dropout: test accuracy vs labels for random, entropy, BALD, BatchBALD; active.json."""
    from .lab import active as al
    from .lab.uncertainty import progress_bar

    settings = al.ActiveSettings(
        dataset=dataset, data_dir=data_dir, strategies=tuple(v for v in re.split(r"[,\s]+", strategies) if v),
        seeds=_numbers(seeds, int, "seeds"), initial=initial, acquire=acquire, budget=budget, pool=pool,
        train_size=train_size, samples=samples, steps=steps, hidden=_numbers(hidden, int, "hidden"), dropout=_numbers(dropout, float, "dropout"), threads=threads,
    )
    out = out or Path("runs") / "active"
    try:
        with progress_bar(quiet or as_json) as progress:
            result = al.run(out, settings, resume=resume, overwrite=overwrite, progress=progress)
    except al.Interrupted as e:
        raise al.Interrupted(f"{e}; resume with: dropkit active --out {out} --resume (and the same options)") from None
    _show(result, al.table(result), quiet, as_json, f"wrote {', '.join(al.FILES)} in {out}")


@app.command()
@known_errors
def analyze(
    run_dir: Annotated[Path, typer.Argument(help="Run folder written by dropkit demo, train or sweep.")],
    repeats: Annotated[int, typer.Option(help="Random knock-outs per fraction and layer.")] = 5,
    seed: Annotated[int, typer.Option(help="Seed of the knock-out masks.")] = 0,
    quiet: Quiet = False,
    as_json: Json = False,
):
    """Unit knock-outs, activation sparsity and correlation, first-layer features of every run: coadaptation.json."""
    from .lab import analyze as analysis

    result = analysis.run(run_dir, repeats=repeats, seed=seed)
    if json.loads((run_dir / "config.json").read_text())["command"] == "sweep" and (run_dir / "summary.json").is_file():
        _write_sweep(run_dir)  # sweep.png's robustness panel
    _show(result, analysis.table(result), quiet, as_json, f"wrote {', '.join(analysis.FILES)} in {run_dir} ({result['seconds']:.1f} s)")


def main() -> None:
    """Entry point of the `dropkit` console script."""
    app(args=join_list_options(sys.argv[1:]), prog_name="dropkit")


if __name__ == "__main__":
    main()
