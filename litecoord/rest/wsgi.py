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

import functools
import hmac
import logging
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import IO, Any
from urllib.parse import urlsplit

from .. import monitor
from .. import validation as check
from ..backends.choose import open_coordinator, redact
from ..backends.sqlite.coordinator import SqliteCoordinator
from ..backends.sqlite.store import Store
from ..errors import (
    AuthenticationError,
    LitecoordError,
    ValidationError,
)
from ..types import Clock, FakeClock
from . import encoding
from .access_log import AccessLog
from .openapi import openapi_document
from .request import HttpError, RawBody, Request, Response, _query, too_large
from .router import Route, RouteIndex, Segments, _path_segments, index_routes, match
from .routes import BASE_PATH, INDEX, RESERVED_ITEM_IDS, ROUTES
from .routes.monitor import _metrics_available

__all__ = ["create_app", "App", "Route", "ROUTES", "HttpError", "RawBody", "BASE_PATH", "RESERVED_ITEM_IDS"]

logger = logging.getLogger("litecoord.rest.wsgi")

StartResponse = Callable[..., Any]


# -- the application -------------------------------------------------------------------

_REASONS = {
    204: "No Content",
    200: "OK",
    201: "Created",
    304: "Not Modified",
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

#: Where handle() leaves the parsed request for the access log (__call__ takes it back out).
_REQUEST_KEY = "litecoord.request"


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
        self._access = None if access_log is None else AccessLog(access_log)
        self.stall_after = check.duration(stall_after, "stall_after")
        #: The page's per-index aggregates, recomputed every few seconds at most (they scan the session).
        self.index_cache = monitor.IndexCache()
        self._metrics: Any = None
        #: The clock ``/_test/clock`` moves; only then do those routes exist (see :mod:`.testclock`).
        self.test_clock = test_clock
        self._index: RouteIndex = INDEX
        if test_clock is not None:
            from . import testclock

            if not isinstance(test_clock, FakeClock):
                raise ValidationError("test_clock", "must be a litecoord.FakeClock")
            self._index = index_routes(ROUTES + testclock.routes())
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
        # A hit takes no lock (each request makes one; see AccessLog for why): get and
        # move_to_end are each atomic, and an entry evicted in between is still a valid coordinator.
        coord = self._bound.get(key)
        if coord is not None:
            try:
                self._bound.move_to_end(key)
            except KeyError:
                pass
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

    @property
    def token_required(self) -> bool:
        """Whether requests other than ``/health`` and the page need the bearer token."""
        return self._token is not None

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
            raise too_large(self.max_body_bytes)  # refuse before routing or reading
        _check_json_body(environ, length)
        segments = _path_segments(environ)
        if method == "HEAD" or method == "OPTIONS":
            if method == "OPTIONS":
                return 204, RawBody(b"", "", (("Allow", ", ".join(self._allowed(segments))),))
            method = "GET"  # HEAD: GET's answer without its body (__call__ drops it)
            route, params = match(method, segments, self._index)
            if route.writes:  # HEAD is safe: it must not lease
                allow = [m for m in self._allowed(segments) if m != "HEAD"]
                detail = f"HEAD is not allowed here (it would lease); use {', '.join(allow)}"
                raise HttpError(405, "method_not_allowed", detail, allow=allow)
        else:
            route, params = match(method, segments, self._index)
        if route.writes and self._token is None:
            _check_cross_site(environ)
        environ["litecoord.route"] = route.template
        environ["litecoord.writes"] = route.writes
        request = Request(method, params, _query(environ), environ, self.max_body_bytes)
        if self.access_log is not None:
            environ[_REQUEST_KEY] = request  # for the access log's worker id
        return route.handler(self, request)

    def _allowed(self, segments: Segments) -> list[str]:
        """The methods the path accepts (404 if none): its routes', HEAD beside a GET that
        writes nothing, and OPTIONS."""
        try:
            match("OPTIONS", segments, self._index)  # no route has OPTIONS: the 405 lists the path's methods
        except HttpError as exc:
            if exc.http_status != 405:
                raise
            methods = list(exc.context["allow"])
        if "GET" in methods and not match("GET", segments, self._index)[0].writes:
            methods.append("HEAD")
        return [*methods, "OPTIONS"]

    def flush_access_log(self) -> None:
        """Write the access-log lines still queued (a server that stops calls it)."""
        if self._access is not None:
            self._access.flush()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        started = time.perf_counter()
        access = self._access
        if access is not None:
            access.begin()  # counted in flight: a request alone writes its line at once
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
            data = encoding.json_bytes(body) + b"\n"
            content_type = "application/json"
        status, data = encoding.finish(environ, status, body, data, headers)
        if status != 304:  # a 304 has no body, so no type or length of one
            if content_type:
                headers.append(("Content-Type", content_type))
            headers.append(("Content-Length", str(len(data))))
        if (environ.get("REQUEST_METHOD") or "").upper() == "HEAD":
            data = b""  # the headers GET would send (its Content-Length too), no body
        seconds = time.perf_counter() - started
        metrics = self._metrics
        if metrics is not None or _metrics_available():
            (metrics or self.metrics).observe(environ.get("litecoord.route") or _route_label(environ), status, seconds)
        start_response(_STATUS_LINES.get(status) or f"{status} Error", headers)
        # Taken back out of the environ: the request refers to the environ, and a cycle
        # left behind would keep both (and the body) for the garbage collector to find.
        request = environ.pop(_REQUEST_KEY, None)
        if access is not None:
            access.log(environ, request, status, seconds)
        return [data]


#: Status lines, built once.
_STATUS_LINES = {status: f"{status} {reason}" for status, reason in _REASONS.items()}


def _route_label(environ: dict[str, Any]) -> str:
    """The route template for the metrics, also for requests refused before routing (a 401)."""
    label = environ.get("litecoord.route")
    if label is None:
        try:
            label = match((environ.get("REQUEST_METHOD") or "GET").upper(), _path_segments(environ), INDEX)[0].template
        except LitecoordError:
            # Unknown paths share one label, so scanners cannot grow the series without bound.
            label = "unmatched"
    return label



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
    if host is not None and not _is_loopback_host_header(host):
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


@functools.lru_cache(maxsize=256)
def _is_loopback_host_header(value: str) -> bool:
    """Whether a ``Host`` header names this machine (cached: every request of a tokenless server asks)."""
    return check.is_loopback_host(check.host_header_name(value))


#: Sec-Fetch-Site values of requests a browser did not send on another site's behalf.
_SAME_ORIGIN_FETCH = frozenset({"same-origin", "none"})


def _check_cross_site(environ: Mapping[str, Any]) -> None:
    """Refuse a request that changes something when a browser marks it cross-site (a tokenless server).

    Without a token nothing else stops a page the operator visits: ``GET
    …/acquire`` needs no preflight (an ``<img src>`` sends it, without an
    ``Origin``), and a page on another port of this machine is another origin.
    Browsers mark such requests ``Sec-Fetch-Site: cross-site`` (or ``same-site``)
    and send their ``Origin`` on every other method; same-origin means scheme,
    host and port equal to this server's (as the request reached it). Curl,
    the Java client and the HTTP client send neither header and are never
    refused here. With a token, the ``Authorization`` header cannot be sent
    cross-site without a preflight, which this server never answers.
    """
    fetch_site = environ.get("HTTP_SEC_FETCH_SITE")
    if fetch_site is not None and fetch_site.strip().lower() not in _SAME_ORIGIN_FETCH:
        raise HttpError(
            403,
            "forbidden_cross_site",
            f"a browser sent this request for another site (Sec-Fetch-Site: {fetch_site}); "
            "only this server's own page may change work without a token",
        )
    origin = environ.get("HTTP_ORIGIN")
    if origin is not None and not _is_own_origin(environ, origin):
        raise HttpError(
            403,
            "forbidden_cross_site",
            f"cross-origin requests that change work are refused (Origin {origin!r} is not "
            f"{_own_origin(environ)!r}); only this server's own page may change work without a token",
        )


def _own_origin(environ: Mapping[str, Any]) -> str:
    """scheme://host[:port] of this server as the request reached it (its Host header)."""
    scheme = environ.get("wsgi.url_scheme") or "http"
    host = environ.get("HTTP_HOST")
    if not host:
        host = environ.get("SERVER_NAME") or ""
        port = environ.get("SERVER_PORT") or ""
        if port and port != {"http": "80", "https": "443"}.get(scheme):
            host = f"{host}:{port}"
    return f"{scheme}://{host}"


def _is_own_origin(environ: Mapping[str, Any], origin: str) -> bool:
    own = _own_origin(environ)
    if origin == own:
        return True  # what the server's own page sends: one comparison
    # Spelled differently but maybe the same (case, an explicit default port): compare the parts.
    try:
        given, mine = urlsplit(origin.strip()), urlsplit(own)
        defaults = {"http": 80, "https": 443}
        return (
            bool(given.hostname)
            and not given.path.strip("/")
            and (given.scheme.lower(), given.hostname, given.port or defaults.get(given.scheme.lower()))
            == (mine.scheme.lower(), mine.hostname, mine.port or defaults.get(mine.scheme.lower()))
        )
    except ValueError:  # a port out of range, a malformed IPv6 literal: not this server
        return False


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
    ``sys.stderr``) gets one line per request (see :mod:`litecoord.rest.access_log`).
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
