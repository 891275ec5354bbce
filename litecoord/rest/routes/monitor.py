"""Routes for watching a backfill.

Health, the status page and its assets, metrics, the page's data requests,
the OpenAPI document.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ... import monitor
from ... import validation as check
from ...backends.sqlite.store import Store
from ...errors import (
    DatabaseUnavailableError,
    LitecoordError,
    ValidationError,
)
from ...types import format_time
from .. import ui
from ..request import (
    HttpError,
    RawBody,
    Request,
    Response,
    _query_seconds,
)

if TYPE_CHECKING:
    from ..wsgi import App

logger = logging.getLogger("litecoord.rest.wsgi")


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
    from ... import __version__

    return 200, {"status": "ok", "version": __version__, "token_required": app.token_required}


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
    from ...metrics import CONTENT_TYPE

    return 200, RawBody(app.metrics.render(), CONTENT_TYPE)


def _query_limit(req: Request) -> int:
    text = req.query.get("limit", "50")
    if not (text.isascii() and text.isdigit()):
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
        indexes=lambda status: app.index_cache.lookup(coord, app, monitor.index_version(status), status.as_of),
        samples_after=req.query.get("samples_after"),
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


def session_summaries(app: App, req: Request) -> Response:
    """Every session's status and flag counts (the page's session list): a status read and the leases per session."""
    sessions = []
    as_of = None
    for info in app.root.list_sessions():
        coord = app.coordinator(info.session_name)
        status = coord.status()
        as_of = status.as_of
        assert as_of is not None
        sessions.append(
            {
                "session_name": info.session_name,
                "status": status.to_dict(),
                "counts": monitor.attention_counts(coord, as_of, app.stall_after),
            }
        )
    return 200, {"as_of": format_time(as_of), "sessions": sessions}


def find_items(app: App, req: Request) -> Response:
    """One page of items by filter and sort (``list_work_items_page``), with flags and ages as in the overview."""
    descending = req.query.get("descending", "false")
    if descending not in ("true", "false"):
        raise ValidationError("descending", f"must be true or false (got {descending!r})")
    coord = app.coordinator(req.params["session"])
    found = coord.list_work_items_page(
        status=req.query.get("status"),
        index_name=req.query.get("index_name"),
        worker_id=req.query.get("worker_id"),
        id_contains=req.query.get("id_contains"),
        sort=req.query.get("sort", "created"),
        descending=descending == "true",
        limit=_query_limit(req),
        after=req.query.get("after"),
    )
    now = coord.status().as_of  # the server's time of the read: ages and flags are judged at it
    return 200, {
        "as_of": format_time(now),
        "items": [monitor.item_view(item, now, app.stall_after) for item in found.items],
        "total": found.total,
        "next_cursor": found.next_cursor,
    }


def openapi(app: App, req: Request) -> Response:
    return 200, app.openapi




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

