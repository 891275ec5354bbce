"""The test clock (``/_test/clock``) and ``litecoord serve --ephemeral``: tests of clients in any language.

The routes must exist only on a server built with a test clock, and only on
loopback; everywhere else ``/_test/clock`` is an unknown path. The
``--ephemeral`` server is started as a harness would start it: a real
process whose first line of output is read, then stopped with SIGTERM.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from rest_support import BASE, JSON_HEADERS, call

from litecoord import FakeClock, ValidationError, create_app
from litecoord.rest import testclock
from litecoord.rest.server import make_server
from litecoord.testing import START

CLOCK = "/_test/clock"


def test_a_normal_app_has_no_test_clock(db_path: Path) -> None:
    app = create_app(db_path, clock=FakeClock())
    for method in ("GET", "POST", "PUT"):
        reply = call(app, method, CLOCK, {"advance_seconds": 360})
        assert (reply.status, reply.json["code"]) == (404, "not_found")
    assert CLOCK not in app.openapi["paths"]
    assert CLOCK not in call(app, "GET", "/openapi.json").json["paths"]


def test_a_normal_server_answers_404_on_the_wire(db_path: Path) -> None:
    clock = FakeClock(START)
    with make_server(db_path, "127.0.0.1", 0, clock=clock, threads=2).start() as server:
        status, body = send("POST", server.url + CLOCK, {"advance_seconds": 360})
        assert (status, body["code"]) == (404, "not_found")
        assert send("GET", server.url + CLOCK)[0] == 404
    assert clock() == START  # nothing moved it


def test_the_test_clock_moves_the_leases(db_path: Path) -> None:
    app = create_app(db_path, clock=FakeClock(START), test_clock=True)
    assert call(app, "GET", CLOCK).json == {"now": "2025-01-19T20:30:00Z"}
    assert call(app, "POST", BASE + "/", {"work_item_id": "a", "index_name": "i", "shard_number": 0}).status == 201
    lease = call(app, "GET", BASE + "/acquire?worker_id=w1").json
    assert lease["work_item"]["lease_expiry"] == "2025-01-19T20:35:00Z"

    moved = call(app, "POST", CLOCK, {"advance_seconds": 360}, headers=JSON_HEADERS)
    assert (moved.status, moved.json) == (200, {"now": "2025-01-19T20:36:00Z"})
    renew = call(app, "PUT", BASE + "/a/lease", {"worker_id": "w1"})
    assert (renew.status, renew.json["code"]) == (410, "lease_expired")
    taken = call(app, "GET", BASE + "/acquire?worker_id=w2").json
    assert taken["work_item"]["worker_id"] == "w2" and taken["lease_epoch"] == 2

    assert call(app, "POST", CLOCK, {"now": "2026-01-01T00:00:00+01:00"}).json == {"now": "2025-12-31T23:00:00Z"}
    assert call(app, "POST", CLOCK, {"advance_seconds": 0.25}).json == {"now": "2025-12-31T23:00:00.250000Z"}
    assert CLOCK in app.openapi["paths"] and set(app.openapi["paths"][CLOCK]) == {"get", "post"}


def test_the_test_clock_moves_the_leases_on_postgresql() -> None:
    from pg_support import fresh_schema

    with fresh_schema() as dsn:
        clock = FakeClock(START)
        app = create_app(dsn, clock=clock, test_clock=True)
        try:
            item = {"work_item_id": "a", "index_name": "i", "shard_number": 0}
            assert call(app, "POST", BASE + "/", item).status == 201
            lease = call(app, "GET", BASE + "/acquire?worker_id=w1").json
            assert lease["work_item"]["lease_expiry"] == "2025-01-19T20:35:00Z"
            assert call(app, "POST", CLOCK, {"advance_seconds": 360}).json == {"now": "2025-01-19T20:36:00Z"}
            renew = call(app, "PUT", BASE + "/a/lease", {"worker_id": "w1"})
            assert (renew.status, renew.json["code"]) == (410, "lease_expired")
            taken = call(app, "GET", BASE + "/acquire?worker_id=w2").json
            assert taken["work_item"]["worker_id"] == "w2" and taken["lease_epoch"] == 2
        finally:
            app.root.close()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"advance_seconds": -1}, "advance_seconds"),
        ({"advance_seconds": "360"}, "advance_seconds"),
        ({"advance_seconds": True}, "advance_seconds"),
        ({"advance_seconds": 1e300}, "advance_seconds"),
        ({"now": "tomorrow"}, "now"),
        ({"now": 1700000000}, "now"),
        ({"advance_seconds": 1, "now": "2025-01-19T20:30:00Z"}, "body"),
        ({}, "body"),
        ({"seconds": 5}, "seconds"),
    ],
)
def test_bad_moves_are_refused_and_the_clock_stays(db_path: Path, body: dict[str, Any], field: str) -> None:
    clock = FakeClock(START)
    app = create_app(db_path, clock=clock, test_clock=True)
    reply = call(app, "POST", CLOCK, body)
    assert (reply.status, reply.json["code"], reply.json["field"]) == (422, "validation_error", field)
    assert clock() == START


@pytest.mark.parametrize(
    "now",
    [
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "1969-12-31T23:59:59Z",
        "1970-01-01T00:30:00+01:00",
        "9997-06-01T00:00:00Z",
        "١٩٧٥-01-01T00:00:00Z",
    ],
)
def test_a_now_the_coordinator_cannot_read_is_refused(db_path: Path, now: str) -> None:
    clock = FakeClock(START)
    app = create_app(db_path, clock=clock, test_clock=True)
    reply = call(app, "POST", CLOCK, {"now": now})
    assert (reply.status, reply.json["code"], reply.json["field"]) == (422, "validation_error", "now")
    assert clock() == START
    # Every route that reads the clock still answers as before.
    assert call(app, "GET", CLOCK).json == {"now": "2025-01-19T20:30:00Z"}
    assert call(app, "POST", BASE + "/", {"work_item_id": "a"}).status == 201
    assert call(app, "GET", BASE + "/acquire?worker_id=w1").status == 200


@pytest.mark.parametrize(
    "now", ["1971-01-01T00:00:00Z", "9996-12-31T23:59:59Z", "1971-01-01T00:00:00+23:59", "9996-12-31T23:00:00-23:59"]
)
def test_the_edges_of_the_readable_range_are_accepted(db_path: Path, now: str) -> None:
    app = create_app(db_path, clock=FakeClock(START), test_clock=True)
    from litecoord.types import format_time, parse_time

    assert call(app, "POST", CLOCK, {"now": now}).json == {"now": format_time(parse_time(now))}
    assert call(app, "POST", BASE + "/", {"work_item_id": "a"}).status == 201
    assert call(app, "GET", BASE + "/status").status == 200


def test_a_refused_advance_changes_nothing(db_path: Path) -> None:
    clock = FakeClock(START)
    app = create_app(db_path, clock=clock, test_clock=True)
    assert call(app, "POST", CLOCK, {"now": "9990-01-01T00:00:00Z"}).status == 200
    assert call(app, "POST", CLOCK, {"advance_seconds": 7 * 365 * 86400}).status == 200  # into 9997: readable
    too_far = testclock.MAX_ADVANCE_SECONDS  # allowed as a move, but past what a coordinator reads
    reply = call(app, "POST", CLOCK, {"advance_seconds": too_far})
    assert (reply.status, reply.json["field"]) == (422, "advance_seconds")
    assert call(app, "GET", CLOCK).json == {"now": "9996-12-30T00:00:00Z"}  # not moved, and readable
    assert call(app, "POST", BASE + "/", {"work_item_id": "a"}).status == 201
    assert call(app, "POST", CLOCK, {"advance_seconds": 86400}).json == {"now": "9996-12-31T00:00:00Z"}


def test_the_test_clock_needs_the_token_the_server_has(db_path: Path) -> None:
    app = create_app(db_path, token="sekrit", test_clock=True)
    assert call(app, "POST", CLOCK, {"advance_seconds": 1}).status == 401
    ok = call(app, "GET", CLOCK, headers={"Authorization": "Bearer sekrit"})
    assert ok.status == 200 and re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", ok.json["now"])


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.7", "example.com", ""])
def test_a_test_clock_is_refused_off_loopback(db_path: Path, host: str) -> None:
    with pytest.raises(ValidationError) as refused:
        make_server(db_path, host, 0, test_clock=True)
    assert refused.value.context.get("field") == "host" and "loopback" in str(refused.value)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_addresses_are_loopback(host: str) -> None:
    assert testclock.is_loopback(host)


def test_a_test_clock_must_be_a_fake_one(db_path: Path) -> None:
    with pytest.raises(ValidationError):
        create_app(db_path, clock=lambda: 0.0, test_clock=True)


def test_the_server_and_its_routes_share_one_clock(db_path: Path) -> None:
    clock = FakeClock(START)
    with make_server(db_path, "127.0.0.1", 0, clock=clock, threads=2, test_clock=True).start() as server:
        assert send("POST", server.url + CLOCK, {"advance_seconds": 60}) == (200, {"now": "2025-01-19T20:31:00Z"})
        assert clock() == datetime_at("2025-01-19T20:31:00Z")


def datetime_at(text: str) -> Any:
    from litecoord.types import parse_time

    return parse_time(text)


def send(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


# -- litecoord serve --ephemeral, as a harness runs it ----------------------------------------------


def start_ephemeral(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "litecoord", "serve", "--ephemeral", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # PYTHONFAULTHANDLER: should the server ever crash, its stderr (in the failure) says where.
        env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONFAULTHANDLER": "1", "LITECOORD_DB": "must-not-be-used.db"},
    )


def stop(proc: subprocess.Popen[str]) -> tuple[str, str]:
    proc.send_signal(signal.SIGTERM)
    try:
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err  # SIGTERM is a clean stop
    return out, err


def test_ephemeral_prints_its_url_first_serves_a_fresh_file_and_removes_it(tmp_path: Path) -> None:
    port_file = tmp_path / "port.txt"
    proc = start_ephemeral("--test-clock", "--port-file", str(port_file))
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    banner = proc.stderr.readline()
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+\n", first), first
        base = first.strip()
        assert int(base.rsplit(":", 1)[1]) != 8000  # a free port, not the default
        assert port_file.read_text() == base + "\n"
        db = Path(re.search(r"serving (\S+) on ", banner).group(1))  # type: ignore[union-attr]
        assert db.name == "litecoord.db" and db.parent.name.startswith("litecoord-ephemeral-")
        assert not Path("must-not-be-used.db").exists()

        items = f"{base}/sessions/s1/backfill/work-items"
        assert send("POST", items + "/", {"work_item_id": "x", "index_name": "i", "shard_number": 0})[0] == 201
        assert send("GET", f"{items}/acquire?worker_id=a")[0] == 200
        assert send("POST", base + CLOCK, {"advance_seconds": 360})[0] == 200
        assert send("PUT", f"{items}/x/lease", {"worker_id": "a"})[0] == 410
        assert db.exists()
    finally:
        out, _ = stop(proc)
    assert out == ""  # nothing after the URL line
    assert not db.parent.exists()  # the temporary database went with the server
    assert not port_file.exists()  # a stale URL must not outlive the server


def test_ephemeral_without_test_clock_has_no_clock_route() -> None:
    proc = start_ephemeral()
    assert proc.stdout is not None
    try:
        base = proc.stdout.readline().strip()
        assert base.startswith("http://127.0.0.1:")
        assert send("GET", base + CLOCK)[0] == 404
        assert send("GET", base + "/health")[0] == 200
    finally:
        stop(proc)


def test_test_clock_on_a_public_host_is_a_usage_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "litecoord", "serve", "--db", str(tmp_path / "x.db"), "--test-clock",
         "--host", "0.0.0.0", "--port", "0"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2 and "loopback" in result.stderr
    assert result.stdout == ""


def test_ephemeral_and_db_exclude_each_other(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "litecoord", "serve", "--ephemeral", "--db", str(tmp_path / "x.db")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2 and "--ephemeral" in result.stderr
    assert not (tmp_path / "x.db").exists()


# -- the docs' JUnit-style flow (docs/testing.md), run as it is written ----------------------------------

TESTING_PAGE = Path(__file__).resolve().parents[1] / "docs" / "testing.md"


def docs_flow() -> str:
    text = TESTING_PAGE.read_text(encoding="utf-8")
    section = text[text.index("## Clients in any language") :]
    match = re.search(r"```bash\n(.*?)```", section, re.S)
    assert match, "docs/testing.md has no bash block under 'Clients in any language'"
    return match.group(1)


def test_the_docs_curl_flow_runs_as_written() -> None:
    if not shutil.which("curl") or not shutil.which("bash"):
        if os.environ.get("CI"):
            pytest.fail("curl and bash are needed to run the docs' flow")
        pytest.skip("curl or bash is not installed")
    flow = docs_flow()
    # What the page says each request answers: "# NNN {...}", the status, then pieces of the body.
    comments = re.findall(r"^# (\d{3}) (\{.*\})", flow, re.M)
    promised = [int(code) for code, _ in comments]
    assert promised == [201, 200, 200, 410, 200]
    bin_dir = os.path.dirname(sys.executable)  # where pip put the litecoord command
    result = subprocess.run(
        ["bash", "-c", flow],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")},
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()  # each answer: its body, then its status
    answers = list(zip(lines[0::2], lines[1::2], strict=True))
    assert [int(code) for _, code in answers] == promised, result.stdout
    for (_, shown), (body, _) in zip(comments, answers, strict=True):
        for piece in shown.split("..."):
            assert piece.strip(",") in body, f"the page shows {piece!r}; the server sent {body}"
    created, lease, moved, renewed, taken = (json.loads(body) for body, _ in answers)
    assert created["status"] == "pending" and lease["work_item"]["worker_id"] == "worker-a"
    assert moved["now"] > lease["work_item"]["lease_expiry"]
    assert renewed["code"] == "lease_expired"
    assert taken["work_item"]["worker_id"] == "worker-b" and taken["lease_epoch"] == 2
    db = Path(re.search(r"serving (\S+) on ", result.stderr).group(1))  # type: ignore[union-attr]
    assert not db.parent.exists()  # the temporary database went with the server


def test_the_document_with_the_test_clock_is_valid_openapi(db_path: Path) -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    app = create_app(db_path, test_clock=True)
    validator.validate(app.openapi)
    assert {op["operationId"] for op in app.openapi["paths"][CLOCK].values()} == {"getTestClock", "moveTestClock"}
