"""One SQLite file: connections, pragmas, schema, the write lock and busy retries.

This module knows nothing about work items; :mod:`litecoord.backends.sqlite` builds
the coordinator on top of it. What it guarantees:

* a connection per process and thread (peewee's thread-local state), opened
  with the pragmas below; a store created before ``fork()`` opens fresh
  connections in the child and never touches the parent's;
* at FULL durability every call returns only once what it committed or read
  is on disk: SQLite commits without syncing (``synchronous=NORMAL``) and the
  store syncs the WAL file itself after the commit, outside the write lock,
  so the next writer's transaction runs during this one's sync;
* :meth:`Store.write` runs a function inside ``BEGIN IMMEDIATE`` under a
  blocking ``flock()`` on a side file ``<db>.lock``, which queues writers in
  the kernel instead of letting SQLite's sleep-and-poll busy handler starve
  some of them; ``SQLITE_BUSY`` is retried with backoff until the busy
  deadline, then surfaces as :class:`~litecoord.errors.DatabaseBusyError`;
* at FULL durability, in a process with several threads (a server), writes
  that queue up behind each other share one transaction and one fsync (group
  commit), each in its own savepoint, none returning before that commit;
* the schema in ``schema.sql`` (loaded from the installed package) exists.
"""

from __future__ import annotations

import errno
import functools
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

from ...errors import DatabaseBusyError, LitecoordError, ValidationError

try:  # flock is POSIX-only; without it writers fall back to SQLite's busy handler.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["Store", "Durability", "SCHEMA_VERSION", "load_schema", "schema_statements"]

T = TypeVar("T")

SCHEMA_VERSION = "2"

#: How to bring a file of each older schema version to the next one, in one
#: transaction. New columns go last in their table, where schema.sql puts them
#: too, so an upgraded file and a new one have the same tables.
_UPGRADES: dict[str, tuple[str, ...]] = {
    # 1 -> 2: retry backoff. A failed item waits out a delay before acquire
    # hands it out again; the pending index keeps only items available now.
    "1": (
        "ALTER TABLE sessions ADD COLUMN retry_delay_micros INTEGER NOT NULL DEFAULT 10000000 "
        "CHECK (retry_delay_micros >= 0)",
        "ALTER TABLE sessions ADD COLUMN max_retry_delay_micros INTEGER NOT NULL DEFAULT 600000000 "
        "CHECK (max_retry_delay_micros >= 0)",
        "ALTER TABLE work_items ADD COLUMN next_attempt_at INTEGER",
        "DROP INDEX IF EXISTS work_items_pending",
    ),
}


class Durability:
    """What a store's acknowledged calls survive (see the README's durability table)."""

    #: Every acknowledged call survives a power loss: each call returns only after
    #: the WAL holding what it committed (or read) is synced to disk. The same
    #: guarantee as SQLite's synchronous=FULL, with the sync taken out of the write
    #: lock (see Store._sync_wal).
    FULL = "full"
    #: WAL + synchronous=NORMAL: survives a process crash; a power loss may lose
    #: the last transactions acknowledged before it (never corrupts the file).
    NORMAL = "normal"

    ALL = (FULL, NORMAL)


def load_schema() -> str:
    """The DDL, read from the installed package (works from a wheel, not only a checkout)."""
    return resources.files(__package__).joinpath("schema.sql").read_text(encoding="utf-8")


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


#: fdatasync() where the platform has it (SQLite's own choice for the WAL): the
#: WAL's data and its size, without the timestamps fsync() would also write.
_datasync: Callable[[int], None] = getattr(os, "fdatasync", os.fsync)
#: POSIX syncs a file through a read-only descriptor (so a reader without write
#: access can sync); Windows' FlushFileBuffers needs write access.
_WAL_OPEN_FLAGS = os.O_RDWR if os.name == "nt" else os.O_RDONLY


class _Database(peewee.SqliteDatabase):
    """peewee's SQLite database, checking each new connection's journal mode."""

    def _initialize_connection(self, conn: sqlite3.Connection) -> None:
        # synchronous=NORMAL is safe against power loss only in WAL mode, and the
        # store's own sync (Store._sync_wal) needs a WAL file. A file system
        # that refused WAL leaves the rollback journal: let SQLite sync every commit.
        if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            conn.execute("PRAGMA synchronous = FULL")


#: What the drivers raise: stopped at the edge of the store (retried when busy, else translated).
_DRIVER_ERRORS = (sqlite3.DatabaseError, peewee.DatabaseError)


class _Write:
    """One thread's write, queued for the process's group commit (see Store.write)."""

    __slots__ = ("fn", "done", "result", "error", "wake", "leads")

    def __init__(self, fn: Callable[[sqlite3.Connection], Any]) -> None:
        self.fn = fn
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None
        # Held until the write is done or its thread is to lead the next group.
        self.wake = threading.Lock()
        self.wake.acquire()
        self.leads = False  # handed the lead of the next group (set under the queue lock)

    def outcome(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.result


def _flock_exclusive(fd: int, spin: float) -> None:
    """Take the flock, polling for up to ``spin`` seconds before sleeping on it.

    Why poll: a process asleep in flock() is woken by the kernel when the lock
    is released, and on these small VMs that wake-up of an idle vCPU costs
    50-80 us, more than a whole NORMAL transaction holds the lock. A waiter
    that polls takes the lock within a microsecond of its release: at NORMAL
    durability with 2-8 processes the cycle rate went from about 0.6x to
    about 0.7x of the unfair baseline, the smallest worker share staying
    above 0.8 of the average. Stores poll only at NORMAL durability: at FULL
    polling lowered 4 processes from 0.78-0.81x to 0.72x of the baseline
    while the lock was held through the fsync, and since the sync moved out
    of the lock (Store._sync_wal) it changed nothing measurable (2,500 and
    2,580 cycles/s at 4 processes, 2,600 and 2,560 at 8).
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
    #: Whether the threads of one process share transactions and commits (see write).
    GROUP_COMMIT = True

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
        self._sync_calls = durability == Durability.FULL  # see _sync_wal
        # Group commit pays where a commit costs an fsync: 8 threads of one process ran
        # 2.0-2.3x the cycles at FULL, and still 1.55x once the sync left the write lock
        # (a group syncs once for all its writes). At NORMAL it cost 0.7x: a group idles the other
        # threads while its leader runs everyone's SQL, where each thread's own
        # transaction would run its SQL (GIL released) beside their Python.
        self._group_commit = self.GROUP_COMMIT and durability == Durability.FULL
        self._schema_ready = False
        self._open_for_this_process()

    # -- connections -------------------------------------------------------

    def _open_for_this_process(self) -> None:
        self._pid = os.getpid()
        self._local = threading.local()  # per-thread flock descriptor
        # Group commit: the writes waiting for the next group, and whether a thread leads one.
        self._queue_lock = threading.Lock()
        self._queue: list[_Write] = []
        self._leader = False
        self.db = _Database(
            self.path,
            pragmas=[
                # Only takes effect on a file that has no tables yet, so it comes before WAL.
                ("page_size", self.PAGE_SIZE),
                ("journal_mode", "wal"),
                # NORMAL at either durability: at FULL the store syncs the WAL after
                # each call itself, outside the write lock (see _sync_wal).
                ("synchronous", "normal"),
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
        """Run ``fn(conn)`` in a ``BEGIN IMMEDIATE`` transaction; return once it is committed.

        ``fn`` may run more than once (after a busy rollback), so it must not
        have side effects outside the database. Errors it raises roll back
        what it wrote, and nothing else.

        Group commit: at FULL durability, in a process with several threads,
        writes that arrive while another thread's is running wait for it,
        then go together. The oldest of them runs the whole queue in one
        transaction, each function inside its own savepoint, and commits
        once: one fsync for the group instead of one each. Every caller gets
        its own result or error, and only after the commit that holds it.
        """
        if not self._group_commit or threading.active_count() == 1 or getattr(self._local, "committing", False):
            return self._run(fn, "BEGIN IMMEDIATE", lock=True)
        self._check_fork()  # a forked child starts with an empty queue of its own
        write = _Write(fn)
        with self._queue_lock:
            self._queue.append(write)
            write.leads = not self._leader
            self._leader = True
        if not write.leads:
            try:
                write.wake.acquire()  # released when the write is done, or when it is our turn to lead
            except BaseException:  # KeyboardInterrupt while waiting
                self._withdraw(write)
                raise
            if write.done:
                return write.outcome()
        group: list[_Write] = []
        self._local.committing = True
        try:
            with self._queue_lock:
                group, self._queue = self._queue, []
            self._commit_group(group)
        finally:
            self._local.committing = False
            with self._queue_lock:
                # Interrupted before the group ran (KeyboardInterrupt...): the others go first next time.
                self._queue[:0] = [other for other in group if not other.done and other is not write]
                self._hand_on_the_lead()
            for other in group:
                if other.done and other is not write:
                    other.wake.release()
        return write.outcome()

    def _hand_on_the_lead(self) -> None:
        """The oldest waiting write leads the next group; with none, nobody leads. Under the queue lock."""
        self._leader = bool(self._queue)
        if self._leader:
            self._queue[0].leads = True
            self._queue[0].wake.release()

    def _withdraw(self, write: _Write) -> None:
        """A caller stopped waiting (KeyboardInterrupt): drop its write if it has not run, pass on its lead."""
        with self._queue_lock:
            if write in self._queue:
                self._queue.remove(write)  # it never ran and never will
            # else a group is running it or ran it: committed, but its caller will not hear of it.
            if write.leads and not write.done:
                self._hand_on_the_lead()  # handed the lead as it was interrupted: without this all would wait

    def _commit_group(self, group: list[_Write]) -> None:
        """Run the queued writes in one transaction and hand each its own outcome."""
        try:
            outcomes = self._run(self._each_in_savepoints(group), "BEGIN IMMEDIATE", lock=True)
        except Exception as exc:  # nothing of the group was committed
            outcomes = [(None, exc)] * len(group)
        for write, (value, error) in zip(group, outcomes, strict=True):
            write.result, write.error, write.done = value, error, True

    def _each_in_savepoints(
        self, group: list[_Write]
    ) -> Callable[[sqlite3.Connection], list[tuple[Any, BaseException | None]]]:
        def run(conn: sqlite3.Connection) -> list[tuple[Any, BaseException | None]]:
            if len(group) == 1:
                # Alone: no savepoint, an error rolls back the transaction as it always did.
                return [(group[0].fn(conn), None)]
            outcomes: list[tuple[Any, BaseException | None]] = []
            for write in group:
                conn.execute("SAVEPOINT litecoord_write")
                try:
                    result = write.fn(conn)
                except Exception as exc:
                    # A busy database retries the whole group; an error that made
                    # SQLite roll back the whole transaction fails it.
                    driver = isinstance(exc, _DRIVER_ERRORS)
                    if (driver and _is_busy(exc)) or not conn.in_transaction:
                        raise
                    conn.execute("ROLLBACK TO litecoord_write")
                    conn.execute("RELEASE litecoord_write")
                    outcomes.append((None, self._translate(exc) if driver else exc))
                else:
                    conn.execute("RELEASE litecoord_write")
                    outcomes.append((result, None))
            return outcomes

        return run

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
                finally:
                    if fd is not None:
                        fcntl.flock(fd, fcntl.LOCK_UN)
                if self._sync_calls:
                    self._sync_wal()
                return result
            except _DRIVER_ERRORS as exc:
                # Driver errors stop here: busy ones are retried, the rest (not a
                # database, disk I/O, read-only file...) become a LitecoordError.
                if not _is_busy(exc):
                    raise self._translate(exc) from exc
                # Budget by time spent waiting, not by a clock: tests freeze clocks.
                waited += self.ATTEMPT_TIMEOUT + delay
                if waited >= self.busy_timeout:
                    raise DatabaseBusyError(
                        f"{self.path} stayed locked for over {self.busy_timeout:.0f}s", path=self.path
                    ) from exc
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 0.1)

    def _sync_wal(self) -> None:
        """Sync the WAL file to disk: what this call committed or read becomes durable.

        SQLite's synchronous=FULL syncs the WAL inside COMMIT, while the
        write lock is held, so every writer waits for every other writer's
        sync. Here SQLite commits at NORMAL (the frames are written, not
        synced) and the sync follows after the write lock is released, before
        the call returns: the caller is acknowledged exactly when SQLite's
        FULL would acknowledge it, while the next writer's transaction runs.
        Syncs of several processes overlap, and one sync makes every earlier
        commit durable too (the WAL is appended in commit order), so a call
        that returned never depends on a commit that could still be lost.

        A read syncs as well: it may have seen a commit whose own sync is
        still running, and a caller told "all done" must not see that undone
        by a power loss. Without a WAL file (a rollback-journal connection,
        see _Database) SQLite has synced at COMMIT and there is nothing to do.
        """
        wal = self.path + "-wal"
        try:
            fd = os.open(wal, _WAL_OPEN_FLAGS)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise LitecoordError(f"could not open {wal} to sync it ({exc})", path=self.path) from exc
        try:
            _datasync(fd)
        except OSError as exc:
            if exc.errno in (errno.EROFS, errno.EINVAL):
                return  # a read-only or unsyncable file system: nothing here can be waiting for a sync
            raise LitecoordError(
                f"could not sync {wal} to disk ({exc}); the call's change may not survive a power loss",
                path=self.path,
            ) from exc
        finally:
            os.close(fd)

    def _translate(self, exc: BaseException) -> LitecoordError:
        error = LitecoordError(f"SQLite error on {self.path}: {exc}", path=self.path)
        error.__cause__ = exc
        return error

    # -- schema ------------------------------------------------------------

    def ensure_schema(self, *, upgrade: bool = False) -> None:
        """Create the schema if missing; with ``upgrade``, bring an older one up to date.

        Without ``upgrade`` a file of an older schema version is refused with
        an error naming the command that upgrades it (``setup()`` passes
        ``upgrade=True``): an upgrade is a write the operator asks for once,
        not a side effect of any call. A newer version is always refused.
        """
        if self._schema_ready:
            return
        self._schema_ready = True  # set first: the write below re-enters _run
        try:
            # Not through write(): its group commit would wait for the very call
            # that is creating the schema.
            self._run(functools.partial(self._create_schema, upgrade=upgrade), "BEGIN IMMEDIATE", lock=True)
        except BaseException:
            self._schema_ready = False
            raise

    def _create_schema(self, conn: sqlite3.Connection, *, upgrade: bool = False) -> None:
        has_meta = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'litecoord_meta'"
        ).fetchone()
        if has_meta:
            row = conn.execute("SELECT value FROM litecoord_meta WHERE key = 'schema_version'").fetchone()
            if row and row[0] in _UPGRADES:
                if not upgrade:
                    raise LitecoordError(
                        f"{self.path} has litecoord schema version {row[0]}; this litecoord reads version "
                        f"{SCHEMA_VERSION}. Upgrade the file once with `litecoord setup --db {self.path} "
                        "--session NAME` (any session; or setup() in Python), then run again",
                        path=self.path,
                        schema_version=row[0],
                    )
                version = row[0]
                while version in _UPGRADES:
                    for statement in _UPGRADES[version]:
                        conn.execute(statement)
                    version = str(int(version) + 1)
                # The schema's CREATE ... IF NOT EXISTS statements add the new indexes
                # (and leave what exists); then the file says which version it is.
                for statement in schema_statements():
                    conn.execute(statement)
                conn.execute("UPDATE litecoord_meta SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION,))
                return
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
