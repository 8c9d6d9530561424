"""`python -m dropkit`: the dropkit command (what torchrun -m dropkit runs in each worker)."""

from .cli import main

main()
