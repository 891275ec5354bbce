"""The command line: the click commands, the worker runner, the status view and the demo."""

from .commands import EXIT_CODES, cli, main

__all__ = ["EXIT_CODES", "cli", "main"]
