"""The reading calls of :class:`~.coordinator.SqliteCoordinator`: items, status, sessions, monitoring.

:class:`ReadCalls` is mixed into the coordinator (first of its bases, so these
methods win over the shared defaults of :class:`~litecoord.backends.common.DatabaseCalls`,
as when they were written in the class). They write nothing; their hot
statements are in :mod:`.sql`, the cold ones go through the peewee models
(:mod:`.models`). Kept apart from the leasing and writing calls so that each
file holds one concern.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from ... import validation as check
from ...types import (
    AcquireOrder,
    AttentionKind,
    IndexProgress,
    LeaseMode,
    ProgressSample,
    SessionInfo,
    WorkItem,
    WorkItemPage,
    WorkItemStatus,
    WorkQueueStatus,
    from_micros,
    micros_of,
)
from ..common import COLUMNS, THROUGHPUT_WINDOW, not_found, page_of, parse_cursor, status_from
from ..item_search import item_page, item_page_params, item_page_sql, item_query
from . import console
from .models import create_models
from .sql import (
    _COLS,
    _FAILED_PAGE,
    _INDEX_PROGRESS,
    _INSTR,
    _ITEM_BY_ID,
    _LEASED_PAGE,
    _LIVE_LEASES,
    _RETRY_WAITING,
    _SESSION_TOTALS,
)

__all__ = ["ReadCalls"]


class ReadCalls:
    """Reading one session's items and figures, for :class:`~.coordinator.SqliteCoordinator`."""

    session: str
    _store: Any
    _models: Any

    def _sid(self) -> int:
        raise NotImplementedError

    def _now(self) -> int:
        raise NotImplementedError

    def _item(self, row: Sequence[Any], now: int) -> WorkItem:
        raise NotImplementedError

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
