"""The parameter components of the OpenAPI document: every path and query parameter, by name.

Part of :mod:`litecoord.rest.openapi`; operations refer to these by name
(``_param``), so one parameter is described once however many routes take it.
"""

from __future__ import annotations

from typing import Any

from ..validation import MAX_SESSION_NAME_LENGTH
from .openapi_schemas import _CURSOR, _ITEM_ID, _PRINTABLE, _SECONDS, _TIME, _WORKER_ID

_PARAMS: dict[str, Any] = {
    "session": {
        "name": "session",
        "in": "path",
        "required": True,
        "description": "session name (a namespace of work items, created by the first call that creates items; "
        "on a session nothing created, status and cleanup-expired answer 200 with session_exists false "
        "(the console's Java client reads status first) and every other call answers 404 session_not_found)",
        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_SESSION_NAME_LENGTH, "pattern": _PRINTABLE},
    },
    "work_item_id": {
        "name": "work_item_id",
        "in": "path",
        "required": True,
        "description": "work item id, percent-encoded (%2F for a slash). In GET …/{work_item_id}, ids equal to "
        "acquire, status, batch or cleanup-expired must be spelled with an escaped first letter (%61cquire).",
        "schema": _ITEM_ID,
    },
    "worker_id": {"name": "worker_id", "in": "query", "required": True, "schema": _WORKER_ID},
    "lease_duration_seconds": {
        "name": "lease_duration_seconds",
        "in": "query",
        "required": False,
        "description": "lease length in seconds (default 300)",
        "schema": _SECONDS,
    },
    "limit": {
        "name": "limit",
        "in": "query",
        "required": False,
        "description": "page size (default 50)",
        "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
    },
    "kind": {
        "name": "kind",
        "in": "query",
        "required": True,
        "description": "leased: live and lapsed leases, soonest expiry first; failed: parked items, creation order",
        "schema": {"type": "string", "enum": ["leased", "failed"]},
    },
    "after": {
        "name": "after",
        "in": "query",
        "required": False,
        "description": "next_cursor of the previous page",
        "schema": _CURSOR,
    },
    "item_status": {
        "name": "status",
        "in": "query",
        "required": False,
        "description": "only items in this state (pending includes lapsed leases; assigned only live ones)",
        "schema": {"type": "string", "enum": ["pending", "assigned", "completed", "failed"]},
    },
    "index_name": {
        "name": "index_name",
        "in": "query",
        "required": False,
        "description": "only items of this index",
        "schema": {"type": "string", "minLength": 1},
    },
    "holder": {
        "name": "worker_id",
        "in": "query",
        "required": False,
        "description": "only items whose current or last holder is this worker",
        "schema": _WORKER_ID,
    },
    "id_contains": {
        "name": "id_contains",
        "in": "query",
        "required": False,
        "description": "only items whose id contains this text (case-sensitive, no wildcards)",
        "schema": {"type": "string", "minLength": 1},
    },
    "sort": {
        "name": "sort",
        "in": "query",
        "required": False,
        "description": "created (default), id, progress (share of documents done), heartbeat (age of a lease's "
        "last heartbeat) or failures; items without a value come last, ties in creation order",
        "schema": {"type": "string", "enum": ["created", "id", "progress", "heartbeat", "failures"]},
    },
    "descending": {
        "name": "descending",
        "in": "query",
        "required": False,
        "description": "true: reverse the sort",
        "schema": {"type": "string", "enum": ["true", "false"]},
    },
    "offset_after": {
        "name": "after",
        "in": "query",
        "required": False,
        "description": "next_cursor of the previous page (a position: pages of a sort by progress shift as it runs)",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
    "samples_after": {
        "name": "samples_after",
        "in": "query",
        "required": False,
        "description": "sampled_at of the newest sample the client holds: only newer ones are sent",
        "schema": _TIME,
    },
    "leased_after": {
        "name": "leased_after",
        "in": "query",
        "required": False,
        "description": "cursor of the page of leases to show",
        "schema": _CURSOR,
    },
    "failed_after": {
        "name": "failed_after",
        "in": "query",
        "required": False,
        "description": "cursor of the page of failed items to show",
        "schema": _CURSOR,
    },
    "stall_after_seconds": {
        "name": "stall_after_seconds",
        "in": "query",
        "required": False,
        "description": "how long progress may stand still before a live lease is flagged stalled "
        "(default: the server's, 60)",
        "schema": _SECONDS,
    },
    "asset": {
        "name": "asset",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "enum": ["app.js", "app.css"]},
    },
    "session_query": {
        "name": "session",
        "in": "query",
        "required": False,
        "description": "show only this session's live view",
        "schema": {"type": "string"},
    },
    "refresh": {
        "name": "refresh",
        "in": "query",
        "required": False,
        "description": "seconds between the page's refreshes (default 2, at least 0.2); read by the page's "
        "script, which falls back to the default on anything else",
        "schema": {"type": "string"},
    },
    "page_size": {
        "name": "page_size",
        "in": "query",
        "required": False,
        "description": "rows per page of leased and of failed items (default 25, 1 to 1000); read by the "
        "page's script, which falls back to the default on anything else",
        "schema": {"type": "string"},
    },
    "status": {
        "name": "status",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "enum": ["pending", "assigned", "completed", "failed"]},
    },
}


def _param(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/parameters/{name}"}

