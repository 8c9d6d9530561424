"""The README's two setup commands: both pass the constraints file that pins torch, and CI runs them as written."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    block = re.search(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)
    assert block, "README.md has no bash block with the setup commands"
    return [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def test_the_readme_has_two_commands_that_both_pass_the_constraints():
    commands = _readme_commands()
    assert len(commands) == 2, commands
    for command in commands:
        assert command.startswith("pip install -c constraints.txt "), command
    assert re.search(r"^torch==\S+$", (ROOT / "constraints.txt").read_text(), re.MULTILINE), (
        "constraints.txt pins no torch"
    )


@pytest.mark.parametrize("index", [0, 1])
def test_ci_runs_each_readme_command_as_written(index):
    ci = (ROOT / ".ci" / "run").read_text()
    for part in _readme_commands()[index].split(" && "):
        assert part in ci, f".ci/run does not run {part!r} as README.md writes it"
