"""The OpenAPI 3.1 document of the console REST API served by :mod:`litecoord.rest.wsgi`.

Written by hand next to the route table; a test checks that every route is
described here (and nothing else), that the document is valid OpenAPI, and
that generated requests only ever get the statuses documented for them.
"""

from __future__ import annotations

import copy
from typing import Any

from ..validation import (
    MAX_COUNT,
    MAX_INDEX_NAME_LENGTH,
    MAX_SESSION_NAME_LENGTH,
    MAX_WORK_ITEM_ID_LENGTH,
    MAX_WORKER_ID_LENGTH,
    NON_PRINTABLE,
)
from .openapi_console import CONSOLE_SCHEMAS, STATUS_PROPERTIES, console_paths

__all__ = ["ERROR_CODES", "openapi_document"]

BASE = "/sessions/{session}/backfill/work-items"
JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    out = dict(schema)
    out["type"] = [schema["type"], "null"]
    return out


_TIME = {"type": "string", "format": "date-time", "description": "RFC 3339, UTC, trailing Z"}
_TIME_OR_NULL = _nullable(_TIME)
_COUNT = {"type": "integer", "minimum": 0}
_COUNT_OR_NULL = _nullable(_COUNT)
_TEXT_OR_NULL = {"type": ["string", "null"]}
#: Names are printable text: validation.NON_PRINTABLE, the server's own rule, as a pattern.
_PRINTABLE = f"^[^{NON_PRINTABLE}]*$"
_WORKER_ID = {"type": "string", "minLength": 1, "maxLength": MAX_WORKER_ID_LENGTH, "pattern": _PRINTABLE}
_ITEM_ID = {"type": "string", "minLength": 1, "maxLength": MAX_WORK_ITEM_ID_LENGTH, "pattern": _PRINTABLE}
_EPOCH = {
    "type": ["integer", "null"],
    "minimum": 0,
    "maximum": MAX_COUNT,
    "description": "lease_epoch of the caller's lease (fences stale holders); null: not checked",
}
#: A lease length: from a millisecond to a year.
_SECONDS = {"type": "number", "minimum": 0.001, "maximum": 365 * 86400}
_SECONDS_OR_NULL = {**_SECONDS, "type": ["number", "null"], "description": "null: the default"}
#: A next_cursor: one or two integers joined by a dot (backends.common.parse_cursor).
_CURSOR = {"type": "string", "pattern": r"^-?[0-9]{1,18}(\.-?[0-9]{1,18})?$"}


def _obj(properties: dict[str, Any], required: tuple[str, ...] = (), *, closed: bool = False, **extra: Any) -> dict:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    if closed:
        schema["additionalProperties"] = False
    schema.update(extra)
    return schema


def _progress(description: str) -> dict:
    return _obj(
        {
            "documents_processed": {"type": ["integer", "null"], "minimum": 0, "maximum": MAX_COUNT},
            "bytes_processed": {"type": ["integer", "null"], "minimum": 0, "maximum": MAX_COUNT},
        },
        closed=True,
        description=description,
        type=["object", "null"],
    )


_FINAL_FIGURES = (
    "the holder's final figures, recorded as stated: fewer documents than the item's range is a short "
    "completion the coverage audit reports; without them the item counts in full"
)

_WORK_ITEM = _obj(
    {
        "work_item_id": {"type": "string"},
        "session_name": {"type": "string"},
        "status": {"type": "string", "enum": ["pending", "assigned", "completed", "failed"]},
        "index_name": _TEXT_OR_NULL,
        "shard_number": _COUNT_OR_NULL,
        "document_count": _COUNT_OR_NULL,
        "total_size_bytes": _COUNT_OR_NULL,
        "worker_id": _TEXT_OR_NULL,
        "lease_expiry": _TIME_OR_NULL,
        "documents_processed": _COUNT,
        "bytes_processed": _COUNT,
        "last_progress_update": _TIME_OR_NULL,
        "created_at": _TIME_OR_NULL,
        "started_at": _TIME_OR_NULL,
        "completed_at": _TIME_OR_NULL,
        "lease_epoch": _COUNT,
        "attempts": _COUNT,
        "failure_count": _COUNT,
        "last_error": _TEXT_OR_NULL,
        "parent_id": _TEXT_OR_NULL,
        "successor_ids": {"type": "array", "items": {"type": "string"}},
        "last_heartbeat": _TIME_OR_NULL,
        "progress_changed_at": _TIME_OR_NULL,
        "lease_duration_seconds": {"type": ["number", "null"]},
        "leased_at": _TIME_OR_NULL,
        "next_attempt_at": {
            **_TIME_OR_NULL,
            "description": "after a failure: acquire does not hand the item out before this time",
        },
        "range_start": {**_COUNT, "description": "first document position of the shard this item covers"},
        "range_end": {
            **_COUNT_OR_NULL,
            "description": "end (exclusive) of the range [range_start, range_end); null: to the shard's end",
        },
        "split_requested_at": {
            **_COUNT_OR_NULL,
            "description": "a split request: the position an idle worker proposes the holder split at "
            "(answer with POST .../split, at it or later); null: none",
        },
    },
    # The console client's fields, always present (null when unset).
    tuple(
        "work_item_id session_name status index_name shard_number document_count total_size_bytes worker_id "
        "lease_expiry documents_processed bytes_processed last_progress_update created_at started_at "
        "completed_at lease_epoch".split()
    ),
    description="A work item. An assigned item whose lease lapsed reads as pending.",
)

_STATUS_EXAMPLE = {
    "session_name": "migration-session-1",
    "total_work_items": 10,
    "pending_work_items": 3,
    "assigned_work_items": 5,
    "completed_work_items": 2,
    "total_documents": 500000,
    "total_documents_processed": 150000,
    "total_size_bytes": 10240000,
    "total_bytes_processed": 3072000,
    "started_at": "2025-01-19T20:30:00Z",
    "last_update": "2025-01-19T20:35:00Z",
}

#: Every code an error answer can carry, with its status and when it is sent: the
#: Error schema lists the codes, the document carries the table (``x-error-codes``),
#: and the documentation's REST reference renders it from there.
ERROR_CODES: tuple[tuple[int, str, str], ...] = (
    (400, "malformed_json", "the body is not JSON (or not UTF-8)"),
    (400, "bad_request", "a malformed path, query or `Content-Length`"),
    (401, "unauthorized", "the server has a token and the request did not bring it"),
    (403, "forbidden_host", "a tokenless loopback server got a non-loopback `Host`"),
    (403, "forbidden_origin", "a tokenless loopback server got a non-loopback `Origin`"),
    (
        403,
        "forbidden_cross_site",
        "a tokenless server (loopback, or `--trust-network`) got a request that writes (every method but `GET`, "
        "and `GET …/acquire`) which a browser marked cross-site: `Sec-Fetch-Site` other than `same-origin` or "
        "`none`, or an `Origin` other than the server's own scheme, host and port (`http://localhost:3000` is not "
        "`http://localhost:8000`). Clients that send neither header (curl, the Java client, `HttpCoordinator`) "
        "are never refused",
    ),
    (404, "work_item_not_found", "unknown work item"),
    (
        404,
        "session_not_found",
        "unknown session (every route under a session but those that create items, `GET …/status` and "
        "`POST …/cleanup-expired`)",
    ),
    (404, "no_available_work", "acquire found no work (`reason` says why; see NoAvailableWork)"),
    (404, "not_found", "no such route"),
    (405, "method_not_allowed", "wrong method for the path; the `Allow` header lists the right ones"),
    (409, "work_item_exists", "the id exists"),
    (409, "lease_conflict", "another worker holds the lease, or the lease epoch is stale"),
    (409, "successor_conflict", "other successors are recorded for the item"),
    (410, "lease_expired", "the caller's lease lapsed"),
    (413, "payload_too_large", "body over the size limit (1 MiB by default: `create_app(..., max_body_bytes=)`)"),
    (415, "unsupported_media_type", "a body sent without `Content-Type: application/json`"),
    (422, "validation_error", "an invalid field, named in `field` (`items[3].shard_number`)"),
    (500, "error", "the database failed (`SQLite error on <database>: ...`)"),
    (500, "schema_version", "the PostgreSQL schema is newer than this litecoord, or older and not migrated"),
    (500, "lost_writes", "the WAL vanished after a commit (deleted while in use): what the call did may be lost"),
    (500, "internal_error", "a bug: logged on the server, no details in the answer"),
    (501, "not_implemented", "`/metrics` on a server without prometheus_client"),
    (503, "database_busy", "the file stayed locked past the busy deadline"),
    (503, "database_unavailable", "the database cannot be read (`/health`) or reached"),
    (
        503,
        "database_refused",
        "PostgreSQL refused the server's login or a statement its role may not run (a read-only role: acquire "
        "and every write), which waiting will not fix",
    ),
)

_SCHEMAS: dict[str, Any] = {
    "Error": _obj(
        {
            "detail": {"type": "string", "description": "human-readable"},
            "code": {
                "type": "string",
                "description": "stable: " + ", ".join(code for _, code, _ in ERROR_CODES),
            },
            "field": {"type": "string", "description": "the invalid field (validation_error only)"},
        },
        ("detail", "code"),
    ),
    "WorkItem": _WORK_ITEM,
    "WorkItemAndDuration": _obj(
        {
            "work_item": _ref("WorkItem"),
            "lease_duration_seconds": {"type": "number"},
            "lease_expiry": _TIME,
            "lease_epoch": _COUNT,
        },
        ("work_item", "lease_duration_seconds", "lease_expiry", "lease_epoch"),
    ),
    "AlreadyCompleted": _obj(
        {"already_completed": {"const": True}, "work_item": _ref("WorkItem")}, ("already_completed", "work_item")
    ),
    "NoAvailableWork": _obj(
        {
            "detail": {"type": "string"},
            "code": {"const": "no_available_work"},
            "reason": {
                "type": "string",
                "enum": ["all_leased", "retry_wait", "none_remain", "failed_remain", "paused"],
            },
            "remaining_work_items": _COUNT,
            "failed_work_items": _COUNT,
            "next_attempt_at": {**_TIME_OR_NULL, "description": "when the next failed item's retry delay ends"},
            "paused": {"type": "boolean", "description": "the session is paused: nothing is handed out"},
        },
        ("detail", "code", "reason", "remaining_work_items", "failed_work_items"),
        description="404 from acquire: remaining_work_items > 0 means work remains, all of it leased "
        "(all_leased) or some of it waiting out a retry delay until next_attempt_at (retry_wait).",
    ),
    "WorkQueueStatus": _obj(
        {
            "session_name": {"type": "string"},
            **{
                k: _COUNT
                for k in (
                    "total_work_items pending_work_items assigned_work_items completed_work_items total_documents "
                    "total_documents_processed total_size_bytes total_bytes_processed failed_work_items "
                    "in_progress_work_items expired_lease_work_items"
                ).split()
            },
            "started_at": _TIME_OR_NULL,
            "last_update": _TIME_OR_NULL,
            "percent_complete": {"type": "number", "minimum": 0, "maximum": 100},
            "documents_per_second": {"type": ["number", "null"]},
            "bytes_per_second": {"type": ["number", "null"]},
            "eta_seconds": {"type": ["number", "null"]},
            "estimated_completion": _TIME_OR_NULL,
            "as_of": _TIME_OR_NULL,
            "elapsed_seconds": {
                "type": ["number", "null"],
                "description": "the run's duration: to now, or to finished_at once nothing is left to do",
            },
            "finished_at": {
                **_TIME_OR_NULL,
                "description": "when nothing was left to do; then the rates are the run's mean and eta_seconds is 0",
            },
            "retrying_work_items": {**_COUNT, "description": "pending items waiting out a retry delay"},
            "session_exists": {
                "type": "boolean",
                "description": "litecoord's own: false for a session nothing created yet (then every count is 0)",
            },
            **STATUS_PROPERTIES,
        },
        tuple(_STATUS_EXAMPLE),
        description="pending_work_items + assigned_work_items is the number of items not yet complete.",
        examples=[_STATUS_EXAMPLE],
    ),
    "SessionInfo": _obj(
        {
            "session_name": {"type": "string"},
            "created_at": _TIME_OR_NULL,
            "lease_mode": {"type": "string", "enum": ["fixed", "exponential"]},
            "acquire_order": {"type": "string", "enum": ["largest_first", "fifo"]},
            "max_attempts": {"type": "integer", "minimum": 1},
            "total_work_items": _COUNT,
            "completed_work_items": _COUNT,
            "retry_delay_seconds": {"type": "number", "minimum": 0},
            "max_retry_delay_seconds": {"type": "number", "minimum": 0},
            "split_min_documents": _COUNT_OR_NULL,
        },
        ("session_name", "created_at", "lease_mode", "acquire_order", "max_attempts"),
    ),
    "SessionSettings": _obj(
        {
            "lease_mode": {"type": ["string", "null"], "enum": ["fixed", "exponential", None]},
            "acquire_order": {"type": ["string", "null"], "enum": ["largest_first", "fifo", None]},
            "max_attempts": {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_COUNT},
            "retry_delay_seconds": {
                "type": ["number", "null"],
                "minimum": 0,
                "maximum": 86400,
                "description": "delay before the first retry of a failed item (doubling per failure; 0: at once)",
            },
            "max_retry_delay_seconds": {"type": ["number", "null"], "minimum": 0, "maximum": 86400},
            "split_min_documents": {
                "type": ["integer", "null"],
                "minimum": 0,
                "maximum": MAX_COUNT,
                "description": "idle acquires ask a holder to split only items with at least twice this many "
                "documents left (default 10000); null turns split requests off",
            },
        },
        closed=True,
        description="Each field left out (or null) keeps the session's setting; a null body keeps them all.",
        type=["object", "null"],
    ),
    "NewWorkItem": _obj(
        {
            "work_item_id": _ITEM_ID,
            "index_name": {
                "type": ["string", "null"],
                "minLength": 1,
                "maxLength": MAX_INDEX_NAME_LENGTH,
                "pattern": _PRINTABLE,
            },
            "shard_number": {"type": ["integer", "null"], "minimum": 0, "maximum": MAX_COUNT},
            "document_count": {"type": ["integer", "null"], "minimum": 0, "maximum": MAX_COUNT},
            "total_size_bytes": {"type": ["integer", "null"], "minimum": 0, "maximum": MAX_COUNT},
        },
        ("work_item_id",),
        closed=True,
        examples=[
            {
                "work_item_id": "index1_shard0",
                "index_name": "my-index",
                "shard_number": 0,
                "document_count": 50000,
                "total_size_bytes": 1024000,
            }
        ],
    ),
    "AcquireRequest": _obj(
        {"worker_id": _WORKER_ID, "lease_duration_seconds": _SECONDS_OR_NULL},
        ("worker_id",),
        closed=True,
        description="The server also reads worker_id and lease_duration_seconds from the query, as GET "
        "does (the query wins).",
    ),
    "LeaseRenewal": _obj(
        {
            "worker_id": _WORKER_ID,
            "progress": _progress("absolute totals for the item (a retried renewal is harmless); null: none"),
            "lease_epoch": _EPOCH,
            "lease_duration_seconds": _SECONDS_OR_NULL,
        },
        ("worker_id",),
        closed=True,
    ),
    "CompleteRequest": {
        "oneOf": [
            {**_WORKER_ID, "description": "the worker id as a bare JSON string (what the Java client sends)"},
            _obj(
                {"worker_id": _WORKER_ID, "lease_epoch": _EPOCH, "progress": _progress(_FINAL_FIGURES)},
                ("worker_id",),
                closed=True,
            ),
        ],
        "examples": ["worker-001"],
    },
    "HolderRequest": _obj({"worker_id": _WORKER_ID, "lease_epoch": _EPOCH}, ("worker_id",), closed=True),
    "FailRequest": _obj(
        {"worker_id": _WORKER_ID, "error": {"type": "string"}, "lease_epoch": _EPOCH},
        ("worker_id", "error"),
        closed=True,
    ),
    "SuccessorsRequest": _obj(
        {
            "worker_id": _WORKER_ID,
            "successor_work_item_ids": {
                "type": "array",
                "minItems": 1,
                "items": {**_ITEM_ID, "pattern": f"^[^,{NON_PRINTABLE}]*$"},
                "description": "ids without a comma, other than the item's own (refused with 422: a rule "
                "across the path and the body that a schema cannot state)",
            },
            "lease_epoch": _EPOCH,
        },
        ("worker_id", "successor_work_item_ids"),
        closed=True,
    ),
    "SplitRequest": _obj(
        {
            "worker_id": _WORKER_ID,
            "at": {**_COUNT, "maximum": MAX_COUNT, "description": "where the item ends from now on"},
            "lease_epoch": _EPOCH,
        },
        ("worker_id", "at"),
        closed=True,
    ),
    "SplitResult": _obj(
        {"kept": _ref("WorkItem"), "new": _ref("WorkItem")},
        ("kept", "new"),
        description="The item as kept ([range_start, at)) and the new pending item ([at, old range_end)).",
    ),
    "CoverageReport": _obj(
        {
            "session_name": {"type": "string"},
            "ok": {"type": "boolean"},
            "gap_count": _COUNT,
            "overlap_count": _COUNT,
            "short_items": _COUNT,
            "incomplete_items": _COUNT,
            "unverifiable_shards": _COUNT,
            "shards": {"type": "array", "items": _ref("ShardCoverage")},
        },
        ("session_name", "ok", "gap_count", "shards"),
        description="The coverage audit: ok when every shard with a known extent is covered exactly "
        "(no gap, no overlap, nothing completed short) and no item is left incomplete.",
    ),
    "ShardCoverage": _obj(
        {
            "index_name": _TEXT_OR_NULL,
            "shard_number": _COUNT_OR_NULL,
            "root_id": _TEXT_OR_NULL,
            "verdict": {"type": "string", "enum": ["ok", "not_ok", "unverifiable"]},
            "reason": _TEXT_OR_NULL,
            "extent": {"type": ["array", "null"], "items": _COUNT},
            "covered": {"type": "array", "items": {"type": "array", "items": _COUNT}},
            "gaps": {"type": "array", "items": {"type": "array", "items": _COUNT}},
            "overlaps": {"type": "array", "items": {"type": "array", "items": _COUNT}},
            "short": {"type": "array", "items": {"type": "string"}},
            "incomplete": {"type": "array", "items": {"type": "string"}},
            "items": _COUNT,
        },
        ("verdict", "gaps", "overlaps"),
        description="One shard's audit; ranges are [start, end) pairs of document positions.",
    ),
    "CompleteAndAcquireRequest": _obj(
        {
            "worker_id": _WORKER_ID,
            "lease_epoch": _EPOCH,
            "lease_duration_seconds": _SECONDS_OR_NULL,
            "progress": _progress(_FINAL_FIGURES),
        },
        ("worker_id",),
        closed=True,
    ),
    "CompleteAndAcquireResult": _obj(
        {
            "completed": _ref("WorkItem"),
            "next": {"oneOf": [_ref("WorkItemAndDuration"), _ref("NoAvailableWork")]},
        },
        ("completed", "next"),
        description="next is the new lease, or the body acquire answers with 404 when there is no work.",
    ),
    "ReleaseResult": _obj(
        {"work_item_id": {"type": "string"}, "released": {"type": "boolean"}}, ("work_item_id", "released")
    ),
    "CleanupResult": _obj(
        {
            "session_name": {"type": "string"},
            "cleaned": _COUNT,
            "session_exists": {"type": "boolean", "description": "false for a session nothing created yet"},
        },
        ("session_name", "cleaned"),
    ),
    "DeleteResult": _obj({"session_name": {"type": "string"}, "deleted": _COUNT}, ("session_name", "deleted")),
    "Health": _obj(
        {
            "status": {"const": "ok"},
            "version": {"type": "string"},
            "token_required": {
                "type": "boolean",
                "description": "whether the other routes need Authorization: Bearer (the page asks for it first)",
            },
        },
        ("status", "version", "token_required"),
    ),
    "IndexProgress": _obj(
        {
            "index_name": _TEXT_OR_NULL,
            **{
                k: _COUNT
                for k in (
                    "total_work_items pending_work_items assigned_work_items lapsed_work_items completed_work_items "
                    "failed_work_items total_documents documents_processed total_size_bytes bytes_processed"
                ).split()
            },
        },
        ("index_name", "total_work_items", "completed_work_items", "total_documents", "documents_processed"),
        description="Aggregates of one index (null: items without an index name). assigned_work_items counts "
        "live and lapsed leases; lapsed_work_items how many of them lapsed.",
    ),
    "ProgressSample": _obj(
        {
            "sampled_at": _TIME,
            "documents_processed": _COUNT,
            "bytes_processed": _COUNT,
            "completed_work_items": _COUNT,
        },
        ("sampled_at", "documents_processed", "bytes_processed", "completed_work_items"),
        description="The session's cumulative totals at one instant (at most one per 10 s, kept an hour).",
    ),
    "WorkItemPage": _obj(
        {
            "items": {"type": "array", "items": _ref("WorkItem")},
            "total": _COUNT,
            "next_cursor": _TEXT_OR_NULL,
        },
        ("items", "total", "next_cursor"),
        description="One page; pass next_cursor as `after` for the next one (null on the last page).",
    ),
    "WatchedItem": {
        "allOf": [
            _ref("WorkItem"),
            _obj(
                {
                    "flags": {
                        "type": "array",
                        "items": {"type": "string", "enum": ["lapsed", "silent", "stalled", "failed"]},
                    },
                    "heartbeat_age_seconds": {"type": ["number", "null"]},
                    "progress_age_seconds": {"type": ["number", "null"]},
                    "lease_remaining_seconds": {"type": ["number", "null"]},
                },
                ("flags", "heartbeat_age_seconds", "progress_age_seconds", "lease_remaining_seconds"),
            ),
        ],
        "description": "A work item with its flags and ages in seconds, at the server's time as_of.",
    },
    "WatchedPage": _obj(
        {
            "items": {"type": "array", "items": _ref("WatchedItem")},
            "total": _COUNT,
            "next_cursor": _TEXT_OR_NULL,
        },
        ("items", "total", "next_cursor"),
    ),
    "FoundItems": _obj(
        {
            "as_of": _TIME,
            "items": {"type": "array", "items": _ref("WatchedItem")},
            "total": _COUNT,
            "next_cursor": _TEXT_OR_NULL,
        },
        ("as_of", "items", "total", "next_cursor"),
        description="One page of the items matching every filter; total counts them all.",
    ),
    "SessionSummaries": _obj(
        {
            "as_of": _TIME_OR_NULL,
            "sessions": {
                "type": "array",
                "items": _obj(
                    {
                        "session_name": {"type": "string"},
                        "status": _ref("WorkQueueStatus"),
                        "counts": _obj(
                            {k: _COUNT for k in ("leased", "live", "lapsed", "silent", "stalled")},
                            ("leased", "live", "lapsed", "silent", "stalled"),
                        ),
                    },
                    ("session_name", "status", "counts"),
                ),
            },
        },
        ("as_of", "sessions"),
        description="Every session's status and flag counts: the session list of the status page.",
    ),
    "Overview": _obj(
        {
            "session_name": {"type": "string"},
            "as_of": _TIME,
            "stall_after_seconds": {"type": "number"},
            "status": _ref("WorkQueueStatus"),
            "counts": _obj(
                {k: _COUNT for k in ("leased", "live", "lapsed", "silent", "stalled", "failed")},
                ("leased", "live", "lapsed", "silent", "stalled", "failed"),
                description="over every lease and failed item of the session, not only this page",
            ),
            "indexes": {"type": "array", "items": _ref("IndexProgress")},
            "indexes_total": _COUNT,
            "indexes_as_of": _TIME,
            "samples": {"type": "array", "items": _ref("ProgressSample")},
            "samples_complete": {
                "type": "boolean",
                "description": "false: only the samples after samples_after (the client keeps the rest)",
            },
            "samples_first": _TIME_OR_NULL,
            "leased": _ref("WatchedPage"),
            "failed": _ref("WatchedPage"),
        },
        (
            "session_name as_of stall_after_seconds status counts indexes indexes_total indexes_as_of samples "
            "samples_complete samples_first leased failed"
        ).split(),
        description="One session's live view: what the status page reads on each refresh.",
    ),
}

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


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


_ERROR_TEXT = {
    "400": "malformed JSON, path or query",
    "401": "missing or wrong bearer token (when the server has one)",
    "404": "unknown work item (`work_item_not_found`) or unknown session (`session_not_found`)",
    "409": "conflict",
    "410": "the caller's lease expired",
    "403": "a tokenless loopback server got a non-loopback Host or Origin (`forbidden_host`, `forbidden_origin`), "
    "or a tokenless server got a write a browser marked cross-site (`forbidden_cross_site`: Sec-Fetch-Site "
    "other than same-origin or none, or an Origin other than the server's scheme, host and port)",
    "413": "request body over the size limit",
    "415": "a request body that is not sent as Content-Type: application/json",
    "422": "an invalid field; `field` names it",
    "501": "the server lacks an optional dependency (prometheus_client for /metrics)",
    "503": "the database stayed locked past its deadline (`database_busy`), cannot be reached "
    "(`database_unavailable`), or refused litecoord for a reason waiting will not fix: authentication, "
    "a missing database or role, a read-only role (`database_refused`)",
}


def _errors(*codes: str) -> dict[str, Any]:
    return {c: {"$ref": f"#/components/responses/E{c}"} for c in codes}


_COMMON = ("400", "401", "403", "413", "415", "422", "503")
_HOLDER = ("404", "409", "410")


def _op(
    summary: str,
    responses: dict[str, Any],
    *,
    errors: tuple[str, ...] = (),
    params: tuple[str, ...] = ("session",),
    body: str | None = None,
    body_required: bool = True,
    operation_id: str,
    description: str | None = None,
    public: bool = False,
) -> dict[str, Any]:
    op: dict[str, Any] = {"operationId": operation_id, "summary": summary}
    if description:
        op["description"] = description
    if params:
        op["parameters"] = [_param(p) for p in params]
    if body is not None:
        op["requestBody"] = {"required": body_required, "content": {JSON: {"schema": _ref(body)}}}
    op["responses"] = {**responses, **_errors(*(() if public else _COMMON), *errors)}
    if public:
        op["security"] = []
    return op


_ITEM_OK = _json(_ref("WorkItem"), "the work item")
# The Java client reads any 404 from acquire as "no work"; `code` tells an empty queue from an unknown session.
_NO_WORK = _json(
    {"anyOf": [_ref("NoAvailableWork"), _ref("Error")]},
    "no work available (`no_available_work`), or the session does not exist (`session_not_found`)",
)
_ITEM_PARAMS = ("session", "work_item_id")


def _paths() -> dict[str, Any]:
    item = BASE + "/{work_item_id}"
    return {
        **console_paths(_op, _json, _ref),
        "/health": {
            "get": _op(
                "Liveness: the coordination file opens",
                {"200": _json(_ref("Health"), "ok"), "503": {"$ref": "#/components/responses/E503"}},
                params=(),
                operation_id="health",
                public=True,
            )
        },
        "/": {
            "get": _op(
                "The live status page (HTML; it asks for the token itself and sends it with each data request)",
                {"200": {"description": "the page", "content": {"text/html": {"schema": {"type": "string"}}}}},
                params=("session_query", "refresh", "page_size"),
                operation_id="statusPage",
                public=True,
            )
        },
        "/ui/{asset}": {
            "get": _op(
                "The status page's script or style sheet",
                {
                    "200": {
                        "description": "the file",
                        "content": {
                            "text/javascript": {"schema": {"type": "string"}},
                            "text/css": {"schema": {"type": "string"}},
                        },
                    },
                    "404": {"$ref": "#/components/responses/E404"},
                },
                params=("asset",),
                operation_id="statusPageAsset",
                public=True,
            )
        },
        "/metrics": {
            "get": _op(
                "Prometheus metrics: work items by session and state, progress, flagged leases, HTTP requests",
                {
                    "200": {
                        "description": "the Prometheus text format, version 0.0.4",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    "501": {"$ref": "#/components/responses/E501"},
                },
                params=(),
                operation_id="metrics",
            )
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "responses": {"200": _json({"type": "object"}, "the OpenAPI document"), **_errors("401")},
            }
        },
        "/sessions/": {
            "get": _op(
                "List sessions",
                {"200": _json({"type": "array", "items": _ref("SessionInfo")}, "every session")},
                params=(),
                operation_id="listSessions",
            )
        },
        "/sessions/{session}": {
            "put": _op(
                "Create the session if missing and store its settings (idempotent)",
                {"200": _json(_ref("SessionInfo"), "the session")},
                body="SessionSettings",
                body_required=False,
                operation_id="setupSession",
            )
        },
        BASE + "/": {
            "post": _op(
                "Create one work item",
                {"201": _json(_ref("WorkItem"), "created")},
                errors=("409",),
                body="NewWorkItem",
                operation_id="createWorkItem",
            ),
            "get": _op(
                "List the session's work items in creation order",
                {"200": _json({"type": "array", "items": _ref("WorkItem")}, "the items")},
                params=("session", "status"),
                errors=("404",),
                operation_id="listWorkItems",
            ),
            "delete": _op(
                "Delete every work item of the session",
                {"200": _json(_ref("DeleteResult"), "how many were deleted")},
                errors=("404",),
                operation_id="deleteSession",
            ),
        },
        BASE + "/batch": {
            "post": {
                **_op(
                    "Create many work items in one transaction",
                    {"201": _json({"type": "array", "items": _ref("WorkItem")}, "the newly created items only")},
                    operation_id="createWorkItems",
                    description="Existing ids (and repeats in the batch) are skipped. If any entry is invalid, "
                    "nothing is created and `field` names it (`items[3].shard_number`).",
                ),
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": {"type": "array", "items": _ref("NewWorkItem")}}},
                },
            }
        },
        BASE + "/acquire": {
            "get": _op(
                "Lease the next available work item",
                {
                    "200": _json(_ref("WorkItemAndDuration"), "the lease"),
                    "404": _NO_WORK,
                },
                params=("session", "worker_id", "lease_duration_seconds"),
                operation_id="acquireWorkItem",
                description="A worker holding a live lease gets that lease back unchanged, so retrying is safe.",
            ),
            "post": _op(
                "Lease the next available work item (fields in the body)",
                {
                    "200": _json(_ref("WorkItemAndDuration"), "the lease"),
                    "404": _NO_WORK,
                },
                body="AcquireRequest",
                operation_id="acquireWorkItemPost",
            ),
        },
        BASE + "/status": {
            "get": _op(
                "The session summary",
                {"200": _json(_ref("WorkQueueStatus"), "the summary")},
                operation_id="getStatus",
                description="A session nothing created yet reads as an empty one, with session_exists false.",
            )
        },
        BASE + "/cleanup-expired": {
            "post": _op(
                "Mark items with lapsed leases as pending",
                {"200": _json(_ref("CleanupResult"), "how many were marked")},
                operation_id="cleanupExpired",
            )
        },
        item: {
            "get": _op(
                "One work item", {"200": _ITEM_OK}, errors=("404",), params=_ITEM_PARAMS, operation_id="getWorkItem"
            )
        },
        item + "/acquire": {
            "post": _op(
                "Lease this work item, creating it if absent (RFS createOrUpdateLeaseForWorkItem)",
                {
                    "200": _json(
                        {"oneOf": [_ref("WorkItemAndDuration"), _ref("AlreadyCompleted")]},
                        "the lease, or already_completed",
                    )
                },
                errors=("409",),
                params=_ITEM_PARAMS,
                body="AcquireRequest",
                operation_id="leaseWorkItem",
            )
        },
        item + "/lease": {
            "put": _op(
                "Renew the caller's lease, recording progress",
                {"200": _ITEM_OK},
                errors=_HOLDER,
                params=_ITEM_PARAMS,
                body="LeaseRenewal",
                operation_id="renewLease",
            )
        },
        item + "/complete": {
            "put": _op(
                "Complete the work item (only its holder may; completing twice is fine)",
                {"200": _ITEM_OK},
                errors=_HOLDER,
                params=_ITEM_PARAMS,
                body="CompleteRequest",
                operation_id="completeWorkItem",
            )
        },
        item + "/complete-and-acquire": {
            "post": _op(
                "Complete the work item and lease the next one, in one transaction",
                {"200": _json(_ref("CompleteAndAcquireResult"), "the completed item and the next lease (or why none)")},
                errors=_HOLDER,
                params=_ITEM_PARAMS,
                body="CompleteAndAcquireRequest",
                operation_id="completeAndAcquireNext",
            )
        },
        item + "/release": {
            "post": _op(
                "Give the work item back unfinished",
                {"200": _json(_ref("ReleaseResult"), "released is false when the caller was not the holder")},
                errors=_HOLDER,
                params=_ITEM_PARAMS,
                body="HolderRequest",
                operation_id="releaseWorkItem",
            )
        },
        item + "/fail": {
            "post": _op(
                "Record an error and give the work item back (parked as failed after max_attempts)",
                {"200": _ITEM_OK},
                errors=_HOLDER,
                params=_ITEM_PARAMS,
                body="FailRequest",
                operation_id="failWorkItem",
            )
        },
        item + "/retry": {
            "post": _op(
                "Return a failed work item to pending",
                {"200": _ITEM_OK},
                errors=("404",),
                params=_ITEM_PARAMS,
                operation_id="retryWorkItem",
            )
        },
        "/sessions/{session}/backfill/overview": {
            "get": _op(
                "One session's live view: status, per-index aggregates, throughput samples, flag counts and "
                "one page each of leased and failed items (the status page's data request)",
                {"200": _json(_ref("Overview"), "the view")},
                params=("session", "limit", "leased_after", "failed_after", "stall_after_seconds", "samples_after"),
                errors=("404",),
                operation_id="getOverview",
            )
        },
        "/sessions/{session}/backfill/indexes": {
            "get": _op(
                "Aggregates per index, by index name",
                {"200": _json({"type": "array", "items": _ref("IndexProgress")}, "one entry per index")},
                errors=("404",),
                operation_id="getIndexProgress",
            )
        },
        "/sessions/{session}/backfill/samples": {
            "get": _op(
                "Progress samples of the last hour, oldest first",
                {"200": _json({"type": "array", "items": _ref("ProgressSample")}, "the samples")},
                errors=("404",),
                operation_id="getProgressSamples",
            )
        },
        "/sessions/{session}/backfill/attention": {
            "get": _op(
                "One page of the items that need watching: leases (live and lapsed) or failed items",
                {"200": _json(_ref("WorkItemPage"), "the page")},
                params=("session", "kind", "limit", "after"),
                errors=("404",),
                operation_id="listAttentionItems",
            )
        },
        "/sessions/summary": {
            "get": _op(
                "Every session's status (the figures of GET …/status) and flag counts over its leases",
                {"200": _json(_ref("SessionSummaries"), "one entry per session, by name")},
                params=(),
                operation_id="listSessionSummaries",
            )
        },
        "/sessions/{session}/backfill/items": {
            "get": _op(
                "Find items: filter by id substring, index, status and holder, sort, page on the server",
                {"200": _json(_ref("FoundItems"), "the page, with each item's flags and ages at as_of")},
                params=(
                    "session", "item_status", "index_name", "holder", "id_contains", "sort", "descending", "limit",
                    "offset_after",
                ),
                errors=("404", "422"),
                operation_id="listWorkItemsPage",
            )
        },
        item + "/successors": {
            "post": _op(
                "Split: create successor items and complete this one, atomically",
                {"200": _ITEM_OK},
                errors=_HOLDER,
                params=_ITEM_PARAMS,
                body="SuccessorsRequest",
                operation_id="createSuccessors",
            )
        },
        item + "/split": {
            "post": _op(
                "Live split: the holder gives away [at, range_end) of its item as a new pending item",
                {"200": _json(_ref("SplitResult"), "the item as kept, then the new item")},
                errors=_HOLDER,
                params=_ITEM_PARAMS,
                body="SplitRequest",
                operation_id="splitWorkItem",
                description="Holder and lease_epoch are checked as for renewals. 422 when at is behind the "
                "recorded position (range_start + documents_processed) or not before range_end. Repeating "
                "the same split returns the same pair. Answers a split request (split_requested_at).",
            )
        },
        "/sessions/{session}/backfill/coverage": {
            "get": _op(
                "The coverage audit: gaps, overlaps and items completed short, per shard",
                {"200": _json(_ref("CoverageReport"), "the report, whether or not it is ok")},
                errors=("404",),
                operation_id="verifyCoverage",
            )
        },
    }


_DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "litecoord console work-coordination API",
        "version": "1",
        "description": "Lease, renew and complete shard work items of a backfill (the OpenSearch Migration "
        "Assistant console API), served over one SQLite file or PostgreSQL. Errors are JSON {detail, code}.",
    },
    "security": [{}, {"bearer": []}],
    "x-error-codes": [{"status": status, "code": code, "when": when} for status, code, when in ERROR_CODES],
    "paths": _paths(),
    "components": {
        "schemas": {**_SCHEMAS, **CONSOLE_SCHEMAS},
        "parameters": _PARAMS,
        "responses": {f"E{c}": _json(_ref("Error"), text) for c, text in _ERROR_TEXT.items()},
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
    },
}


def openapi_document() -> dict[str, Any]:
    """A fresh copy of the document (callers may modify it)."""
    return copy.deepcopy(_DOCUMENT)
