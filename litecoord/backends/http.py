"""The HTTP client backend: :class:`HttpCoordinator`, the coordinator over the console REST API.

It implements :class:`litecoord.protocol.Coordinator` against a server run
with ``litecoord serve`` (or any host of :func:`litecoord.rest.wsgi.create_app`):
the same methods, the same outcome types, and the same error classes,
rebuilt from the server's ``{"detail", "code", ...}`` bodies with
:func:`~litecoord.errors.error_from_dict`.

Inputs are checked locally with the same checks the embedded backend runs,
so a bad argument raises the same :class:`~litecoord.errors.ValidationError`
without a round trip.

Retries. A request that failed on the way (connection refused, reset,
timed out) is retried up to ``retries`` times when repeating it cannot
change its answer: acquire (the server returns the lease the worker already
holds), the named lease, renew (progress figures are absolute), complete
(idempotent for its holder), split, retry, setup and every read. Calls
whose answer would change on a repeat (create, batch create, release,
fail, cleanup, delete) are retried only when the request provably never
reached the server: the connection was refused, or a kept-alive connection
turned out to be closed before the request went out. If the server stays
unreachable, :class:`CoordinatorUnreachableError` is raised.

Several servers. ``base_url`` may name several servers over one database
(``litecoord serve --db postgresql://...`` processes are interchangeable):
a list, or one string of comma-separated URLs. A request that fails on the
way is resent to the next URL under the same rule as above (any call safe
to repeat; any call that provably never left), each URL getting ``retries``
resends, so a dead server costs one failed connection, not an error. The URL
that last answered is remembered (shared by :meth:`bind` copies) and tried
first. Failover never turns an unsafe call into a repeated one: a create
whose request may have reached a server that then died is not resent
anywhere, exactly as with one URL.

Bounds. Every wait (connect, send, each read) times out after ``timeout``
seconds, or sooner when the caller set a bound
(:func:`litecoord.backends.bounds.call_bound`: the runner passes what is left
of the lease a call protects). Failover stops when the bound runs out, and
while other servers remain to be tried one that hangs gets only half of what
is left. A call that runs out raises :class:`CoordinatorUnreachableError`.

Connections are kept alive, one per thread (and re-opened after a fork).
Only the standard library is used.
"""

from __future__ import annotations

import errno
import http.client
import io
import json
import os
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any, Protocol
from urllib.parse import quote, unquote_to_bytes, urlencode, urlsplit

from .. import validation as check
from ..coverage import CoverageReport
from ..errors import (
    CoordinatorUnreachableError,
    LitecoordError,
    ValidationError,
    WorkItemExistsError,
    error_from_dict,
)
from ..protocol import DEFAULT_LEASE_DURATION
from ..types import (
    KEEP,
    AcquisitionOutcome,
    AlreadyCompleted,
    AttentionKind,
    IndexProgress,
    Keep,
    LeaseOutcome,
    NoAvailableWorkToBeDone,
    ProgressSample,
    SessionInfo,
    WorkItem,
    WorkItemAndDuration,
    WorkItemPage,
    WorkItemStatus,
    WorkQueueStatus,
    json_seconds,
)
from . import bounds
from .common import default_worker_id, session_not_found
from .http_console import HttpConsoleCalls
from .item_search import item_query

__all__ = [
    "HttpCoordinator",
    "CoordinatorUnreachableError",
    "RequestNotSentError",
    "Transport",
    "HttpTransport",
    "WsgiTransport",
    "split_urls",
]

#: Ids that, alone in the path after ``work-items/``, would name a fixed route (see :mod:`litecoord.rest.wsgi`).
_RESERVED = frozenset({"acquire", "batch", "status", "cleanup-expired"})


class RequestNotSentError(ConnectionError):
    """Raised by a transport when the request certainly did not reach the server (safe to resend)."""


class Transport(Protocol):
    """How requests travel: ``request`` returns ``(status, body)`` or raises ``OSError``/``HTTPException``."""

    def request(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes | None
    ) -> tuple[int, bytes]: ...

    def close(self) -> None: ...


class HttpTransport:
    """HTTP/1.1 over ``http.client`` with one kept-alive connection per thread."""

    def __init__(self, base_url: str, *, timeout: float = 30.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValidationError("base_url", f"must be an http:// or https:// URL (got {base_url!r})")
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port
        self._timeout = timeout
        self._local = threading.local()
        self._pid = os.getpid()

    def _connection(self) -> http.client.HTTPConnection:
        if self._pid != os.getpid():  # forked: never share the parent's sockets
            self._local = threading.local()
            self._pid = os.getpid()
        conn = getattr(self._local, "conn", None)
        if conn is None:
            cls = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
            conn = cls(self._host, self._port, timeout=self._timeout)
            self._local.conn = conn
        return conn

    def request(self, method: str, target: str, headers: Mapping[str, str], body: bytes | None) -> tuple[int, bytes]:
        # Every wait (connect, send, each read) is bounded by the caller's bound, if shorter.
        timeout = bounds.time_left(self._timeout)
        assert timeout is not None
        if timeout <= 0:
            raise RequestNotSentError("no time left within the call's bound")
        conn = self._connection()
        conn.timeout = timeout
        reused = conn.sock is not None
        if reused:
            conn.sock.settimeout(timeout)
        try:
            conn.request(method, target, body=body, headers=dict(headers))
            response = conn.getresponse()
            data = response.read()
        except ConnectionRefusedError as exc:
            self.close()
            raise RequestNotSentError(str(exc)) from exc
        except (http.client.RemoteDisconnected, ConnectionResetError, ConnectionAbortedError, BrokenPipeError) as exc:
            self.close()
            # A kept-alive connection the server had already closed: the classic
            # keep-alive race (xmlrpc.client resends in the same case).
            if reused:
                raise RequestNotSentError(str(exc)) from exc
            raise
        except BaseException:
            self.close()
            raise
        if response.will_close:
            self.close()
        return response.status, data

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


class WsgiTransport:
    """Calls a WSGI app in-process: the whole HTTP layer without sockets (tests, fake clocks)."""

    def __init__(self, app: Any, *, host: str = "testserver") -> None:
        self.app = app
        self.host = host

    def request(self, method: str, target: str, headers: Mapping[str, str], body: bytes | None) -> tuple[int, bytes]:
        path, _, query = target.partition("?")
        environ: dict[str, Any] = {
            "REQUEST_METHOD": method,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
            "REQUEST_URI": target,
            "QUERY_STRING": query,
            "SERVER_NAME": self.host,
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body or b""),
            "wsgi.errors": io.StringIO(),
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "HTTP_HOST": self.host,
        }
        if body is not None:
            environ["CONTENT_LENGTH"] = str(len(body))
        for name, value in headers.items():
            key = name.upper().replace("-", "_")
            if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                environ[key] = value
            else:
                environ["HTTP_" + key] = value.encode("utf-8").decode("latin-1")
        status: list[str] = []

        def start_response(line: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status.append(line)
            return lambda _data: None

        chunks = self.app(environ, start_response)
        try:
            data = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        return int(status[0].split(" ", 1)[0]), data

    def close(self) -> None:
        pass


def split_urls(base_url: str | Sequence[str]) -> tuple[str, ...]:
    """The base URLs named by ``base_url``: one URL, comma-separated URLs, or a list of URLs.

    Each must be ``http://`` or ``https://`` with a host; repeats are dropped
    and trailing slashes removed. Raises ``ValidationError("base_url", ...)``.
    """
    if isinstance(base_url, str):
        urls = [part.strip() for part in base_url.split(",")]
    elif isinstance(base_url, Sequence) and not isinstance(base_url, bytes):
        urls = list(base_url)
    else:
        raise ValidationError("base_url", f"must be a URL, comma-separated URLs or a list of URLs (got {base_url!r})")
    if not urls:
        raise ValidationError("base_url", "must name at least one URL")
    result: list[str] = []
    for url in urls:
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValidationError("base_url", f"must be an http:// or https:// URL (got {url!r})")
        if url.rstrip("/") not in result:
            result.append(url.rstrip("/"))
    return tuple(result)


class _Servers:
    """The servers of one coordinator and its :meth:`~HttpCoordinator.bind` copies.

    ``current`` is the index of the server that last answered: the one tried
    first. A plain int, assigned whole, so threads can share it without a lock
    (the worst race tries a dead server once more).
    """

    def __init__(self, urls: tuple[str, ...], transports: list[Transport]) -> None:
        self.urls = urls
        self.prefixes = tuple(urlsplit(url).path.rstrip("/") for url in urls)
        self.transports = transports
        self.current = 0


def _segment(work_item_id: str) -> str:
    """The id as one path segment: every reserved character escaped, ``/`` included."""
    if work_item_id in _RESERVED or work_item_id in (".", ".."):
        # Escape the first character so the server sees data, not a fixed route or a dot segment.
        head = f"%{ord(work_item_id[0]):02X}"
        return head + quote(work_item_id[1:], safe="")
    return quote(work_item_id, safe="")


_NOT_SENT_ERRNOS = {errno.ECONNREFUSED}


class HttpCoordinator(HttpConsoleCalls):
    """Work coordination for one session through a litecoord (console API) server.

    ``HttpCoordinator("http://127.0.0.1:8000", session="s1", worker_id="w1")``;
    ``HttpCoordinator("http://a:8000,http://b:8000", ...)`` (or a list) for
    several interchangeable servers over one database, with failover.
    ``token`` is sent as ``Authorization: Bearer``. ``transport`` replaces the
    network (e.g. ``WsgiTransport(create_app(path, clock=clock))``; a list,
    one per URL, with several URLs).
    """

    def __init__(
        self,
        base_url: str | Sequence[str],
        session: str = "default",
        worker_id: str | None = None,
        *,
        token: str | None = None,
        timeout: float = 30.0,
        retries: int = 3,
        transport: Transport | Sequence[Transport] | None = None,
    ) -> None:
        self.session = check.session_name(session)
        self._worker_id = None if worker_id is None else check.worker_id(worker_id)
        urls = split_urls(base_url)
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValidationError("retries", "must be a non-negative integer")
        check.seconds("timeout", timeout)
        self.token = token
        self.timeout = float(timeout)
        self.retries = retries
        if transport is None:
            transports: list[Transport] = [HttpTransport(url, timeout=self.timeout) for url in urls]
        elif isinstance(transport, Sequence):
            transports = list(transport)
            if len(transports) != len(urls):
                raise ValidationError(
                    "transport", f"must be one transport per URL ({len(urls)}), got {len(transports)}"
                )
        else:
            if len(urls) != 1:
                raise ValidationError("transport", f"must be one transport per URL ({len(urls)}), got 1")
            transports = [transport]
        self._servers = _Servers(urls, transports)
        self._headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": "litecoord-http",
        }
        if token:
            # The server's rule: printable ASCII (a header value is bytes; http.client refuses the rest).
            self._headers["Authorization"] = f"Bearer {check.token(token)}"

    @property
    def base_urls(self) -> tuple[str, ...]:
        """Every server's base URL, in the order given."""
        return self._servers.urls

    @property
    def base_url(self) -> str:
        """The base URL of the server that last answered (the first one until then)."""
        return self._servers.urls[self._servers.current]

    @property
    def transport(self) -> Transport:
        """The transport to the server that last answered."""
        return self._servers.transports[self._servers.current]

    @transport.setter
    def transport(self, value: Transport) -> None:
        self._servers.transports[self._servers.current] = value

    # -- identity ------------------------------------------------------------------

    @property
    def worker_id(self) -> str:
        return self._worker_id or default_worker_id()

    def bind(self, session: str | None = None, worker_id: str | None = None) -> HttpCoordinator:
        """A coordinator for ``session``/``worker_id`` sharing this one's servers and transports."""
        other = HttpCoordinator(
            self.base_urls,
            session=self.session if session is None else session,
            worker_id=self._worker_id if worker_id is None else worker_id,
            token=self.token,
            timeout=self.timeout,
            retries=self.retries,
            transport=self._servers.transports,
        )
        other._servers = self._servers  # one memory of which server answers
        return other

    def __repr__(self) -> str:
        urls = ",".join(self.base_urls)
        return f"HttpCoordinator({urls!r}, session={self.session!r}, worker_id={self.worker_id!r})"

    def __enter__(self) -> HttpCoordinator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing --------------------------------------------------------------------

    def _items_path(self, *parts: str) -> str:
        path = f"/sessions/{quote(self.session, safe='')}/backfill/work-items/"
        return path + "/".join(parts)

    def _item_path(self, work_item_id: str, action: str | None = None) -> str:
        segment = _segment(check.work_item_id(work_item_id))
        return self._items_path(segment, action) if action else self._items_path(segment)

    def _request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        idempotent: bool = True,
    ) -> tuple[int, Any]:
        """Send one request; return ``(status, parsed JSON)``; raise the server's error for other statuses."""
        target = path
        if query:
            target += "?" + urlencode({k: v for k, v in query.items() if v is not None})
        payload = None if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
        servers = self._servers
        count = len(servers.urls)
        first = servers.current
        # Each server gets `retries` resends; the back-off comes after every
        # server failed once, so a dead server is skipped at once.
        failures = 0
        error: BaseException | None = None
        while True:
            index = (first + failures) % count
            left = bounds.time_left()
            if left is not None and left <= 0:
                # The caller's bound (the runner: what is left of a lease) ran out: unreachable, not a success.
                raise self._unreachable(error or TimeoutError("no answer within the call's bound"), index) from error
            # With other servers left to try, one that hangs may take only half of what is left.
            share = None if left is None or count == 1 else left / 2
            try:
                with bounds.call_bound(share):
                    status, raw = servers.transports[index].request(
                        method, servers.prefixes[index] + target, self._headers, payload
                    )
                servers.current = index
                break
            except RequestNotSentError as exc:
                error = exc
            except (OSError, http.client.HTTPException) as exc:
                error = exc
                if not idempotent and getattr(exc, "errno", None) not in _NOT_SENT_ERRNOS:
                    raise self._unreachable(error, index) from error
            failures += 1
            if failures > self.retries * count + count - 1:
                raise self._unreachable(error, index) from error
            if failures % count == 0 and not isinstance(error, RequestNotSentError):
                pause = min(1.0, 0.05 * 2 ** (failures // count))  # back off from struggling servers
                time.sleep(bounds.time_left(pause) or 0.0)
        try:
            data = json.loads(raw.decode("utf-8")) if raw else None
        except (UnicodeDecodeError, ValueError):
            raise CoordinatorUnreachableError(
                f"{method} {servers.urls[index]}{path} answered {status} with a body that is not JSON: {raw[:200]!r}",
                status=status,
            ) from None
        return status, data

    def _unreachable(self, exc: BaseException, index: int) -> CoordinatorUnreachableError:
        urls = self._servers.urls
        where = urls[0] if len(urls) == 1 else f"any of {', '.join(urls)} (last tried {urls[index]})"
        return CoordinatorUnreachableError(f"cannot reach the coordinator at {where}: {exc}")

    def _call(self, method: str, path: str, ok: int = 200, **kwargs: Any) -> Any:
        status, data = self._request(method, path, **kwargs)
        if status != ok:
            raise self._error(status, data)
        return data

    def _error(self, status: int, data: Any) -> LitecoordError:
        if isinstance(data, dict) and isinstance(data.get("code"), str) and "detail" in data:
            # Codes without a class of their own (method_not_allowed, malformed_json...)
            # keep the server's code and status on a base-class error.
            return error_from_dict(data, status)
        return CoordinatorUnreachableError(
            f"the coordinator at {self.base_url} answered {status}: {str(data)[:200]}", status=status
        )

    @staticmethod
    def _seconds(duration: timedelta | float) -> int | float:
        return json_seconds(check.duration(duration))

    # -- lifecycle -------------------------------------------------------------------

    def setup(
        self,
        *,
        lease_mode: str | None = None,
        acquire_order: str | None = None,
        max_attempts: int | None = None,
        retry_delay: timedelta | float | None = None,
        max_retry_delay: timedelta | float | None = None,
        split_min_documents: int | None | Keep = KEEP,
    ) -> None:
        settings: dict[str, Any] = {
            "lease_mode": lease_mode,
            "acquire_order": acquire_order,
            "max_attempts": max_attempts,
        }
        for name, value in (("retry_delay", retry_delay), ("max_retry_delay", max_retry_delay)):
            if value is not None:  # checked here, so the error names the argument as the SQLite backend does
                settings[f"{name}_seconds"] = json_seconds(check.delay(value, name))
        body = {k: v for k, v in settings.items() if v is not None}
        if split_min_documents is not KEEP:  # sent even as null: that turns split requests off
            body["split_min_documents"] = check.count("split_min_documents", split_min_documents)
        self._call("PUT", f"/sessions/{quote(self.session, safe='')}", body=body)

    def close(self) -> None:
        for transport in self._servers.transports:
            transport.close()

    # -- creating work -------------------------------------------------------------------

    def create_unassigned_work_item(self, work_item_id: str) -> bool:
        return self._create({"work_item_id": work_item_id})

    def create_work_item_with_metadata(
        self,
        work_item_id: str,
        index_name: str | None,
        shard_number: int | None,
        document_count: int | None,
        total_size_bytes: int | None,
    ) -> bool:
        return self._create(
            {
                "work_item_id": work_item_id,
                "index_name": index_name,
                "shard_number": shard_number,
                "document_count": document_count,
                "total_size_bytes": total_size_bytes,
            }
        )

    def _create(self, spec: dict[str, Any]) -> bool:
        spec = check.item_spec(spec)
        try:
            self._call("POST", self._items_path(), ok=201, body=spec, idempotent=False)
        except WorkItemExistsError:
            return False
        return True

    def create_work_items(self, items: Iterable[Mapping[str, Any]]) -> list[WorkItem]:
        if isinstance(items, (str, bytes, Mapping)):
            raise ValidationError("items", "must be a list of work item objects")
        specs = [check.item_spec(item, f"items[{i}]") for i, item in enumerate(items)]
        if not specs:
            return []
        data = self._call("POST", self._items_path("batch"), ok=201, body=specs, idempotent=False)
        return [WorkItem.from_dict(d) for d in data]

    # -- leasing ---------------------------------------------------------------------------

    def acquire_next_work_item(self, lease_duration: timedelta = DEFAULT_LEASE_DURATION) -> AcquisitionOutcome:
        query = {"worker_id": self.worker_id, "lease_duration_seconds": self._seconds(lease_duration)}
        status, data = self._request("GET", self._items_path("acquire"), query=query)
        if status == 200:
            return WorkItemAndDuration.from_dict(data)
        if status == 404 and isinstance(data, dict) and data.get("code") == "no_available_work":
            return NoAvailableWorkToBeDone.from_dict(data)
        raise self._error(status, data)

    def create_or_update_lease_for_work_item(
        self, work_item_id: str, lease_duration: timedelta = DEFAULT_LEASE_DURATION
    ) -> LeaseOutcome:
        path = self._item_path(work_item_id, "acquire")
        body = {"worker_id": self.worker_id, "lease_duration_seconds": self._seconds(lease_duration)}
        data = self._call("POST", path, body=body)
        if data.get("already_completed"):
            return AlreadyCompleted(WorkItem.from_dict(data["work_item"]))
        return WorkItemAndDuration.from_dict(data)

    def update_progress_and_renew_lease(
        self,
        work_item_id: str,
        documents_processed: int | None = None,
        bytes_processed: int | None = None,
        *,
        lease_duration: timedelta | None = None,
        lease_epoch: int | None = None,
    ) -> WorkItem:
        # Checks run in the embedded backend's order, so the same bad call names the same field.
        path = self._item_path(work_item_id, "lease")
        body = self._holder_body(lease_epoch)
        progress = self._progress_body(documents_processed, bytes_processed)
        if progress:
            body["progress"] = progress
        if lease_duration is not None:
            body["lease_duration_seconds"] = self._seconds(lease_duration)
        return WorkItem.from_dict(self._call("PUT", path, body=body))

    def _holder_body(self, lease_epoch: int | None) -> dict[str, Any]:
        body: dict[str, Any] = {"worker_id": self.worker_id}
        if check.lease_epoch(lease_epoch) is not None:
            body["lease_epoch"] = lease_epoch
        return body

    @staticmethod
    def _progress_body(documents: int | None, size: int | None) -> dict[str, int]:
        """The ``progress`` object of a renewal or completion: only the figures given."""
        progress = {
            "documents_processed": check.count("documents_processed", documents),
            "bytes_processed": check.count("bytes_processed", size),
        }
        return {k: v for k, v in progress.items() if v is not None}

    def complete_work_item(
        self,
        work_item_id: str,
        *,
        lease_epoch: int | None = None,
        documents_processed: int | None = None,
        bytes_processed: int | None = None,
    ) -> WorkItem:
        path = self._item_path(work_item_id, "complete")
        body: Any = self._holder_body(lease_epoch)
        progress = self._progress_body(documents_processed, bytes_processed)
        if progress:
            body["progress"] = progress
        elif lease_epoch is None:
            body = self.worker_id  # what the Java client sends: the bare worker id
        return WorkItem.from_dict(self._call("PUT", path, body=body))

    def complete_and_acquire_next(
        self,
        work_item_id: str,
        lease_duration: timedelta = DEFAULT_LEASE_DURATION,
        *,
        lease_epoch: int | None = None,
        documents_processed: int | None = None,
        bytes_processed: int | None = None,
    ) -> tuple[WorkItem, AcquisitionOutcome]:
        path = self._item_path(work_item_id, "complete-and-acquire")
        body = self._holder_body(lease_epoch)
        progress = self._progress_body(documents_processed, bytes_processed)
        if progress:
            body["progress"] = progress
        body["lease_duration_seconds"] = self._seconds(lease_duration)
        # Safe to resend: completing again is a no-op and acquire returns the held lease.
        data = self._call("POST", path, body=body)
        nxt = data["next"]
        outcome: AcquisitionOutcome
        if "work_item" in nxt:
            outcome = WorkItemAndDuration.from_dict(nxt)
        else:
            outcome = NoAvailableWorkToBeDone.from_dict(nxt)
        return WorkItem.from_dict(data["completed"]), outcome

    def release_work_item(self, work_item_id: str, *, lease_epoch: int | None = None) -> bool:
        path = self._item_path(work_item_id, "release")
        data = self._call("POST", path, body=self._holder_body(lease_epoch), idempotent=False)
        return bool(data["released"])

    def fail_work_item(self, work_item_id: str, error: str, *, lease_epoch: int | None = None) -> WorkItem:
        path = self._item_path(work_item_id, "fail")
        body = self._holder_body(lease_epoch)
        body["error"] = check.error_text(error)
        return WorkItem.from_dict(self._call("POST", path, body=body, idempotent=False))

    def retry_work_item(self, work_item_id: str) -> WorkItem:
        return WorkItem.from_dict(self._call("POST", self._item_path(work_item_id, "retry")))

    def create_successor_work_items_and_mark_complete(
        self,
        work_item_id: str,
        successor_work_item_ids: Sequence[str],
        *,
        lease_epoch: int | None = None,
    ) -> WorkItem:
        path = self._item_path(work_item_id, "successors")
        body = self._holder_body(lease_epoch)
        if isinstance(successor_work_item_ids, (str, bytes)) or not isinstance(successor_work_item_ids, Sequence):
            raise ValidationError("successor_work_item_ids", "must be a list of work item ids")
        for i, name in enumerate(successor_work_item_ids):
            check.text(f"successor_work_item_ids[{i}]", name, check.MAX_WORK_ITEM_ID_LENGTH, allow_comma=False)
        body["successor_work_item_ids"] = list(successor_work_item_ids)
        return WorkItem.from_dict(self._call("POST", path, body=body))

    def split_work_item(
        self, work_item_id: str, at: int, *, lease_epoch: int | None = None
    ) -> tuple[WorkItem, WorkItem]:
        path = self._item_path(work_item_id, "split")
        body = self._holder_body(lease_epoch)
        body["at"] = check.count("at", at, optional=False)
        # Repeating the same split returns the same pair, so a retried request is harmless.
        data = self._call("POST", path, body=body)
        return WorkItem.from_dict(data["kept"]), WorkItem.from_dict(data["new"])

    def verify_coverage(self) -> CoverageReport:
        return CoverageReport.from_dict(self._call("GET", self._backfill_path("coverage")))

    # -- reading -----------------------------------------------------------------------

    def get_work_item(self, work_item_id: str) -> WorkItem:
        return WorkItem.from_dict(self._call("GET", self._item_path(work_item_id)))

    def list_work_items(self, status: WorkItemStatus | str | None = None) -> list[WorkItem]:
        wanted = None if status is None else check.choice("status", status, WorkItemStatus).value
        data = self._call("GET", self._items_path(), query={"status": wanted})
        return [WorkItem.from_dict(d) for d in data]

    def num_work_items_not_yet_complete(self) -> int:
        summary = self.status()
        return summary.pending_work_items + summary.assigned_work_items

    def work_items_not_yet_complete(self) -> bool:
        return self.num_work_items_not_yet_complete() > 0

    def status(self) -> WorkQueueStatus:
        data = self._call("GET", self._items_path("status"))
        # The server answers 200 for a session nothing created yet (the console's Java client
        # needs that) and says so in session_exists: a typo stays an error, as on the databases.
        if data.get("session_exists") is False:
            raise session_not_found(self.session)
        return WorkQueueStatus.from_dict(data)

    def list_sessions(self) -> list[SessionInfo]:
        return [SessionInfo.from_dict(d) for d in self._call("GET", "/sessions/")]

    # -- monitoring --------------------------------------------------------------------

    def _backfill_path(self, name: str) -> str:
        return f"/sessions/{quote(self.session, safe='')}/backfill/{name}"

    def index_progress(self) -> list[IndexProgress]:
        return [IndexProgress.from_dict(d) for d in self._call("GET", self._backfill_path("indexes"))]

    def progress_samples(self) -> list[ProgressSample]:
        return [ProgressSample.from_dict(d) for d in self._call("GET", self._backfill_path("samples"))]

    def list_attention_items(
        self, kind: AttentionKind | str, *, limit: int = 50, after: str | None = None
    ) -> WorkItemPage:
        query = {"kind": check.choice("kind", kind, AttentionKind).value, "limit": str(check.page_limit(limit))}
        if after is not None:
            query["after"] = after
        return WorkItemPage.from_dict(self._call("GET", self._backfill_path("attention"), query=query))

    def list_work_items_page(
        self,
        *,
        status: WorkItemStatus | str | None = None,
        index_name: str | None = None,
        worker_id: str | None = None,
        id_contains: str | None = None,
        sort: str = "created",
        descending: bool = False,
        limit: int = 50,
        after: str | None = None,
    ) -> WorkItemPage:
        q = item_query(
            status=status, index_name=index_name, worker_id=worker_id, id_contains=id_contains,
            sort=sort, descending=descending, limit=limit, after=after,
        )  # fmt: skip
        query = {"sort": q.sort, "limit": str(q.limit)}
        if q.descending:
            query["descending"] = "true"
        if q.status is not None:
            query["status"] = q.status.value
        for name in ("index_name", "worker_id", "id_contains"):
            if getattr(q, name) is not None:
                query[name] = getattr(q, name)
        if after is not None:
            query["after"] = after
        return WorkItemPage.from_dict(self._call("GET", self._backfill_path("items"), query=query))

    # -- housekeeping ------------------------------------------------------------------

    def cleanup_expired(self) -> int:
        data = self._call("POST", self._items_path("cleanup-expired"), idempotent=False)
        if data.get("session_exists") is False:  # 200 for the Java client; an error here, as on the databases
            raise session_not_found(self.session)
        return int(data["cleaned"])

    def delete_session(self) -> int:
        return int(self._call("DELETE", self._items_path(), idempotent=False)["deleted"])
