"""Helpers for the REST-layer tests (test_wsgi, test_http, test_openapi, test_seed_curl)."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes

BASE = "/sessions/s1/backfill/work-items"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    raw: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.raw.decode("utf-8"))


def call(
    app: Any,
    method: str,
    uri: str,
    body: Any = None,
    *,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
    raw_uri: bool = True,
    content_length: str | None = None,
    chunked: bool = False,
) -> Reply:
    """Call a WSGI app the way a server would: ``uri`` is the raw request target (percent-encoded).

    ``body`` is sent as JSON, ``raw`` as bytes. ``raw_uri=False`` leaves out
    REQUEST_URI (servers such as wsgiref provide only PATH_INFO). ``chunked``
    sends no Content-Length and marks the input as EOF-terminated.
    """
    if body is not None:
        raw = json.dumps(body).encode("utf-8")
        if not any(name.lower() == "content-type" for name in (headers or {})):
            headers = {**(headers or {}), "Content-Type": "application/json"}  # what every client sends
    path, _, query = uri.partition("?")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
        "QUERY_STRING": query,
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(raw or b""),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    if raw_uri:
        environ["REQUEST_URI"] = uri
    if chunked:
        environ["wsgi.input_terminated"] = True
    elif content_length is not None:
        environ["CONTENT_LENGTH"] = content_length
    elif raw is not None:
        environ["CONTENT_LENGTH"] = str(len(raw))
    for name, value in (headers or {}).items():
        key = name.upper().replace("-", "_")
        environ[key if key == "CONTENT_TYPE" else "HTTP_" + key] = value
    seen: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        seen["status"] = int(status.split(" ", 1)[0])
        seen["headers"] = dict(response_headers)
        return lambda data: None

    data = b"".join(app(environ, start_response))
    return Reply(seen["status"], seen["headers"], data)


JSON_HEADERS = {"Content-Type": "application/json"}
