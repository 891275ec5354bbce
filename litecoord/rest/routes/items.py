"""Routes over work items: create, list, acquire, renew, complete, release, fail, retry, successors, split,
status, the coverage audit."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from ... import validation as check
from ...backends.common import status_from
from ...errors import (
    SessionNotFoundError,
    ValidationError,
    WorkItemExistsError,
)
from ...protocol import DEFAULT_LEASE_DURATION
from ...types import NoAvailableWorkToBeDone
from ..request import (
    Request,
    Response,
    _json_type,
    _lease_fields,
    _seconds,
    _worker,
)

if TYPE_CHECKING:
    from ..wsgi import App

logger = logging.getLogger("litecoord.rest.wsgi")


def create_item(app: App, req: Request) -> Response:
    spec = check.item_spec(req.body(), "")
    created = app.coordinator(req.params["session"]).create_work_items([spec])
    if not created:
        raise WorkItemExistsError(
            f"work item {spec['work_item_id']!r} already exists in session {req.params['session']!r}",
            work_item_id=spec["work_item_id"],
        )
    return 201, created[0].to_dict()


def create_batch(app: App, req: Request) -> Response:
    items = req.body()
    if not isinstance(items, list):
        raise ValidationError("body", f"must be a JSON array of work items, not {_json_type(items)}")
    created = app.coordinator(req.params["session"]).create_work_items(items)
    return 201, [item.to_dict() for item in created]


def list_items(app: App, req: Request) -> Response:
    items = app.coordinator(req.params["session"]).list_work_items(req.query.get("status"))
    return 200, [item.to_dict() for item in items]


def delete_items(app: App, req: Request) -> Response:
    coord = app.coordinator(req.params["session"])
    return 200, {"session_name": coord.session, "deleted": coord.delete_session()}


def acquire(app: App, req: Request) -> Response:
    # The Java client sends GET ?worker_id=W with no body; POST may carry the same fields as JSON.
    body = req.obj(("worker_id", "lease_duration_seconds"), required=False) if req.method == "POST" else {}
    worker, duration = _lease_fields(req, body)
    outcome = app.coordinator(req.params["session"], worker).acquire_next_work_item(duration)
    if isinstance(outcome, NoAvailableWorkToBeDone):
        return 404, outcome.to_dict()
    return 200, outcome.to_dict()


#: litecoord's own field in /status and /cleanup-expired: false for a session nothing created yet.
SESSION_EXISTS = "session_exists"


def status(app: App, req: Request) -> Response:
    # The console's Java client (RFS ConsoleWorkCoordinator.setup()) reads /status before any
    # item exists and fails unless it answers 200: a session nobody has written to reads as
    # an empty one, and session_exists tells the two apart (HttpCoordinator and the CLI raise
    # SessionNotFoundError from it, so a typo is still caught).
    coord = app.coordinator(req.params["session"])
    try:
        summary = coord.status()
    except SessionNotFoundError:
        return 200, {**_empty_status(coord), SESSION_EXISTS: False}
    return 200, {**summary.to_dict(), SESSION_EXISTS: True}


def _empty_status(coord: Any) -> dict[str, Any]:
    """What status() reads on a session with no items, at the coordinator's time."""
    now = coord._now()  # None on PostgreSQL without a clock of the caller's: the database's time is not read
    if now is None:
        now = time.time_ns() // 1000
    return status_from(coord.session, now, None, 0, None, 0).to_dict()


def cleanup_expired(app: App, req: Request) -> Response:
    coord = app.coordinator(req.params["session"])
    try:
        cleaned = coord.cleanup_expired()
    except SessionNotFoundError:
        # Nothing can have lapsed where nothing exists; the Java client would only log a 404.
        return 200, {"session_name": coord.session, "cleaned": 0, SESSION_EXISTS: False}
    return 200, {"session_name": coord.session, "cleaned": cleaned, SESSION_EXISTS: True}


def get_item(app: App, req: Request) -> Response:
    return 200, app.coordinator(req.params["session"]).get_work_item(req.params["work_item_id"]).to_dict()


def lease_item(app: App, req: Request) -> Response:
    body = req.obj(("worker_id", "lease_duration_seconds"), required=False)
    worker, duration = _lease_fields(req, body)
    outcome = app.coordinator(req.params["session"], worker).create_or_update_lease_for_work_item(
        req.params["work_item_id"], duration
    )
    # Both outcomes are 200: an AlreadyCompleted body says {"already_completed": true, ...}.
    return 200, outcome.to_dict()


def _progress(body: dict[str, Any]) -> dict[str, Any]:
    """The optional ``progress`` object of a renewal or a completion, its fields checked by name."""
    progress = body.get("progress")
    if progress is None:
        return {}
    if not isinstance(progress, dict):
        raise ValidationError("progress", f"must be an object, not {_json_type(progress)}")
    unknown = sorted(set(progress) - {"documents_processed", "bytes_processed"})
    if unknown:
        raise ValidationError(f"progress.{unknown[0]}", "is not a progress field")
    return progress


def renew_lease(app: App, req: Request) -> Response:
    body = req.obj(("worker_id", "progress", "lease_epoch", "lease_duration_seconds"))
    progress = _progress(body)
    item = app.coordinator(req.params["session"], _worker(body.get("worker_id"))).update_progress_and_renew_lease(
        req.params["work_item_id"],
        progress.get("documents_processed"),
        progress.get("bytes_processed"),
        lease_duration=_seconds(body.get("lease_duration_seconds")),
        lease_epoch=body.get("lease_epoch"),
    )
    return 200, item.to_dict()


def complete(app: App, req: Request) -> Response:
    # The Java client's body is the bare worker id as a JSON string: "worker-001".
    body = req.body()
    if body is None:
        raise ValidationError("worker_id", 'is required (send the worker id as a JSON string, e.g. "worker-001")')
    fields = {"worker_id": body} if isinstance(body, str) else req.obj(("worker_id", "lease_epoch", "progress"))
    progress = _progress(fields)
    item = app.coordinator(req.params["session"], _worker(fields.get("worker_id"))).complete_work_item(
        req.params["work_item_id"],
        lease_epoch=fields.get("lease_epoch"),
        documents_processed=progress.get("documents_processed"),
        bytes_processed=progress.get("bytes_processed"),
    )
    return 200, item.to_dict()


def complete_and_acquire(app: App, req: Request) -> Response:
    body = req.obj(("worker_id", "lease_epoch", "lease_duration_seconds", "progress"))
    progress = _progress(body)
    done, outcome = app.coordinator(req.params["session"], _worker(body.get("worker_id"))).complete_and_acquire_next(
        req.params["work_item_id"],
        _seconds(body.get("lease_duration_seconds")) or DEFAULT_LEASE_DURATION,
        lease_epoch=body.get("lease_epoch"),
        documents_processed=progress.get("documents_processed"),
        bytes_processed=progress.get("bytes_processed"),
    )
    # 200 either way: "next" is a lease, or the no-work body acquire would send with its 404.
    return 200, {"completed": done.to_dict(), "next": outcome.to_dict()}


def release(app: App, req: Request) -> Response:
    body = req.obj(("worker_id", "lease_epoch"))
    coord = app.coordinator(req.params["session"], _worker(body.get("worker_id")))
    released = coord.release_work_item(req.params["work_item_id"], lease_epoch=body.get("lease_epoch"))
    return 200, {"work_item_id": req.params["work_item_id"], "released": released}


def fail(app: App, req: Request) -> Response:
    body = req.obj(("worker_id", "error", "lease_epoch"))
    if body.get("error") is None:
        raise ValidationError("error", "is required")
    item = app.coordinator(req.params["session"], _worker(body.get("worker_id"))).fail_work_item(
        req.params["work_item_id"], body["error"], lease_epoch=body.get("lease_epoch")
    )
    return 200, item.to_dict()


def retry(app: App, req: Request) -> Response:
    req.obj((), required=False)
    return 200, app.coordinator(req.params["session"]).retry_work_item(req.params["work_item_id"]).to_dict()


def successors(app: App, req: Request) -> Response:
    body = req.obj(("worker_id", "successor_work_item_ids", "lease_epoch"))
    ids = body.get("successor_work_item_ids")
    if not isinstance(ids, list):
        raise ValidationError("successor_work_item_ids", f"must be an array of work item ids, not {_json_type(ids)}")
    coord = app.coordinator(req.params["session"], _worker(body.get("worker_id")))
    item = coord.create_successor_work_items_and_mark_complete(
        req.params["work_item_id"], ids, lease_epoch=body.get("lease_epoch")
    )
    return 200, item.to_dict()




def split(app: App, req: Request) -> Response:
    body = req.obj(("worker_id", "at", "lease_epoch"))
    coord = app.coordinator(req.params["session"], _worker(body.get("worker_id")))
    kept, new = coord.split_work_item(req.params["work_item_id"], body.get("at"), lease_epoch=body.get("lease_epoch"))
    return 200, {"kept": kept.to_dict(), "new": new.to_dict()}


def coverage(app: App, req: Request) -> Response:
    # 200 whether or not the audit is ok: the verdict is the body's "ok".
    return 200, app.coordinator(req.params["session"]).verify_coverage().to_dict()
