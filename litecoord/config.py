"""Choosing a backend by configuration, as the seed's ``UnifiedWorkCoordinatorFactory`` does.

>>> config = WorkCoordinationConfig.console("http://localhost:8000", "migration-session-1", "worker-001")
>>> coordinator = connect(config)          # an HttpCoordinator
>>> config = WorkCoordinationConfig.sqlite("backfill.db", "migration-session-1", "worker-001")
>>> coordinator = connect(config)          # a SqliteCoordinator
>>> config = WorkCoordinationConfig.postgres("postgresql://backfill@db/backfill", "migration-session-1", "worker-001")
>>> coordinator = connect(config)          # a PostgresCoordinator

or from the RFS properties file of the seed::

    workcoordination.backend=console  # or 'sqlite', 'postgres'
    workcoordination.console.baseUrl=http://localhost:8000
    # or several interchangeable servers, comma-separated (failover):
    # workcoordination.console.baseUrl=http://host-a:8000,http://host-b:8000
    workcoordination.console.sessionName=migration-session-1
    workcoordination.workerId=worker-001
    # for backend=sqlite:
    workcoordination.sqlite.path=/data/backfill.db
    # for backend=postgres (the password never in the file: libpq reads PGPASSWORD
    # or ~/.pgpass, or name another variable to read it from):
    workcoordination.postgres.url=postgresql://backfill@db.internal/backfill
    workcoordination.postgres.password_env=BACKFILL_DB_PASSWORD

The file is read as Java ``.properties`` (``key=value``, ``key: value`` or
``key value``; ``#``/``!`` comment lines; backslash escapes and
continuations), with one extension the seed's own example needs: a ``#``
preceded by whitespace starts a comment at the end of a value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from . import validation as check
from .backends.http import split_urls
from .errors import ValidationError
from .protocol import Coordinator
from .types import Clock

__all__ = ["WorkCoordinationConfig", "connect", "read_properties", "parse_properties"]

BACKENDS = ("sqlite", "console", "postgres")

KEY_BACKEND = "workcoordination.backend"
KEY_BASE_URL = "workcoordination.console.baseUrl"
KEY_SESSION = "workcoordination.console.sessionName"
KEY_SESSION_ANY = "workcoordination.sessionName"
KEY_WORKER = "workcoordination.workerId"
KEY_PATH = "workcoordination.sqlite.path"
KEY_TOKEN = "workcoordination.console.token"
KEY_PG_URL = "workcoordination.postgres.url"
KEY_PG_PASSWORD_ENV = "workcoordination.postgres.password_env"


@dataclass(frozen=True)
class WorkCoordinationConfig:
    """Which coordinator to build.

    ``backend`` is ``"sqlite"`` (needs ``path``), ``"console"`` (needs
    ``base_url``) or ``"postgres"`` (needs ``dsn``; ``password_env`` names an
    environment variable holding the password, read when connecting).
    """

    backend: str
    path: str | None = None
    base_url: str | None = None
    session: str = "default"
    worker_id: str | None = None
    token: str | None = None
    dsn: str | None = None
    password_env: str | None = None

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValidationError("backend", _unsupported(self.backend))
        check.session_name(self.session)
        if self.worker_id is not None:
            check.worker_id(self.worker_id)
        if self.backend == "sqlite":
            if not self.path:
                raise ValidationError("path", "is required for the sqlite backend")
        elif self.backend == "postgres":
            from .backends.choose import is_postgres

            if not isinstance(self.dsn, str) or not (is_postgres(self.dsn) or "=" in self.dsn):
                raise ValidationError("dsn", "must be a postgresql:// URI or a libpq key=value string")
            if self.password_env is not None and (not isinstance(self.password_env, str) or not self.password_env):
                raise ValidationError("password_env", "must name an environment variable")
        else:
            # One URL, or several comma-separated servers over one database (HttpCoordinator fails over).
            split_urls(self.base_url or "")
        if self.token is not None:
            check.token(self.token)

    @classmethod
    def sqlite(
        cls, path: str | os.PathLike[str], session: str = "default", worker_id: str | None = None
    ) -> WorkCoordinationConfig:
        """Embedded coordination through the SQLite file at ``path``."""
        return cls("sqlite", path=os.fspath(path), session=session, worker_id=worker_id)

    @classmethod
    def postgres(
        cls, dsn: str, session: str = "default", worker_id: str | None = None, *, password_env: str | None = None
    ) -> WorkCoordinationConfig:
        """Embedded coordination through the PostgreSQL database at ``dsn`` (a ``postgresql://`` URI
        or a libpq ``key=value`` string)."""
        return cls("postgres", dsn=dsn, session=session, worker_id=worker_id, password_env=password_env)

    @classmethod
    def console(
        cls, base_url: str, session: str = "default", worker_id: str | None = None, *, token: str | None = None
    ) -> WorkCoordinationConfig:
        """Coordination through a console REST API server (``createConsoleConfig`` in the seed)."""
        return cls("console", base_url=base_url, session=session, worker_id=worker_id, token=token)

    @classmethod
    def from_mapping(
        cls, props: Mapping[str, str], *, base_dir: str | os.PathLike[str] | None = None
    ) -> WorkCoordinationConfig:
        """From property keys (see the module doc). A relative sqlite path is taken from ``base_dir``."""
        # Stray blanks around values are a classic .properties mistake; none of these keys wants them.
        props = {k: v.strip() for k, v in props.items() if k.startswith("workcoordination.")}
        backend = (props.get(KEY_BACKEND) or "").lower()
        if not backend:
            given = [name for name, key in (("sqlite", KEY_PATH), ("console", KEY_BASE_URL), ("postgres", KEY_PG_URL))
                     if props.get(key)]  # fmt: skip
            if len(given) != 1:
                raise ValidationError(KEY_BACKEND, "is required (sqlite, console or postgres)")
            backend = given[0]
        if backend not in BACKENDS:
            raise ValidationError(KEY_BACKEND, _unsupported(backend))
        session = props.get(KEY_SESSION_ANY) or props.get(KEY_SESSION) or "default"
        worker = props.get(KEY_WORKER) or None
        try:
            if backend == "sqlite":
                path = props.get(KEY_PATH)
                if not path:
                    raise ValidationError(KEY_PATH, "is required when workcoordination.backend=sqlite")
                if base_dir is not None and not os.path.isabs(path):
                    path = os.path.join(os.fspath(base_dir), path)
                return cls.sqlite(path, session, worker)
            if backend == "postgres":
                dsn = props.get(KEY_PG_URL)
                if not dsn:
                    raise ValidationError(KEY_PG_URL, "is required when workcoordination.backend=postgres")
                return cls.postgres(dsn, session, worker, password_env=props.get(KEY_PG_PASSWORD_ENV) or None)
            base_url = props.get(KEY_BASE_URL)
            if not base_url:
                raise ValidationError(KEY_BASE_URL, "is required when workcoordination.backend=console")
            return cls.console(base_url, session, worker, token=props.get(KEY_TOKEN) or None)
        except ValidationError as exc:
            if exc.field.startswith("workcoordination."):
                raise
            # Name the property, not the dataclass field, so the user knows which line to fix.
            key = {"session": KEY_SESSION, "worker_id": KEY_WORKER, "base_url": KEY_BASE_URL, "token": KEY_TOKEN,
                   "dsn": KEY_PG_URL, "password_env": KEY_PG_PASSWORD_ENV}  # fmt: skip
            raise ValidationError(key.get(exc.field, exc.field), exc.detail.split(": ", 1)[-1]) from None

    @classmethod
    def from_properties(cls, path: str | os.PathLike[str]) -> WorkCoordinationConfig:
        """Read a Java ``.properties`` file; relative sqlite paths are relative to the file."""
        return cls.from_mapping(read_properties(path), base_dir=Path(path).resolve().parent)


def _unsupported(backend: str) -> str:
    if backend == "opensearch":
        return (
            "'opensearch' (coordination through an OpenSearch cluster) is not supported by litecoord; "
            "use 'console', 'sqlite' or 'postgres'"
        )
    return f"must be one of {', '.join(BACKENDS)} (got {backend!r})"


def connect(config: WorkCoordinationConfig, *, clock: Clock | None = None) -> Coordinator:
    """The coordinator ``config`` describes. ``clock`` applies to the sqlite and
    postgres backends (a console server keeps its own time)."""
    if config.backend == "postgres":
        from . import PostgresCoordinator

        dsn = config.dsn or ""
        if config.password_env is not None:
            password = os.environ.get(config.password_env)
            if password is None:
                raise ValidationError(KEY_PG_PASSWORD_ENV, f"names {config.password_env}, which is not set")
            from psycopg.conninfo import make_conninfo

            dsn = make_conninfo(dsn, password=password)
        return PostgresCoordinator(dsn, session=config.session, worker_id=config.worker_id, clock=clock)
    if config.backend == "sqlite":
        from .backends.sqlite.coordinator import SqliteCoordinator

        return SqliteCoordinator(config.path or "", session=config.session, worker_id=config.worker_id, clock=clock)
    from .backends.http import HttpCoordinator

    return HttpCoordinator(
        config.base_url or "", session=config.session, worker_id=config.worker_id, token=config.token
    )


# -- Java .properties -------------------------------------------------------------------

_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}


def read_properties(path: str | os.PathLike[str]) -> dict[str, str]:
    """Parse a ``.properties`` file (UTF-8, as Java 9+ reads them)."""
    return parse_properties(Path(path).read_text(encoding="utf-8"))


def parse_properties(text: str) -> dict[str, str]:
    """Parse ``.properties`` text into a dict (later keys win, as in Java)."""
    props: dict[str, str] = {}
    for line in _logical_lines(text):
        key, value = _split_entry(line)
        props[key] = value
    return props


def _logical_lines(text: str) -> list[str]:
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.lstrip(" \t\f")
        if not pending and (not stripped or stripped[0] in "#!"):
            continue
        trailing = len(stripped) - len(stripped.rstrip("\\"))
        if trailing % 2 == 1:  # an odd number of backslashes continues the line
            pending += stripped[:-1]
            continue
        lines.append(pending + stripped)
        pending = ""
    if pending:
        lines.append(pending)
    return lines


def _split_entry(line: str) -> tuple[str, str]:
    key: list[str] = []
    i, n = 0, len(line)
    while i < n:
        ch = line[i]
        if ch == "\\" and i + 1 < n:
            i, text = _unescape(line, i)
            key.append(text)
            continue
        if ch in "=: \t\f":
            break
        key.append(ch)
        i += 1
    while i < n and line[i] in " \t\f":
        i += 1
    if i < n and line[i] in "=:":
        i += 1
    while i < n and line[i] in " \t\f":
        i += 1
    value: list[str] = []
    blanks_from: int | None = None  # where the current run of unescaped blanks began
    while i < n:
        ch = line[i]
        if ch == "\\" and i + 1 < n:
            i, text = _unescape(line, i)
            value.append(text)
            blanks_from = None
            continue
        if ch == "#" and blanks_from is not None:
            # "console  # or 'opensearch'": a trailing comment (not Java, but the seed writes it).
            del value[blanks_from:]
            break
        if ch in " \t\f":
            blanks_from = len(value) if blanks_from is None else blanks_from
        else:
            blanks_from = None
        value.append(ch)
        i += 1
    return "".join(key), "".join(value)


def _unescape(line: str, i: int) -> tuple[int, str]:
    """Decode the escape at ``line[i] == '\\'``; return the next index and the text."""
    ch = line[i + 1]
    if ch == "u":
        digits = line[i + 2 : i + 6]
        if len(digits) == 4 and all(c in "0123456789abcdefABCDEF" for c in digits):
            return i + 6, chr(int(digits, 16))
        raise ValidationError("properties", f"malformed \\u escape: \\u{digits}")
    return i + 2, _ESCAPES.get(ch, ch)
