"""docs/lab.md's option table, made from the options each command takes: `python -m dropkit.lab.commands.docs docs/lab.md`.

The table sits between `<!-- options: generated ... -->` and `<!-- /options -->`; the command
rewrites it in place, and tests/lab/test_settings.py fails when the file and the options differ.

Examples:
    >>> option_table().splitlines()[0]
    '| option | demo | train | sweep | datasize | family | tune | uncertainty | active | what it sets |'
"""

import re
import sys
from pathlib import Path

from ..options import markdown_table
from . import COMMANDS, name

__all__ = ["option_table", "rewrite"]

_BLOCK = re.compile(r"(<!-- options: generated .*? -->\n)(?:.*?\n)?(<!-- /options -->)", re.S)


def option_table() -> str:
    """The markdown table of every option that comes from an Option, with each command's default."""
    return markdown_table({name(c): c.run.options for c in COMMANDS if hasattr(c.run, "options")})


def rewrite(path: Path) -> None:
    """Replace the generated table in the markdown file at `path`."""
    text = path.read_text()
    if not _BLOCK.search(text):
        raise SystemExit(f"{path} has no '<!-- options: generated ... -->' ... '<!-- /options -->' block")
    path.write_text(_BLOCK.sub(lambda m: m[1] + option_table() + "\n" + m[2], text))


if __name__ == "__main__":
    rewrite(Path(sys.argv[1]))
