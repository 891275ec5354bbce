"""Serving safely by default (issue 10, section 4): no path on /health, no tokenless network exposure,
JSON-only bodies, loopback-only Host and Origin for a tokenless loopback server, one token rule."""

from __future__ import annotations

import http.client
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from rest_support import BASE, call

from litecoord import FakeClock, HttpCoordinator, ValidationError, WorkCoordinationConfig, create_app
from litecoord.cli import cli


@pytest.fixture
def app(db_path: Path, clock: FakeClock) -> Any:
    app = create_app(db_path, clock=clock)
    yield app
    app.root.close()


def test_health_never_names_the_database_path(db_path: Path, clock: FakeClock) -> None:
    app = create_app(db_path, clock=clock)
    assert call(app, "GET", "/health").status == 200
    app.root.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    db_path.write_bytes(b"not a database " * 512)  # the file went bad under a running server
    reply = call(app, "GET", "/health")
    assert reply.status == 503 and reply.json["code"] == "database_unavailable"
    assert str(db_path.parent) not in reply.raw.decode() and db_path.name not in reply.raw.decode()
    app.root.close()


def test_error_answers_never_name_the_database_path_but_the_log_does(
    db_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(db_path, clock=clock)
    assert call(app, "POST", f"{BASE}/batch", [{"work_item_id": "a"}]).status == 201
    app.root.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    db_path.write_bytes(b"not a database " * 512)  # the file went bad under a running server
    requests = [
        ("GET", f"{BASE}/status", None), ("GET", "/sessions/", None), ("GET", f"{BASE}/work-items", None),
        ("POST", f"{BASE}/batch", [{"work_item_id": "b"}]), ("POST", f"{BASE}/acquire?worker_id=w", None),
    ]  # fmt: skip
    with caplog.at_level("ERROR", logger="litecoord.rest.wsgi"):
        for method, uri, body in requests:
            reply = call(app, method, uri, body)
            text = reply.raw.decode()
            assert reply.status >= 500 and reply.json["code"] and reply.json["detail"], (uri, text)
            assert str(db_path.parent) not in text and db_path.name not in text and "path" not in reply.json, text
    assert str(db_path) in caplog.text  # the operator still learns which file failed
    app.root.close()


def test_a_body_must_be_json(app: Any) -> None:
    items = b'[{"work_item_id": "injected"}]'
    for content_type in (None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        headers = {} if content_type is None else {"Content-Type": content_type}
        reply = call(app, "POST", f"{BASE}/batch", raw=items, headers=headers)
        assert reply.status == 415 and reply.json["code"] == "unsupported_media_type", content_type
    assert call(app, "GET", f"{BASE}/status").json["session_exists"] is False  # nothing was written
    ok = call(app, "POST", f"{BASE}/batch", raw=items, headers={"Content-Type": "application/json; charset=utf-8"})
    assert ok.status == 201
    # Bodiless requests need no content type (curl's cleanup POST, the Java client's GET).
    assert call(app, "POST", f"{BASE}/cleanup-expired").status == 200
    assert call(app, "GET", f"{BASE}/acquire?worker_id=w", headers={"Content-Type": "application/json"}).status == 200
    chunked = call(app, "POST", f"{BASE}/batch", raw=items, chunked=True, headers={"Transfer-Encoding": "chunked"})
    assert chunked.status == 415


@pytest.mark.parametrize("host", ["localhost:8000", "127.0.0.1:8000", "[::1]:8000", "127.8.9.1", "LOCALHOST", "::1"])
def test_a_local_only_app_accepts_loopback_hosts(db_path: Path, clock: FakeClock, host: str) -> None:
    app = create_app(db_path, clock=clock, local_only=True)
    assert call(app, "GET", "/sessions/", headers={"Host": host}).status == 200
    # The server's own page (same scheme, host and port) may write; another loopback origin may not.
    other = {"Host": host, "Origin": "http://localhost:3000"}
    assert call(app, "POST", f"{BASE}/batch", [{"work_item_id": "a"}], headers=other).status == 403
    own = "[::1]" if host == "::1" else host  # a browser brackets an IPv6 address in Host and Origin
    origin = {"Host": own, "Origin": f"http://{own}"}
    assert call(app, "POST", f"{BASE}/batch", [{"work_item_id": "a"}], headers=origin).status == 201
    app.root.close()


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({"Host": "attacker.example:8000"}, "forbidden_host"),  # DNS rebinding: the page's own name
        ({"Host": "192.168.1.20:8000"}, "forbidden_host"),
        ({"Host": "localhost.attacker.example"}, "forbidden_host"),
        ({"Host": "127.0.0.1:8000", "Origin": "http://attacker.example"}, "forbidden_origin"),
        ({"Host": "127.0.0.1:8000", "Origin": "null"}, "forbidden_origin"),
    ],
)
def test_a_local_only_app_refuses_other_hosts_and_origins(
    db_path: Path, clock: FakeClock, headers: dict[str, str], code: str
) -> None:
    app = create_app(db_path, clock=clock, local_only=True)
    reply = call(app, "POST", f"{BASE}/batch", [{"work_item_id": "a"}], headers=headers)
    assert reply.status == 403 and reply.json["code"] == code
    assert call(app, "GET", "/sessions/", headers={"Host": "localhost"}).json == []  # nothing was written
    app.root.close()


def test_a_tokenless_loopback_server_checks_the_host_and_clients_still_work(db_path: Path) -> None:
    from litecoord.rest.server import make_server

    with make_server(db_path, "127.0.0.1", 0, threads=2) as server:
        server.start()
        assert server.app.local_only
        coord = HttpCoordinator(server.url, session="s", worker_id="w")
        assert coord.create_unassigned_work_item("a") and coord.status().total_work_items == 1
        conn = http.client.HTTPConnection("127.0.0.1", server.effective_port, timeout=10)
        conn.request("GET", "/sessions/", headers={"Host": f"rebound.attacker.example:{server.effective_port}"})
        assert conn.getresponse().status == 403
        conn.close()
    with make_server(db_path, "127.0.0.1", 0, threads=2, token="s3cret") as server:
        assert not server.app.local_only  # the token is the protection there


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "example.com"])
def test_a_non_loopback_address_needs_a_token_or_trust_network(db_path: Path, host: str) -> None:
    from litecoord.rest.server import check_exposure, make_server

    with pytest.raises(ValidationError) as err:
        make_server(db_path, host, 0)
    assert err.value.field == "host" and "--trust-network" in str(err.value)
    assert check_exposure(host, "s3cret", False) is False
    assert check_exposure(host, None, True) is False
    assert check_exposure("127.0.0.1", None, False) is True
    assert check_exposure("localhost", None, False) is True


def test_serve_refuses_an_open_network_address_in_one_line(tmp_path: Path) -> None:
    db = str(tmp_path / "x.db")
    env = {"LITECOORD_TOKEN": ""}
    result = CliRunner().invoke(cli, ["serve", "--db", db, "--host", "0.0.0.0", "--port", "0"], env=env)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "refusing to serve 0.0.0.0 without a token" in result.stderr
    assert "--trust-network" in CliRunner().invoke(cli, ["serve", "--help"]).output


@pytest.mark.parametrize("token", ["p\u00e4ssword", "two words", "tab\there", "\u30c8\u30fc\u30af\u30f3", ""])
def test_one_token_rule_for_server_client_config_and_cli(db_path: Path, token: str) -> None:
    with pytest.raises(ValidationError) as err:
        create_app(db_path, token=token)
    assert err.value.field == "token"
    if token:  # an empty token means none, on the client side
        with pytest.raises(ValidationError) as err:
            HttpCoordinator("http://127.0.0.1:9", session="s", token=token)
        assert err.value.field == "token"
        with pytest.raises(ValidationError):
            WorkCoordinationConfig.console("http://127.0.0.1:9", "s", token=token)
        result = CliRunner().invoke(cli, ["list", "--url", "http://127.0.0.1:9", "--token", token, "-s", "s"])
        assert result.exit_code == 2 and "token: must be printable ASCII" in result.stderr
        assert "Traceback" not in result.output and "UnicodeEncodeError" not in result.output
    assert create_app(db_path, token="Az09-._~+/=!#$%&*") is not None  # printable ASCII is fine
