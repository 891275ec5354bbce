"""Cross-site requests to a tokenless server (issue 17, section 5).

A page the operator visits must not change work on a server without a token:
``GET …/acquire`` leases with no preflight (an ``<img src>`` sends it), and a
page on another port of this machine (``http://localhost:3000``) is another
origin. Every route that writes refuses a request a browser marks cross-site
(``Sec-Fetch-Site`` other than ``same-origin``/``none``, or an ``Origin`` not
this server's scheme, host and port) with 403 ``forbidden_cross_site``, and
changes nothing. Clients that send neither header are unaffected.
"""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from typing import Any

import pytest
from rest_support import BASE, call

from litecoord import FakeClock, HttpCoordinator, create_app
from litecoord.rest import testclock
from litecoord.rest.routes import ROUTES
from litecoord.rest.server import make_server
from litecoord.testing import START

HOST = "127.0.0.1:8000"
OWN = "http://127.0.0.1:8000"
ITEM = BASE + "/a"

#: One request per route that writes (20 with the test clock's), each one the server would carry out.
WRITES: list[tuple[str, str, Any]] = [
    ("PUT", "/sessions/s1", {"max_attempts": 5}),
    ("POST", BASE + "/", {"work_item_id": "new"}),
    ("DELETE", BASE + "/", None),
    ("POST", BASE + "/batch", [{"work_item_id": "new"}]),
    ("GET", BASE + "/acquire?worker_id=w2", None),
    ("POST", BASE + "/acquire", {"worker_id": "w2"}),
    ("POST", BASE + "/cleanup-expired", None),
    ("POST", BASE + "/b/acquire", {"worker_id": "w2"}),
    ("PUT", ITEM + "/lease", {"worker_id": "w1", "progress": {"documents_processed": 5}}),
    ("PUT", ITEM + "/complete", "w1"),
    ("POST", ITEM + "/complete-and-acquire", {"worker_id": "w1"}),
    ("POST", ITEM + "/release", {"worker_id": "w1"}),
    ("POST", ITEM + "/fail", {"worker_id": "w1", "error": "boom"}),
    ("POST", BASE + "/f/retry", None),
    ("POST", ITEM + "/successors", {"worker_id": "w1", "successor_work_item_ids": ["a2"]}),
    ("POST", ITEM + "/split", {"worker_id": "w1", "at": 5}),
    ("POST", testclock.PATH, {"advance_seconds": 3600}),
    ("POST", "/sessions/s1/backfill/failures/retry", None),
    ("POST", "/sessions/s1/backfill/pause", None),
    ("POST", "/sessions/s1/backfill/resume", None),
]

CROSS_SITE = [
    {"Origin": "http://localhost:3000"},  # another port on this machine
    {"Origin": "http://127.0.0.1:3000", "Sec-Fetch-Site": "same-site"},
    {"Sec-Fetch-Site": "cross-site"},  # an <img src> or a form: no Origin on a GET
    {"Sec-Fetch-Site": "same-site"},
    {"Origin": "https://127.0.0.1:8000"},  # another scheme
]


def test_the_writes_are_every_route_that_writes() -> None:
    routes = {(r.method, r.template) for r in ROUTES + testclock.routes() if r.writes}
    assert routes == {(r.method, r.template) for r in ROUTES + testclock.routes() if r.method != "GET"} | {
        ("GET", BASE.replace("s1", "{session}") + "/acquire")
    }
    assert len(routes) == len(WRITES) == 20


def make_app(db_path: Path, clock: FakeClock, *, local_only: bool = True) -> Any:
    app = create_app(db_path, clock=clock, test_clock=True, local_only=local_only)
    # a (leased by w1), b (pending), f (failed): every write above has something to change.
    assert call(app, "POST", BASE + "/batch", [{"work_item_id": i} for i in "abf"]).status == 201
    assert call(app, "POST", BASE + "/f/acquire", {"worker_id": "wf"}).status == 200
    assert call(app, "POST", BASE + "/f/fail", {"worker_id": "wf", "error": "x"}).status == 200
    assert call(app, "PUT", "/sessions/s1", {"max_attempts": 1}).status == 200
    assert call(app, "POST", BASE + "/a/acquire", {"worker_id": "w1"}).status == 200
    return app


def state(app: Any) -> Any:
    return (
        call(app, "GET", BASE + "/").json,
        call(app, "GET", "/sessions/").json,
        call(app, "GET", testclock.PATH).json,
    )


def send(app: Any, method: str, uri: str, body: Any, headers: dict[str, str]) -> Any:
    if body is None:
        return call(app, method, uri, headers=headers)
    return call(app, method, uri, body, headers=headers)


@pytest.mark.parametrize("headers", CROSS_SITE, ids=lambda h: ",".join(f"{k}={v}" for k, v in h.items()))
@pytest.mark.parametrize(("method", "uri", "body"), WRITES, ids=[f"{m} {u}" for m, u, _ in WRITES])
def test_a_cross_site_write_is_refused_and_changes_nothing(
    db_path: Path, method: str, uri: str, body: Any, headers: dict[str, str]
) -> None:
    app = make_app(db_path, FakeClock(START))
    before = state(app)
    reply = send(app, method, uri, body, {"Host": HOST, **headers})
    assert (reply.status, reply.json["code"]) == (403, "forbidden_cross_site"), reply.json
    assert state(app) == before
    app.root.close()


@pytest.mark.parametrize(("method", "uri", "body"), WRITES, ids=[f"{m} {u}" for m, u, _ in WRITES])
def test_the_servers_own_page_and_plain_clients_may_write(db_path: Path, method: str, uri: str, body: Any) -> None:
    for headers in (
        {},  # curl, the Java client, HttpCoordinator
        {"Origin": OWN, "Sec-Fetch-Site": "same-origin"},  # the status page's fetch()
        {"Origin": "HTTP://127.0.0.1:8000", "Sec-Fetch-Site": "none"},  # typed in the address bar
    ):
        app = make_app(db_path, FakeClock(START))
        reply = send(app, method, uri, body, {"Host": HOST, **headers})
        assert reply.status < 300, (headers, reply.json)
        app.root.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db_path}{suffix}").unlink(missing_ok=True)


def test_reads_are_not_refused(db_path: Path) -> None:
    # Without CORS headers a page cannot read the answer; a loopback Origin may read as before.
    app = make_app(db_path, FakeClock(START))
    for uri in (BASE + "/status", BASE + "/", "/sessions/", "/health"):
        assert call(app, "GET", uri, headers={"Host": HOST, "Origin": "http://localhost:3000"}).status == 200
    app.root.close()


def test_a_trust_network_server_without_a_token_checks_the_same(db_path: Path) -> None:
    app = make_app(db_path, FakeClock(START), local_only=False)  # --host 0.0.0.0 --trust-network
    lan = {"Host": "192.168.1.5:8000"}
    refused = call(app, "GET", BASE + "/acquire?worker_id=w9", headers={**lan, "Sec-Fetch-Site": "cross-site"})
    assert (refused.status, refused.json["code"]) == (403, "forbidden_cross_site")
    refused = call(app, "POST", BASE + "/b/acquire", {"worker_id": "w9"}, headers={**lan, "Origin": OWN})
    assert (refused.status, refused.json["code"]) == (403, "forbidden_cross_site")
    refused = call(app, "PUT", BASE + "/b/complete", "w9", headers={**lan, "Origin": "null"})  # a file:// page
    assert (refused.status, refused.json["code"]) == (403, "forbidden_cross_site")
    ok = call(
        app, "POST", BASE + "/b/acquire", {"worker_id": "w9"}, headers={**lan, "Origin": "http://192.168.1.5:8000"}
    )
    assert ok.status == 200
    app.root.close()


def test_with_a_token_the_token_decides(db_path: Path) -> None:
    app = create_app(db_path, token="sekrit")
    auth = {"Authorization": "Bearer sekrit", "Origin": "https://console.example.com", "Sec-Fetch-Site": "cross-site"}
    assert call(app, "POST", BASE + "/", {"work_item_id": "x"}, headers=auth).status == 201
    app.root.close()


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])
def test_over_the_wire(db_path: Path, host: str) -> None:
    clock = FakeClock(START)
    with make_server(db_path, host, 0, clock=clock, threads=2, trust_network=True).start() as server:
        port = server.effective_port
        url = f"http://127.0.0.1:{port}"
        HttpCoordinator(url, session="s1").create_work_items([{"work_item_id": "a"}])

        def get(path: str, headers: dict[str, str]) -> tuple[int, Any]:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            try:
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                return response.status, json.loads(response.read())
            finally:
                conn.close()

        # What an <img src="http://127.0.0.1:PORT/…/acquire?worker_id=x"> on another site sends.
        status, body = get(
            BASE + "/acquire?worker_id=evil", {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Dest": "image"}
        )
        assert (status, body["code"]) == (403, "forbidden_cross_site")
        status, body = get(BASE + "/acquire?worker_id=evil", {"Origin": "http://localhost:3000"})
        assert (status, body["code"]) == (403, "forbidden_cross_site")
        assert HttpCoordinator(url, session="s1").status().assigned_work_items == 0  # nothing was leased
        lease = HttpCoordinator(url, session="s1", worker_id="w1").acquire_next_work_item()
        assert lease.work_item_id == "a"  # a client without browser headers is unaffected
