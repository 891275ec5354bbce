"""One SQLite file: connections, pragmas, schema, the write lock and busy retries.

This module knows nothing about work items; :mod:`litecoord.backends.sqlite` builds
the coordinator on top of it. What it guarantees:

* a connection per process and thread for reads (peewee's thread-local
  state), and one per process that its threads write through, one at a time
  under the write lock (:meth:`Store._write_connection`: its page cache stays
  warm from one write to the next), all opened with the pragmas below; a
  store created before ``fork()`` opens fresh connections in the child and
  never touches the parent's;
* at FULL durability every call returns only once what it committed or read
  is on disk: SQLite commits without syncing (``synchronous=NORMAL``) and the
  store syncs the WAL file itself after the commit, outside the write lock,
  so the next writer's transaction runs during this one's sync;
* :meth:`Store.write` runs a function inside ``BEGIN IMMEDIATE`` under a
  blocking ``flock()`` on a side file ``<db>.lock`` (:mod:`.flock`), which queues writers in
  the kernel instead of letting SQLite's sleep-and-poll busy handler starve
  some of them; ``SQLITE_BUSY`` is retried with backoff until the busy
  deadline, then surfaces as :class:`~litecoord.errors.DatabaseBusyError`;
* at FULL durability, in a process with several threads (a server), writes
  that queue up behind each other share one transaction and one fsync (group
  commit), each in its own savepoint, none returning before that commit;
* the path is resolved once, at construction, to the file SQLite really
  uses (symlinks followed, made absolute), so the WAL it syncs is the one
  SQLite writes whatever the caller's working directory later becomes;
* it never modifies a file that is not litecoord's (see :meth:`Store.read`
  and :meth:`Store.write`): reads never create a file, a schema or change
  the journal mode, and writes refuse another application's database;
* every commit is counted, in the database and in the lock file, so a file
  that lost commits (its WAL deleted) is noticed when a process opens it
  (:class:`~litecoord.errors.LostWritesError`);
* the schema in ``schema.sql`` (loaded from the installed package) exists
  (:mod:`.schema`: its version, upgrades and the checks of the file).
"""

from __future__ import annotations

import errno
import functools
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import peewee

from ...errors import DatabaseBusyError, LitecoordError, LostWritesError, NotALitecoordFileError, ValidationError
from .. import bounds
from .flock import _flock_exclusive, _LockFile, fcntl
from .group_commit import GroupCommit, _Write

# The schema, its upgrades and the file checks are in .schema; every name it
# defines stays importable from here (tests and benchmarks import load_schema,
# schema_statements, SCHEMA_VERSION and APPLICATION_ID from this module).
from .schema import (  # noqa: F401
    _AFTER_UPGRADE,
    _COMMITS_KEY,
    _OBJECT_NAMES,
    _UPGRADES,
    APPLICATION_ID,
    SCHEMA_VERSION,
    FileChecks,
    _has_content,
    _kind_of,
    _ranges_of_existing_items,
    _schema_version,
    _split_sql,
    litecoord_object_names,
    load_schema,
    schema_statements,
)

__all__ = ["Store", "Durability", "SCHEMA_VERSION", "APPLICATION_ID", "load_schema", "schema_statements"]

T = TypeVar("T")


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


# Connections a forked child inherited: kept referenced, never closed or used,
# because closing them could drop POSIX locks that the child's own connections
# hold on the same file.
_INHERITED: list[Any] = []


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


def _use_wal(conn: sqlite3.Connection) -> None:
    """Put a litecoord file in WAL mode (persistent; a no-op when it already is)."""
    # synchronous=NORMAL is safe against power loss only in WAL mode, and the
    # store's own sync (Store._sync_wal) needs a WAL file. A file system
    # that refused WAL leaves the rollback journal: let SQLite sync every commit.
    wal = conn.execute("PRAGMA journal_mode = wal").fetchone()[0].lower() == "wal"
    conn.execute(f"PRAGMA synchronous = {'NORMAL' if wal else 'FULL'}")


class _Database(peewee.SqliteDatabase):
    """peewee's SQLite database, setting each new connection's journal mode once the file is known to be ours."""

    #: Set by the store once it has checked that the file is litecoord's: before that a
    #: connection must not switch the file to WAL (a foreign file stays as it was).
    owned = False

    def _initialize_connection(self, conn: sqlite3.Connection) -> None:
        if self.owned:
            _use_wal(conn)
        elif conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            conn.execute("PRAGMA synchronous = FULL")  # changes the connection only, not the file


#: The commit counter: a row of litecoord_meta, bumped in counted write transactions (Store.COUNT_EVERY).
_BUMP_COMMITS = f"UPDATE litecoord_meta SET value = value + 1 WHERE key = '{_COMMITS_KEY}' RETURNING value"
#: What the lock file holds: the latest commit count a writer saw, fixed width so a rewrite covers it all.
_RECORD_WIDTH = 20


#: What the drivers raise: stopped at the edge of the store (retried when busy, else translated).
_DRIVER_ERRORS = (sqlite3.DatabaseError, peewee.DatabaseError)


class Store(FileChecks, GroupCommit):
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
    #: A process counts its first write transaction and then one in this many, in the file and
    #: in the lock file (see _check_commits). Counting dirties one more page: counting every
    #: commit cost 12-15% of the lease cycles of one process at NORMAL (145 against 127 us of
    #: CPU a cycle); one in 16 costs under 1%, and a lost WAL goes unnoticed only when it held
    #: no counted commit: fewer than 16 commits of each process that wrote since the last checkpoint.
    COUNT_EVERY = 16

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
        # The file SQLite really uses, resolved once: SQLite follows symlinks and
        # writes <target>-wal, and a relative path would name another file after
        # a chdir(). Syncing <link>-wal or a stale relative name would sync nothing.
        self.path = os.path.realpath(path)
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
        # Checked to be litecoord's with its schema (_readable), and prepared for
        # this version's writes (_writable: application id and commit counter).
        self._readable = self._writable = False
        self._ready_lock = threading.Lock()
        self._open_for_this_process()

    # -- connections -------------------------------------------------------

    def _open_for_this_process(self) -> None:
        self._pid = os.getpid()
        self._local = threading.local()  # per-thread flock descriptor
        self._uncounted = 0  # write transactions since the last counted one (changed under the flock)
        # Group commit: the writes waiting for the next group, and whether a thread leads one.
        self._queue_lock = threading.Lock()
        self._queue: list[_Write] = []
        self._leader = False
        # The process's connection for writes, shared by its threads (see _write_connection).
        self._writer: sqlite3.Connection | None = None
        self.db = _Database(
            self.path,
            pragmas=self._pragmas(),
            timeout=self.ATTEMPT_TIMEOUT,
            thread_safe=True,
            autoconnect=True,
        )
        self.db.owned = self._readable

    def _pragmas(self) -> list[tuple[str, Any]]:
        return [
            # No journal_mode here: only a file checked to be litecoord's is switched
            # to WAL (_Database.owned, Store._open). NORMAL at either durability: at FULL
            # the store syncs the WAL after each call itself, outside the write lock (see _sync_wal).
            ("synchronous", "normal"),
            ("foreign_keys", 1),
            ("busy_timeout", int(self.ATTEMPT_TIMEOUT * 1000)),
            # Bound the WAL after checkpoints so a long backfill does not grow it forever.
            ("journal_size_limit", 64 * 1024 * 1024),
        ]

    def _check_fork(self) -> None:
        if self._pid != os.getpid():
            # We are a forked child: the inherited connections and lock
            # descriptors belong to the parent. Park them and start afresh.
            _INHERITED.append((self.db, self._local, self._writer))
            self._open_for_this_process()

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use, with the pragmas)."""
        self._check_fork()
        return self.db.connection()

    def _write_connection(self) -> sqlite3.Connection:
        """The connection the threads of this process write through, one at a time (under the flock).

        Why one: SQLite drops a connection's whole page cache when it begins a
        transaction after another connection wrote. With a connection per
        request thread, every write of a busy server found its cache cold and
        read its pages again (3.4 more page reads a request at 16 clients);
        through one connection each write finds the pages the last one left.
        At 16 clients and NORMAL durability the server spent 50-60 us less CPU
        a request. Only writers holding the flock use it, so it is never in
        two transactions at once; reads keep a connection per thread, since
        they run side by side. The caller holds the flock (which also makes
        opening it here one thread's job) and has checked for a fork.
        """
        conn = self._writer
        if conn is None:
            conn = sqlite3.connect(
                self.path, timeout=self.ATTEMPT_TIMEOUT, isolation_level=None, check_same_thread=False
            )
            for name, value in self._pragmas():
                conn.execute(f"PRAGMA {name} = {value}")
            self.db._initialize_connection(conn)
            self._writer = conn
        return conn

    def _close_writer(self) -> None:
        """Close the write connection if no write is running; else leave it to the store's end.

        Only under the flock, so no thread is writing through it meanwhile, and
        without waiting for it: close() must not block behind another
        process's write (or a stopped process that holds the lock). A thread
        that never wrote (a server's main thread) opens its lock descriptor here.
        """
        fd = self._lock_fd()
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return  # a write is running: the connection closes with the store (garbage collection, exit)
        try:
            writer, self._writer = self._writer, None
            if writer is not None:
                writer.close()
        finally:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Close this thread's connection and lock descriptor, and the write connection (all reopen on demand)."""
        if self._pid != os.getpid():
            return
        if self._writer is not None:
            self._close_writer()
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
        if not self._writable:
            self._open(create=True)
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
        """Run ``fn(conn)`` in a read transaction: one consistent snapshot.

        The first read (or write) checks the file: a read never creates the
        file or the schema, nor changes the journal mode, and refuses
        anything but a litecoord file with :class:`NotALitecoordFileError`.
        """
        if not self._readable:
            self._open(create=False)
        return self._run(fn, "BEGIN", lock=False)

    def _run(self, fn: Callable[[sqlite3.Connection], T], begin: str, *, lock: bool) -> T:
        waited = 0.0
        delay = 0.002
        while True:
            try:
                self._check_fork()  # before the lock descriptor: a forked child must not use its parent's
                fd = self._lock_fd() if lock else None
                if fd is None:
                    conn = self.connection()
                else:
                    # Polling would keep the GIL from a sibling thread that holds the lock
                    # and needs the GIL to commit, so only a single-threaded process polls;
                    # the threads of a server write through one connection (_write_connection).
                    shared = threading.active_count() > 1
                    _flock_exclusive(fd, 0.0 if shared else self._spin)
                    try:
                        conn = self._write_connection() if shared else self.connection()
                    except BaseException:
                        fcntl.flock(fd, fcntl.LOCK_UN)
                        raise
                commits = None
                try:
                    try:
                        conn.execute(begin)
                        try:
                            result = fn(conn)
                            if fd is not None:
                                if not self._uncounted:
                                    # Counted in the file (Store._check_commits); None before _create_schema ran.
                                    commits = conn.execute(_BUMP_COMMITS).fetchone()
                                self._uncounted = (self._uncounted + 1) % self.COUNT_EVERY
                            conn.execute("COMMIT")
                        except BaseException:
                            if conn.in_transaction:
                                conn.execute("ROLLBACK")
                            raise
                    finally:
                        if fd is not None:
                            fcntl.flock(fd, fcntl.LOCK_UN)
                except LitecoordError:
                    # Errors that report state (not found, conflict, expired) may report another
                    # process's commit whose sync is still running: like reads, they are answered
                    # only once that is on disk.
                    if self._sync_calls:
                        self._sync_wal()
                    raise
                if self._sync_calls:
                    self._sync_wal()
                if commits is not None:
                    # Recorded after the sync: the lock file never counts a commit the WAL may
                    # not hold. Writers outside the lock may record out of order; a lower count
                    # only weakens the check (Store._check_commits), it never raises a false alarm.
                    os.pwrite(fd, str(commits[0]).encode().rjust(_RECORD_WIDTH) + b"\n", 0)
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
                if bounds.time_left() == 0:  # the caller's bound (a runner: what is left of its lease)
                    raise DatabaseBusyError(f"{self.path} stayed locked past the call's bound", path=self.path) from exc
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
        see _Database) SQLite has synced at COMMIT and there is nothing to do;
        in WAL mode a missing WAL is an error: what was committed is gone.
        """
        wal = self.path + "-wal"
        try:
            fd = os.open(wal, _WAL_OPEN_FLAGS)
        except FileNotFoundError:
            if self.connection().execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                return
            raise LostWritesError(
                f"{wal} is missing after a commit in WAL mode (deleted while in use?): "
                "what this call committed or read may be lost",
                path=self.path,
            ) from None
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

    # -- the file: is it ours, and does it hold what was committed -----------------------
    # (the checks, ensure_schema and check_file are FileChecks', in .schema)

    def _open(self, *, create: bool, upgrade: bool = False) -> None:
        # Not through write(): its group commit would wait for the very call that creates the schema.
        prepare = functools.partial(self._create_schema, upgrade=upgrade)
        with self._ready_lock:  # the threads of a server: one checks, the others wait for it
            if self._writable or (self._readable and not create):
                return
            if self._readable:  # checked by a read: prepare it for writes
                self._run(prepare, "BEGIN IMMEDIATE", lock=True)
                self._writable = True
                return
            self._check_path(create=create)
            try:
                kind, why = _kind_of(self.connection())
                if kind == "empty" and _has_content(self.path):
                    self._check_commits(held=0)  # a WAL lost before the first checkpoint takes the schema too
                if kind == "foreign" or (kind == "empty" and not create):
                    raise NotALitecoordFileError(
                        f"{self.path} is not a litecoord file: it is {why}"
                        + ("; litecoord leaves it untouched" if kind == "foreign" else " (litecoord setup makes one)"),
                        path=self.path,
                    )
                conn = self.connection()
                if kind == "empty":
                    # Takes effect only before the first table exists, so before the schema.
                    conn.execute(f"PRAGMA page_size = {self.PAGE_SIZE}")
                self.db.owned = True
                _use_wal(conn)
                if create:
                    self._run(prepare, "BEGIN IMMEDIATE", lock=True)
                else:
                    self._run(self._check_schema, "BEGIN", lock=False)
                self._check_commits()
            except _DRIVER_ERRORS as exc:
                if getattr(exc, "sqlite_errorcode", None) == 26 or "not a database" in str(exc):  # SQLITE_NOTADB
                    raise NotALitecoordFileError(
                        f"{self.path} is not a litecoord file: it is not an SQLite database; "
                        "litecoord leaves it untouched",
                        path=self.path,
                    ) from None
                raise self._translate(exc) from exc
            self._readable = True
            self._writable = create
