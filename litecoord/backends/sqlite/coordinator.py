"""The embedded backend: :class:`SqliteCoordinator`, the work coordinator over one SQLite file.

The contract is :class:`litecoord.protocol.Coordinator`. How it is kept here:

* Every write is one ``BEGIN IMMEDIATE`` transaction (:meth:`Store.write`),
  so acquisition is atomic across processes: the claim is a single
  ``UPDATE ... WHERE seq = (SELECT ... LIMIT 1) RETURNING`` read from the
  head of a partial index, whatever the table holds.
* The hot statements (acquire, renew, complete) are SQL text written once
  and run on the thread's connection; sqlite3 caches them prepared. Building
  a peewee query per call made a lease cycle about 8x slower; peewee serves
  the models, the connections and the cold paths (listing, sessions).
* Time comes only from the injectable clock, read at call time and passed
  into SQL as a parameter (integer microseconds, UTC).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import timedelta
from typing import Any, TypeVar

from ... import validation as check
from ...protocol import DEFAULT_LEASE_DURATION
from ...ranges import pick_split_request, split_item_id
from ...transfer import ImportSummary
from ...types import (
    KEEP,
    AcquisitionOutcome,
    Clock,
    Keep,
    LeaseOutcome,
    NoAvailableWorkToBeDone,
    WorkItem,
    WorkItemAndDuration,
    from_micros,
    micros_of,
    to_micros,
    wall_clock,
)
from ..common import (
    DatabaseCalls,
    completed_by,
    item_from_row,
    lease_from_row,
    live_split,
    named_lease,
    not_found,
    range_params,
    refusal,
    session_not_found,
    setup_settings,
    split_candidates,
    split_children,
    successor_exists,
    successor_ids,
)
from . import console, transfer
from .reads import ReadCalls, _exact_totals  # noqa: F401  (_exact_totals: a name of this module before the split)

# Every statement is in .sql; all its names stay importable from here, where
# benchmarks/cycles.py (core._ACQUIRE, core._RENEW, core._COMPLETE ...) and
# tests/test_core_sqlite.py (query plans) read them.
from .sql import (  # noqa: F401
    _ACQUIRE,
    _COLS,
    _COMPLETE,
    _FAIL,
    _FAILED_PAGE,
    _GRANT,
    _HELD_BY_WORKER,
    _HOLDER,
    _INDEX_PROGRESS,
    _INSERT_ITEM,
    _INSERT_LEASED,
    _INSTR,
    _ITEM_BY_ID,
    _LEASED_PAGE,
    _LIVE_LEASES,
    _NEXT_ATTEMPT,
    _NOTHING_TO_ACQUIRE,
    _ORDER_KEY,
    _RELEASE,
    _RENEW,
    _REORDER,
    _REQUEST_SPLIT,
    _RETRY_BACKOFF,
    _RETRY_WAITING,
    _SESSION_ID,
    _SESSION_RETRY,
    _SESSION_TOTALS,
    _SPLIT_CANDIDATES,
    _SPLIT_KEEP,
    _TAKE_NAMED,
    _TAKE_SET,
    _THIS_ITEM,
)
from .store import Durability, Store

__all__ = ["SqliteCoordinator"]

T = TypeVar("T")


class SqliteCoordinator(ReadCalls, console.ConsoleCalls, DatabaseCalls):
    """Work coordination for one session, over one SQLite file shared by processes.

    ``SqliteCoordinator("backfill.db", session="s1", worker_id="w1")`` opens
    (and on first use creates) the file. ``clock`` is any zero-argument
    callable returning the time (seconds or datetime); by default the wall
    clock is read at every call, so freezegun controls it. ``durability`` is
    ``"full"`` (default: nothing acknowledged is lost even on power loss;
    each call returns after the WAL is synced to disk) or ``"normal"``
    (faster; a power loss may drop the latest acknowledged calls). Without
    ``worker_id`` the worker is
    ``<hostname>-<pid>``, recomputed after a fork.

    :meth:`bind` gives a coordinator for another session or worker that shares
    this one's file and connections (what the REST layer does per request).
    """

    _RENEW = _RENEW

    def __init__(
        self,
        path: str | os.PathLike[str] | Store,
        session: str = "default",
        worker_id: str | None = None,
        clock: Clock | None = None,
        *,
        durability: str = Durability.FULL,
        busy_timeout: float = 60.0,
        fair_lock: bool = True,
    ) -> None:
        self._identity(session, worker_id, clock)
        self._clock = clock or wall_clock
        if isinstance(path, Store):
            self._store = path
        else:
            self._store = Store(path, durability=durability, busy_timeout=busy_timeout, fair_lock=fair_lock)
        self._models: Any = None

    # -- identity ------------------------------------------------------------

    @property
    def store(self) -> Store:
        return self._store

    @property
    def path(self) -> str:
        return self._store.path

    def __repr__(self) -> str:
        return f"SqliteCoordinator({self.path!r}, session={self.session!r}, worker_id={self.worker_id!r})"

    def _now(self) -> int:
        value = self._clock()
        try:
            micros = to_micros(value)
            if 0 <= micros <= check.CLOCK_MAX_MICROS:
                return micros
        except (TypeError, ValueError, OverflowError, AttributeError):
            pass
        # Only a bad reading gets here: the check raises the error that names the clock.
        return check.clock_micros(self._clock, value)

    # -- sessions ------------------------------------------------------------

    def _sid(self) -> int:
        """The session's row id, or ``SessionNotFoundError`` if nothing ever created the session.

        Only calls that create items (and ``setup``) create a session, inside
        their own transaction (:meth:`_session_in`): a mistyped name must not
        read as an empty, finished queue, nor leave an empty session behind.
        """
        sid = self._session_id
        if sid is None:
            row = self._store.read(lambda conn: conn.execute(_SESSION_ID, (self.session,)).fetchone())
            if row is None:
                raise session_not_found(self.session)
            sid = self._session_id = row[0]
        return sid

    def _session_in(self, conn: sqlite3.Connection, now: int) -> int:
        """Inside a write that creates items: the session's id, its row created if missing.

        The id is cached by the caller only once the write committed.
        """
        if self._session_id is not None:
            return self._session_id
        return self._create_session(conn, now)[0]

    def _creating_write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """A write that may create the session: the file and its schema first (reads never create them)."""
        if self._session_id is None:
            self._store.ensure_schema()
        return self._store.write(fn)

    def _create_session(self, conn: sqlite3.Connection, now: int, **settings: Any) -> tuple[int]:
        conn.execute("INSERT OR IGNORE INTO sessions (name, created_at) VALUES (?, ?)", (self.session, now))
        for column, value in settings.items():
            if value is not None or column == "split_min_documents":  # there None is a value: off
                conn.execute(f"UPDATE sessions SET {column} = ? WHERE name = ?", (value, self.session))
        return conn.execute(_SESSION_ID, (self.session,)).fetchone()

    def setup(
        self,
        *,
        lease_mode: str | None = None,
        acquire_order: str | None = None,
        max_attempts: int | None = None,
        retry_delay: timedelta | float | None = None,
        max_retry_delay: timedelta | float | None = None,
        split_min_documents: int | None | Keep = KEEP,
    ) -> None:
        settings = setup_settings(
            lease_mode, acquire_order, max_attempts, retry_delay, max_retry_delay, split_min_documents
        )
        # setup() is where a file of an older schema version is upgraded (see Store.ensure_schema).
        self._store.ensure_schema(upgrade=True)
        now = self._now()

        def apply(conn: sqlite3.Connection) -> tuple[int]:
            before = conn.execute("SELECT acquire_order FROM sessions WHERE name = ?", (self.session,)).fetchone()
            row = self._create_session(conn, now, **settings)
            if before is not None and settings["acquire_order"] not in (None, before[0]):
                conn.execute(_REORDER, {"session": row[0]})
            return row

        self._session_id = self._store.write(apply)[0]

    def close(self) -> None:
        self._store.close()

    # -- rows --------------------------------------------------------------------

    def _item(self, row: Sequence[Any], now: int) -> WorkItem:
        return item_from_row(self.session, row, now)

    def _lease(self, row: Sequence[Any], now: int) -> WorkItemAndDuration:
        return lease_from_row(self.session, row, now)

    def _refuse(self, conn: sqlite3.Connection, sid: int, work_item_id: str, now: int, epoch: int | None) -> None:
        """Raise the error that explains why a holder-only statement matched no row."""
        row = conn.execute(_ITEM_BY_ID, (sid, work_item_id)).fetchone()
        raise refusal(self.session, row, work_item_id, self.worker_id, now, epoch)

    # -- creating work ---------------------------------------------------------

    def _insert(self, specs: list[dict[str, Any]]) -> list[WorkItem]:
        """Insert checked item specs in one transaction; return the ones that were new."""
        if not specs:
            return []
        now = self._now()
        rows = [
            {"id": s["work_item_id"], "index": s["index_name"], "shard": s["shard_number"],
             "docs": s["document_count"], "size": s["total_size_bytes"], "parent": None, "now": now,
             "counted": 1, **range_params(s["work_item_id"], s["document_count"])}
            for s in specs
        ]  # fmt: skip

        def insert(conn: sqlite3.Connection) -> tuple[int, list[WorkItem]]:
            sid = self._session_in(conn, now)
            created = []
            for params in rows:
                row = conn.execute(_INSERT_ITEM, {**params, "session": sid}).fetchone()
                if row is not None:
                    created.append(self._item(row, now))
            return sid, created

        self._session_id, created = self._creating_write(insert)
        return created

    # -- leasing -----------------------------------------------------------------

    def acquire_next_work_item(self, lease_duration: timedelta = DEFAULT_LEASE_DURATION) -> AcquisitionOutcome:
        duration = micros_of(check.duration(lease_duration))
        sid = self._sid()  # an unknown session is an error, never "no work left"
        worker = self.worker_id
        now = self._now()
        # Rows become objects after COMMIT: the write lock is held for SQL only.
        return self._outcome(self._store.write(lambda conn: self._acquire_row(conn, sid, worker, now, duration)), now)

    @staticmethod
    def _acquire_row(conn: sqlite3.Connection, sid: int, worker: str, now: int, duration: int) -> tuple[bool, Any]:
        """(True, the lease row) or (False, (remaining, failed, next retry, paused, split_min_documents)):
        the acquire step of a transaction.

        Finding nothing while items are leased, it asks the lease with the most
        work left to split (:func:`litecoord.ranges.pick_split_request`): only
        this idle path reads the leases, so a claim that finds work costs what it did.
        """
        held = conn.execute(_HELD_BY_WORKER, (sid, worker, now)).fetchone()
        if held is not None:
            return True, held
        row = conn.execute(_ACQUIRE, {"session": sid, "worker": worker, "now": now, "duration": duration}).fetchone()
        if row is not None:
            return True, row
        nothing = conn.execute(_NOTHING_TO_ACQUIRE, {"session": sid}).fetchone()
        # Not while paused: idle workers then wait on purpose, and nothing would take the piece.
        if nothing[0] and not nothing[3] and nothing[4] is not None:
            leases = conn.execute(_SPLIT_CANDIDATES, {"session": sid, "now": now}).fetchall()
            request = pick_split_request(split_candidates(leases), nothing[4])
            if request is not None:
                conn.execute(_REQUEST_SPLIT, (request[1], request[0]))
        return False, nothing

    def _outcome(self, result: tuple[bool, Any], now: int) -> AcquisitionOutcome:
        leased, row = result
        if leased:
            return self._lease(row, now)
        return NoAvailableWorkToBeDone(
            remaining=row[0], failed=row[1], next_attempt_at=from_micros(row[2]), paused=bool(row[3])
        )

    def create_or_update_lease_for_work_item(
        self, work_item_id: str, lease_duration: timedelta = DEFAULT_LEASE_DURATION
    ) -> LeaseOutcome:
        work_item_id = check.work_item_id(work_item_id)
        duration = micros_of(check.duration(lease_duration))
        worker = self.worker_id
        now = self._now()

        def lease(conn: sqlite3.Connection) -> tuple[int, LeaseOutcome]:
            # The named lease creates its item, so it creates the session too (RFS).
            sid = self._session_in(conn, now)
            return sid, lease_in(conn, sid)

        def lease_in(conn: sqlite3.Connection, sid: int) -> LeaseOutcome:
            params = {"session": sid, "id": work_item_id, "worker": worker, "now": now, "duration": duration}
            row = conn.execute(_ITEM_BY_ID, (sid, work_item_id)).fetchone()
            if row is None:
                start = range_params(work_item_id, None)["start"]
                return self._lease(conn.execute(_INSERT_LEASED, {**params, "start": start}).fetchone(), now)
            answer = named_lease(self.session, row, worker, now)
            if answer is not None:
                return answer
            return self._lease(conn.execute(_TAKE_NAMED, {**params, "seq": row[-1]}).fetchone(), now)

        self._session_id, outcome = self._creating_write(lease)
        return outcome

    def complete_work_item(
        self,
        work_item_id: str,
        *,
        lease_epoch: int | None = None,
        documents_processed: int | None = None,
        bytes_processed: int | None = None,
    ) -> WorkItem:
        params = self._completion_params(work_item_id, lease_epoch, documents_processed, bytes_processed)
        return self._item(self._store.write(lambda conn: self._complete_row(conn, params)), params["now"])

    def complete_and_acquire_next(
        self,
        work_item_id: str,
        lease_duration: timedelta = DEFAULT_LEASE_DURATION,
        *,
        lease_epoch: int | None = None,
        documents_processed: int | None = None,
        bytes_processed: int | None = None,
    ) -> tuple[WorkItem, AcquisitionOutcome]:
        params = self._completion_params(work_item_id, lease_epoch, documents_processed, bytes_processed)
        duration = micros_of(check.duration(lease_duration))
        sid, worker, now = params["session"], params["worker"], params["now"]

        def step(conn: sqlite3.Connection) -> tuple[Any, tuple[bool, Any]]:
            return self._complete_row(conn, params), self._acquire_row(conn, sid, worker, now, duration)

        done, acquired = self._store.write(step)
        return self._item(done, now), self._outcome(acquired, now)

    def _complete_row(self, conn: sqlite3.Connection, params: dict[str, Any]) -> Sequence[Any]:
        """The complete step of a transaction: the completed row, or the refusal raised."""
        row = conn.execute(_COMPLETE, params).fetchone()
        if row is not None:
            return row
        done = conn.execute(_ITEM_BY_ID, (params["session"], params["id"])).fetchone()
        if completed_by(done, params["worker"], params["epoch"]):
            return done  # completing twice is a no-op
        raise refusal(self.session, done, params["id"], params["worker"], params["now"], params["epoch"])

    def release_work_item(self, work_item_id: str, *, lease_epoch: int | None = None) -> bool:
        params = self._holder_params(work_item_id, lease_epoch)

        def release(conn: sqlite3.Connection) -> bool:
            if conn.execute(_RELEASE, params).fetchone() is not None:
                return True
            if conn.execute(_ITEM_BY_ID, (params["session"], params["id"])).fetchone() is None:
                raise not_found(self.session, work_item_id)
            return False

        return self._store.write(release)

    def fail_work_item(self, work_item_id: str, error: str, *, lease_epoch: int | None = None) -> WorkItem:
        params = self._holder_params(work_item_id, lease_epoch)
        params["error"] = check.error_text(error)
        params["jitter"] = self._random()
        return self._holder_write(_FAIL, params)

    def retry_work_item(self, work_item_id: str) -> WorkItem:
        work_item_id = check.work_item_id(work_item_id)
        sid = self._sid()
        now = self._now()

        def retry(conn: sqlite3.Connection) -> WorkItem:
            conn.execute(
                "UPDATE work_items SET status = 'pending', failure_count = 0, next_attempt_at = NULL, updated_at = ? "
                "WHERE session_id = ? AND work_item_id = ? AND status = 'failed'",
                (now, sid, work_item_id),
            )
            return self._get(conn, sid, work_item_id, now)

        return self._store.write(retry)

    def create_successor_work_items_and_mark_complete(
        self,
        work_item_id: str,
        successor_work_item_ids: Sequence[str],
        *,
        lease_epoch: int | None = None,
    ) -> WorkItem:
        params = self._holder_params(work_item_id, lease_epoch)
        successors = successor_ids(work_item_id, successor_work_item_ids)
        session, now = params["session"], params["now"]

        def split(conn: sqlite3.Connection) -> WorkItem:
            row = conn.execute(_ITEM_BY_ID, (session, work_item_id)).fetchone()
            made = split_children(self.session, work_item_id, row, successors, params["worker"], now, lease_epoch)
            if isinstance(made, WorkItem):
                return made
            for name, docs, size, start, end in made.children:
                created = conn.execute(
                    _INSERT_ITEM,
                    {"session": session, "id": name, "index": row[2], "shard": row[3], "docs": docs, "size": size,
                     "parent": work_item_id, "now": now, "start": start, "end": end, "counted": 0},
                ).fetchone()  # fmt: skip
                if created is None and made.verifiable:
                    raise successor_exists(name)  # the partition would lose a range; the write rolls back
            done = conn.execute(
                f"UPDATE work_items SET status = 'completed', completed_at = ?, updated_at = ?, "
                f"successor_ids = ?, range_end = ?, documents_processed = ?, split_requested_at = NULL "
                f"WHERE seq = ? RETURNING {_COLS}",
                (now, now, ",".join(successors), made.parent_end, made.parent_processed, row[-1]),
            ).fetchone()
            return self._item(done, now)

        return self._store.write(split)

    def split_work_item(
        self, work_item_id: str, at: int, *, lease_epoch: int | None = None
    ) -> tuple[WorkItem, WorkItem]:
        params = self._holder_params(work_item_id, lease_epoch)
        at = check.count("at", at, optional=False)
        session, worker, now = params["session"], params["worker"], params["now"]

        def split(conn: sqlite3.Connection) -> tuple[Any, Any]:
            row = conn.execute(_ITEM_BY_ID, (session, work_item_id)).fetchone()
            child = conn.execute(_ITEM_BY_ID, (session, split_item_id(work_item_id, at))).fetchone()
            plan = live_split(self.session, work_item_id, row, child, at, worker, now, lease_epoch)
            if isinstance(plan, tuple):
                return plan
            kept = conn.execute(
                _SPLIT_KEEP,
                {"at": at, "docs": plan.kept_documents, "size": plan.kept_bytes, "now": now, "seq": row[-1]},
            ).fetchone()
            new = conn.execute(
                _INSERT_ITEM,
                {"session": session, "id": plan.new_id, "index": row[2], "shard": row[3], "docs": plan.new_documents,
                 "size": plan.new_bytes, "parent": work_item_id, "now": now, "start": at, "end": plan.new_end,
                 "counted": row[-2]},
            ).fetchone()  # fmt: skip
            return self._item(kept, now), self._item(new, now)

        return self._store.write(split)

    def _holder_params(self, work_item_id: str, lease_epoch: int | None) -> dict[str, Any]:
        return {
            "id": check.work_item_id(work_item_id),
            "epoch": check.lease_epoch(lease_epoch),
            "session": self._sid(),
            "worker": self.worker_id,
            "now": self._now(),
        }

    def _holder_write(self, sql: str, params: dict[str, Any]) -> WorkItem:
        def run(conn: sqlite3.Connection) -> Sequence[Any]:
            row = conn.execute(sql, params).fetchone()
            if row is None:
                self._refuse(conn, params["session"], params["id"], params["now"], params["epoch"])
            return row

        return self._item(self._store.write(run), params["now"])


    # -- housekeeping -------------------------------------------------------------

    def cleanup_expired(self) -> int:
        sid = self._sid()
        now = self._now()
        return self._store.write(
            lambda conn: (
                conn.execute(
                    "UPDATE work_items SET status = 'pending', updated_at = ? "
                    "WHERE session_id = ? AND status = 'assigned' AND lease_expiry <= ?",
                    (now, sid, now),
                ).rowcount
            )
        )

    def delete_session(self) -> int:
        sid = self._sid()

        def delete(conn: sqlite3.Connection) -> int:
            count = conn.execute("DELETE FROM work_items WHERE session_id = ?", (sid,)).rowcount
            conn.execute("DELETE FROM progress_samples WHERE session_id = ?", (sid,))
            conn.execute("DELETE FROM attempts WHERE session_id = ?", (sid,))
            # The row (and its id) stays, so other processes' cached ids stay valid. Its
            # totals are set, not left to the triggers' subtractions: a total that passed
            # 64 bits became a float, and subtracting would not bring it back to 0 exactly.
            conn.execute(
                "UPDATE sessions SET started_at = NULL, last_update = NULL, last_sample_at = NULL, paused_at = NULL, "
                "total_documents = 0, total_size_bytes = 0, documents_processed = 0, bytes_processed = 0 "
                "WHERE id = ?",
                (sid,),
            )
            return count

        return self._store.write(delete)

    # -- moving sessions between stores ------------------------------------------------

    def export_session(self) -> Iterator[dict[str, Any]]:
        """The session as records of :mod:`litecoord.transfer`, read from one snapshot (lazily)."""
        self._sid()  # exporting a mistyped session is an error, not an empty file
        return transfer.export_session(self._store, self.session, self._now())

    def import_session(self, records: Iterable[Any], *, replace: bool = False) -> ImportSummary:
        """Write an exported session into this session, in one transaction; see :class:`SessionTransfer`."""
        summary = transfer.import_session(self._store, self.session, records, self._now(), replace=replace)
        self._session_id = None  # a new session row may have been created
        return summary
