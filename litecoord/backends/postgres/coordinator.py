"""The PostgreSQL backend: :class:`PostgresCoordinator`, for workers on many hosts sharing one database.

The contract is :class:`litecoord.protocol.Coordinator`, kept as on SQLite
(same rows, same results, same errors: the shared parts are in
:mod:`litecoord.backends.common`). What differs:

* The claim is one ``UPDATE ... WHERE seq = (SELECT ... FOR UPDATE SKIP
  LOCKED LIMIT 1) RETURNING``: concurrent claimers skip each other's rows
  instead of queueing on them, lapsed leases first, each choice read from
  the head of a partial index.
* Time is the database server's clock (one clock for every host), read once
  at the start of each transaction, unless a ``clock`` was given.
* Session totals live in sharded counter rows (see ``schema.sql``), so no
  row is written by every transaction.
* Connections: one per process and thread, or a pool (``pool_size``) for a
  server; see :mod:`.store` for reconnection and what is retried.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import timedelta
from typing import Any

from ... import validation as check
from ...errors import ValidationError
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
    from_micros,
    micros_of,
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
from .reads import ReadCalls

# Every statement is in .sql; all its names stay importable from here, where
# benchmarks/pg_cycles.py reads the hot ones (pg._ACQUIRE, pg._RENEW, pg._COMPLETE ...).
from .sql import (  # noqa: F401
    _ACQUIRE,
    _COLS,
    _COMPLETE,
    _CREATE_SESSION,
    _FAIL,
    _FAILED_PAGE,
    _GRANT,
    _HELD_BY_WORKER,
    _HOLDER,
    _INDEX_PROGRESS,
    _INSERT_ITEM,
    _INSERT_LEASED,
    _ITEM_BY_ID,
    _ITEM_FOR_UPDATE,
    _LEASED_PAGE,
    _NEXT_ATTEMPT,
    _NOTHING_TO_ACQUIRE,
    _NOW,
    _ORDER_KEY,
    _RELEASE,
    _REMAINING,
    _RENEW,
    _REORDER,
    _REQUEST_SPLIT,
    _RETRY_BACKOFF,
    _SESSION_RETRY,
    _SPLIT_CANDIDATES,
    _SPLIT_KEEP,
    _STATUS,
    _STRPOS,
    _TAKE_NAMED,
    _TAKE_SET,
    _THIS_ITEM,
    COUNTER_SHARDS,
    _pg_param,
)
from .store import Durability, PgStore, redact

__all__ = ["PostgresCoordinator"]


class PostgresCoordinator(ReadCalls, console.ConsoleCalls, DatabaseCalls):
    """Work coordination for one session, over a PostgreSQL database shared by hosts.

    ``PostgresCoordinator("postgresql://user@db/backfill", session="s1", worker_id="w1")``
    connects (and on first use creates the schema, in the connection's
    ``search_path``). The password comes from the DSN, or better from the
    environment (``PGPASSWORD``) or ``~/.pgpass``, as libpq reads them.
    ``clock``: by default every time is the database server's (hosts'
    clocks may differ; the database's is one clock for all of them); a
    given ``clock`` (FakeClock, or ``time.time`` under freezegun) wins, for
    tests. ``durability`` is ``"full"`` (default: ``synchronous_commit=on``)
    or ``"normal"`` (``synchronous_commit=off`` per transaction: a crash of
    the database server may lose the last acknowledged calls). ``pool_size``
    shares that many connections between threads (a server); without it each
    thread has its own. ``connect_timeout``: how long an unreachable database
    is retried before :class:`~litecoord.errors.DatabaseUnavailableError`.
    ``call_timeout``: how long one call may take when the caller set no
    bound of its own (:func:`litecoord.backends.bounds.call_bound`; the
    runner sets what is left of the lease); then it raises that same error.
    ``prepared_statements``: off by default, so that the same DSN works
    behind a transaction-mode pooler (PgBouncer, RDS Proxy), which hands
    each transaction another server connection where this connection's
    prepared statements do not exist; on a direct connection ``True`` saves
    the server re-planning each statement (a fifth of the cycle rate at
    ``durability="normal"``, see BENCHMARKS.md).
    """

    _RENEW = _RENEW

    def __init__(
        self,
        dsn: str | PgStore,
        session: str = "default",
        worker_id: str | None = None,
        clock: Clock | None = None,
        *,
        durability: str = Durability.FULL,
        pool_size: int | None = None,
        connect_timeout: float = 10.0,
        call_timeout: float = 60.0,
        prepared_statements: bool = False,
    ) -> None:
        self._identity(session, worker_id, clock)
        self._clock = clock
        if isinstance(dsn, PgStore):
            self._store = dsn
        else:
            self._store = PgStore(
                dsn,
                durability=durability,
                pool_size=pool_size,
                connect_timeout=connect_timeout,
                call_timeout=call_timeout,
                prepared_statements=prepared_statements,
            )

    # -- identity ------------------------------------------------------------

    @property
    def store(self) -> PgStore:
        return self._store

    @property
    def dsn(self) -> str:
        return self._store.dsn

    def __repr__(self) -> str:
        return f"PostgresCoordinator({redact(self.dsn)!r}, session={self.session!r}, worker_id={self.worker_id!r})"

    def _now(self) -> int | None:
        """The caller's time, or ``None``: the database's, read when the transaction starts."""
        return None if self._clock is None else check.clock_micros(self._clock, self._clock())

    def _write(self, fn: Any, *, idempotent: bool = True, create: bool = False) -> Any:
        """``fn`` in one transaction; ``create``: it may create the session, so the schema too if missing."""
        known = self._session_id

        def attempt(cur: Any, now: int) -> Any:
            # A session created by an attempt that rolled back does not exist: forget its id.
            if known is None:
                self._session_id = None
            return fn(cur, now)

        try:
            return self._store.run(attempt, now=self._now(), idempotent=idempotent, create=create)
        except BaseException:
            if known is None:
                self._session_id = None
            raise

    _read = _write

    # -- sessions ------------------------------------------------------------

    def _sid(self, cur: Any, now: int, *, create: bool = True) -> int | None:
        """The session's row id (cached); created on first write, ``None`` for reads of an unknown one."""
        if self._session_id is None:
            cur.execute("SELECT id FROM sessions WHERE name = %s::text", (self.session,))
            row = cur.fetchone()
            if row is None and create:
                cur.execute(_CREATE_SESSION, {"name": self.session, "now": now, "shards": COUNTER_SHARDS})
                row = cur.fetchone()
                if row is None:
                    # Created by a concurrent transaction that committed after this
                    # statement's snapshot: the next statement sees it.
                    cur.execute("SELECT id FROM sessions WHERE name = %s::text", (self.session,))
                    row = cur.fetchone()
            if row is not None:
                self._session_id = row[0]
        return self._session_id

    def _existing(self, cur: Any, now: int) -> int:
        """The session's row id, or ``SessionNotFoundError``: only creating items (or setup) creates a session."""
        sid = self._sid(cur, now, create=False)
        if sid is None:
            raise session_not_found(self.session)
        return sid

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
        self._store.migrate()

        def apply(cur: Any, now: int) -> int:
            cur.execute("SELECT acquire_order FROM sessions WHERE name = %s::text FOR UPDATE", (self.session,))
            before = cur.fetchone()
            self._session_id = None
            sid = self._sid(cur, now)
            for column, value in settings.items():
                if value is not None or column == "split_min_documents":  # there None is a value: off
                    cur.execute(f"UPDATE sessions SET {column} = %s WHERE id = %s::bigint", (value, sid))
            if before is not None and settings["acquire_order"] not in (None, before[0]):
                cur.execute(_REORDER, {"session": sid})
            return sid

        self._session_id = self._write(apply)

    def close(self) -> None:
        self._store.close()

    # -- rows --------------------------------------------------------------------

    def _refuse(self, cur: Any, sid: int, work_item_id: str, now: int, epoch: int | None) -> None:
        """Raise the error that explains why a holder-only statement matched no row."""
        cur.execute(_ITEM_BY_ID, (sid, work_item_id))
        raise refusal(self.session, cur.fetchone(), work_item_id, self.worker_id, now, epoch)

    # -- creating work ---------------------------------------------------------

    def _insert(self, specs: list[dict[str, Any]]) -> list[WorkItem]:
        """Insert checked item specs in one transaction; return the ones that were new."""
        if not specs:
            return []

        def insert(cur: Any, now: int) -> list[Any]:
            sid = self._sid(cur, now)
            created = []
            for s in specs:
                cur.execute(
                    _INSERT_ITEM,
                    {"session": sid, "id": s["work_item_id"], "index": s["index_name"], "shard": s["shard_number"],
                     "docs": s["document_count"], "size": s["total_size_bytes"], "parent": None, "now": now,
                     "counted": True, **range_params(s["work_item_id"], s["document_count"])},
                )  # fmt: skip
                row = cur.fetchone()
                if row is not None:
                    created.append(item_from_row(self.session, row, now))
            return created

        # Not repeated after a commit that may have happened: "created" would read False the second time.
        return self._write(insert, idempotent=False, create=True)

    # -- leasing -----------------------------------------------------------------

    def acquire_next_work_item(self, lease_duration: timedelta = DEFAULT_LEASE_DURATION) -> AcquisitionOutcome:
        duration = micros_of(check.duration(lease_duration))
        worker = self.worker_id

        def acquire(cur: Any, now: int) -> AcquisitionOutcome:
            sid = self._existing(cur, now)
            return self._outcome(self._acquire_row(cur, sid, worker, now, duration), now)

        # Repeating it is safe: the worker's live lease is returned unchanged.
        return self._write(acquire)

    @staticmethod
    def _acquire_row(cur: Any, sid: int, worker: str, now: int, duration: int) -> tuple[bool, Any]:
        """(True, the lease row) or (False, (remaining, failed)): the acquire step of a transaction."""
        params = {"session": sid, "worker": worker, "now": now, "duration": duration}
        cur.execute(_HELD_BY_WORKER, params)
        held = cur.fetchone()
        if held is not None:
            return True, held
        cur.execute(_ACQUIRE, params)
        row = cur.fetchone()
        if row is not None:
            return True, row
        cur.execute(_NOTHING_TO_ACQUIRE, {"session": sid})
        nothing = cur.fetchone()
        # Idle with items leased: ask the lease with the most work left to split
        # (litecoord.ranges.pick_split_request). Only this path reads the leases.
        # Not while paused: idle workers then wait on purpose, and nothing would take the piece.
        if nothing[0] and not nothing[3] and nothing[4] is not None:
            cur.execute(_SPLIT_CANDIDATES, params)
            request = pick_split_request(split_candidates(cur.fetchall()), nothing[4])
            if request is not None:
                cur.execute(_REQUEST_SPLIT, {"seq": request[0], "at": request[1]})
        return False, nothing

    def _outcome(self, result: tuple[bool, Any], now: int) -> AcquisitionOutcome:
        leased, row = result
        if leased:
            return lease_from_row(self.session, row, now)
        return NoAvailableWorkToBeDone(
            remaining=row[0], failed=row[1], next_attempt_at=from_micros(row[2]), paused=bool(row[3])
        )

    def create_or_update_lease_for_work_item(
        self, work_item_id: str, lease_duration: timedelta = DEFAULT_LEASE_DURATION
    ) -> LeaseOutcome:
        work_item_id = check.work_item_id(work_item_id)
        duration = micros_of(check.duration(lease_duration))
        worker = self.worker_id

        def lease(cur: Any, now: int) -> LeaseOutcome:
            sid = self._sid(cur, now)
            params = {"session": sid, "id": work_item_id, "worker": worker, "now": now, "duration": duration}
            cur.execute(_ITEM_FOR_UPDATE, (sid, work_item_id))
            row = cur.fetchone()
            if row is None:
                cur.execute(_INSERT_LEASED, {**params, "start": range_params(work_item_id, None)["start"]})
                return lease_from_row(self.session, cur.fetchone(), now)
            answer = named_lease(self.session, row, worker, now)
            if answer is not None:
                return answer
            cur.execute(_TAKE_NAMED, {**params, "seq": row[-1]})
            return lease_from_row(self.session, cur.fetchone(), now)

        return self._write(lease, create=True)

    def complete_work_item(
        self,
        work_item_id: str,
        *,
        lease_epoch: int | None = None,
        documents_processed: int | None = None,
        bytes_processed: int | None = None,
    ) -> WorkItem:
        params = self._completion_params(work_item_id, lease_epoch, documents_processed, bytes_processed)

        def complete(cur: Any, now: int) -> WorkItem:
            return item_from_row(self.session, self._complete_row(cur, params, now), now)

        return self._write(complete)

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

        def step(cur: Any, now: int) -> tuple[WorkItem, AcquisitionOutcome]:
            done = self._complete_row(cur, params, now)
            acquired = self._acquire_row(cur, self._existing(cur, now), params["worker"], now, duration)
            return item_from_row(self.session, done, now), self._outcome(acquired, now)

        # Repeating it is safe: completing again is a no-op and the new lease is returned unchanged.
        return self._write(step)

    def _complete_row(self, cur: Any, params: dict[str, Any], now: int) -> Sequence[Any]:
        """The complete step of a transaction: the completed row, or the refusal raised."""
        params = self._bind_holder(cur, params, now)
        cur.execute(_COMPLETE, params)
        row = cur.fetchone()
        if row is not None:
            return row
        cur.execute(_ITEM_BY_ID, (params["session"], params["id"]))
        done = cur.fetchone()
        if completed_by(done, params["worker"], params["epoch"]):
            return done  # completing twice is a no-op
        raise refusal(self.session, done, params["id"], params["worker"], now, params["epoch"])

    def release_work_item(self, work_item_id: str, *, lease_epoch: int | None = None) -> bool:
        params = self._holder_params(work_item_id, lease_epoch)

        def release(cur: Any, now: int) -> bool:
            bound = self._bind_holder(cur, params, now)
            cur.execute(_RELEASE, bound)
            if cur.fetchone() is not None:
                return True
            cur.execute(_ITEM_BY_ID, (bound["session"], bound["id"]))
            if cur.fetchone() is None:
                raise not_found(self.session, bound["id"])
            return False

        return self._write(release, idempotent=False)

    def fail_work_item(self, work_item_id: str, error: str, *, lease_epoch: int | None = None) -> WorkItem:
        params = self._holder_params(work_item_id, lease_epoch)
        params["error"] = check.error_text(error)
        params["jitter"] = self._random()
        return self._holder_write(_FAIL, params, idempotent=False)

    def retry_work_item(self, work_item_id: str) -> WorkItem:
        work_item_id = check.work_item_id(work_item_id)

        def retry(cur: Any, now: int) -> WorkItem:
            sid = self._existing(cur, now)
            cur.execute(
                "UPDATE work_items SET status = 'pending', failure_count = 0, next_attempt_at = NULL, "
                "updated_at = %s::bigint "
                "WHERE session_id = %s::bigint AND work_item_id = %s::text AND status = 'failed'",
                (now, sid, work_item_id),
            )
            return self._get(cur, sid, work_item_id, now)

        return self._write(retry)

    def create_successor_work_items_and_mark_complete(
        self,
        work_item_id: str,
        successor_work_item_ids: Sequence[str],
        *,
        lease_epoch: int | None = None,
    ) -> WorkItem:
        params = self._holder_params(work_item_id, lease_epoch)
        work_item_id = params["id"]
        successors = successor_ids(work_item_id, successor_work_item_ids)

        def split(cur: Any, now: int) -> WorkItem:
            bound = self._bind_holder(cur, params, now)
            session = bound["session"]
            cur.execute(_ITEM_FOR_UPDATE, (session, work_item_id))
            row = cur.fetchone()
            made = split_children(self.session, work_item_id, row, successors, bound["worker"], now, lease_epoch)
            if isinstance(made, WorkItem):
                return made
            for name, docs, size, start, end in made.children:
                cur.execute(
                    _INSERT_ITEM,
                    {"session": session, "id": name, "index": row[2], "shard": row[3], "docs": docs, "size": size,
                     "parent": work_item_id, "now": now, "start": start, "end": end, "counted": False},
                )  # fmt: skip
                if cur.fetchone() is None and made.verifiable:
                    raise successor_exists(name)  # the partition would lose a range; the write rolls back
            cur.execute(
                "UPDATE work_items SET status = 'completed', completed_at = %s::bigint, updated_at = %s::bigint, "
                "successor_ids = %s::text, range_end = %s::bigint, documents_processed = %s::bigint, "
                f"split_requested_at = NULL WHERE seq = %s::bigint RETURNING {_COLS}",
                (now, now, ",".join(successors), made.parent_end, made.parent_processed, row[-1]),
            )
            return item_from_row(self.session, cur.fetchone(), now)

        return self._write(split)

    def split_work_item(
        self, work_item_id: str, at: int, *, lease_epoch: int | None = None
    ) -> tuple[WorkItem, WorkItem]:
        params = self._holder_params(work_item_id, lease_epoch)
        work_item_id = params["id"]
        at = check.count("at", at, optional=False)

        def split(cur: Any, now: int) -> tuple[WorkItem, WorkItem]:
            bound = self._bind_holder(cur, params, now)
            session = bound["session"]
            cur.execute(_ITEM_FOR_UPDATE, (session, work_item_id))
            row = cur.fetchone()
            cur.execute(_ITEM_BY_ID, (session, split_item_id(work_item_id, at)))
            child = cur.fetchone()
            plan = live_split(self.session, work_item_id, row, child, at, bound["worker"], now, lease_epoch)
            if isinstance(plan, tuple):
                return plan
            cur.execute(
                _SPLIT_KEEP,
                {"at": at, "docs": plan.kept_documents, "size": plan.kept_bytes, "now": now, "seq": row[-1]},
            )
            kept = cur.fetchone()
            cur.execute(
                _INSERT_ITEM,
                {"session": session, "id": plan.new_id, "index": row[2], "shard": row[3], "docs": plan.new_documents,
                 "size": plan.new_bytes, "parent": work_item_id, "now": now, "start": at, "end": plan.new_end,
                 "counted": row[-2]},
            )  # fmt: skip
            new = cur.fetchone()
            if new is None:  # created by a concurrent split between the read and the insert
                raise ValidationError("at", f"the item a split at {at} would create, {plan.new_id!r}, already exists")
            return item_from_row(self.session, kept, now), item_from_row(self.session, new, now)

        # Repeating it is safe: the same split again returns the same pair.
        return self._write(split)

    def _holder_params(self, work_item_id: str, lease_epoch: int | None) -> dict[str, Any]:
        return {
            "id": check.work_item_id(work_item_id),
            "epoch": check.lease_epoch(lease_epoch),
            "worker": self.worker_id,
        }

    def _bind_holder(self, cur: Any, params: dict[str, Any], now: int) -> dict[str, Any]:
        """``params`` with the session id and the transaction's time."""
        return {**params, "session": self._existing(cur, now), "now": now}

    def _holder_write(self, sql: str, params: dict[str, Any], *, idempotent: bool = True) -> WorkItem:
        def run(cur: Any, now: int) -> WorkItem:
            bound = self._bind_holder(cur, params, now)
            cur.execute(sql, bound)
            row = cur.fetchone()
            if row is None:
                self._refuse(cur, bound["session"], bound["id"], now, bound["epoch"])
            return item_from_row(self.session, row, now)

        return self._write(run, idempotent=idempotent)


    # -- housekeeping -------------------------------------------------------------

    def cleanup_expired(self) -> int:
        def cleanup(cur: Any, now: int) -> int:
            sid = self._existing(cur, now)
            cur.execute(
                "UPDATE work_items SET status = 'pending', updated_at = %s::bigint "
                "WHERE session_id = %s::bigint AND status = 'assigned' AND lease_expiry <= %s::bigint",
                (now, sid, now),
            )
            return cur.rowcount

        return self._write(cleanup, idempotent=False)

    def delete_session(self) -> int:
        def delete(cur: Any, now: int) -> int:
            sid = self._existing(cur, now)
            cur.execute("DELETE FROM work_items WHERE session_id = %s::bigint", (sid,))
            count = cur.rowcount
            cur.execute("DELETE FROM progress_samples WHERE session_id = %s::bigint", (sid,))
            cur.execute("DELETE FROM attempts WHERE session_id = %s::bigint", (sid,))
            # The rows (and the id) stay, so other processes' cached ids stay valid.
            cur.execute("UPDATE sessions SET last_sample_at = NULL, paused_at = NULL WHERE id = %s::bigint", (sid,))
            cur.execute(
                "UPDATE session_counters SET started_at = NULL, last_update = NULL WHERE session_id = %s::bigint",
                (sid,),
            )
            return count

        return self._write(delete, idempotent=False)

    # -- moving sessions between stores ------------------------------------------------

    def export_session(self) -> Iterator[dict[str, Any]]:
        """The session as records of :mod:`litecoord.transfer`, read from one snapshot (lazily)."""
        self._read(self._existing)  # exporting a mistyped session is an error, not an empty file
        return transfer.export_session(self)

    def import_session(self, records: Iterable[Any], *, replace: bool = False) -> ImportSummary:
        """Write an exported session into this session, in one transaction; see :class:`SessionTransfer`."""
        return transfer.import_session(self, records, replace=replace)
