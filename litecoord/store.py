"""One SQLite file: connections, pragmas, schema, the write lock and busy retries.

This module knows nothing about work items; :mod:`litecoord.sqlite` builds
the coordinator on top of it. What it guarantees:

* a connection per process and thread (peewee's thread-local state), opened
  with the pragmas below; a store created before ``fork()`` opens fresh
  connections in the child and never touches the parent's;
* :meth:`Store.write` runs a function inside ``BEGIN IMMEDIATE`` under a
  blocking ``flock()`` on a side file ``<db>.lock``, which queues writers in
  the kernel instead of letting SQLite's sleep-and-poll busy handler starve
  some of them; ``SQLITE_BUSY`` is retried with backoff until the busy
  deadline, then surfaces as :class:`~litecoord.errors.DatabaseBusyError`;
* the schema in ``schema.sql`` (loaded from the installed package) exists.
"""

from __future__ import annotations

import os
import random
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable
from importlib import resources
from typing import Any, TypeVar

import peewee

from .errors import DatabaseBusyError, LitecoordError, ValidationError

try:  # flock is POSIX-only; without it writers fall back to SQLite's busy handler.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["Store", "Durability", "SCHEMA_VERSION", "load_schema", "schema_statements"]

T = TypeVar("T")

SCHEMA_VERSION = "1"


class Durability:
    """``synchronous`` settings a store can run with (see the README's durability table)."""

    #: WAL + synchronous=FULL: every acknowledged call survives a power loss.
    FULL = "full"
    #: WAL + synchronous=NORMAL: survives a process crash; a power loss may lose
    #: the last transactions acknowledged before it (never corrupts the file).
    NORMAL = "normal"

    ALL = (FULL, NORMAL)


def load_schema() -> str:
    """The DDL, read from the installed package (works from a wheel, not only a checkout)."""
    return resources.files("litecoord").joinpath("schema.sql").read_text(encoding="utf-8")


def schema_statements() -> list[str]:
    """The schema as single statements, to run one by one inside a transaction."""
    return _split_sql(load_schema())


# Connections a forked child inherited: kept referenced, never closed or used,
# because closing them could drop POSIX locks that the child's own connections
# hold on the same file.
_INHERITED: list[Any] = []


class _LockFile:
    """One thread's descriptor of ``<db>.lock``.

    flock() locks belong to the open file description, so every thread needs
    its own descriptor or threads of one process would not exclude each
    other. The finalizer closes it when the thread's local state goes away,
    so short-lived threads (a server's) do not leak descriptors.
    """

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        self._finalizer = weakref.finalize(self, os.close, self.fd)

    def close(self) -> None:
        self._finalizer()


def _is_busy(exc: BaseException) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _flock_exclusive(fd: int, spin: float) -> None:
    """Take the flock, polling for up to ``spin`` seconds before sleeping on it.

    Why poll: a process asleep in flock() is woken by the kernel when the lock
    is released, and on these small VMs that wake-up of an idle vCPU costs
    50-80 us, more than a whole NORMAL transaction holds the lock. A waiter
    that polls takes the lock within a microsecond of its release: at NORMAL
    durability with 2-8 processes the cycle rate went from about 0.6x to
    about 0.7x of the unfair baseline, the smallest worker share staying
    above 0.8 of the average. Stores poll only at NORMAL durability: at FULL
    a transaction holds the lock through an fsync, longer than the budget,
    and polling lowered 4 processes from 0.78-0.81x to 0.72x of the baseline.
    """
    if spin > 0:
        clock = time.perf_counter
        deadline = clock() + spin
        for _ in range(1000):  # bounded even when a test freezes the clock
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if clock() >= deadline:
                    break
    fcntl.flock(fd, fcntl.LOCK_EX)


class Store:
    """Shared access to one SQLite coordination file."""

    #: How long SQLite's own busy handler waits within one attempt.
    ATTEMPT_TIMEOUT = 1.0
    #: Page size of files this store creates (existing files keep theirs). Every
    #: commit appends each page it changed to the WAL, and a lease change touches
    #: five (the row, three partial indexes, the session's counters): with 1 KiB
    #: pages instead of SQLite's 4 KiB a NORMAL commit writes a quarter of the
    #: bytes, and a complete-and-acquire step took 70 us instead of 88-101.
    PAGE_SIZE = 1024
    #: How long a writer polls the flock before it sleeps on it, at NORMAL durability (see _flock_exclusive).
    SPIN = 100e-6

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        durability: str = Durability.FULL,
        busy_timeout: float = 60.0,
        fair_lock: bool = True,
    ) -> None:
        path = os.fspath(path)
        if not path or path == ":memory:" or path.startswith("file:"):
            raise ValidationError(
                "path",
                "must be a file path; an in-memory database cannot be shared between "
                "connections (use a temporary file, e.g. pytest's tmp_path)",
            )
        if durability not in Durability.ALL:
            raise ValidationError("durability", f"must be one of {', '.join(Durability.ALL)} (got {durability!r})")
        if not busy_timeout > 0:
            raise ValidationError("busy_timeout", "must be positive")
        self.path = path
        self.durability = durability
        self.busy_timeout = float(busy_timeout)
        self.fair_lock = fair_lock and fcntl is not None
        self._spin = self.SPIN if durability == Durability.NORMAL else 0.0  # see _flock_exclusive
        self._schema_ready = False
        self._open_for_this_process()

    # -- connections -------------------------------------------------------

    def _open_for_this_process(self) -> None:
        self._pid = os.getpid()
        self._local = threading.local()  # per-thread flock descriptor
        self.db = peewee.SqliteDatabase(
            self.path,
            pragmas=[
                # Only takes effect on a file that has no tables yet, so it comes before WAL.
                ("page_size", self.PAGE_SIZE),
                ("journal_mode", "wal"),
                ("synchronous", "full" if self.durability == Durability.FULL else "normal"),
                ("foreign_keys", 1),
                ("busy_timeout", int(self.ATTEMPT_TIMEOUT * 1000)),
                # Bound the WAL after checkpoints so a long backfill does not grow it forever.
                ("journal_size_limit", 64 * 1024 * 1024),
            ],
            timeout=self.ATTEMPT_TIMEOUT,
            thread_safe=True,
            autoconnect=True,
        )

    def _check_fork(self) -> None:
        if self._pid != os.getpid():
            # We are a forked child: the inherited connections and lock
            # descriptors belong to the parent. Park them and start afresh.
            _INHERITED.append((self.db, self._local))
            self._open_for_this_process()

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use, with the pragmas)."""
        self._check_fork()
        return self.db.connection()

    def close(self) -> None:
        """Close this thread's connection and lock descriptor (both reopen on demand)."""
        if self._pid != os.getpid():
            return
        lock = getattr(self._local, "lock", None)
        if lock is not None:
            lock.close()
            self._local.lock = None
        if not self.db.is_closed():
            self.db.close()

    # -- transactions ------------------------------------------------------

    def _lock_fd(self) -> int | None:
        lock = getattr(self._local, "lock", None)
        if lock is None and self.fair_lock:
            try:
                lock = _LockFile(self.path + ".lock")
            except OSError:
                # A read-only directory: SQLite's own locking still keeps us correct.
                self.fair_lock = False
                return None
            self._local.lock = lock
        return None if lock is None else lock.fd

    def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` in one ``BEGIN IMMEDIATE`` transaction; commit if it returns.

        ``fn`` may run more than once (after a busy rollback), so it must not
        have side effects outside the database. Errors it raises roll back.
        """
        return self._run(fn, "BEGIN IMMEDIATE", lock=True)

    def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` in a read transaction: one consistent snapshot."""
        return self._run(fn, "BEGIN", lock=False)

    def _run(self, fn: Callable[[sqlite3.Connection], T], begin: str, *, lock: bool) -> T:
        if not self._schema_ready:
            self.ensure_schema()
        waited = 0.0
        delay = 0.002
        while True:
            try:
                conn = self.connection()
                fd = self._lock_fd() if lock else None
                if fd is not None:
                    # Polling would keep the GIL from a sibling thread that holds the lock
                    # and needs the GIL to commit, so only a single-threaded process polls.
                    _flock_exclusive(fd, self._spin if threading.active_count() == 1 else 0.0)
                try:
                    conn.execute(begin)
                    try:
                        result = fn(conn)
                        conn.execute("COMMIT")
                    except BaseException:
                        if conn.in_transaction:
                            conn.execute("ROLLBACK")
                        raise
                    return result
                finally:
                    if fd is not None:
                        fcntl.flock(fd, fcntl.LOCK_UN)
            except (sqlite3.DatabaseError, peewee.DatabaseError) as exc:
                # Driver errors stop here: busy ones are retried, the rest (not a
                # database, disk I/O, read-only file...) become a LitecoordError.
                if not _is_busy(exc):
                    raise LitecoordError(f"SQLite error on {self.path}: {exc}", path=self.path) from exc
                # Budget by time spent waiting, not by a clock: tests freeze clocks.
                waited += self.ATTEMPT_TIMEOUT + delay
                if waited >= self.busy_timeout:
                    raise DatabaseBusyError(
                        f"{self.path} stayed locked for over {self.busy_timeout:.0f}s", path=self.path
                    ) from exc
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 0.1)

    # -- schema ------------------------------------------------------------

    def ensure_schema(self) -> None:
        if self._schema_ready:
            return
        self._schema_ready = True  # set first: the write below re-enters _run
        try:
            self.write(self._create_schema)
        except BaseException:
            self._schema_ready = False
            raise

    @staticmethod
    def _create_schema(conn: sqlite3.Connection) -> None:
        has_meta = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'litecoord_meta'"
        ).fetchone()
        if has_meta:
            row = conn.execute("SELECT value FROM litecoord_meta WHERE key = 'schema_version'").fetchone()
            if row and row[0] != SCHEMA_VERSION:
                raise LitecoordError(
                    f"this file has litecoord schema version {row[0]}; this litecoord reads version {SCHEMA_VERSION}"
                )
            if row:
                return
        # sqlite3's executescript() would COMMIT our transaction first; run the
        # statements one by one inside it instead.
        for statement in schema_statements():
            conn.execute(statement)


def _split_sql(script: str) -> list[str]:
    """Split a script into complete statements (triggers hold inner semicolons)."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        if not buffer and (not line.strip() or line.lstrip().startswith("--")):
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements
