"""How one request travels to a litecoord server: the transports under ``HttpCoordinator``.

A :class:`Transport` sends one request and returns ``(status, body)``:
:class:`HttpTransport` over the network (one kept-alive connection per
thread, every wait bounded), :class:`WsgiTransport` into a WSGI app in-process.
Also :func:`split_urls`, the check of the base URLs a client is given.
Re-exported by :mod:`litecoord.backends.http`, where callers import them from.
"""

from __future__ import annotations

import http.client
import io
import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Protocol
from urllib.parse import unquote_to_bytes, urlsplit

from ..errors import ValidationError
from . import bounds

__all__ = ["RequestNotSentError", "Transport", "HttpTransport", "WsgiTransport", "split_urls"]


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
