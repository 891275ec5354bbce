"""The paths of the OpenAPI document: one operation per route, built with ``_op``.

Part of :mod:`litecoord.rest.openapi` (which re-exports ``BASE``); the console
routes' operations come from :mod:`litecoord.rest.openapi_console`, built
with the helpers here.
"""

from __future__ import annotations

from typing import Any

from .openapi_console import console_paths
from .openapi_errors import _COMMON, _HOLDER, _errors
from .openapi_params import _param
from .openapi_schemas import _ref

BASE = "/sessions/{session}/backfill/work-items"
JSON = "application/json"


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


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
