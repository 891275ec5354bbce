"""``list_work_items_page``, written once for the database backends: filters, sort keys, paging.

The status page's item table (and ``GET /sessions/{s}/backfill/items``) finds
items by id substring, index, status and holder, sorts them by the columns an
operator sorts by, and pages on the server. The SQL here is the same on SQLite
and PostgreSQL except for three spellings a backend passes in: how a parameter
is written (``:name`` or ``%(name)s::type``), and substring search.

Paging is by position (the cursor is an offset): items sorted by progress or
heartbeat move while a backfill runs, so no key stays put between pages
anyway, and a position lets the page say "page 3 of 12".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .. import validation as check
from ..errors import ValidationError
from ..types import WorkItemPage, WorkItemStatus
from .common import item_from_row

__all__ = ["ITEM_SORTS", "ItemQuery", "item_query", "item_page_sql", "item_page_params", "item_page"]

#: Sort keys of ``list_work_items_page`` and the SQL value each sorts by
#: (``{now}`` is the read's time). Items without a value (no document count,
#: no live lease) come last in either direction; ties go in creation order.
ITEM_SORTS: dict[str, str] = {
    "created": "seq",
    "id": "work_item_id",
    "progress": "documents_processed * 1.0 / NULLIF(document_count, 0)",
    # The heartbeat's age, for live and lapsed leases only (a finished item's last heartbeat says nothing).
    "heartbeat": "CASE WHEN status = 'assigned' THEN {now} - COALESCE(last_heartbeat, leased_at) END",
    "failures": "failure_count",
}


@dataclass(frozen=True)
class ItemQuery:
    """The checked arguments of one ``list_work_items_page`` call."""

    status: WorkItemStatus | None
    index_name: str | None
    worker_id: str | None
    id_contains: str | None
    sort: str
    descending: bool
    limit: int
    offset: int


def item_query(
    *,
    status: WorkItemStatus | str | None,
    index_name: str | None,
    worker_id: str | None,
    id_contains: str | None,
    sort: str,
    descending: bool,
    limit: int,
    after: str | None,
) -> ItemQuery:
    """Check every argument (a ``ValidationError`` names the first wrong one)."""
    wanted = None if status is None else check.choice("status", status, WorkItemStatus)
    if worker_id is not None:
        worker_id = check.worker_id(worker_id)  # a holder's name follows the rules of worker ids
    for name, value in (("index_name", index_name), ("worker_id", worker_id), ("id_contains", id_contains)):
        if value is not None and (not isinstance(value, str) or not value or len(value) > 1024):
            raise ValidationError(name, f"must be a non-empty string of at most 1024 characters (got {value!r})")
        if isinstance(value, str) and "\x00" in value:
            raise ValidationError(name, "must not contain NUL characters")
    if sort not in ITEM_SORTS:
        raise ValidationError("sort", f"must be one of {', '.join(ITEM_SORTS)} (got {sort!r})")
    if not isinstance(descending, bool):
        raise ValidationError("descending", f"must be true or false (got {descending!r})")
    offset = 0
    if after is not None:
        if not isinstance(after, str) or not after.isdigit() or len(after) > 18:
            raise ValidationError("after", f"is not a cursor of this listing: {after!r}")
        offset = int(after)
    return ItemQuery(wanted, index_name, worker_id, id_contains, sort, descending, check.page_limit(limit), offset)


def item_page_sql(
    q: ItemQuery, *, param: Callable[[str, str], str], contains: Callable[[str, str], str]
) -> tuple[str, str]:
    """The page's SELECT (rows ending in ``seq``) and its COUNT, for one backend's spellings.

    ``param(name, type)`` writes a parameter (``type`` is ``int`` or ``text``);
    ``contains(column, placeholder)`` is true when the text holds the substring.
    Parameters used: ``session``, ``now``, ``limit``, ``offset`` and those of the filters
    (see :func:`item_page_params`).
    """
    where = [f"session_id = {param('session', 'int')}"]
    now = param("now", "int")
    if q.status is WorkItemStatus.PENDING:  # a lapsed lease reads as pending, as everywhere else
        where.append(f"(status = 'pending' OR (status = 'assigned' AND lease_expiry <= {now}))")
    elif q.status is WorkItemStatus.ASSIGNED:
        where.append(f"status = 'assigned' AND lease_expiry > {now}")
    elif q.status is not None:
        where.append(f"status = '{q.status.value}'")
    if q.index_name is not None:
        where.append(f"index_name = {param('index_name', 'text')}")
    if q.worker_id is not None:
        where.append(f"worker_id = {param('worker_id', 'text')}")
    if q.id_contains is not None:
        where.append(contains("work_item_id", param("id_contains", "text")))
    condition = " AND ".join(where)
    key = ITEM_SORTS[q.sort].format(now=now)
    direction = "DESC" if q.descending else "ASC"
    order = f"({key}) IS NULL, {key} {direction}, seq" if q.sort != "created" else f"seq {direction}"
    select = (
        f"SELECT {{columns}}, seq FROM work_items WHERE {condition} ORDER BY {order} "
        f"LIMIT {param('limit', 'int')} OFFSET {param('offset', 'int')}"
    )
    return select, f"SELECT count(*) FROM work_items WHERE {condition}"


def item_page_params(q: ItemQuery, session_id: int, now: int) -> dict[str, Any]:
    """The parameters of :func:`item_page_sql`'s statements (one more row than the page, to see if more follow)."""
    return {
        "session": session_id,
        "now": now,
        "limit": q.limit + 1,
        "offset": q.offset,
        "index_name": q.index_name,
        "worker_id": q.worker_id,
        "id_contains": q.id_contains,
    }


def item_page(session: str, q: ItemQuery, rows: Sequence[Any], total: int, now: int) -> WorkItemPage:
    """The page from up to ``limit + 1`` rows; ``next_cursor`` is the next page's offset."""
    more = len(rows) > q.limit
    items = tuple(item_from_row(session, r, now) for r in rows[: q.limit])
    return WorkItemPage(items, int(total), str(q.offset + q.limit) if more else None)
