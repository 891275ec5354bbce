"""Routes of the operator's console: an item's history, the workers, failure groups and their bulk retry, pause.

Every body is the ``to_dict()`` of what the coordinator returns, so the page,
the CLI over HTTP and :class:`~litecoord.backends.http.HttpCoordinator` read
the same shapes as Python callers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...errors import ValidationError
from ..request import Request, Response, _json_type

if TYPE_CHECKING:
    from ..wsgi import App


def history(app: App, req: Request) -> Response:
    work_item_id = req.params["work_item_id"]
    attempts = app.coordinator(req.params["session"]).work_item_history(work_item_id)
    return 200, {"work_item_id": work_item_id, "attempts": [a.to_dict() for a in attempts]}


def workers(app: App, req: Request) -> Response:
    return 200, {"workers": [w.to_dict() for w in app.coordinator(req.params["session"]).list_workers()]}


def failures(app: App, req: Request) -> Response:
    groups = app.coordinator(req.params["session"]).failure_groups()
    return 200, {
        "groups": [g.to_dict() for g in groups],
        "failed": sum(g.failed for g in groups),
        "retrying": sum(g.retrying for g in groups),
    }


def retry_failures(app: App, req: Request) -> Response:
    # No body, or {}: every failed item; {"error_pattern": P}: the failed items of that group.
    body = req.obj(("error_pattern",), required=False)
    pattern = body.get("error_pattern")
    if pattern is not None and not isinstance(pattern, str):
        raise ValidationError("error_pattern", f"must be a string, not {_json_type(pattern)}")
    retried = app.coordinator(req.params["session"]).retry_failed_work_items(pattern)
    return 200, {"retried": len(retried), "work_item_ids": retried}


def _paused(app: App, req: Request) -> Response:
    status = app.coordinator(req.params["session"]).status().to_dict()
    return 200, {key: status[key] for key in ("session_name", "paused", "paused_at")}


def pause(app: App, req: Request) -> Response:
    req.obj((), required=False)
    app.coordinator(req.params["session"]).pause()
    return _paused(app, req)


def resume(app: App, req: Request) -> Response:
    req.obj((), required=False)
    app.coordinator(req.params["session"]).resume()
    return _paused(app, req)
