"""`dropkit active`: active learning with MC dropout, one learning curve per acquisition strategy."""

from pathlib import Path

from .. import active as al
from ..settings import ActiveSettings, from_command_line
from ..uncertainty import progress_bar
from .common import Json, Out, Overwrite, Quiet, Resume, known_errors, options, show, with_options

__all__ = ["run"]


@known_errors
@with_options(options(ActiveSettings))
def run(
    given: dict,
    out: Out = None,
    resume: Resume = False,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
    as_json: Json = False,
):
    """Active learning with MC dropout: test accuracy vs labels for random, entropy, BALD, BatchBALD; active.json."""
    settings = from_command_line(ActiveSettings, given)
    out = out or Path("runs") / "active"
    try:
        with progress_bar(quiet or as_json) as progress:
            result = al.run(out, settings, resume=resume, overwrite=overwrite, progress=progress)
    except al.Interrupted as e:
        raise al.Interrupted(f"{e}; resume with: dropkit active --out {out} --resume (and the same options)") from None
    show(result, al.table(result), quiet, as_json, f"wrote {', '.join(al.FILES)} in {out}")
