"""The `dropkit` command: the lab's commands (dropkit.lab.commands, one module each) registered on one typer app.

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

Known errors (bad data, bad settings, a run folder in the way) print one line on stderr and exit
with status 2; Ctrl-C saves a checkpoint and exits with 130. The commands need the [lab] extra;
without it `dropkit` says so in one line and exits with status 2.
"""

import sys

from . import __version__

__all__ = ["LAB_EXTRA", "app", "join_list_options", "main"]

# The modules of the [lab] extra the commands import (pyproject.toml); one of them missing means the extra is.
LAB_EXTRA = ("typer", "click", "rich", "matplotlib", "sklearn")
INSTALL = 'dropkit: the command line needs the [lab] extra: pip install "dropkit[lab]"'

try:
    import typer

    from .lab import commands
except ModuleNotFoundError as e:
    if (e.name or "").split(".")[0] not in LAB_EXTRA:
        raise
    app = None
else:

    def _version(value: bool) -> None:
        if value:
            typer.echo(f"dropkit {__version__}")
            raise typer.Exit()

    app = typer.Typer(
        name="dropkit",
        cls=commands.Group,
        help="Dropout experiments on real data: " + ", ".join(commands.name(c) for c in commands.COMMANDS) + ".",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )

    @app.callback()
    def _options(
        version: bool = typer.Option(
            False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ) -> None:
        """Dropout experiments on real data."""

    for command in commands.COMMANDS:
        app.command(commands.name(command), cls=commands.Command)(command.run)


def join_list_options(argv: list[str]) -> list[str]:
    """Join the space-separated values of list options into one comma-separated value.

    Examples:
        >>> join_list_options(["train", "--hidden", "1024", "1024", "--epochs", "3"])
        ['train', '--hidden', '1024,1024', '--epochs', '3']
    """
    if app is None:
        raise ImportError(INSTALL)
    return commands.join_list_options(argv, typer.main.get_command(app))


def main() -> None:
    """Entry point of the `dropkit` console script."""
    if app is None:
        print(INSTALL, file=sys.stderr)
        raise SystemExit(2)
    app(args=join_list_options(sys.argv[1:]), prog_name="dropkit")


if __name__ == "__main__":
    main()
