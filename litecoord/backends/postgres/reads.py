"""The reading calls of :class:`~.coordinator.PostgresCoordinator`: items, status, sessions, monitoring.

:class:`ReadCalls` is mixed into the coordinator (first of its bases, so these
methods win over the shared defaults of :class:`~litecoord.backends.common.DatabaseCalls`,
as when they were written in the class). They write nothing; their statements
are in :mod:`.sql`. Kept apart from the leasing and writing calls so that each
file holds one concern.
"""

from __future__ import annotations

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
from ..common import THROUGHPUT_WINDOW, item_from_row, not_found, page_of, parse_cursor, status_from
from ..item_search import item_page, item_page_params, item_page_sql, item_query
from . import console
from .sql import (
    _COLS,
    _FAILED_PAGE,
    _INDEX_PROGRESS,
    _ITEM_BY_ID,
    _LEASED_PAGE,
    _REMAINING,
    _STATUS,
    _STRPOS,
    _pg_param,
)

__all__ = ["ReadCalls"]


class ReadCalls:
    """Reading one session's items and figures, for :class:`~.coordinator.PostgresCoordinator`."""

    session: str

    def _read(self, fn: Any, *, idempotent: bool = True) -> Any:
        raise NotImplementedError

    def _existing(self, cur: Any, now: int) -> int:
        raise NotImplementedError

    # -- reading -------------------------------------------------------------------

    def _get(self, cur: Any, sid: int | None, work_item_id: str, now: int) -> WorkItem:
        row = None
        if sid is not None:
            cur.execute(_ITEM_BY_ID, (sid, work_item_id))
            row = cur.fetchone()
        if row is None:
            raise not_found(self.session, work_item_id)
        return item_from_row(self.session, row, now)

    def get_work_item(self, work_item_id: str) -> WorkItem:
        work_item_id = check.work_item_id(work_item_id)
        return self._read(lambda cur, now: self._get(cur, self._existing(cur, now), work_item_id, now))

    def list_work_items(self, status: WorkItemStatus | str | None = None) -> list[WorkItem]:
        wanted = None if status is None else check.choice("status", status, WorkItemStatus)
        where = ""
        if wanted is WorkItemStatus.PENDING:
            where = "AND (status = 'pending' OR (status = 'assigned' AND lease_expiry <= %(now)s::bigint))"
        elif wanted is WorkItemStatus.ASSIGNED:
            where = "AND status = 'assigned' AND lease_expiry > %(now)s::bigint"
        elif wanted is not None:
            where = f"AND status = '{wanted.value}'"
        sql = f"SELECT {_COLS} FROM work_items WHERE session_id = %(session)s::bigint {where} ORDER BY seq"

        def rows(cur: Any, now: int) -> list[WorkItem]:
            sid = self._existing(cur, now)
            cur.execute(sql, {"session": sid, "now": now})
            return [item_from_row(self.session, r, now) for r in cur.fetchall()]

        return self._read(rows)

    def num_work_items_not_yet_complete(self) -> int:
        def count(cur: Any, now: int) -> int:
            sid = self._existing(cur, now)
            cur.execute(_REMAINING, (sid,))
            return int(cur.fetchone()[0])

        return self._read(count)

    def status(self) -> WorkQueueStatus:
        def read(cur: Any, now: int) -> WorkQueueStatus:
            sid = self._existing(cur, now)
            cur.execute(_STATUS, {"session": sid, "now": now, "window": now - micros_of(THROUGHPUT_WINDOW)})
            row = cur.fetchone()
            # Documents and bytes are NUMERIC (exact past 2**63 - 1), which psycopg reads as Decimal.
            totals = (*row[:4], *map(int, row[4:8]), *row[8:10])
            lapsed, retrying, sample, paused_at = row[10], row[11], row[12:16], row[16]
            if sample[0] is not None:
                sample = (sample[0], int(sample[1]), int(sample[2]), sample[3])
            live = totals[1] - lapsed
            cur.execute(console.LEASES, (sid,))
            return status_from(
                self.session, now, totals, live, None if sample[0] is None else sample, retrying,
                paused_at=paused_at, leases=cur.fetchall(),
            )  # fmt: skip

        return self._read(read)

    def list_sessions(self) -> list[SessionInfo]:
        def rows(cur: Any, now: int) -> list[SessionInfo]:
            cur.execute(
                "SELECT s.name, s.created_at, s.lease_mode, s.acquire_order, s.max_attempts, "
                "coalesce(sum(c.total_items), 0)::bigint, coalesce(sum(c.completed_items), 0)::bigint, "
                "s.retry_delay_micros, s.max_retry_delay_micros, s.split_min_documents "
                "FROM sessions s LEFT JOIN session_counters c ON c.session_id = s.id "
                "GROUP BY s.id ORDER BY s.name"
            )
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
                for r in cur.fetchall()
            ]

        return self._read(rows)

    # -- monitoring ------------------------------------------------------------------

    def index_progress(self) -> list[IndexProgress]:
        def read(cur: Any, now: int) -> list[Any]:
            sid = self._existing(cur, now)
            cur.execute(_INDEX_PROGRESS, {"session": sid, "now": now})
            return cur.fetchall()

        return [IndexProgress(row[0], *(int(v or 0) for v in row[1:])) for row in self._read(read)]

    def progress_samples(self) -> list[ProgressSample]:
        def read(cur: Any, now: int) -> list[Any]:
            sid = self._existing(cur, now)
            cur.execute(
                "SELECT sampled_at, documents_processed, bytes_processed, completed_items "
                "FROM progress_samples WHERE session_id = %s::bigint ORDER BY sampled_at",
                (sid,),
            )
            return cur.fetchall()

        return [ProgressSample(from_micros(r[0]), int(r[1]), int(r[2]), r[3]) for r in self._read(read)]

    def list_attention_items(
        self, kind: AttentionKind | str, *, limit: int = 50, after: str | None = None
    ) -> WorkItemPage:
        kind = check.choice("kind", kind, AttentionKind)
        limit = check.page_limit(limit)
        leased = kind is AttentionKind.LEASED
        position = parse_cursor(after, 2 if leased else 1)

        def read(cur: Any, now: int) -> WorkItemPage:
            sid = self._existing(cur, now)
            cur.execute(
                _LEASED_PAGE if leased else _FAILED_PAGE,
                {"session": sid, "limit": limit + 1, "expiry": position[0], "seq": position[-1]},
            )
            rows = cur.fetchall()
            column = "assigned_items" if leased else "failed_items"
            cur.execute(
                f"SELECT coalesce(sum({column}), 0)::bigint FROM session_counters WHERE session_id = %s", (sid,)
            )
            return page_of(self.session, rows, cur.fetchone()[0], limit, leased, now)

        return self._read(read)

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
        select, count = item_page_sql(q, param=_pg_param, contains=_STRPOS)

        def read(cur: Any, now: int) -> WorkItemPage:
            params = item_page_params(q, self._existing(cur, now), now)
            cur.execute(select.format(columns=_COLS), params)
            rows = cur.fetchall()
            cur.execute(count, params)
            return item_page(self.session, q, rows, cur.fetchone()[0], now)

        return self._read(read)
