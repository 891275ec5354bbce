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
    AcquireOrder,
    AcquisitionOutcome,
    AttentionKind,
    Clock,
    IndexProgress,
    Keep,
    LeaseMode,
    LeaseOutcome,
    NoAvailableWorkToBeDone,
    ProgressSample,
    SessionInfo,
    WorkItem,
    WorkItemAndDuration,
    WorkItemPage,
    WorkItemStatus,
    WorkQueueStatus,
    from_micros,
    micros_of,
    to_micros,
    wall_clock,
)
from ..common import (
    COLUMNS,
    THROUGHPUT_WINDOW,
    DatabaseCalls,
    completed_by,
    item_from_row,
    lease_from_row,
    live_split,
    named_lease,
    not_found,
    page_of,
    parse_cursor,
    range_params,
    refusal,
    session_not_found,
    setup_settings,
    split_candidates,
    split_children,
    status_from,
    successor_exists,
    successor_ids,
)
from ..item_search import item_page, item_page_params, item_page_sql, item_query
from . import console, transfer
from .models import create_models
from .store import Durability, Store

__all__ = ["SqliteCoordinator"]

T = TypeVar("T")

# -- SQL, written once ----------------------------------------------------

_COLS = ", ".join(COLUMNS)


def _INSTR(column: str, text: str) -> str:
    return f"instr({column}, {text}) > 0"


# In exponential mode the n-th re-acquisition gets duration x 2^n (n = epoch
# so far). The exponent stops at 16 so the product stays inside 64 bits, and
# the grant at the longest lease allowed, so every expiry stays a time a
# datetime can hold (the clock is checked to leave that much room).
_GRANT = (
    "min(CASE WHEN (SELECT lease_mode FROM sessions WHERE id = :session) = 'exponential' "
    f"THEN :duration << min(lease_epoch, 16) ELSE :duration END, {check.MAX_LEASE_MICROS})"
)
_TAKE_SET = f"""
    status = 'assigned', worker_id = :worker, lease_epoch = lease_epoch + 1,
    lease_micros = {_GRANT}, lease_expiry = :now + {_GRANT},
    started_at = coalesce(started_at, :now), leased_at = :now, last_heartbeat = :now, updated_at = :now,
    next_attempt_at = NULL, split_requested_at = NULL"""

_HELD_BY_WORKER = f"""
SELECT {_COLS} FROM work_items
WHERE session_id = ? AND status = 'assigned' AND worker_id = ? AND +lease_expiry > ?
LIMIT 1"""
# The unary + keeps the planner on the holder index: the expiry index would
# walk every live lease of the session (114 us at 1,000 leases, against 5 us).

# Lapsed leases come back first (they were started earliest and may carry
# progress); then failed items whose retry delay has passed, earliest due
# first (like a lapsed lease, a due retry does not wait behind the whole
# queue); then pending items in the session's order. Each subquery reads the
# head of a partial index; an item still waiting out its delay is in none of
# the ranges read.
_ACQUIRE = f"""
UPDATE work_items SET {_TAKE_SET}
WHERE seq = coalesce(
    (SELECT seq FROM work_items
     WHERE session_id = :session AND status = 'assigned' AND lease_expiry <= :now
     ORDER BY lease_expiry LIMIT 1),
    (SELECT seq FROM work_items
     WHERE session_id = :session AND status = 'pending' AND next_attempt_at IS NOT NULL
       AND next_attempt_at <= :now
     ORDER BY next_attempt_at LIMIT 1),
    (SELECT seq FROM work_items
     WHERE session_id = :session AND status = 'pending' AND next_attempt_at IS NULL
     ORDER BY order_key, seq LIMIT 1))
  AND (SELECT paused_at FROM sessions WHERE id = :session) IS NULL
RETURNING {_COLS}"""
# A paused session hands out nothing (the subquery is constant: SQLite reads it once).

# When acquire found nothing: what remains, what failed, the next retry due, whether paused,
# and the session's split_min_documents (for the split request an idle acquire makes).
_NOTHING_TO_ACQUIRE = """
SELECT total_items - completed_items - failed_items, failed_items,
       (SELECT min(next_attempt_at) FROM work_items
        WHERE session_id = :session AND status = 'pending' AND next_attempt_at IS NOT NULL),
       paused_at IS NOT NULL, split_min_documents
FROM sessions WHERE id = :session"""

# The live leases an idle acquire may ask to split (read from the assigned-expiry index).
_SPLIT_CANDIDATES = """
SELECT seq, range_start, range_end, documents_processed, split_requested_at, started_at, last_progress_update
FROM work_items WHERE session_id = :session AND status = 'assigned' AND lease_expiry > :now"""

# The pending order of an item of size :size in session :session.
_ORDER_KEY = (
    "CASE WHEN (SELECT acquire_order FROM sessions WHERE id = :session) = 'fifo' THEN 0 ELSE -coalesce(:size, -1) END"
)

_TAKE_NAMED = f"UPDATE work_items SET {_TAKE_SET} WHERE seq = :seq RETURNING {_COLS}"

# counts_in_totals, then seq: the last two, after the item's columns.
_ITEM_BY_ID = f"SELECT {_COLS}, counts_in_totals, seq FROM work_items WHERE session_id = ? AND work_item_id = ?"

# The caller must hold the item: same worker, same epoch when one is given.
_HOLDER = "worker_id = :worker AND (:epoch IS NULL OR lease_epoch = :epoch)"
_THIS_ITEM = "session_id = :session AND work_item_id = :id"

_RENEW = f"""
UPDATE work_items SET
    lease_micros = coalesce(:duration, lease_micros),
    lease_expiry = :now + coalesce(:duration, lease_micros),
    last_heartbeat = :now,
    progress_changed_at = CASE
        WHEN coalesce(:docs, documents_processed) != documents_processed
          OR coalesce(:bytes, bytes_processed) != bytes_processed THEN :now
        ELSE progress_changed_at END,
    documents_processed = coalesce(:docs, documents_processed),
    bytes_processed = coalesce(:bytes, bytes_processed),
    last_progress_update = CASE WHEN :docs IS NULL AND :bytes IS NULL
        THEN last_progress_update ELSE :now END,
    updated_at = :now
WHERE {_THIS_ITEM} AND status = 'assigned' AND {_HOLDER} AND lease_expiry > :now
RETURNING {_COLS}"""

# A holder that completes with its final figures (:docs, :bytes) is held to
# them: fewer documents than its range is a short completion the coverage
# audit reports. One that states none (the Java client sends only its worker
# id) is trusted to have done the whole item, which then counts in full.
_COMPLETE = f"""
UPDATE work_items SET
    status = 'completed', completed_at = :now, updated_at = :now,
    documents_processed = coalesce(:docs, max(documents_processed, coalesce(document_count, 0))),
    bytes_processed = coalesce(:bytes, max(bytes_processed, coalesce(total_size_bytes, 0))),
    last_progress_update = CASE WHEN :docs IS NULL AND :bytes IS NULL THEN last_progress_update ELSE :now END,
    split_requested_at = NULL
WHERE {_THIS_ITEM} AND status IN ('assigned', 'pending') AND {_HOLDER}
RETURNING {_COLS}"""

_RELEASE = f"""
UPDATE work_items SET status = 'pending', worker_id = NULL, lease_expiry = NULL, updated_at = :now,
    split_requested_at = NULL
WHERE {_THIS_ITEM} AND status IN ('assigned', 'pending') AND {_HOLDER}
RETURNING seq"""

# The retry delay after the n-th failure (failure_count is n - 1 in SET, which
# reads the old row): d = min(cap, base x 2^(n-1)), drawn between d/2 and d by
# :jitter in [0, 1). The shift stops at 20 so the product stays inside 64 bits
# (a base of a day is 2^36 us); no delay (base 0) leaves the item plainly pending.
_SESSION_RETRY = "(SELECT {} FROM sessions WHERE id = :session)"
_RETRY_BACKOFF = (
    f"min({_SESSION_RETRY.format('max_retry_delay_micros')}, "
    f"{_SESSION_RETRY.format('retry_delay_micros')} << min(failure_count, 20))"
)
_NEXT_ATTEMPT = (
    f"CASE WHEN {_SESSION_RETRY.format('retry_delay_micros')} = 0 THEN NULL "
    f"ELSE :now + {_RETRY_BACKOFF} - CAST({_RETRY_BACKOFF} * :jitter / 2 AS INTEGER) END"
)
_FAIL = f"""
UPDATE work_items SET
    failure_count = failure_count + 1, last_error = :error,
    status = CASE WHEN failure_count + 1 >= (SELECT max_attempts FROM sessions WHERE id = :session)
        THEN 'failed' ELSE 'pending' END,
    next_attempt_at = CASE WHEN failure_count + 1 >= (SELECT max_attempts FROM sessions WHERE id = :session)
        THEN NULL ELSE {_NEXT_ATTEMPT} END,
    worker_id = NULL, lease_expiry = NULL, updated_at = :now, split_requested_at = NULL
WHERE {_THIS_ITEM} AND status IN ('assigned', 'pending') AND {_HOLDER}
RETURNING {_COLS}"""

_INSERT_ITEM = f"""
INSERT OR IGNORE INTO work_items
    (session_id, work_item_id, index_name, shard_number, document_count,
     total_size_bytes, order_key, parent_id, created_at, updated_at, range_start, range_end, counts_in_totals)
VALUES (:session, :id, :index, :shard, :docs, :size, {_ORDER_KEY}, :parent, :now, :now, :start, :end, :counted)
RETURNING {_COLS}"""

_REQUEST_SPLIT = "UPDATE work_items SET split_requested_at = ? WHERE seq = ? AND split_requested_at IS NULL"

# The holder's live split: the item keeps [range_start, :at) and the estimates left to it.
_SPLIT_KEEP = f"""
UPDATE work_items SET range_end = :at, document_count = :docs, total_size_bytes = :size,
    split_requested_at = NULL, updated_at = :now
WHERE seq = :seq RETURNING {_COLS}"""

_REORDER = (
    f"UPDATE work_items SET order_key = {_ORDER_KEY.replace(':size', 'total_size_bytes')} "
    "WHERE session_id = :session"
)

_INSERT_LEASED = f"""
INSERT INTO work_items
    (session_id, work_item_id, status, order_key, worker_id, lease_epoch, lease_micros,
     lease_expiry, started_at, leased_at, last_heartbeat, created_at, updated_at, range_start)
VALUES (:session, :id, 'assigned', {_ORDER_KEY.replace(':size', 'NULL')}, :worker, 1, :duration,
        :now + :duration, :now, :now, :now, :now, :now, :start)
RETURNING {_COLS}"""

_SESSION_ID = "SELECT id FROM sessions WHERE name = ?"

_SESSION_TOTALS = """
SELECT total_items, assigned_items, completed_items, failed_items, total_documents,
       total_size_bytes, documents_processed, bytes_processed, started_at, last_update, paused_at
FROM sessions WHERE id = ?"""

_LIVE_LEASES = """
SELECT count(*) FROM work_items WHERE session_id = ? AND status = 'assigned' AND lease_expiry > ?"""

# Failed items back in the queue, waiting out their retry delay or due (the retry_wait index).
_RETRY_WAITING = """
SELECT count(*) FROM work_items WHERE session_id = ? AND status = 'pending' AND next_attempt_at IS NOT NULL"""

# One pass over the session's rows. Documents and bytes totals count the
# items that count in totals only, as the session counters do.
_INDEX_PROGRESS = """
SELECT index_name, count(*), sum(status = 'pending'), sum(status = 'assigned'),
       sum(status = 'assigned' AND lease_expiry <= :now), sum(status = 'completed'), sum(status = 'failed'),
       sum(counts_in_totals * coalesce(document_count, 0)), sum(documents_processed),
       sum(counts_in_totals * coalesce(total_size_bytes, 0)), sum(bytes_processed)
FROM work_items WHERE session_id = :session
GROUP BY index_name ORDER BY index_name IS NULL, index_name"""

# Pages read the head of a partial index from the cursor on: leases in
# (expiry, seq) order from work_items_assigned_expiry (seq is its rowid).
_LEASED_PAGE = f"""
SELECT {_COLS}, seq FROM work_items
WHERE session_id = :session AND status = 'assigned' AND (lease_expiry, seq) > (:expiry, :seq)
ORDER BY lease_expiry, seq LIMIT :limit"""
_FAILED_PAGE = f"""
SELECT {_COLS}, seq FROM work_items
WHERE session_id = :session AND status = 'failed' AND seq > :seq ORDER BY seq LIMIT :limit"""


class SqliteCoordinator(console.ConsoleCalls, DatabaseCalls):
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

    # -- reading -------------------------------------------------------------------

    def _get(self, conn: sqlite3.Connection, sid: int, work_item_id: str, now: int) -> WorkItem:
        row = conn.execute(_ITEM_BY_ID, (sid, work_item_id)).fetchone()
        if row is None:
            raise not_found(self.session, work_item_id)
        return self._item(row, now)

    def get_work_item(self, work_item_id: str) -> WorkItem:
        work_item_id = check.work_item_id(work_item_id)
        sid = self._sid()
        now = self._now()
        return self._store.read(lambda conn: self._get(conn, sid, work_item_id, now))

    def _model(self) -> Any:
        if self._models is None or self._models.WorkItem._meta.database is not self._store.db:
            self._models = create_models(self._store.db)
        return self._models

    def list_work_items(self, status: WorkItemStatus | str | None = None) -> list[WorkItem]:
        wanted = None if status is None else check.choice("status", status, WorkItemStatus)
        sid = self._sid()
        now = self._now()
        WI = self._model().WorkItem

        def rows(conn: sqlite3.Connection) -> list[WorkItem]:
            query = WI.select(*(getattr(WI, c) for c in COLUMNS)).where(WI.session_id == sid)
            if wanted is WorkItemStatus.PENDING:
                query = query.where((WI.status == "pending") | ((WI.status == "assigned") & (WI.lease_expiry <= now)))
            elif wanted is WorkItemStatus.ASSIGNED:
                query = query.where((WI.status == "assigned") & (WI.lease_expiry > now))
            elif wanted is not None:
                query = query.where(WI.status == wanted.value)
            return [self._item(r, now) for r in query.order_by(WI.seq).tuples()]

        return self._store.read(rows)

    def num_work_items_not_yet_complete(self) -> int:
        sid = self._sid()
        row = self._store.read(
            lambda conn: conn.execute(
                "SELECT total_items - completed_items - failed_items FROM sessions WHERE id = ?", (sid,)
            ).fetchone()
        )
        return int(row[0])

    def status(self) -> WorkQueueStatus:
        sid = self._sid()
        now = self._now()
        window_start = now - micros_of(THROUGHPUT_WINDOW)

        def read(conn: sqlite3.Connection) -> WorkQueueStatus:
            *totals, paused_at = conn.execute(_SESSION_TOTALS, (sid,)).fetchone()
            if any(type(value) is float for value in totals[4:8]):
                totals = _exact_totals(conn, sid, totals)
            live = conn.execute(_LIVE_LEASES, (sid, now)).fetchone()[0]
            retrying = conn.execute(_RETRY_WAITING, (sid,)).fetchone()[0]
            sample = conn.execute(
                "SELECT sampled_at, documents_processed, bytes_processed, completed_items "
                "FROM progress_samples WHERE session_id = ? AND sampled_at >= ? ORDER BY sampled_at LIMIT 1",
                (sid, window_start),
            ).fetchone()
            leases = conn.execute(console.LEASES, (sid,)).fetchall()
            return status_from(self.session, now, totals, live, sample, retrying, paused_at=paused_at, leases=leases)

        return self._store.read(read)

    def list_sessions(self) -> list[SessionInfo]:
        S = self._model().Session

        def rows(conn: sqlite3.Connection) -> list[SessionInfo]:
            query = S.select(
                S.name, S.created_at, S.lease_mode, S.acquire_order, S.max_attempts, S.total_items, S.completed_items,
                S.retry_delay_micros, S.max_retry_delay_micros, S.split_min_documents,
            ).order_by(S.name)  # fmt: skip
            return [
                SessionInfo(
                    session_name=r[0],
                    created_at=from_micros(r[1]),
                    lease_mode=LeaseMode(r[2]),
                    acquire_order=AcquireOrder(r[3]),
                    max_attempts=r[4],
                    total_work_items=r[5],
                    completed_work_items=r[6],
                    retry_delay=timedelta(0, 0, r[7]),
                    max_retry_delay=timedelta(0, 0, r[8]),
                    split_min_documents=r[9],
                )
                for r in query.tuples()
            ]

        return self._store.read(rows)

    # -- monitoring ----------------------------------------------------------------

    def index_progress(self) -> list[IndexProgress]:
        sid = self._sid()
        params = {"session": sid, "now": self._now()}
        rows = self._store.read(lambda conn: conn.execute(_INDEX_PROGRESS, params).fetchall())
        return [IndexProgress(row[0], *(int(v or 0) for v in row[1:])) for row in rows]

    def progress_samples(self) -> list[ProgressSample]:
        sid = self._sid()
        rows = self._store.read(
            lambda conn: conn.execute(
                "SELECT sampled_at, documents_processed, bytes_processed, completed_items "
                "FROM progress_samples WHERE session_id = ? ORDER BY sampled_at",
                (sid,),
            ).fetchall()
        )
        return [ProgressSample(from_micros(r[0]), r[1], r[2], r[3]) for r in rows]  # type: ignore[arg-type]

    def list_attention_items(
        self, kind: AttentionKind | str, *, limit: int = 50, after: str | None = None
    ) -> WorkItemPage:
        kind = check.choice("kind", kind, AttentionKind)
        limit = check.page_limit(limit)
        leased = kind is AttentionKind.LEASED
        position = parse_cursor(after, 2 if leased else 1)
        sid = self._sid()
        now = self._now()
        params = {"session": sid, "limit": limit + 1, "expiry": position[0], "seq": position[-1]}

        def read(conn: sqlite3.Connection) -> tuple[list[Any], int]:
            rows = conn.execute(_LEASED_PAGE if leased else _FAILED_PAGE, params).fetchall()
            column = "assigned_items" if leased else "failed_items"
            total = conn.execute(f"SELECT {column} FROM sessions WHERE id = ?", (sid,)).fetchone()[0]
            return rows, total

        rows, total = self._store.read(read)
        return page_of(self.session, rows, total, limit, leased, now)

    def list_work_items_page(
        self,
        *,
        status: WorkItemStatus | str | None = None,
        index_name: str | None = None,
        worker_id: str | None = None,
        id_contains: str | None = None,
        sort: str = "created",
        descending: bool = False,
        limit: int = 50,
        after: str | None = None,
    ) -> WorkItemPage:
        q = item_query(
            status=status, index_name=index_name, worker_id=worker_id, id_contains=id_contains,
            sort=sort, descending=descending, limit=limit, after=after,
        )  # fmt: skip
        select, count = item_page_sql(q, param=lambda name, _type: f":{name}", contains=_INSTR)
        sid = self._sid()
        now = self._now()
        params = item_page_params(q, sid, now)

        def read(conn: sqlite3.Connection) -> tuple[list[Any], int]:
            rows = conn.execute(select.format(columns=_COLS), params).fetchall()
            return rows, conn.execute(count, params).fetchone()[0]

        rows, total = self._store.read(read)
        return item_page(self.session, q, rows, total, now)

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


def _exact_totals(conn: sqlite3.Connection, sid: int, totals: Sequence[Any]) -> tuple[Any, ...]:
    """The session's totals added up again in Python integers.

    SQLite's integers are 64 bits: the triggers' running totals turn into
    floats past 2**63 - 1 (possible beyond 1024 items at the largest counts
    allowed). Only then is the session summed again, exactly.
    """
    docs = size = docs_done = bytes_done = 0
    for count, nbytes, done, done_bytes, root in conn.execute(
        "SELECT document_count, total_size_bytes, documents_processed, bytes_processed, counts_in_totals "
        "FROM work_items WHERE session_id = ?",
        (sid,),
    ):
        if root:  # RFS successors re-count a share of their parent's estimate
            docs += count or 0
            size += nbytes or 0
        docs_done += done
        bytes_done += done_bytes
    return (*totals[:4], docs, size, docs_done, bytes_done, *totals[8:])
