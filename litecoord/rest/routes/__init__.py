"""The route table: every (method, path template) the REST API serves and its handler, one module per concern."""

from __future__ import annotations

from ..router import Route, _template_segments, index_routes
from .console import failures, history, pause, resume, retry_failures, workers
from .items import (
    acquire,
    cleanup_expired,
    complete,
    complete_and_acquire,
    coverage,
    create_batch,
    create_item,
    delete_items,
    fail,
    get_item,
    lease_item,
    list_items,
    release,
    renew_lease,
    retry,
    split,
    status,
    successors,
)
from .monitor import (
    attention,
    find_items,
    health,
    index_progress,
    metrics,
    openapi,
    overview,
    page,
    page_asset,
    progress_samples,
    session_summaries,
)
from .sessions import list_sessions, setup_session

__all__ = ["BASE_PATH", "BACKFILL_PATH", "ROUTES", "RESERVED_ITEM_IDS", "INDEX"]

BASE_PATH = "/sessions/{session}/backfill/work-items"
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
    Route("GET", "/sessions/summary", session_summaries),
    Route("PUT", "/sessions/{session}", setup_session),
    Route("POST", BASE_PATH + "/", create_item),
    Route("GET", BASE_PATH + "/", list_items),
    Route("DELETE", BASE_PATH + "/", delete_items),
    Route("POST", BASE_PATH + "/batch", create_batch),
    Route("GET", BASE_PATH + "/acquire", acquire, writes=True),  # it leases: an <img src> must not
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
    Route("GET", _ITEM + "/history", history),
    Route("POST", _ITEM + "/split", split),
    Route("GET", BACKFILL_PATH + "/overview", overview),
    Route("GET", BACKFILL_PATH + "/indexes", index_progress),
    Route("GET", BACKFILL_PATH + "/samples", progress_samples),
    Route("GET", BACKFILL_PATH + "/attention", attention),
    Route("GET", BACKFILL_PATH + "/workers", workers),
    Route("GET", BACKFILL_PATH + "/failures", failures),
    Route("POST", BACKFILL_PATH + "/failures/retry", retry_failures),
    Route("POST", BACKFILL_PATH + "/pause", pause),
    Route("POST", BACKFILL_PATH + "/resume", resume),
    Route("GET", BACKFILL_PATH + "/coverage", coverage),
    Route("GET", BACKFILL_PATH + "/items", find_items),
)

#: Item ids that collide with a literal route in ``GET …/{id}``; clients escape them.
RESERVED_ITEM_IDS = frozenset(
    r.segments[len(_template_segments(BASE_PATH))]
    for r in ROUTES
    if len(r.segments) == len(_template_segments(BASE_PATH)) + 1 and "{" not in r.segments[-1]
)

#: :data:`ROUTES` by segment count, for :func:`~litecoord.rest.router.match`.
INDEX = index_routes(ROUTES)
