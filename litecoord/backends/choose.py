"""Choosing the database backend from one string, as ``--db``, ``LITECOORD_DB`` and ``serve`` do.

A ``postgresql://`` or ``postgres://`` URI selects :class:`PostgresCoordinator`
(imported only then, so SQLite users need no driver); anything else is the
path of a SQLite file.
"""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import urlsplit

from ..types import Clock

__all__ = ["display_name", "is_postgres", "open_coordinator", "redact"]

_POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres(target: str | os.PathLike[str]) -> bool:
    """Whether ``target`` names a PostgreSQL database rather than a SQLite file."""
    return isinstance(target, str) and target.lower().startswith(_POSTGRES_SCHEMES)


def open_coordinator(
    target: str | os.PathLike[str],
    *,
    session: str = "default",
    worker_id: str | None = None,
    clock: Clock | None = None,
    durability: str = "full",
    pool_size: int | None = None,
) -> Any:
    """The coordinator over ``target``: a PostgreSQL URI or a SQLite path.

    ``pool_size`` (PostgreSQL only) shares that many connections between the
    threads of a server; SQLite keeps one connection per thread.
    """
    if is_postgres(target):
        from .. import PostgresCoordinator  # the friendly error if psycopg is missing

        return PostgresCoordinator(
            str(target), session=session, worker_id=worker_id, clock=clock, durability=durability, pool_size=pool_size
        )
    from .sqlite.coordinator import SqliteCoordinator

    return SqliteCoordinator(target, session=session, worker_id=worker_id, clock=clock, durability=durability)


def redact(dsn: str) -> str:
    """A PostgreSQL DSN without its password, for messages and logs."""
    # password=... as a key=value pair or a URI query parameter
    dsn = re.sub(r"(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^&\s]*)", r"\1***", dsn)
    if "://" in dsn:
        try:
            parts = urlsplit(dsn)
            password = parts.password
        except ValueError:
            return "<unparsable DSN>"
        if password:
            return parts._replace(netloc=parts.netloc.replace(":" + password + "@", ":***@", 1)).geturl()
    return dsn


def display_name(target: str | os.PathLike[str]) -> str:
    """How to name ``target`` to a user: a SQLite path as is, a DSN without its password."""
    return redact(str(target)) if is_postgres(target) else os.fspath(target)
