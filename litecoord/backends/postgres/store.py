"""One PostgreSQL database: connections, transactions, the schema and what to do when the server goes away.

This module knows nothing about work items; :mod:`.coordinator` builds on it.
What it guarantees:

* a connection per process and thread (workers), or a bounded pool shared by
  the threads of a server (``pool_size``); a store created before ``fork()``
  opens fresh connections in the child and never touches the parent's (a
  child closing an inherited connection would end the parent's session);
* :meth:`PgStore.run` runs a function in one transaction that starts, reads
  the time (the database server's clock, unless the caller has its own) and
  sets the durability in a single round trip;
* a connection lost before the commit was sent rolled the transaction back,
  so the call is run again on a new connection; a connection lost during the
  commit leaves the outcome unknown, so only calls that are safe to repeat
  are run again, the others raise :class:`~litecoord.errors.DatabaseUnavailableError`;
  a database that stays unreachable past ``connect_timeout`` raises that same
  error, with one line saying where and why;
* every call is bounded (:mod:`.watchdog`): by the caller's
  :func:`~litecoord.backends.bounds.call_bound` if it set one, else by
  ``call_timeout``; a call that runs out raises
  :class:`~litecoord.errors.DatabaseUnavailableError`, whatever the server is
  doing (frozen, partitioned); TCP keepalives and per-transaction
  ``lock_timeout``/``idle_in_transaction_session_timeout`` bound the rest;
* the schema in ``schema.sql`` (loaded from the installed package) exists, at
  this package's version (see :meth:`PgStore.check_schema`).
"""

from __future__ import annotations

import os
import queue
import random
import re
import threading
import time
from collections.abc import Callable
from importlib import resources
from typing import Any, TypeVar

from ...errors import (
    DatabaseRefusedError,
    DatabaseUnavailableError,
    NotALitecoordFileError,
    SchemaVersionError,
    ValidationError,
)
from .. import bounds
from ..choose import redact, redact_text

try:
    import psycopg
    import psycopg.conninfo
    from psycopg import errors as pg_errors
except ImportError as exc:  # pragma: no cover - exercised without the extra installed
    raise ImportError("the PostgreSQL backend needs psycopg 3: pip install 'litecoord[postgres]'") from exc

from .watchdog import SERVER_BOUNDS, Watchdog, keepalive_options

__all__ = ["PgStore", "SCHEMA_VERSION", "load_schema", "redact"]

T = TypeVar("T")

#: The schema version this package writes (litecoord_meta.schema_version).
SCHEMA_VERSION = 4

#: Steps that bring a database from version ``n - 1`` to ``n`` (SQL run before
#: the idempotent schema file is applied again). Version 1 is the first.
MIGRATIONS: dict[int, str] = {
    # 1 -> 2: pausing a session; the attempts table, its triggers and the running
    # attempts of leases held across the migration come from schema.sql.
    2: "ALTER TABLE sessions ADD COLUMN IF NOT EXISTS paused_at BIGINT",
    # 2 -> 3: document ranges, live splits and split requests. Every item gets
    # the default range of its id and count (litecoord.ranges.default_range);
    # the counting trigger is off meanwhile (its function is replaced by the
    # schema file after this, which also recreates the trigger).
    3: """
ALTER TABLE work_items DISABLE TRIGGER work_items_count;
ALTER TABLE sessions ADD COLUMN IF NOT EXISTS split_min_documents BIGINT DEFAULT 10000
    CHECK (split_min_documents >= 0);
ALTER TABLE work_items ADD COLUMN IF NOT EXISTS range_start BIGINT NOT NULL DEFAULT 0;
ALTER TABLE work_items ADD COLUMN IF NOT EXISTS range_end BIGINT;
ALTER TABLE work_items ADD COLUMN IF NOT EXISTS split_requested_at BIGINT;
ALTER TABLE work_items ADD COLUMN IF NOT EXISTS counts_in_totals BOOLEAN NOT NULL DEFAULT true;
UPDATE work_items SET counts_in_totals = false WHERE parent_id IS NOT NULL;
UPDATE work_items SET range_start = substring(work_item_id FROM '__([0-9]{1,19})$')::bigint
WHERE work_item_id ~ '^.+__[0-9]{1,9}__[0-9]{1,19}$'
  AND substring(work_item_id FROM '__([0-9]{1,19})$')::numeric <= 9007199254740991;
UPDATE work_items SET range_end = range_start + document_count WHERE document_count IS NOT NULL;
ALTER TABLE work_items ENABLE TRIGGER work_items_count;
""",
    # 3 -> 4: an attempt's row is written once, when it ends (the running one is the
    # item's lease). The trigger and function that wrote a row at each lease go; the
    # schema file makes the new ones. Rows of attempts running across the migration
    # stay, and are filled in when their lease ends, like any other.
    4: """
DROP TRIGGER IF EXISTS work_items_attempts ON work_items;
DROP TRIGGER IF EXISTS work_items_attempts_insert ON work_items;
DROP FUNCTION IF EXISTS litecoord_attempts();
ALTER TABLE IF EXISTS attempts RESET (fillfactor);
""",
}

#: What the statement that begins each transaction carries, by (durability, reads the time).
_BEGIN = {
    ("full", True): f"BEGIN; {SERVER_BOUNDS}; SELECT litecoord_now()",
    ("full", False): f"BEGIN; {SERVER_BOUNDS}",
    ("normal", True): f"BEGIN; {SERVER_BOUNDS}; SET LOCAL synchronous_commit TO off; SELECT litecoord_now()",
    ("normal", False): f"BEGIN; {SERVER_BOUNDS}; SET LOCAL synchronous_commit TO off",
}

#: Errors after which the transaction was rolled back by the server and running it again is safe.
_TRANSIENT = (pg_errors.SerializationFailure, pg_errors.DeadlockDetected)
#: A row stayed locked past lock_timeout (another session holds it, perhaps frozen): rolled back,
#: retried like the above, but only until the call's deadline.
_LOCKED = (pg_errors.LockNotAvailable,)

# Every store of a process shares one watchdog thread.
_WATCHDOG = Watchdog()

#: Statements the role may not run: no privilege, a read-only role or transaction (a standby).
_FORBIDDEN = (pg_errors.InsufficientPrivilege, pg_errors.ReadOnlySqlTransaction)

#: What the server (or a pooler: PgBouncer's "no such database/user") says when it refuses a
#: login for a reason waiting will not fix. Statements' errors go by SQLSTATE (_FORBIDDEN...),
#: but libpq keeps a failed login's SQLSTATE to itself: psycopg's OperationalError has no
#: sqlstate and no diag fields then, and PQgetResult holds none (checked: psycopg 3.3, libpq 15
#: and 18), so the message is all there is: the server's own, in its lc_messages (English by
#: default). In another language nothing here matches and the refusal is retried like an
#: outage, until connect_timeout, then DatabaseUnavailableError quoting the server's words:
#: slower, but never the other way round (a server starting up or out of connection slots
#: taken for a permanent refusal, stopping every worker).
_REFUSED_LOGIN = (
    "authentication failed",  # password, SCRAM, ident, peer, PAM...
    "no password supplied",
    "no pg_hba.conf entry",
    "does not exist",  # database "x" / role "x"
    "is not permitted to log in",
    "permission denied for database",
    "no such database",
    "no such user",
)


# Connections a forked child inherited: kept referenced, never closed or used,
# because closing one would send the server a Terminate on the parent's session.
_INHERITED: list[Any] = []


def _login_reason(message: str) -> str:
    """What the server said, without libpq's "connection to server at ... failed:" around it."""
    return message.rsplit("FATAL:", 1)[-1].strip() or message


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def load_schema() -> str:
    """The DDL, read from the installed package (works from a wheel, not only a checkout)."""
    return resources.files(__package__).joinpath("schema.sql").read_text(encoding="utf-8")


def _table_names() -> frozenset[str]:
    """The tables schema.sql creates: a schema holding any of them without litecoord_meta is another application's."""
    return frozenset(re.findall(r"(?im)^CREATE TABLE IF NOT EXISTS (\w+)", load_schema()))


class Durability:
    """What an acknowledged call survives on PostgreSQL (see the README's durability section)."""

    #: synchronous_commit=on: a call returns after its commit is flushed to the
    #: database's WAL (and to synchronous standbys, if configured): it survives a
    #: crash of the database host.
    FULL = "full"
    #: synchronous_commit=off for litecoord's transactions: the commit returns
    #: before the flush; a crash of the database server (not of a worker) may
    #: lose the last ~0.6 s of acknowledged calls (3 x wal_writer_delay), never
    #: corrupting anything.
    NORMAL = "normal"

    ALL = (FULL, NORMAL)


def _dsn_timeout(dsn: str, default: float) -> float:
    try:
        value = psycopg.conninfo.conninfo_to_dict(dsn).get("connect_timeout")
    except psycopg.ProgrammingError as exc:
        raise ValidationError("dsn", redact_text(" ".join(str(exc).split()), dsn)) from None
    try:
        return float(value) if value else default
    except ValueError:
        raise ValidationError("dsn", f"connect_timeout must be a number of seconds (got {value!r})") from None


class _Lost(Exception):
    """The connection broke; ``committing`` says whether the COMMIT had been sent."""

    def __init__(self, cause: BaseException, committing: bool) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.committing = committing


class PgStore:
    """Shared access to one PostgreSQL database (``dsn``: a URI or ``key=value`` string)."""

    #: Pause before reconnecting: grows to this many seconds, with jitter.
    MAX_BACKOFF = 1.0
    #: With ``prepared_statements``: a statement is prepared on its connection from its n-th run (psycopg's default).
    PREPARE_THRESHOLD = 5

    def __init__(
        self,
        dsn: str,
        *,
        durability: str = Durability.FULL,
        pool_size: int | None = None,
        connect_timeout: float = 10.0,
        call_timeout: float = 60.0,
        prepared_statements: bool = False,
    ) -> None:
        if not isinstance(dsn, str) or not dsn.strip():
            raise ValidationError("dsn", "must be a PostgreSQL connection string (postgresql://...)")
        if durability not in Durability.ALL:
            raise ValidationError("durability", f"must be one of {', '.join(Durability.ALL)} (got {durability!r})")
        if pool_size is not None and (isinstance(pool_size, bool) or not isinstance(pool_size, int) or pool_size < 1):
            raise ValidationError("pool_size", "must be a positive integer")
        self.dsn = dsn
        self.durability = durability
        self.pool_size = pool_size
        # Off by default: a transaction-mode pooler (PgBouncer, RDS Proxy...) hands each
        # transaction whatever server connection is free, where the statements this
        # connection prepared do not exist or name other SQL (README: behind a pooler).
        self.prepared_statements = bool(prepared_statements)
        # A connect_timeout in the DSN also bounds how long an unreachable database is retried.
        self.connect_timeout = _dsn_timeout(dsn, connect_timeout)
        if not call_timeout > 0:
            raise ValidationError("call_timeout", "must be a positive number of seconds")
        #: The bound on one call (one transaction) when the caller sets none (see bounds.call_bound).
        self.call_timeout = float(call_timeout)
        self._keepalives = keepalive_options(psycopg.conninfo.conninfo_to_dict(dsn))
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._local = threading.local()
        self._opened: list[Any] = []  # every connection this process opened and has not closed
        self._pool: queue.LifoQueue[Any] | None = None if pool_size is None else queue.LifoQueue()
        self._pool_slots = None if pool_size is None else threading.BoundedSemaphore(pool_size)
        self._schema_checked = False

    def __repr__(self) -> str:
        return f"PgStore({redact(self.dsn)!r})"

    # -- connections -------------------------------------------------------------

    def _forked(self) -> None:
        """In a forked child: forget (but keep referenced) every connection of the parent."""
        with self._lock:
            if self._pid == os.getpid():
                return
            _INHERITED.extend(self._opened)
            self._opened = []
            self._local = threading.local()
            if self._pool is not None:
                self._pool = queue.LifoQueue()
                self._pool_slots = threading.BoundedSemaphore(self.pool_size or 1)
            self._pid = os.getpid()

    def _connect(self, deadline: float, *, autocommit: bool = True) -> Any:
        """A new connection, retried with backoff until ``deadline``; then one clear error."""
        pause = 0.05
        while True:
            left = deadline - time.monotonic()
            try:
                conn = psycopg.connect(
                    self.dsn,
                    autocommit=autocommit,
                    connect_timeout=max(1, int(min(left, self.connect_timeout)) or 1),
                    prepare_threshold=self.PREPARE_THRESHOLD if self.prepared_statements else None,
                    **self._keepalives,
                )
            except psycopg.OperationalError as exc:
                reason = redact_text(" ".join(str(exc).split()) or type(exc).__name__, self.dsn)
                if any(text in reason.lower() for text in _REFUSED_LOGIN):
                    raise DatabaseRefusedError(
                        f"the PostgreSQL database {redact(self.dsn)} refused the connection: {_login_reason(reason)}"
                    ) from None
                if time.monotonic() + pause >= deadline:
                    raise DatabaseUnavailableError(
                        f"cannot reach the PostgreSQL database {redact(self.dsn)}: {reason}"
                    ) from None
                time.sleep(pause * (0.5 + random.random()))
                pause = min(pause * 2, self.MAX_BACKOFF)
                continue
            except psycopg.ProgrammingError as exc:  # a malformed DSN
                raise ValidationError("dsn", redact_text(" ".join(str(exc).split()), self.dsn)) from None
            with self._lock:
                self._opened.append(conn)
            return conn

    def _checkout(self, deadline: float) -> Any:
        if self._pid != os.getpid():
            self._forked()
        if self._pool is None:
            conn = getattr(self._local, "conn", None)
            if conn is None or conn.closed:
                conn = self._local.conn = self._connect(deadline)
            return conn
        assert self._pool_slots is not None
        if not self._pool_slots.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise DatabaseUnavailableError(
                f"all {self.pool_size} connections to {redact(self.dsn)} stayed busy; raise the pool size"
            )
        try:
            while True:
                try:
                    conn = self._pool.get_nowait()
                except queue.Empty:
                    return self._connect(deadline)
                if not conn.closed:
                    return conn
        except BaseException:
            self._pool_slots.release()
            raise

    def _checkin(self, conn: Any) -> None:
        if self._pool is None:
            return
        if not conn.closed:
            self._pool.put(conn)
        assert self._pool_slots is not None
        self._pool_slots.release()

    def _discard(self, conn: Any) -> None:
        with self._lock:
            if conn in self._opened:
                self._opened.remove(conn)
        try:
            conn.close()
        except Exception:  # noqa: BLE001 - it is already broken; closing is a courtesy
            pass
        if self._pool is None and getattr(self._local, "conn", None) is conn:
            self._local.conn = None

    def snapshot_connection(self) -> Any:
        """A connection of its own (not autocommit), made as every other one, for a long read; give it back to
        :meth:`discard`. Export reads a snapshot through it: one transaction, so a transaction-mode pooler
        keeps it on one server connection, and its server-side cursor lives inside that transaction."""
        if self._pid != os.getpid():
            self._forked()
        return self._connect(time.monotonic() + self.connect_timeout, autocommit=False)

    def discard(self, conn: Any) -> None:
        """Close a connection :meth:`snapshot_connection` made."""
        self._discard(conn)

    def ping(self) -> None:
        """One round trip to the database (the server's /health)."""
        self.run(lambda cur, now: cur.execute("SELECT 1"), now=0, idempotent=True)

    def close(self) -> None:
        """Close this process's connections (the store stays usable: they reopen)."""
        if self._pid != os.getpid():
            self._forked()
            return
        with self._lock:
            opened, self._opened = self._opened, []
        for conn in opened:
            try:
                conn.close()
            except Exception:  # noqa: BLE001
                pass
        self._local = threading.local()
        if self._pool is not None:
            self._pool = queue.LifoQueue()

    # -- transactions -------------------------------------------------------------

    def run(self, fn: Callable[[Any, int], T], *, now: int | None, idempotent: bool, create: bool = False) -> T:
        """``fn(cursor, now)`` in one transaction; its result once committed.

        ``now`` is the caller's time in microseconds, or ``None`` to use the
        database server's clock (read at the start of the transaction).
        ``create``: the call may create the schema (it creates items or a
        session); any other call on a database without it is refused, as a
        read of a missing SQLite file is.
        """
        started = time.monotonic()
        # A caller's bound (the runner: what is left of a lease) also ends the retries.
        deadline = min(started + self.connect_timeout, bounds.deadline() or float("inf"))
        pause = 0.02
        while True:
            conn = self._checkout(deadline)
            try:
                return self._attempt(conn, fn, now, create)
            except _Lost as lost:
                self._discard(conn)
                if lost.committing and not idempotent:
                    raise DatabaseUnavailableError(
                        "the connection to PostgreSQL was lost while committing; "
                        "the call may or may not have taken effect (check the item before repeating it)"
                    ) from None
                if time.monotonic() >= deadline:
                    reason = redact_text(" ".join(str(lost.cause).split()), self.dsn)
                    raise DatabaseUnavailableError(
                        f"lost the connection to the PostgreSQL database {redact(self.dsn)}: {reason}"
                    ) from None
            except _TRANSIENT:
                pass  # rolled back: nothing happened, run it again
            except _LOCKED as exc:
                if time.monotonic() >= deadline:
                    raise DatabaseUnavailableError(
                        f"a row stayed locked by another session of {redact(self.dsn)}: {' '.join(str(exc).split())}"
                    ) from None
            except _FORBIDDEN as exc:
                why = redact_text(_first_line(exc), self.dsn)
                raise DatabaseRefusedError(
                    f"the PostgreSQL database {redact(self.dsn)} refused a statement: {why} "
                    "(litecoord's role needs SELECT, INSERT, UPDATE and DELETE on its tables, "
                    "in a read-write transaction)"
                ) from None
            finally:
                self._checkin(conn)
            time.sleep(pause * (0.5 + random.random()))
            pause = min(pause * 2, self.MAX_BACKOFF)

    def _attempt(self, conn: Any, fn: Callable[[Any, int], T], now: int | None, create: bool) -> T:
        """One try of ``fn``, cut off by the watchdog at the caller's bound (else ``call_timeout``)."""
        bound = bounds.time_left(self.call_timeout)
        assert bound is not None
        armed = _WATCHDOG.arm(conn, time.monotonic() + bound)
        try:
            result = self._attempt_armed(conn, fn, now, create)
        except BaseException as exc:
            if not _WATCHDOG.disarm(armed):
                raise
            conn.close()  # its socket is shut down: the connection is gone whatever libpq made of it
            # Whether a COMMIT had gone out is unknown unless the error says so.
            committing = exc.committing if isinstance(exc, _Lost) else True
            raise _Lost(TimeoutError(f"no answer within {bound:.3g}s"), committing) from None
        if _WATCHDOG.disarm(armed):
            conn.close()  # cut off just as the call ended: its result stands, its connection does not
        return result

    def _attempt_armed(self, conn: Any, fn: Callable[[Any, int], T], now: int | None, create: bool) -> T:
        committing = False
        try:
            if not self._schema_checked:
                self.check_schema(conn, create=create)
            cur = conn.cursor()
            cur.execute(_BEGIN[self.durability, now is None])
            if now is None:
                while cur.description is None and cur.nextset():
                    pass
                now = cur.fetchone()[0]
            try:
                result = fn(cur, now)
            except BaseException:
                if not conn.closed and not conn.broken:
                    cur.execute("ROLLBACK")
                raise
            committing = True
            cur.execute("COMMIT")
            return result
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            if conn.closed or conn.broken or isinstance(exc, pg_errors.AdminShutdown):
                raise _Lost(exc, committing) from exc
            raise

    # -- schema --------------------------------------------------------------------

    def schema_version(self, conn: Any) -> int | None:
        """The version recorded in the database, or ``None`` if it has no litecoord schema."""
        cur = conn.cursor()
        cur.execute("SELECT to_regclass('litecoord_meta') IS NOT NULL")
        if not cur.fetchone()[0]:
            return None
        cur.execute("SELECT value FROM litecoord_meta WHERE key = 'schema_version'")
        row = cur.fetchone()
        if row is None:
            return None
        try:
            return int(row[0])
        except (TypeError, ValueError):
            raise SchemaVersionError(
                f"the database {redact(self.dsn)} holds an unreadable litecoord schema version {row[0]!r} "
                "(litecoord_meta.schema_version); litecoord leaves it untouched",
                found=str(row[0]),
                supported=SCHEMA_VERSION,
            ) from None

    def _foreign_tables(self, conn: Any) -> list[str]:
        """Tables of litecoord's names in the schema it would create its own in (no litecoord_meta there)."""
        cur = conn.cursor()
        cur.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename = ANY(%s) "
            "ORDER BY tablename",
            (list(_table_names()),),
        )
        return [row[0] for row in cur.fetchall()]

    def _refuse_unless_ours(self, conn: Any, *, create: bool) -> None:
        """Without litecoord_meta: another application's tables are refused; an empty schema only on a read."""
        foreign = self._foreign_tables(conn)
        if foreign:
            raise NotALitecoordFileError(
                f"the PostgreSQL database {redact(self.dsn)} is not a litecoord database: it holds another "
                f"application's table(s) {', '.join(foreign)} and no litecoord schema; litecoord leaves it "
                "untouched (use another database, or another schema: options=-csearch_path=...)",
                path=redact(self.dsn),
            )
        if not create:
            raise NotALitecoordFileError(
                f"the PostgreSQL database {redact(self.dsn)} holds no litecoord schema "
                "(litecoord setup, or creating the first items, makes one)",
                path=redact(self.dsn),
            )

    def check_schema(self, conn: Any, *, migrate: bool = False, create: bool = True) -> None:
        """Create the schema if missing (only if ``create``); refuse a newer one, or another application's
        tables; migrate an older one only if ``migrate``."""
        version = self.schema_version(conn)
        if version == SCHEMA_VERSION:
            self._schema_checked = True
            return
        if version is not None and version > SCHEMA_VERSION:
            raise SchemaVersionError(
                f"the database {redact(self.dsn)} holds litecoord schema version {version}, newer than this "
                f"litecoord's {SCHEMA_VERSION}; upgrade litecoord",
                found=version,
                supported=SCHEMA_VERSION,
            )
        if version is not None and not migrate:
            raise SchemaVersionError(
                f"the database {redact(self.dsn)} holds litecoord schema version {version}, older than "
                f"{SCHEMA_VERSION}; run setup() (`litecoord setup`) to migrate it",
                found=version,
                supported=SCHEMA_VERSION,
            )
        if version is None:
            self._refuse_unless_ours(conn, create=create)
        cur = conn.cursor()
        cur.execute("BEGIN")
        try:
            # One creator at a time: concurrent CREATE ... IF NOT EXISTS can still collide.
            cur.execute("SELECT pg_advisory_xact_lock(7396541190321)")
            version = self.schema_version(conn)
            if version is None:
                self._refuse_unless_ours(conn, create=True)  # again under the lock: tables may have come
            if version is None or version < SCHEMA_VERSION:
                for step in range((version or 0) + 1, SCHEMA_VERSION + 1):
                    if version is not None and step in MIGRATIONS:
                        cur.execute(MIGRATIONS[step])
                cur.execute(load_schema())
                cur.execute("UPDATE litecoord_meta SET value = %s WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))
            cur.execute("COMMIT")
        except BaseException:
            if not conn.closed and not conn.broken:
                cur.execute("ROLLBACK")
            raise
        self._schema_checked = True

    def ensure_schema(self) -> None:
        """Create the schema if missing, as the first write that creates items does (``serve`` at start)."""
        self.run(lambda cur, now: None, now=0, idempotent=True, create=True)

    def migrate(self) -> None:
        """Bring the database to this package's schema version (``setup()`` calls it)."""
        deadline = time.monotonic() + self.connect_timeout
        conn = self._checkout(deadline)
        try:
            self.check_schema(conn, migrate=True)
        finally:
            self._checkin(conn)
