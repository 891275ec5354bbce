"""Choosing the database backend from one string, as ``--db``, ``LITECOORD_DB`` and ``serve`` do.

A ``postgresql://`` or ``postgres://`` URI, or a libpq ``key=value`` string
that starts with a connection keyword (``host=db port=5432 dbname=backfill``),
selects :class:`PostgresCoordinator` (imported only then, so SQLite users
need no driver); anything else is the path of a SQLite file.
"""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import urlsplit

from ..types import Clock

__all__ = ["display_name", "is_postgres", "open_coordinator", "redact", "redact_text"]

_POSTGRES_SCHEMES = ("postgresql://", "postgres://")

# A libpq key=value string starts with one of libpq's connection keywords and "=": a file
# name does not (and one that did would have its password written into a directory listing).
_CONNINFO = re.compile(
    r"\s*(host|hostaddr|port|dbname|user|password|passfile|service|sslmode|connect_timeout|options|"
    r"application_name|target_session_attrs|sslrootcert|sslcert|sslkey|gssencmode|krbsrvname)\s*=",
    re.IGNORECASE,
)


def is_postgres(target: str | os.PathLike[str]) -> bool:
    """Whether ``target`` names a PostgreSQL database (a URI or a ``key=value`` DSN) rather than a SQLite file."""
    if not isinstance(target, str):
        return False
    return target.lower().startswith(_POSTGRES_SCHEMES) or _CONNINFO.match(target) is not None


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


def redact_text(text: str, dsn: str) -> str:
    """``text`` (a driver's message about ``dsn``) with the DSN's password, wherever it appears, as ``***``."""
    for secret in _passwords(dsn):
        if len(secret) >= 3:  # shorter would mask ordinary words; such a password is no secret anyway
            text = text.replace(secret, "***")
    return redact(text)


def _passwords(dsn: str) -> list[str]:
    found = [m.group(1).strip("'") for m in re.finditer(r"(?i)password\s*=\s*('(?:[^'\\]|\\.)*'|[^&\s]*)", dsn)]
    if "://" in dsn:
        try:
            password = urlsplit(dsn).password
        except ValueError:
            password = None
        if password:
            from urllib.parse import unquote

            found += [password, unquote(password)]
    return [p for p in found if p]


def display_name(target: str | os.PathLike[str]) -> str:
    """How to name ``target`` to a user: a SQLite path as is, a DSN without its password."""
    return redact(str(target)) if is_postgres(target) else os.fspath(target)
