"""``python -m litecoord`` runs the command line."""

from .cli import main

main()
