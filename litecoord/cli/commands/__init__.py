"""The ``litecoord`` command line: every coordinator operation, the worker runner, the live view, the demo.

One module per group of commands: :mod:`.base` (what they share: exit codes,
errors, the group, the common options), :mod:`.items`, :mod:`.views`,
:mod:`.admin`, :mod:`.serve` and :mod:`.work`. Importing this package
registers every command on :data:`cli`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from . import admin, console, items, serve, views, work  # noqa: F401  (each registers its commands on `cli`)
from .base import DEFAULT_DB, EXIT_CODES, cli

__all__ = ["cli", "main", "commands", "EXIT_CODES", "DEFAULT_DB"]




def commands() -> Iterable[str]:
    """Every command name (the docs test checks each has help and a README mention)."""
    return sorted(cli.commands)


def main(argv: list[str] | None = None) -> Any:
    """The console-script entry point."""
    return cli.main(args=argv, prog_name="litecoord")
