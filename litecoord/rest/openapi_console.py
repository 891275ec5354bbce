"""The OpenAPI description of the console routes (history, workers, failures, bulk retry, pause, resume).

Merged into :func:`litecoord.rest.openapi.openapi_document`; kept apart so
that module stays one screenful per concern. The schemas mirror the
``to_dict()`` of :mod:`litecoord.console`'s types.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["CONSOLE_SCHEMAS", "STATUS_PROPERTIES", "console_paths"]

_TIME = {"type": "string", "format": "date-time", "description": "RFC 3339, UTC, trailing Z"}
_TIME_OR_NULL = {**_TIME, "type": ["string", "null"]}
_COUNT = {"type": "integer", "minimum": 0}
_RATE = {"type": ["number", "null"], "minimum": 0}
_OUTCOMES = ["running", "completed", "failed", "released", "lapsed", "split"]

#: What ``WorkQueueStatus`` adds for the console: pause, why there is no ETA, labelled rates, took.
STATUS_PROPERTIES: dict[str, Any] = {
    "paused": {"type": "boolean", "description": "acquire hands out nothing until the session is resumed"},
    "paused_at": _TIME_OR_NULL,
    "eta_reason": {
        "type": ["string", "null"],
        "enum": ["paused", "no_live_lease", "only_stalled_or_silent", "no_rate_yet", None],
        "description": "why eta_seconds is null (null when there is an ETA)",
    },
    "eta_bound_by": {
        "type": ["string", "null"],
        "description": "the work item whose own remaining time sets the ETA (its slowest lease)",
    },
    "mean_documents_per_second": {**_RATE, "description": "over the whole run"},
    "mean_bytes_per_second": {**_RATE, "description": "over the whole run"},
    "recent_documents_per_second": {**_RATE, "description": "over the last rate_window_seconds"},
    "recent_bytes_per_second": {**_RATE, "description": "over the last rate_window_seconds"},
    "rate_window_seconds": {"type": ["number", "null"], "minimum": 0},
    "took_seconds": {
        "type": ["number", "null"],
        "minimum": 0,
        "description": "from started_at to finished_at, once nothing is left to do",
    },
}


def _obj(properties: dict[str, Any], required: tuple[str, ...] = (), **extra: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required), **extra}


CONSOLE_SCHEMAS: dict[str, Any] = {
    "Attempt": _obj(
        {
            "work_item_id": {"type": "string"},
            "lease_epoch": {"type": "integer", "minimum": 1},
            "worker_id": {"type": "string"},
            "leased_at": _TIME,
            "ended_at": _TIME_OR_NULL,
            "outcome": {"type": "string", "enum": _OUTCOMES},
            "documents_processed": _COUNT,
            "bytes_processed": _COUNT,
            "error": {"type": ["string", "null"]},
        },
        ("work_item_id", "lease_epoch", "worker_id", "leased_at", "ended_at", "outcome"),
        description="One lease of the item. lapsed: it expired and another lease took the item over; "
        "the documents and bytes are the item's figures when the attempt ended.",
    ),
    "WorkItemHistory": _obj(
        {
            "work_item_id": {"type": "string"},
            "attempts": {"type": "array", "items": {"$ref": "#/components/schemas/Attempt"}},
        },
        ("work_item_id", "attempts"),
        description="Every attempt at the item, oldest first.",
    ),
    "Worker": _obj(
        {
            "worker_id": {"type": "string"},
            "current_work_item_id": {"type": ["string", "null"]},
            "lease_live": {"type": "boolean"},
            "last_heartbeat": _TIME_OR_NULL,
            "first_seen": _TIME_OR_NULL,
            **{k: _COUNT for k in ("attempts", "completed", "failed", "released", "lapsed", "documents_processed")},
            "busy_seconds": {"type": "number", "minimum": 0},
            "documents_per_second": {**_RATE, "description": "mean: completed items' documents over busy_seconds"},
            "items_per_hour": _RATE,
            "silent": {"type": "boolean", "description": "holds a live lease without heartbeats for a third of it"},
        },
        ("worker_id", "current_work_item_id", "last_heartbeat", "completed", "failed"),
    ),
    "Workers": _obj(
        {"workers": {"type": "array", "items": {"$ref": "#/components/schemas/Worker"}}},
        ("workers",),
        description="Every worker seen in the session, by worker id.",
    ),
    "FailureGroup": _obj(
        {
            "error_pattern": {"type": "string", "description": "the error with ids, numbers and quoted values masked"},
            "count": _COUNT,
            "failed": {**_COUNT, "description": "parked as failed: they wait for a retry"},
            "retrying": {**_COUNT, "description": "failed fewer than max_attempts times: they come back by themselves"},
            "example_error": {"type": ["string", "null"]},
            "example_work_item_ids": {"type": "array", "items": {"type": "string"}},
        },
        ("error_pattern", "count", "failed", "retrying", "example_error", "example_work_item_ids"),
    ),
    "FailureGroups": _obj(
        {
            "groups": {"type": "array", "items": {"$ref": "#/components/schemas/FailureGroup"}},
            "failed": _COUNT,
            "retrying": _COUNT,
        },
        ("groups", "failed", "retrying"),
        description="Failed and retrying items grouped by their last error, largest group first.",
    ),
    "RetryFailuresRequest": {
        "type": ["object", "null"],  # a null body retries every failed item, as no body does
        "properties": {
            "error_pattern": {
                "type": ["string", "null"],
                "description": "retry only this group (its error_pattern, or any error of it); omit it (or null) "
                "to retry every failed item",
            }
        },
        "additionalProperties": False,
    },
    "RetryFailuresResult": _obj(
        {"retried": _COUNT, "work_item_ids": {"type": "array", "items": {"type": "string"}}},
        ("retried", "work_item_ids"),
        description="The items returned to pending, in creation order.",
    ),
    "PauseState": _obj(
        {"session_name": {"type": "string"}, "paused": {"type": "boolean"}, "paused_at": _TIME_OR_NULL},
        ("session_name", "paused", "paused_at"),
    ),
}


def console_paths(op: Callable[..., Any], json: Callable[..., Any], ref: Callable[[str], Any]) -> dict[str, Any]:
    """The console's path items, built with openapi_paths.py's own helpers (``_op``, ``_json``, ``_ref``)."""
    backfill = "/sessions/{session}/backfill"
    item = backfill + "/work-items/{work_item_id}"
    return {
        item + "/history": {
            "get": op(
                "Every attempt at the work item (one per lease), oldest first",
                {"200": json(ref("WorkItemHistory"), "the history")},
                errors=("404",),
                params=("session", "work_item_id"),
                operation_id="getWorkItemHistory",
            )
        },
        backfill + "/workers": {
            "get": op(
                "Every worker seen in the session: its current item, last heartbeat, counts and rate",
                {"200": json(ref("Workers"), "the workers")},
                errors=("404",),
                operation_id="listWorkers",
            )
        },
        backfill + "/failures": {
            "get": op(
                "Failed and retrying items grouped by their error (ids, numbers and quoted values masked)",
                {"200": json(ref("FailureGroups"), "the groups")},
                errors=("404",),
                operation_id="listFailureGroups",
            )
        },
        backfill + "/failures/retry": {
            "post": op(
                "Return every failed item, or those of one failure group, to pending (one transaction)",
                {"200": json(ref("RetryFailuresResult"), "what was retried")},
                errors=("404",),
                body="RetryFailuresRequest",
                body_required=False,
                operation_id="retryFailures",
            )
        },
        backfill + "/pause": {
            "post": op(
                "Pause the session: acquire hands out nothing (404, reason paused) until resumed; "
                "leases in flight go on",
                {"200": json(ref("PauseState"), "the session's pause state")},
                errors=("404",),
                operation_id="pauseSession",
            )
        },
        backfill + "/resume": {
            "post": op(
                "Resume the session: acquire hands out work again",
                {"200": json(ref("PauseState"), "the session's pause state")},
                errors=("404",),
                operation_id="resumeSession",
            )
        },
    }
