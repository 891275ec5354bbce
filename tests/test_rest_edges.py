"""HTTP's edges (issue 17, section 6): HEAD and OPTIONS, and the errors waitress answers itself in JSON.

HEAD answers as GET without the body (and never on a route that writes);
OPTIONS answers 204 with an ``Allow`` that lists only what the path accepts.
A body over waitress's cap, a bad URI and an invalid ``Content-Length`` are
refused by waitress before the app sees them: the answers are JSON
``{"detail", "code"}`` like every other error.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
from rest_support import BASE, call

from litecoord import FakeClock, create_app
from litecoord.rest.server import make_server
from litecoord.testing import START


@pytest.fixture
def app(db_path: Path) -> Any:
    app = create_app(db_path, clock=FakeClock(START))
    assert call(app, "POST", BASE + "/batch", [{"work_item_id": "a"}]).status == 201
    yield app
    app.root.close()


@pytest.mark.parametrize("uri", ["/", BASE + "/status", BASE + "/", BASE + "/a", "/health", "/openapi.json"])
def test_head_answers_as_get_without_a_body(app: Any, uri: str) -> None:
    get = call(app, "GET", uri)
    head = call(app, "HEAD", uri)
    assert (head.status, head.raw) == (get.status, b"")
    assert head.headers["Content-Type"] == get.headers["Content-Type"]
    assert head.headers["Content-Length"] == str(len(get.raw))


def test_head_never_leases(app: Any) -> None:
    reply = call(app, "HEAD", BASE + "/acquire?worker_id=w1")
    assert (reply.status, reply.raw, reply.headers["Allow"]) == (405, b"", "GET, POST, OPTIONS")
    assert call(app, "GET", BASE + "/a").json["status"] == "pending"


@pytest.mark.parametrize(
    ("uri", "allow"),
    [
        ("/", "GET, HEAD, OPTIONS"),
        ("/health", "GET, HEAD, OPTIONS"),
        ("/sessions/s1", "PUT, OPTIONS"),
        (BASE + "/", "POST, GET, DELETE, HEAD, OPTIONS"),
        (BASE + "/batch", "POST, OPTIONS"),  # not GET: an item named batch is …/%62atch
        (BASE + "/cleanup-expired", "POST, OPTIONS"),
        (BASE + "/acquire", "GET, POST, OPTIONS"),  # GET acquire leases: no HEAD
        (BASE + "/status", "GET, HEAD, OPTIONS"),
        (BASE + "/a", "GET, HEAD, OPTIONS"),
        (BASE + "/a/lease", "PUT, OPTIONS"),
        (BASE + "/a/acquire", "POST, OPTIONS"),
    ],
)
def test_options_lists_only_what_the_path_accepts(app: Any, uri: str, allow: str) -> None:
    reply = call(app, "OPTIONS", uri)
    assert (reply.status, reply.raw, reply.headers["Allow"]) == (204, b"", allow)
    assert "Content-Type" not in reply.headers
    for method in allow.split(", "):
        if method not in ("OPTIONS", "HEAD"):
            assert call(app, method, uri).status != 405, method  # each one listed is accepted


def test_options_on_no_route_is_404(app: Any) -> None:
    reply = call(app, "OPTIONS", "/nope")
    assert (reply.status, reply.json["code"]) == (404, "not_found")


def test_a_literal_route_owns_its_path(app: Any) -> None:
    reply = call(app, "GET", BASE + "/batch")
    assert (reply.status, reply.headers["Allow"]) == (405, "POST")
    assert call(app, "GET", BASE + "/%62atch").json["code"] == "work_item_not_found"


def raw_request(port: int, data: bytes) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        (b"POST /sessions/s/backfill/work-items/batch HTTP/1.1\r\nHost: 127.0.0.1\r\n"
         b"Content-Type: application/json\r\nContent-Length: 99999999\r\n\r\n", 413, "payload_too_large"),
        (b"POST /sessions/s/backfill/work-items/batch HTTP/1.1\r\nHost: 127.0.0.1\r\n"
         b"Content-Type: application/json\r\nContent-Length: 12abc\r\n\r\n", 400, "bad_request"),
        (b"GET /\xff\xfe HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400, "bad_request"),
        (b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header Line\r\n\r\n", 400, "bad_request"),
    ],
    ids=["body over the cap", "invalid Content-Length", "bad URI", "malformed header"],
)  # fmt: skip
def test_what_waitress_refuses_is_answered_in_json(
    db_path: Path, request_bytes: bytes, status: int, code: str
) -> None:
    with make_server(db_path, "127.0.0.1", 0, threads=2, max_body_bytes=1024).start() as server:
        got, headers, body = raw_request(server.effective_port, request_bytes)
    assert (got, headers["content-type"]) == (status, "application/json"), body
    answer = json.loads(body)
    assert answer["code"] == code and answer["detail"]
    assert headers["content-length"] == str(len(body))


# -- what the OpenAPI document says is what the server does (issue 17, section 6) ----------------


def test_the_printable_rule_is_the_documents_pattern() -> None:
    import re

    from litecoord import ValidationError
    from litecoord import validation as check
    from litecoord.rest.openapi import openapi_document

    pattern = re.compile(openapi_document()["components"]["parameters"]["work_item_id"]["schema"]["pattern"])
    # Every code point of the Basic Multilingual Plane but the surrogates, and a sample beyond it.
    points = [*range(0xD800), *range(0xE000, 0x10000), *range(0x10000, 0x110000, 97), 0xE0001, 0xF0000]
    disagree = []
    for point in points:
        text = f"a{chr(point)}b"
        try:
            check.work_item_id(text)
            accepted = True
        except ValidationError:
            accepted = False
        if accepted != bool(pattern.fullmatch(text)):
            disagree.append(f"U+{point:04X}")
    assert disagree == []
    with pytest.raises(ValidationError):
        check.worker_id("a\ud800")  # a lone surrogate is no text (no pattern can name it)


@pytest.mark.parametrize("after", ["--5", "", "1.2.3", "\u0661", "9" * 19, "1.", ".1", "1 "])
def test_a_malformed_cursor_is_422(app: Any, after: str) -> None:
    from urllib.parse import quote

    for kind in ("leased", "failed"):
        reply = call(app, "GET", f"/sessions/s1/backfill/attention?kind={kind}&after={quote(after)}")
        assert (reply.status, reply.json["field"]) == (422, "after"), reply.json


@pytest.mark.parametrize("after", ["5", "-5", "1700000000000000.12", "0.0"])
def test_any_cursor_shape_the_document_allows_is_read_by_both_listings(app: Any, after: str) -> None:
    for kind in ("leased", "failed"):
        assert call(app, "GET", f"/sessions/s1/backfill/attention?kind={kind}&after={after}").status == 200


def test_what_the_document_allows_in_bodies_is_accepted(app: Any) -> None:
    item = BASE + "/a"
    lease = call(app, "POST", item + "/acquire", {"worker_id": "w1", "lease_duration_seconds": None})
    assert lease.status == 200 and lease.json["lease_duration_seconds"] == 300  # null: the default
    epoch = lease.json["lease_epoch"]
    assert call(app, "PUT", item + "/lease", {"worker_id": "w1", "lease_epoch": float(epoch)}).status == 200
    assert call(app, "PUT", item + "/lease", {"worker_id": "w1", "lease_epoch": None, "progress": None}).status == 200
    assert call(app, "PUT", "/sessions/s1", {"max_retry_delay_seconds": None, "lease_mode": None}).status == 200
    assert call(app, "PUT", "/sessions/s1", raw=b"null", headers={"Content-Type": "application/json"}).status == 200
    assert call(app, "PUT", item + "/lease", {"worker_id": "w1", "lease_duration_seconds": 0.001}).status == 200


@pytest.mark.parametrize("seconds", [5e-324, 0.0009996, 0.0005])
def test_a_lease_shorter_than_a_millisecond_is_refused_as_the_document_says(app: Any, seconds: float) -> None:
    reply = call(app, "POST", BASE + "/a/acquire", {"worker_id": "w1", "lease_duration_seconds": seconds})
    assert (reply.status, reply.json["field"]) == (422, "lease_duration_seconds")
    assert "millisecond" in reply.json["detail"]
    query = call(app, "GET", f"{BASE}/acquire?worker_id=w1&lease_duration_seconds={seconds!r}")
    assert query.status == 422
    digits = call(app, "GET", f"{BASE}/acquire?worker_id=w1&lease_duration_seconds=%D9%A3%D9%A0%D9%A0")  # ٣٠٠
    assert (digits.status, digits.json["field"]) == (422, "lease_duration_seconds")
