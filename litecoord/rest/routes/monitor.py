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

