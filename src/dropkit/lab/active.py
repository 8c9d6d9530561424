"""`dropkit active`: an active-learning loop on the lab's data, one learning curve per acquisition strategy.

Each (strategy, seed) run starts from the same small labelled set (`initial`
points per class, drawn from a candidate pool of the training split that the
seed fixes), then repeats: train the lab's MLP **from scratch** on the labelled
points (Gal et al. 2017 and Kirsch et al. 2019 retrain from scratch too: a warm
start carries the first rounds' biases into every later one), measure its test
accuracy, and label `acquire` more pool points chosen by the strategy, until
`budget` points are labelled:

- random: uniformly at random;
- entropy: the highest predictive entropy of MC dropout (T = `samples` passes);
- bald: the highest BALD (mutual information between label and weights);
- batchbald: greedy BatchBALD (Kirsch et al. 2019) on consistent MC samples,
  over the `prefilter` x `acquire` candidates with the highest BALD (scoring
  every pool point jointly costs T x pool x classes per pick and per sampled
  configuration).

The training seed of round r of seed s is the same for every strategy, so the
curves differ by what was labelled only. It writes into the run folder:

- active.json: {"settings": ..., "runs": {"<strategy>/<seed>": {"labelled": [pool
  indices, in the order labelled], "curve": [{"labels", "test_acc", "seconds"}],
  "done": bool}}}, rewritten atomically after every round, so Ctrl-C loses at
  most the round under way and `--resume` continues from there with the
  results an uninterrupted run would have had;
- active.png: test accuracy against labels, the mean over seeds per strategy
  with the range of the seeds shaded.

Example:
    >>> result = run("runs/active", ActiveSettings(strategies=("random", "bald")))  # doctest: +SKIP
    >>> result["runs"]["bald/0"]["curve"][-1]["test_acc"]  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path

import torch

from ..mc import acquisition
from ..mc.predict import mc_predict
from ..nn import Dropout, ReLUDropout
from . import data, report
from .errors import SettingsError
from .models import build_mlp
from .runs import lock
from .settings import STRATEGIES, ActiveSettings
from .train import Interrupted

__all__ = ["STRATEGIES", "ActiveSettings", "FILES", "Interrupted", "run", "table", "acquire", "curves", "plot"]

FILES = ("active.json", "active.png")
_SCORE_BATCH = 1000  # pool points per mc_predict call; consistent masks make the split irrelevant


ProgressCallback = Callable[[str, int, int], None]  # (stage, done, total) in rounds


def _initial(y_pool: torch.Tensor, per_class: int, n_classes: int) -> list[int]:
    """The first `per_class` pool points of each class: a balanced start (the pool is already shuffled)."""
    picked = []
    for c in range(n_classes):
        where = (y_pool == c).nonzero().squeeze(1)[:per_class]
        if len(where) < per_class:
            raise SettingsError(
                f"the pool has {len(where)} points of class {c}, fewer than --initial {per_class}; raise --pool or lower --initial"
            )
        picked += where.tolist()
    return sorted(picked)


def _unfused(model: torch.nn.Sequential) -> torch.nn.Sequential:
    """The MLP with each fused ReLUDropout as ReLU then Dropout: consistent MC dropout needs plain Dropout layers."""
    for i, m in enumerate(model):
        if isinstance(m, ReLUDropout):
            model[i] = torch.nn.Sequential(torch.nn.ReLU(), Dropout(m.p))
    return model


def _train(s: ActiveSettings, x: torch.Tensor, y: torch.Tensor, n_classes: int, seed: int) -> torch.nn.Module:
    """The lab's MLP trained from scratch on (x, y) for s.steps steps; everything seeded by `seed`."""
    torch.manual_seed(seed)
    model = _unfused(build_mlp(x.shape[1], s.hidden, n_classes, dropout=s.dropout))
    opt = torch.optim.SGD(model.parameters(), lr=s.lr, momentum=0.9, weight_decay=s.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, s.steps)
    g = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(s.steps):
        idx = torch.randint(len(x), (min(s.batch_size, len(x)),), generator=g)
        loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return model.eval()


def _mc_probs(model: torch.nn.Module, x: torch.Tensor, s: ActiveSettings, seed: int) -> torch.Tensor:
    """(T, N, C) consistent MC dropout probabilities of x."""
    parts = [
        mc_predict(model, x[i : i + _SCORE_BATCH], s.samples, seed=seed, consistent=True).probs
        for i in range(0, len(x), _SCORE_BATCH)
    ]
    return torch.cat(parts, 1)


def acquire(
    strategy: str, model: torch.nn.Module, x_unlabelled: torch.Tensor, b: int, s: ActiveSettings, seed: int
) -> list[int]:
    """Positions in x_unlabelled of the b points `strategy` labels next."""
    g = torch.Generator().manual_seed(seed)
    if strategy == "random":
        return torch.randperm(len(x_unlabelled), generator=g)[:b].tolist()
    probs = _mc_probs(model, x_unlabelled, s, seed)
    if strategy == "entropy":
        return acquisition.entropy(probs.mean(0), 1).topk(b).indices.tolist()
    scores = acquisition.bald(probs)
    if strategy == "bald":
        return scores.topk(b).indices.tolist()
    candidates = scores.topk(min(len(scores), s.prefilter * b)).indices
    picks = acquisition.batch_bald(probs[:, candidates], b, joint_samples=s.joint_samples, generator=g).indices
    return candidates[picks].tolist()


def _accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).double().mean())


def _settings_dict(s: ActiveSettings) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(s)))  # tuples as lists, as they come back from the file


def _load_state(path: Path, s: ActiveSettings, resume: bool, overwrite: bool) -> dict:
    if path.exists() and resume:
        state = json.loads(path.read_text())
        if state.get("settings") != _settings_dict(s):
            raise SettingsError(
                f"{path} was written with other settings; run again with the same options, or with --overwrite"
            )
        return state
    if path.exists() and not overwrite:
        raise SettingsError(f"{path} exists; pass --resume to continue it or --overwrite to start again")
    return {"settings": _settings_dict(s), "runs": {}}


def _round(
    s: ActiveSettings, strategy: str, seed: int, record: dict, x_pool, y_pool, ds: data.Dataset, n_classes: int
) -> None:
    """Train on the labelled points, record the test accuracy, label the next points (unless the budget is met)."""
    r = len(record["curve"])
    began = time.perf_counter()
    labelled = torch.tensor(record["labelled"])
    model = _train(s, x_pool[labelled], y_pool[labelled], n_classes, seed=1000 * seed + r)
    point = {"labels": len(labelled), "test_acc": _accuracy(model, ds.x_test, ds.y_test)}
    b = min(s.acquire, s.budget - len(labelled))
    if b > 0:
        mask = torch.ones(len(x_pool), dtype=torch.bool)
        mask[labelled] = False
        unlabelled = mask.nonzero().squeeze(1)
        picks = acquire(strategy, model, x_pool[unlabelled], b, s, seed=1000 * seed + r)
        record["labelled"] = record["labelled"] + unlabelled[picks].tolist()
    point["seconds"] = time.perf_counter() - began
    record["curve"].append(point)
    record["done"] = b == 0


def run(
    out,
    s: ActiveSettings = ActiveSettings(),
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
) -> dict:
    """Run (or continue) the experiment in folder `out`; returns active.json's dict.

    Raises:
        data.DataError: the data set is missing. SettingsError: bad settings, or a folder in the way.
        Interrupted: Ctrl-C; every finished round is saved, and resume=True continues.
    """
    out = Path(out)
    path = out / "active.json"
    if s.threads:
        torch.set_num_threads(s.threads)
    # Settings and data are checked before the folder is touched: a refused start leaves nothing behind.
    ds = data.load(s.dataset, s.data_dir)
    if s.pool > len(ds.x_train):
        raise SettingsError(
            f"--pool ({s.pool}) must not exceed the training split of {ds.name} ({len(ds.x_train)} points)"
        )
    n_classes = ds.n_classes
    if s.initial * n_classes > s.budget:
        raise SettingsError(f"--initial x classes ({s.initial} x {n_classes}) must not exceed --budget ({s.budget})")
    with lock(out):
        state = _load_state(path, s, resume, overwrite)
        rounds = 1 + -(-(s.budget - s.initial * n_classes) // s.acquire)
        total = rounds * len(s.strategies) * len(s.seeds)
        done = sum(len(r["curve"]) for r in state["runs"].values())
        try:
            for seed in s.seeds:
                source = (
                    torch.arange(len(ds.x_train))
                    if s.train_size is None
                    else data.train_subset(ds.y_train, s.train_size, seed)
                )
                pool = source[torch.randperm(len(source), generator=torch.Generator().manual_seed(seed))[: s.pool]]
                x_pool, y_pool = ds.x_train[pool], ds.y_train[pool]
                start = _initial(y_pool, s.initial, n_classes)
                for strategy in s.strategies:
                    record = state["runs"].setdefault(
                        f"{strategy}/{seed}", {"labelled": start, "curve": [], "done": False}
                    )
                    while not record["done"]:
                        _round(s, strategy, seed, record, x_pool, y_pool, ds, n_classes)
                        report.write_json(path, state)  # after every round: Ctrl-C loses only the round under way
                        done += 1
                        if progress is not None:
                            progress(f"{strategy} seed {seed}", done, total)
        except KeyboardInterrupt:
            raise Interrupted(f"interrupted: {done} of {total} rounds saved in {path}") from None
        plot(state, out / "active.png")
        return state


def curves(state: dict) -> dict[str, dict[int, list[float]]]:
    """strategy -> labels -> test accuracies over the seeds."""
    out: dict[str, dict[int, list[float]]] = {}
    for key, record in state["runs"].items():
        strategy = key.split("/")[0]
        for point in record["curve"]:
            out.setdefault(strategy, {}).setdefault(point["labels"], []).append(point["test_acc"])
    return out


def plot(state: dict, path) -> None:
    """active.png: mean test accuracy against labels per strategy, the seeds' range shaded."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.5, 4.5), layout="constrained")
    ax = fig.subplots()
    for strategy, by_labels in curves(state).items():
        labels = sorted(by_labels)
        accs = [torch.tensor(by_labels[n], dtype=torch.float64) for n in labels]
        mean = [100 * float(a.mean()) for a in accs]
        ax.plot(labels, mean, marker="o", markersize=3, label=f"{strategy} ({max(len(a) for a in accs)} seeds)")
        ax.fill_between(labels, [100 * float(a.min()) for a in accs], [100 * float(a.max()) for a in accs], alpha=0.2)
    ax.set(xlabel="labelled training points", ylabel="test accuracy (%)", title="Active learning with MC dropout")
    ax.legend(fontsize=8)
    report.save_figure(fig, path, dpi=120)


def table(state: dict):
    """A rich Table: per strategy, the mean test accuracy over seeds at the first and last label counts."""
    from rich.table import Table

    t = Table(title="Active learning: test accuracy (mean over seeds)")
    t.add_column("strategy")
    by = curves(state)
    counts = sorted({n for c in by.values() for n in c})
    shown = sorted({counts[round(i * (len(counts) - 1) / 5)] for i in range(6)}) if counts else []  # at most 6 columns
    for n in shown:
        t.add_column(f"{n} labels", justify="right")
    for strategy, c in by.items():
        t.add_row(strategy, *(f"{100 * sum(c[n]) / len(c[n]):.2f}%" if n in c else "" for n in shown))
    return t
