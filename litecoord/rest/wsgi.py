"""The console REST API as a WSGI application: :func:`create_app`.

The app is a thin layer over a database coordinator
(:class:`~litecoord.backends.sqlite.SqliteCoordinator` or
:class:`~litecoord.backends.postgres.PostgresCoordinator`):
a hand-written route table, handlers that parse the request, call one
coordinator method and serialize the result, and one place
(:meth:`App.__call__`) that turns every :class:`~litecoord.errors.LitecoordError`
into a JSON ``{"detail": ..., "code": ...}`` response with the error's
``http_status``. Anything else is logged and answered with a JSON 500,
never a traceback.

Routes (all JSON; the work-item routes live under
``/sessions/{session}/backfill/work-items``, written ``…`` below):

=======  ==============================  =====================================
method   path                            coordinator call
=======  ==============================  =====================================
GET      /health                         (no auth) the database answers
GET      /                               (no auth) the status page (``?session=NAME``: one session)
GET      /ui/{asset}                     (no auth) the page's script and style sheet
GET      /metrics                        Prometheus metrics (:mod:`litecoord.metrics`)
GET      /openapi.json                   the OpenAPI document
GET      /sessions/                      list_sessions
PUT      /sessions/{session}             setup (lease_mode, acquire_order, ...)
POST     …/                              create one item (201; 409 if it exists)
GET      …/                              list_work_items (``?status=``)
DELETE   …/                              delete_session
POST     …/batch                         create_work_items (201, new ones only)
GET/POST …/acquire?worker_id=W           acquire_next_work_item (404: no work)
GET      …/status                        status
POST     …/cleanup-expired               cleanup_expired
GET      …/{id}                          get_work_item
POST     …/{id}/acquire                  create_or_update_lease_for_work_item
PUT      …/{id}/lease                    update_progress_and_renew_lease
PUT      …/{id}/complete                 complete_work_item (body: "worker-id")
POST     …/{id}/complete-and-acquire     complete_and_acquire_next (one transaction)
POST     …/{id}/release                  release_work_item
POST     …/{id}/fail                     fail_work_item
POST     …/{id}/retry                    retry_work_item
POST     …/{id}/successors               create_successor_work_items_and_mark_complete
GET      /sessions/{s}/backfill/overview  the page's data (:func:`litecoord.monitor.overview`)
GET      /sessions/{s}/backfill/indexes   index_progress
GET      /sessions/{s}/backfill/samples   progress_samples
GET      /sessions/{s}/backfill/attention list_attention_items (``?kind=&limit=&after=``)
=======  ==============================  =====================================

The monitoring routes live beside ``work-items``, not under it, so they
take no name an item could have.
An app built with ``test_clock=True`` also serves ``GET``/``POST /_test/clock``
(:mod:`.testclock`); no other app has those routes.

Path segments are matched on the raw request URI when the server provides
it (waitress: ``REQUEST_URI``; gunicorn: ``RAW_URI``), because WSGI's
``PATH_INFO`` is already percent-decoded and an id containing ``%2F`` would
otherwise split into two segments. A literal route segment matches only its
unescaped spelling, so an item literally named ``status`` is reachable as
``…/%73tatus`` (the HTTP client does this for you).
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import IO, Any
from urllib.parse import parse_qs, unquote_to_bytes, urlsplit

from .. import monitor
from .. import validation as check
from ..backends.choose import open_coordinator, redact
from ..backends.sqlite.coordinator import SqliteCoordinator
from ..backends.sqlite.store import Store
from ..errors import (
    AuthenticationError,
    DatabaseUnavailableError,
    LitecoordError,
    ValidationError,
    WorkItemExistsError,
)
from ..protocol import DEFAULT_LEASE_DURATION
from ..types import Clock, FakeClock, NoAvailableWorkToBeDone
from . import ui
from .openapi import openapi_document

__all__ = ["create_app", "App", "Route", "ROUTES", "HttpError", "RawBody", "BASE_PATH", "RESERVED_ITEM_IDS"]

logger = logging.getLogger("litecoord.rest.wsgi")

BASE_PATH = "/sessions/{session}/backfill/work-items"

StartResponse = Callable[..., Any]
Response = tuple[int, Any]


class HttpError(LitecoordError):
    """A protocol-level error of the REST layer (malformed JSON, unknown route,
    wrong method, body too large): same JSON shape, per-instance status."""

    def __init__(self, http_status: int, code: str, detail: str, **context: Any) -> None:
        super().__init__(detail, **context)
        self.http_status = http_status
        self.code = code


@dataclass(frozen=True)
class RawBody:
    """A response body sent as it is (the page, its assets, the metrics), not as JSON."""

    data: bytes
    content_type: str
    headers: tuple[tuple[str, str], ...] = ()


# -- requests ---------------------------------------------------------------------

_NO_BODY = object()


@dataclass
class Request:
    """What a handler sees: the bound path parameters, the query and a lazily parsed body."""

    method: str
    params: dict[str, str]
    query: dict[str, str]
    environ: dict[str, Any]
    max_body_bytes: int
    _body: Any = field(default=_NO_BODY, repr=False)

    def body(self) -> Any:
        """The JSON body, or ``None`` when there is none (GET with a JSON content type, empty POST)."""
        if self._body is _NO_BODY:
            self._body = _parse_json(_read_body(self.environ, self.max_body_bytes))
        return self._body

    def obj(self, allowed: Iterable[str], *, required: bool = True) -> dict[str, Any]:
        """The body as an object with only ``allowed`` keys (``{}`` when absent and not required)."""
        data = self.body()
        if data is None:
            if required:
                raise ValidationError("body", "a JSON object is required")
            return {}
        if not isinstance(data, dict):
            raise ValidationError("body", f"must be a JSON object, not {_json_type(data)}")
        allowed = tuple(allowed)
        unknown = sorted(set(data) - set(allowed))
        if unknown:
            raise ValidationError(unknown[0], f"is not a known field here (expected one of {', '.join(allowed)})")
        return data


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "array", dict: "object"}.get(
        type(value), type(value).__name__
    )


def _read_body(environ: Mapping[str, Any], limit: int) -> bytes:
    length_text = (environ.get("CONTENT_LENGTH") or "").strip()
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    if length_text:
        try:
            length = int(length_text)
        except ValueError:
            raise HttpError(400, "bad_request", f"Content-Length is not a number: {length_text!r}") from None
        if length < 0:
            raise HttpError(400, "bad_request", "Content-Length is negative")
        if length > limit:
            raise _too_large(limit)
        return stream.read(length) if length else b""
    if environ.get("wsgi.input_terminated"):
        # Chunked upload: the server delivers EOF, so read one byte past the limit to detect excess.
        data = stream.read(limit + 1)
        if len(data) > limit:
            raise _too_large(limit)
        return data
    return b""  # no length and no EOF guarantee: WSGI says there is no body


def _too_large(limit: int) -> HttpError:
    return HttpError(413, "payload_too_large", f"request body exceeds {limit} bytes", max_body_bytes=limit)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# Built once: json.loads() with any keyword builds a new decoder per call (about
# half the cost of parsing a small body).
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _parse_json(raw: bytes) -> Any:
    if not raw.strip():
        return None
    try:
        return _DECODER.decode(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise HttpError(400, "malformed_json", f"request body is not UTF-8: {exc.reason}") from None
    except (ValueError, RecursionError) as exc:
        raise HttpError(400, "malformed_json", f"request body is not valid JSON: {exc}") from None


# -- body fields ------------------------------------------------------------------


def _worker(value: Any) -> str:
    if value is None:
        raise ValidationError("worker_id", "is required")
    return check.worker_id(value)


def _seconds(value: Any, field: str = "lease_duration_seconds") -> timedelta | None:
    """A lease duration from a JSON number of seconds (``None`` when absent)."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return check.duration(value, field)
    raise ValidationError(field, f"must be a number of seconds, not {_json_type(value)}")


def _query_seconds(text: str, field: str = "lease_duration_seconds") -> timedelta:
    """A lease duration from query-string text such as ``300`` or ``90.5``."""
    try:
        value: float = float(text) if any(c in text for c in ".eEnN") else int(text)
    except ValueError:
        raise ValidationError(field, f"must be a number of seconds (got {text!r})") from None
    return check.duration(value, field)


def _lease_fields(req: Request, body: Mapping[str, Any]) -> tuple[str, timedelta]:
    """worker_id and lease_duration_seconds from the query (Java client) or else the JSON body."""
    worker = _worker(req.query.get("worker_id", body.get("worker_id")))
    if "lease_duration_seconds" in req.query:
        return worker, _query_seconds(req.query["lease_duration_seconds"])
    return worker, _seconds(body.get("lease_duration_seconds")) or DEFAULT_LEASE_DURATION


# -- handlers: parse, call, serialize ------------------------------------------------


def health(app: App, req: Request) -> Response:
    store = app.root.store
    try:
        if isinstance(store, Store):
            store.read(lambda conn: conn.execute("SELECT 1").fetchone())
        else:
            store.ping()
    except LitecoordError as exc:
        # /health needs no token: its answer must not name the database's path (or its
        # server), so the reason goes to the server's log only.
        logger.error("health check failed: %s", exc.detail)
        raise DatabaseUnavailableError("the database cannot be read (the server's log says why)") from None
    from .. import __version__

    return 200, {"status": "ok", "version": __version__}


def page(app: App, req: Request) -> Response:
    return 200, RawBody(ui.asset("index.html"), "text/html; charset=utf-8", ui.PAGE_HEADERS)


def page_asset(app: App, req: Request) -> Response:
    name = req.params["asset"]
    if name not in ui.ASSETS:
        raise HttpError(404, "not_found", f"no such asset: {name!r}")
    return 200, RawBody(ui.asset(name), ui.ASSETS[name], ui.ASSET_HEADERS)


def metrics(app: App, req: Request) -> Response:
    if not _metrics_available():
        raise HttpError(
            501, "not_implemented", "metrics need prometheus_client: pip install 'litecoord[server]'"
        )
    from ..metrics import CONTENT_TYPE

    return 200, RawBody(app.metrics.render(), CONTENT_TYPE)


def _query_limit(req: Request) -> int:
    text = req.query.get("limit", "50")
    if not text.isdigit():
        raise ValidationError("limit", f"must be a whole number (got {text!r})")
    return check.page_limit(int(text))


def overview(app: App, req: Request) -> Response:
    stall = req.query.get("stall_after_seconds")
    stall_after = app.stall_after if stall is None else _query_seconds(stall, "stall_after_seconds")
    coord = app.coordinator(req.params["session"])
    return 200, monitor.overview(
        coord,
        limit=_query_limit(req),
        leased_after=req.query.get("leased_after"),
        failed_after=req.query.get("failed_after"),
        stall_after=stall_after,
        indexes=lambda: app.index_cache.get(coord, app),
    )


def index_progress(app: App, req: Request) -> Response:
    return 200, [i.to_dict() for i in app.coordinator(req.params["session"]).index_progress()]


def progress_samples(app: App, req: Request) -> Response:
    return 200, [s.to_dict() for s in app.coordinator(req.params["session"]).progress_samples()]


def attention(app: App, req: Request) -> Response:
    if "kind" not in req.query:
        raise ValidationError("kind", "is required (leased or failed)")
    page = app.coordinator(req.params["session"]).list_attention_items(
        req.query["kind"], limit=_query_limit(req), after=req.query.get("after")
    )
    return 200, page.to_dict()


def openapi(app: App, req: Request) -> Response:
    return 200, app.openapi


def list_sessions(app: App, req: Request) -> Response:
    return 200, [s.to_dict() for s in app.root.list_sessions()]


def setup_session(app: App, req: Request) -> Response:
    body = req.obj(
        ("lease_mode", "acquire_order", "max_attempts", "retry_delay_seconds", "max_retry_delay_seconds"),
        required=False,
    )
    delays = {
        name: None if body.get(f"{name}_seconds") is None else check.delay(body[f"{name}_seconds"], f"{name}_seconds")
        for name in ("retry_delay", "max_retry_delay")
    }
    coord = app.coordinator(req.params["session"])
    coord.setup(
        lease_mode=body.get("lease_mode"),
        acquire_order=body.get("acquire_order"),
        max_attempts=body.get("max_attempts"),
        **delays,
    )
    info = next(s for s in coord.list_sessions() if s.session_name == coord.session)
    return 200, info.to_dict()


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


def status(app: App, req: Request) -> Response:
    return 200, app.coordinator(req.params["session"]).status().to_dict()


def cleanup_expired(app: App, req: Request) -> Response:
    coord = app.coordinator(req.params["session"])
    return 200, {"session_name": coord.session, "cleaned": coord.cleanup_expired()}


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


def renew_lease(app: App, req: Request) -> Response:
    body = req.obj(("worker_id", "progress", "lease_epoch", "lease_duration_seconds"))
    progress = body.get("progress")
    if progress is None:
        progress = {}
    elif not isinstance(progress, dict):
        raise ValidationError("progress", f"must be an object, not {_json_type(progress)}")
    unknown = sorted(set(progress) - {"documents_processed", "bytes_processed"})
    if unknown:
        raise ValidationError(f"progress.{unknown[0]}", "is not a progress field")
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
    fields = {"worker_id": body} if isinstance(body, str) else req.obj(("worker_id", "lease_epoch"))
    item = app.coordinator(req.params["session"], _worker(fields.get("worker_id"))).complete_work_item(
        req.params["work_item_id"], lease_epoch=fields.get("lease_epoch")
    )
    return 200, item.to_dict()


def complete_and_acquire(app: App, req: Request) -> Response:
    body = req.obj(("worker_id", "lease_epoch", "lease_duration_seconds"))
    done, outcome = app.coordinator(req.params["session"], _worker(body.get("worker_id"))).complete_and_acquire_next(
        req.params["work_item_id"],
        _seconds(body.get("lease_duration_seconds")) or DEFAULT_LEASE_DURATION,
        lease_epoch=body.get("lease_epoch"),
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


# -- the route table -----------------------------------------------------------------

Handler = Callable[["App", Request], Response]


@dataclass(frozen=True)
class Route:
    """One (method, path template) pair. ``{name}`` segments capture one decoded path segment."""

    method: str
    template: str
    handler: Handler

    @property
    def segments(self) -> tuple[str, ...]:
        return _template_segments(self.template)


def _template_segments(template: str) -> tuple[str, ...]:
    return tuple(s for s in template.strip("/").split("/") if s)


_ITEM = BASE_PATH + "/{work_item_id}"
BACKFILL_PATH = "/sessions/{session}/backfill"

#: Literal routes come before ``{work_item_id}`` ones, so ``GET …/status`` is the summary.
ROUTES: tuple[Route, ...] = (
    Route("GET", "/health", health),
    Route("GET", "/", page),
    Route("GET", "/ui/{asset}", page_asset),
    Route("GET", "/metrics", metrics),
    Route("GET", "/openapi.json", openapi),
    Route("GET", "/sessions/", list_sessions),
    Route("PUT", "/sessions/{session}", setup_session),
    Route("POST", BASE_PATH + "/", create_item),
    Route("GET", BASE_PATH + "/", list_items),
    Route("DELETE", BASE_PATH + "/", delete_items),
    Route("POST", BASE_PATH + "/batch", create_batch),
    Route("GET", BASE_PATH + "/acquire", acquire),
    Route("POST", BASE_PATH + "/acquire", acquire),
    Route("GET", BASE_PATH + "/status", status),
    Route("POST", BASE_PATH + "/cleanup-expired", cleanup_expired),
    Route("GET", _ITEM, get_item),
    Route("POST", _ITEM + "/acquire", lease_item),
    Route("PUT", _ITEM + "/lease", renew_lease),
    Route("PUT", _ITEM + "/complete", complete),
    Route("POST", _ITEM + "/complete-and-acquire", complete_and_acquire),
    Route("POST", _ITEM + "/release", release),
    Route("POST", _ITEM + "/fail", fail),
    Route("POST", _ITEM + "/retry", retry),
    Route("POST", _ITEM + "/successors", successors),
    Route("GET", BACKFILL_PATH + "/overview", overview),
    Route("GET", BACKFILL_PATH + "/indexes", index_progress),
    Route("GET", BACKFILL_PATH + "/samples", progress_samples),
    Route("GET", BACKFILL_PATH + "/attention", attention),
)

#: Item ids that collide with a literal route in ``GET …/{id}``; clients escape them.
RESERVED_ITEM_IDS = frozenset(
    r.segments[len(_template_segments(BASE_PATH))]
    for r in ROUTES
    if len(r.segments) == len(_template_segments(BASE_PATH)) + 1 and "{" not in r.segments[-1]
)

RouteIndex = dict[int, list[tuple[Route, tuple[tuple[str | None, str], ...]]]]


def _index(routes: Iterable[Route]) -> RouteIndex:
    """Routes by segment count (only routes of the request's length can match it,
    and a 405 names the methods of exactly those), each pattern as
    (parameter name, or None for a literal; the literal)."""
    index: RouteIndex = {}
    for route in routes:
        pattern = tuple((s[1:-1], s) if s.startswith("{") else (None, s) for s in route.segments)
        index.setdefault(len(pattern), []).append((route, pattern))
    return index


_BY_LENGTH = _index(ROUTES)

#: Segments as (raw spelling, decoded text).
Segments = list[tuple[str, str]]


def _path_segments(environ: Mapping[str, Any]) -> Segments:
    """The request path split into segments, from the raw URI when it agrees with PATH_INFO."""
    path_info: str = environ.get("PATH_INFO") or ""
    raw_uri = environ.get("REQUEST_URI") or environ.get("RAW_URI")
    if raw_uri:
        raw_path = urlsplit(raw_uri).path if "://" in raw_uri[:10] else raw_uri.split("?", 1)[0]
        script = environ.get("SCRIPT_NAME") or ""
        if script and raw_path.startswith(script):
            raw_path = raw_path[len(script) :]
        # Trust the raw URI only if it decodes to what the server put in PATH_INFO
        # (a rewriting proxy or middleware may have changed one but not the other).
        if raw_path == path_info and "%" not in raw_path and raw_path.isascii():
            # Nothing escaped: every segment is its own text (the common case, skipped cheaply).
            return [(s, s) for s in _split(raw_path)]
        if unquote_to_bytes(raw_path) == path_info.encode("latin-1", "replace"):
            try:
                return [(s, unquote_to_bytes(s).decode("utf-8")) for s in _split(raw_path)]
            except UnicodeDecodeError:
                raise HttpError(400, "bad_request", "the request path is not UTF-8 once percent-decoded") from None
    try:
        # PEP 3333: PATH_INFO holds the decoded bytes as latin-1 text.
        return [(text, text) for text in (s.encode("latin-1").decode("utf-8") for s in _split(path_info))]
    except (UnicodeDecodeError, UnicodeEncodeError):
        raise HttpError(400, "bad_request", "the request path is not UTF-8") from None


def _split(path: str) -> list[str]:
    parts = path.split("/")
    if parts and parts[0] == "":
        parts = parts[1:]
    if parts and parts[-1] == "" and len(parts) > 1:
        parts = parts[:-1]  # one trailing slash is optional: ".../work-items/" == ".../work-items"
    return [] if parts == [""] else parts


def match(method: str, segments: Segments, index: RouteIndex | None = None) -> tuple[Route, dict[str, str]]:
    """The route for ``method`` and the path; ``HttpError`` 404 or 405 (with ``allow``) otherwise.

    ``index`` is the table to search (default: :data:`ROUTES`).
    """
    allowed: list[str] = []
    for route, pattern in (_BY_LENGTH if index is None else index).get(len(segments), ()):
        params: dict[str, str] = {}
        for (name, literal), (raw, text) in zip(pattern, segments, strict=True):
            if name is None:
                if raw != literal:
                    break
            elif not text:
                break
            else:
                params[name] = text
        else:
            if route.method == method:
                return route, params
            if route.method not in allowed:
                allowed.append(route.method)
    if allowed:
        detail = f"{method} is not allowed here; use {', '.join(allowed)}"
        raise HttpError(405, "method_not_allowed", detail, allow=allowed)
    raise HttpError(404, "not_found", "no such route; see /openapi.json")


def _query(environ: Mapping[str, Any]) -> dict[str, str]:
    text = environ.get("QUERY_STRING") or ""
    if not text:
        return {}
    try:
        raw = text.encode("latin-1").decode("utf-8")
        pairs = parse_qs(raw, keep_blank_values=True, encoding="utf-8", errors="strict")
    except (UnicodeDecodeError, UnicodeEncodeError):
        raise HttpError(400, "bad_request", "the query string is not UTF-8") from None
    except ValueError as exc:
        raise HttpError(400, "bad_request", f"malformed query string: {exc}") from None
    return {key: values[-1] for key, values in pairs.items()}


# -- the application -------------------------------------------------------------------

_REASONS = {
    200: "OK",
    201: "Created",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    403: "Forbidden",
    409: "Conflict",
    410: "Gone",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Entity",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
}

# The page and its assets hold no data (the page asks for the token and sends
# it with each data request), so they load without it.
_UNAUTHENTICATED = frozenset({"/health", ""})
_UNAUTHENTICATED_PREFIX = "/ui/"

#: Where handle() leaves the parsed request for the access log.
_REQUEST_KEY = "litecoord.request"


def _request_worker(request: Request) -> str | None:
    """The worker id a request named: in the query (Java client), else in a body already parsed."""
    worker = request.query.get("worker_id")
    if worker is None and request._body is not _NO_BODY:
        body = request._body
        if isinstance(body, dict):
            worker = body.get("worker_id")
        elif isinstance(body, str):
            worker = body  # complete's body is the bare worker id
    return worker if isinstance(worker, str) else None


def _printable(text: str) -> str:
    """Text safe on one log line: no spaces or control characters (a client chose it)."""
    if text.isprintable() and " " not in text:
        return text
    return "".join(c if c.isprintable() and c != " " else f"\\x{ord(c):02x}" for c in text)


def _database_names(root: Any) -> re.Pattern[str]:
    """What names the database's location in an error: its file; its DSN, as given and
    redacted; the DSN's hosts (whole words: a host ``db`` leaves "database" alone)."""
    store = getattr(root, "store", None)
    names = {getattr(store, "path", None)}
    words: set[str] = set()
    dsn = getattr(store, "dsn", None)
    if isinstance(dsn, str):
        names |= {dsn, redact(dsn)}
        try:
            from psycopg.conninfo import conninfo_to_dict

            params = conninfo_to_dict(dsn)
        except Exception:  # noqa: BLE001 - a DSN psycopg cannot parse never connected: no reason names a host
            params = {}
        for key in ("host", "hostaddr"):
            words |= {h for h in str(params.get(key) or "").split(",") if h}
    # Longest first: a DSN is replaced whole before a host or socket directory inside it.
    alternatives = [re.escape(n) for n in sorted((n for n in names if isinstance(n, str) and n), key=len, reverse=True)]
    alternatives += [rf"(?<![\w.-]){re.escape(w)}(?![\w-])" for w in sorted(words, key=len, reverse=True)]
    return re.compile("|".join(alternatives) or r"(?!)")


class App:
    """The WSGI callable. Request threads share only the database (its store hands each thread a connection)."""

    #: Bound coordinators kept for reuse (each caches its session's row id).
    CACHE_SIZE = 1024

    def __init__(
        self,
        root: Any,
        *,
        token: str | None = None,
        max_body_bytes: int = 1_048_576,
        access_log: IO[str] | None = None,
        stall_after: timedelta = monitor.STALL_AFTER,
        test_clock: FakeClock | None = None,
        local_only: bool = False,
    ) -> None:
        if token is not None:
            check.token(token)
        if isinstance(max_body_bytes, bool) or not isinstance(max_body_bytes, int) or max_body_bytes < 1:
            raise ValidationError("max_body_bytes", "must be a positive integer")
        self.root = root
        self._database_names = _database_names(root)
        self.max_body_bytes = max_body_bytes
        #: Accept only loopback Host (and Origin) values: what a tokenless server on
        #: loopback needs against DNS rebinding and cross-site requests from a browser.
        self.local_only = local_only
        self._token = None if token is None else token.encode("utf-8")
        self._bound: OrderedDict[tuple[str, str | None], Any] = OrderedDict()
        self._lock = threading.Lock()
        self.openapi = openapi_document()
        #: Where each request's access-log line goes (``None``: no access log).
        self.access_log = access_log
        self._log_lock = threading.Lock()
        self._stamp, self._stamp_second = "", -1
        # A line-buffered stream (stderr) flushes each line itself; anything else is flushed per line.
        self._flush_log = not getattr(access_log, "line_buffering", False)
        self.stall_after = check.duration(stall_after, "stall_after")
        #: The page's per-index aggregates, recomputed every few seconds at most (they scan the session).
        self.index_cache = monitor.IndexCache()
        self._metrics: Any = None
        #: The clock ``/_test/clock`` moves; only then do those routes exist (see :mod:`.testclock`).
        self.test_clock = test_clock
        self._index: RouteIndex | None = None
        if test_clock is not None:
            from . import testclock

            if not isinstance(test_clock, FakeClock):
                raise ValidationError("test_clock", "must be a litecoord.FakeClock")
            self._index = _index(ROUTES + testclock.routes())
            self.openapi = testclock.add_to_document(self.openapi)

    @property
    def metrics(self) -> Any:
        """The app's :class:`litecoord.metrics.ServerMetrics` (prometheus_client is imported on first use)."""
        if self._metrics is None:
            from ..metrics import ServerMetrics

            with self._lock:
                if self._metrics is None:
                    self._metrics = ServerMetrics(self.root, stall_after=self.stall_after)
        return self._metrics

    def coordinator(self, session: str, worker_id: str | None = None) -> Any:
        """A coordinator for ``session`` (and ``worker_id``) over the shared store."""
        key = (session, worker_id)
        with self._lock:
            coord = self._bound.get(key)
            if coord is not None:
                self._bound.move_to_end(key)
                return coord
        coord = self.root.bind(session=session, worker_id=worker_id)  # validates both names
        with self._lock:
            self._bound[key] = coord
            while len(self._bound) > self.CACHE_SIZE:
                self._bound.popitem(last=False)
        return coord

    def _public_body(self, exc: LitecoordError) -> dict[str, Any]:
        """The error's JSON body, without the database's location (the server's log keeps it).

        Anyone who can reach the server reads error answers (``/health`` needs no
        token): the file's absolute path or a DSN (user, host, database) would tell
        them where the data lives. The answer says ``<database>`` instead.
        """
        body = exc.to_dict()
        hidden = [key for key in ("path", "dsn") if body.pop(key, None) is not None]
        for key, value in body.items():
            if isinstance(value, str):
                body[key], count = self._database_names.subn("<database>", value)
                if count:
                    hidden.append(key)
        if hidden:
            logger.error("%s error (%s): %s", exc.code, exc.http_status, exc.detail)
        return body

    def _check_token(self, environ: Mapping[str, Any]) -> None:
        assert self._token is not None
        header = environ.get("HTTP_AUTHORIZATION") or ""
        scheme, _, given = header.partition(" ")
        # WSGI headers are latin-1 text of the raw bytes; compare bytes in constant time.
        supplied = given.strip().encode("latin-1", "replace")
        if scheme.lower() != "bearer" or not hmac.compare_digest(supplied, self._token):
            raise AuthenticationError("a valid bearer token is required (Authorization: Bearer <token>)")

    def handle(self, environ: dict[str, Any]) -> Response:
        method = (environ.get("REQUEST_METHOD") or "GET").upper()
        path_info = environ.get("PATH_INFO") or ""
        if self.local_only:
            _check_local(environ)
        if (
            self._token is not None
            and path_info.rstrip("/") not in _UNAUTHENTICATED
            and not path_info.startswith(_UNAUTHENTICATED_PREFIX)
        ):
            self._check_token(environ)
        length = (environ.get("CONTENT_LENGTH") or "").strip()
        if length.isdigit() and int(length) > self.max_body_bytes:
            raise _too_large(self.max_body_bytes)  # refuse before routing or reading
        _check_json_body(environ, length)
        route, params = match(method, _path_segments(environ), self._index)
        environ["litecoord.route"] = route.template
        request = Request(method, params, _query(environ), environ, self.max_body_bytes)
        if self.access_log is not None:
            environ[_REQUEST_KEY] = request  # for the access log's worker id
        return route.handler(self, request)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        started = time.perf_counter()
        headers: list[tuple[str, str]] = []
        try:
            status, body = self.handle(environ)
        except LitecoordError as exc:  # the one place errors become statuses
            status, body = exc.http_status, self._public_body(exc)
            if status == 405:
                headers.append(("Allow", ", ".join(exc.context.get("allow", ()))))
            elif status == 401:
                headers.append(("WWW-Authenticate", 'Bearer realm="litecoord"'))
        except Exception:
            logger.exception("unhandled error serving %s %s", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"))
            status, body = 500, {"detail": "internal server error (logged on the server)", "code": "internal_error"}
        if isinstance(body, RawBody):
            data, content_type = body.data, body.content_type
            headers += body.headers
        else:
            # Bodies end with a newline, so `curl` output and logged bodies end their line.
            data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"
            content_type = "application/json"
        headers += [("Content-Type", content_type), ("Content-Length", str(len(data)))]
        if self._metrics is not None or _metrics_available():
            self.metrics.observe(_route_label(environ), status, time.perf_counter() - started)
        start_response(f"{status} {_REASONS.get(status, 'Error')}", headers)
        if self.access_log is not None:
            self._log_access(environ, status, time.perf_counter() - started)
        return [data]

    def _log_access(self, environ: Mapping[str, Any], status: int, seconds: float) -> None:
        """One access-log line: time, client, method, path, status, duration, worker id.

        ``2025-01-19T20:30:00Z 127.0.0.1 POST /sessions/s1/backfill/work-items/acquire 200 1.2ms worker=w1``
        (``worker=-`` when the request named none). The duration is the app's
        own time (the store included), not the network's. One ``write`` per
        line under a lock, so lines of concurrent requests never interleave.
        """
        request = environ.get(_REQUEST_KEY)
        worker = _request_worker(request) if request is not None else None
        path = environ.get("REQUEST_URI") or environ.get("RAW_URI") or (environ.get("PATH_INFO") or "")
        if not environ.get("REQUEST_URI") and not environ.get("RAW_URI") and environ.get("QUERY_STRING"):
            path += "?" + environ["QUERY_STRING"]
        rest = (
            f" {environ.get('REMOTE_ADDR') or '-'} {environ.get('REQUEST_METHOD') or '-'} {_printable(path)} "
            f"{status} {seconds * 1000:.1f}ms worker={_printable(worker) if worker else '-'}\n"
        )
        second = int(time.time())
        with self._log_lock:
            if second != self._stamp_second:  # formatting the time costs more than the rest of the line
                self._stamp, self._stamp_second = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second)), second
            try:
                self.access_log.write(self._stamp + rest)  # type: ignore[union-attr]
                if self._flush_log:
                    self.access_log.flush()  # type: ignore[union-attr]
            except (OSError, ValueError):
                pass  # a closed or broken log must not fail the request it describes


def _route_label(environ: dict[str, Any]) -> str:
    """The route template for the metrics, also for requests refused before routing (a 401)."""
    label = environ.get("litecoord.route")
    if label is None:
        try:
            label = match((environ.get("REQUEST_METHOD") or "GET").upper(), _path_segments(environ))[0].template
        except LitecoordError:
            # Unknown paths share one label, so scanners cannot grow the series without bound.
            label = "unmatched"
    return label


_HAVE_METRICS: list[bool] = []


def _metrics_available() -> bool:
    """Whether prometheus_client is installed (request metrics are kept only then)."""
    if not _HAVE_METRICS:
        try:
            import prometheus_client  # noqa: F401
        except ImportError:
            _HAVE_METRICS.append(False)
        else:
            _HAVE_METRICS.append(True)
    return _HAVE_METRICS[0]


def _check_json_body(environ: Mapping[str, Any], length: str) -> None:
    """A request that carries a body must say it is JSON.

    A web page can send a cross-site "simple" request (form or text/plain
    body) without any preflight; requiring ``application/json`` makes the
    browser ask first, and this server never answers a preflight. Bodiless
    requests (the Java client's GET and empty POST) need no content type.
    """
    chunked = "chunked" in (environ.get("HTTP_TRANSFER_ENCODING") or "").lower()
    if not (chunked or (length.isdigit() and int(length) > 0)):
        return
    given = environ.get("CONTENT_TYPE") or ""
    if given.split(";", 1)[0].strip().lower() != "application/json":
        raise HttpError(
            415,
            "unsupported_media_type",
            f"a request body must be sent as Content-Type: application/json (got {given or 'none'!r})",
        )


def _check_local(environ: Mapping[str, Any]) -> None:
    """Only loopback ``Host`` and ``Origin`` values (a tokenless server on loopback: see App.local_only).

    A DNS-rebinding page reaches 127.0.0.1 under its own name, which its
    ``Host`` header carries; a cross-site page's requests carry its ``Origin``.
    Curl, the Java client and the HTTP client send ``Host: localhost:PORT`` or
    ``127.0.0.1:PORT`` and no ``Origin``.
    """
    host = environ.get("HTTP_HOST")
    if host is not None and not check.is_loopback_host(check.host_header_name(host)):
        raise HttpError(
            403,
            "forbidden_host",
            f"this server answers only to a loopback Host (localhost, 127.0.0.1, [::1]), not {host!r}; "
            "serve with --token to accept other names",
        )
    origin = environ.get("HTTP_ORIGIN")
    if origin is not None and not check.is_loopback_host(urlsplit(origin).hostname or ""):
        raise HttpError(
            403, "forbidden_origin", f"cross-site requests are refused (Origin {origin!r} is not this machine)"
        )


def create_app(
    target: Any,
    *,
    token: str | None = None,
    clock: Clock | None = None,
    max_body_bytes: int = 1_048_576,
    access_log: IO[str] | None = None,
    stall_after: timedelta = monitor.STALL_AFTER,
    test_clock: bool = False,
    local_only: bool = False,
) -> App:
    """The console REST API over one litecoord database, as a WSGI application.

    ``target`` is a SQLite path, a ``postgresql://`` URI, a SQLite
    :class:`~litecoord.backends.sqlite.store.Store`, or a coordinator
    (:class:`~litecoord.backends.sqlite.SqliteCoordinator`,
    :class:`~litecoord.backends.postgres.PostgresCoordinator`) whose store the
    app shares (``clock`` replaces its clock when given). With ``token`` every route but
    ``/health`` and the page requires ``Authorization: Bearer <token>``.
    Bodies over ``max_body_bytes`` get 413. ``access_log`` (a text stream, e.g.
    ``sys.stderr``) gets one line per request (see :meth:`App._log_access`).
    ``stall_after`` is how long an item's progress may stand still under live
    heartbeats before the page and the metrics flag it stalled. With
    ``local_only`` only loopback ``Host`` and ``Origin`` values are accepted
    (403 otherwise): ``make_server`` sets it for a tokenless loopback server.
    A request with a body must send ``Content-Type: application/json`` (415).

    With ``test_clock=True`` the app runs on a :class:`~litecoord.FakeClock`
    (``clock`` if it is one, else a new one at the current time) and serves
    ``GET``/``POST /_test/clock`` to read and move it (:mod:`.testclock`).
    For tests only: never in a normal app.

    Serving a file writes to it, so the file is checked here, as a first
    write would (created with its schema if missing): a directory, a missing
    directory or a file that is not litecoord's raises
    :class:`~litecoord.errors.NotALitecoordFileError` now, instead of every
    request answering 500.
    """
    fake: FakeClock | None = None
    if test_clock:
        from .testclock import new_test_clock

        clock = fake = new_test_clock(clock)
    if isinstance(target, Store):
        root = SqliteCoordinator(target, clock=clock)
    elif isinstance(target, (str, os.PathLike)):
        root = open_coordinator(target, clock=clock)
    else:
        root = target if clock is None else type(target)(target.store, clock=clock)
    if isinstance(root, SqliteCoordinator):
        root.store.ensure_schema()
    return App(
        root,
        token=token,
        max_body_bytes=max_body_bytes,
        access_log=access_log,
        stall_after=stall_after,
        test_clock=fake,
        local_only=local_only,
    )
