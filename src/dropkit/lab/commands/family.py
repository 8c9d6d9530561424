"""`dropkit family`: the conv net with each dropout kind and without, over seeds; test at validation's epoch, gap, knock-outs."""

from pathlib import Path

from .. import cnn, data, experiment, runs
from .. import family as kinds_table
from ..errors import SettingsError
from ..options import NumberList, Option, name_list, options, take
from ..report import write_json
from ..settings import SELECTION_VAL_SPLIT, Settings
from .common import Json, Out, Overwrite, Quiet, Resume, known_errors, show, with_options

__all__ = ["OPTIONS", "DEFAULTS", "run"]

# conv maps of 10,000 images at once take gigabytes, so evaluation goes in batches of 1,000
DEFAULTS = {"val_split": SELECTION_VAL_SPLIT, "model": "cnn", "eval_batch_size": 1000}


def _kinds(kinds, name: str) -> tuple[str, ...]:
    kinds = tuple(kinds)
    if not kinds or any(k not in cnn.CNN_DROPOUT_TYPES for k in kinds):
        raise SettingsError(
            f"{name} must be one or more of {', '.join(cnn.CNN_DROPOUT_TYPES)}, got {', '.join(map(str, kinds)) or 'none'}"
        )
    return kinds


OPTIONS = {  # family's own, besides the settings (--dropout-type is what it varies)
    "dropout_types": Option(
        ("dropout", "dropout2d", "drop_block"),
        "Kinds besides none: dropout (dense head), dropout2d, drop_block, drop_path (--model rescnn).",
        parse=name_list,
        check=_kinds,
    ),
    "seeds": Option((0, 1, 2), "Seeds per kind, e.g. --seeds 0 1 2.", parse=NumberList(int)),
}


@known_errors
@with_options({**options(Settings), **OPTIONS}, exclude=("dropout_type", "input_dropout"), defaults=DEFAULTS)
def run(
    given: dict,
    out: Out = None,
    resume: Resume = False,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
    as_json: Json = False,
):
    """The conv net with each dropout kind and without, over seeds: test at validation's epoch, gap, knock-outs; family.json."""
    names = list(given)  # dropout types and seeds too: --resume checks them against the folder's runs
    kinds, seeds = take(OPTIONS, given, "dropout_types"), take(OPTIONS, given, "seeds")
    rate = (
        take(options(Settings), given, "dropout")[0] if "dropout" in given else None
    )  # None: each kind at its own rate
    asked = kinds_table.family_runs(experiment.settings(given, DEFAULTS), kinds=kinds, seeds=seeds, rate=rate)
    out = out or Path("runs") / "family"

    def reports(summary) -> dict:
        config = runs.read_config(out)
        x, y = data.load_test_tensors(config["dataset"])
        knockouts = {
            name: kinds_table.knockout_drop(runs.load_model(out, name)[0], x, y)
            for name in summary["runs"]
            if "diverged" not in summary["runs"][name]
        }
        result = kinds_table.family_summary(
            {n: Settings.from_dict(d) for n, d in config["runs"].items()}, summary, knockouts
        )
        write_json(out / kinds_table.FILES[0], result)
        return result

    result = experiment.run(
        "family",
        asked,
        out,
        given=names,
        resume=resume,
        overwrite=overwrite,
        quiet=quiet,
        keep_going=True,
        after=reports,
    )
    show(
        result,
        kinds_table.family_table(result),
        quiet,
        as_json,
        f"run folder: {out} ({', '.join(kinds_table.FILES)}, summary.json, metrics.jsonl)",
    )
