"""The command line as text: list values joined before parsing, and a parsed command written back for torchrun workers.

Examples:
    >>> import typer
    >>> app = typer.Typer()
    >>> def train(hidden: str = typer.Option(None, metavar=LIST), epochs: int = 1): ...
    >>> _ = app.command("train")(train), app.command("bench")(lambda: None)
    >>> join_list_options(["train", "--hidden", "1024", "1024", "--epochs", "3"], typer.main.get_command(app))
    ['train', '--hidden', '1024,1024', '--epochs', '3']
"""

import re

__all__ = ["LIST", "NAMES", "join_list_options", "command_line"]

LIST = "N,N,..."  # the placeholder of the options that take a list of numbers: their values are joined
NAMES = "NAME,NAME,..."  # the placeholder of the options that take a list of names, e.g. --dropout-types dropout2d drop_block

_NUMBER = re.compile(r"[0-9][0-9.,eE+-]*|\.[0-9][0-9.,eE+-]*")
_NAME = re.compile(r"[a-z][a-z0-9_,]*")


def join_list_options(argv: list[str], group) -> list[str]:
    """Join the space-separated values of the command's list options into one comma-separated value.

    Click options take one value, so `--hidden 1024 1024` becomes `--hidden 1024,1024`. The list
    options are those of the command named in argv (of every command, if none is) whose placeholder is
    LIST (numbers) or NAMES (lower-case names).
    """
    named = [group.commands[a] for a in argv if a in group.commands][:1]
    params = [p for command in named or group.commands.values() for p in command.params]
    lists = {
        opt: _NUMBER if p.metavar == LIST else _NAME for p in params if p.metavar in (LIST, NAMES) for opt in p.opts
    }
    out, i = [], 0
    while i < len(argv):
        out.append(argv[i])
        i += 1
        if out[-1] in lists:
            values, value = [], lists[out[-1]]
            while i < len(argv) and value.fullmatch(argv[i]):
                values.append(argv[i])
                i += 1
            if values:
                out.append(",".join(values))
    return out


def command_line(ctx, skip=()) -> list[str]:
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
