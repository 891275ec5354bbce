"""The schema components of the OpenAPI document: the shapes of request and response bodies.

Part of :mod:`litecoord.rest.openapi`. Also holds the small building blocks
(``_obj``, ``_ref``, times, counts, ids) that the parameters and paths reuse,
so that one field is described one way everywhere.
"""

from __future__ import annotations

from typing import Any

from ..validation import (
    MAX_COUNT,
    MAX_INDEX_NAME_LENGTH,
    MAX_WORK_ITEM_ID_LENGTH,
    MAX_WORKER_ID_LENGTH,
    NON_PRINTABLE,
)
from .openapi_console import STATUS_PROPERTIES
from .openapi_errors import ERROR_CODES


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
