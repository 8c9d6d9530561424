"""The `dropkit` commands, one module each (its options, its run, what it shows), in the order `dropkit --help` lists them.

To add a command: write lab/commands/<name>.py with a `run` function (a one-line docstring, typed
options, `@known_errors`) and add the module to COMMANDS below; dropkit.cli registers each.

Examples:
    >>> [c.__name__.rsplit(".", 1)[1] for c in COMMANDS][:3]
    ['demo', 'train', 'sweep']
"""

from . import active, analyze, bench, datasize, demo, family, sweep, train, tune, uncertainty
from .argv import command_line as command_line
from .argv import join_list_options as join_list_options
from .common import Command as Command
from .common import Group as Group

__all__ = ["COMMANDS", "Command", "Group", "command_line", "join_list_options", "name"]

COMMANDS = (demo, train, sweep, datasize, family, tune, bench, uncertainty, analyze, active)


def name(command) -> str:
    """The command's name on the command line: its module's."""
    return command.__name__.rsplit(".", 1)[1]
