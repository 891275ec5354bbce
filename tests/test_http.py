"""The HTTP client backend and the real waitress server.

The conformance suite (test_conformance.py, backends "http-wsgi" and
"http-server") proves the client keeps every semantic of the core; this file
covers what only the HTTP path has: retries, lost responses, transports,
authentication, raw URIs through a real server, concurrency, and serving.
"""

from __future__ import annotations

import http.client
import inspect
import json
import socket
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from litecoord import (
    AuthenticationError,
    Coordinator,
    FakeClock,
    HttpCoordinator,
    LeaseConflictError,
    LitecoordError,
    NoAvailableWorkToBeDone,
    SqliteCoordinator,
    ValidationError,
    WorkItemAndDuration,
    WorkItemNotFoundError,
    create_app,
)
from litecoord.backends.http import CoordinatorUnreachableError, RequestNotSentError, WsgiTransport
from litecoord.rest.server import SWITCH_INTERVAL, Server, make_server, serve


@pytest.fixture
def server(db_path: Path, clock: FakeClock) -> Iterator[Server]:
    with make_server(db_path, port=0, clock=clock, threads=8, durability="normal") as srv:
        srv.start()
        yield srv


class FlakyTransport:
    """Wraps a transport; the listed calls fail with ``error`` before or after reaching the server."""

    def __init__(self, inner: Any, fail_on: set[int], error: BaseException, *, after_server: bool) -> None:
        self.inner = inner
        self.fail_on = fail_on
        self.error = error
        self.after_server = after_server
        self.calls: list[tuple[str, str]] = []
        self.reached_server = 0

    def request(self, method: str, target: str, headers: Any, body: bytes | None) -> tuple[int, bytes]:
        n = len(self.calls)
        self.calls.append((method, target))
        if n in self.fail_on and not self.after_server:
            raise self.error
        result = self.inner.request(method, target, headers, body)
        self.reached_server += 1
        if n in self.fail_on:
            raise self.error  # the server acted, but the response was lost on the way back
        return result

    def close(self) -> None:
        pass


def in_process(db_path: Path, clock: FakeClock, worker: str = "w1", **kwargs: Any) -> tuple[HttpCoordinator, Any]:
    app = create_app(db_path, clock=clock)
    return HttpCoordinator("http://testserver", session="s1", worker_id=worker, **kwargs), app


# -- the protocol ----------------------------------------------------------------------------


def protocol_methods() -> list[str]:
    return [name for name, value in vars(Coordinator).items() if callable(value) and not name.startswith("_")]


def test_http_coordinator_implements_every_protocol_method_with_the_same_signature() -> None:
    assert len(protocol_methods()) >= 20
    for name in protocol_methods():
        ours = inspect.signature(getattr(HttpCoordinator, name))
        theirs = inspect.signature(getattr(Coordinator, name))
        assert list(ours.parameters) == list(theirs.parameters), name
        for param in theirs.parameters.values():
            assert ours.parameters[param.name].kind == param.kind, (name, param.name)
            assert ours.parameters[param.name].default == param.default, (name, param.name)
    coordinator = HttpCoordinator("http://127.0.0.1:9", session="s", worker_id="w")
    assert isinstance(coordinator, Coordinator)
    assert (coordinator.session, coordinator.worker_id) == ("s", "w")


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda c: c.get_work_item(""), "work_item_id"),
        (lambda c: c.get_work_item("x" * 513), "work_item_id"),
        (lambda c: c.create_unassigned_work_item(5), "work_item_id"),
        (lambda c: c.create_work_item_with_metadata("a", None, "0", None, None), "shard_number"),
        (
            lambda c: c.create_work_items([{"work_item_id": "a"}, {"work_item_id": "b", "shard_number": -1}]),
            "items[1].shard_number",
        ),  # fmt: skip
        (lambda c: c.create_work_items({"work_item_id": "a"}), "items"),
        (lambda c: c.acquire_next_work_item(timedelta(0)), "lease_duration"),
        (lambda c: c.update_progress_and_renew_lease("a", documents_processed=-1), "documents_processed"),
        (lambda c: c.complete_work_item("a", lease_epoch=-2), "lease_epoch"),
        (lambda c: c.fail_work_item("a", 42), "error"),
        (lambda c: c.create_successor_work_items_and_mark_complete("a", "b"), "successor_work_item_ids"),
        (lambda c: c.create_successor_work_items_and_mark_complete("a", ["a"]), "successor_work_item_ids[0]"),
        (lambda c: c.create_successor_work_items_and_mark_complete("a", []), "successor_work_item_ids"),
        (lambda c: c.list_work_items("bogus"), "status"),
        (lambda c: c.setup(lease_mode="bogus"), "lease_mode"),
    ],
)
def test_bad_arguments_raise_the_same_validation_error_as_the_embedded_backend(
    db_path: Path, clock: FakeClock, call: Any, field: str
) -> None:
    http_coord, app = in_process(db_path, clock)
    http_coord.transport = WsgiTransport(app)
    embedded = SqliteCoordinator(db_path, session="s1", worker_id="w1", clock=clock)
    embedded.create_unassigned_work_item("a")
    embedded.acquire_next_work_item()
    errors = []
    for coordinator in (embedded, http_coord):
        with pytest.raises(ValidationError) as info:
            call(coordinator)
        errors.append((type(info.value), info.value.field, str(info.value)))
    assert errors[0] == errors[1]
    assert errors[0][1] == field


def test_constructor_checks_its_arguments() -> None:
    for kwargs, field in [
        ({"base_url": "ftp://x"}, "base_url"),
        ({"base_url": "localhost:8000"}, "base_url"),
        ({"session": ""}, "session"),
        ({"worker_id": "w" * 300}, "worker_id"),
        ({"retries": -1}, "retries"),
        ({"timeout": 0}, "timeout"),
    ]:
        args = {"base_url": "http://127.0.0.1:8000", **kwargs}
        with pytest.raises(ValidationError) as info:
            HttpCoordinator(**args)
        assert info.value.field == field


def test_default_worker_id_is_host_and_pid() -> None:
    coordinator = HttpCoordinator("http://127.0.0.1:9", session="s")
    assert coordinator.worker_id.endswith(f"-{__import__('os').getpid()}")


def test_bind_shares_the_transport(db_path: Path, clock: FakeClock) -> None:
    coordinator, app = in_process(db_path, clock, transport=None)
    coordinator.transport = WsgiTransport(app)
    other = coordinator.bind(session="s2", worker_id="w9")
    assert other.transport is coordinator.transport
    assert (other.session, other.worker_id) == ("s2", "w9")
    other.create_unassigned_work_item("x")
    assert other.acquire_next_work_item().work_item.worker_id == "w9"


# -- retries and lost responses ----------------------------------------------------------------


def test_acquire_whose_response_was_lost_is_retried_and_returns_the_same_lease(db_path: Path, clock: FakeClock) -> None:
    app = create_app(db_path, clock=clock)
    flaky = FlakyTransport(WsgiTransport(app), {0}, ConnectionResetError("reset"), after_server=True)
    coordinator = HttpCoordinator("http://testserver", session="s1", worker_id="w1", transport=flaky)
    SqliteCoordinator(db_path, session="s1", clock=clock).create_work_items(
        [{"work_item_id": "a"}, {"work_item_id": "b"}]
    )

    lease = coordinator.acquire_next_work_item()

    assert flaky.reached_server == 2  # the first acquire did lease an item; its answer was lost
    assert isinstance(lease, WorkItemAndDuration) and lease.lease_epoch == 1
    items = {i.work_item_id: i for i in SqliteCoordinator(db_path, session="s1", clock=clock).list_work_items()}
    assert items[lease.work_item_id].worker_id == "w1" and items[lease.work_item_id].lease_epoch == 1
    assert [i.status.value for i in items.values()].count("assigned") == 1  # nothing stranded


def test_renew_and_complete_survive_lost_responses(db_path: Path, clock: FakeClock) -> None:
    app = create_app(db_path, clock=clock)
    flaky = FlakyTransport(WsgiTransport(app), {2, 4}, TimeoutError("timed out"), after_server=True)
    coordinator = HttpCoordinator("http://testserver", session="s1", worker_id="w1", transport=flaky)
    coordinator.create_unassigned_work_item("a")
    coordinator.acquire_next_work_item()
    item = coordinator.update_progress_and_renew_lease("a", 10, 20)  # call 2 lost, call 3 retried
    assert (item.documents_processed, item.bytes_processed) == (10, 20)
    done = coordinator.complete_work_item("a")  # call 4 lost, call 5 retried
    assert done.status.value == "completed"
    assert len(flaky.calls) == 6


def test_calls_whose_answer_would_change_are_not_resent_after_reaching_the_server(
    db_path: Path, clock: FakeClock
) -> None:
    app = create_app(db_path, clock=clock)
    flaky = FlakyTransport(WsgiTransport(app), {0}, ConnectionResetError("reset"), after_server=True)
    coordinator = HttpCoordinator("http://testserver", session="s1", worker_id="w1", transport=flaky)
    with pytest.raises(CoordinatorUnreachableError) as info:
        coordinator.create_unassigned_work_item("a")
    assert isinstance(info.value, ConnectionError) and isinstance(info.value, LitecoordError)
    assert len(flaky.calls) == 1  # not resent: a second create would wrongly report "already existed"
    assert coordinator.get_work_item("a").work_item_id == "a"


def test_requests_that_never_left_are_resent_even_when_not_idempotent(db_path: Path, clock: FakeClock) -> None:
    app = create_app(db_path, clock=clock)
    flaky = FlakyTransport(WsgiTransport(app), {0, 1}, RequestNotSentError("stale keep-alive"), after_server=False)
    coordinator = HttpCoordinator("http://testserver", session="s1", worker_id="w1", transport=flaky)
    assert coordinator.create_unassigned_work_item("a") is True
    assert len(flaky.calls) == 3 and flaky.reached_server == 1


def test_retries_are_bounded(db_path: Path, clock: FakeClock) -> None:
    app = create_app(db_path, clock=clock)
    flaky = FlakyTransport(WsgiTransport(app), set(range(10)), RequestNotSentError("down"), after_server=False)
    coordinator = HttpCoordinator("http://testserver", session="s1", worker_id="w1", transport=flaky, retries=2)
    with pytest.raises(CoordinatorUnreachableError, match="down"):
        coordinator.status()
    assert len(flaky.calls) == 3


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_server_that_is_not_there_raises_coordinator_unreachable() -> None:
    coordinator = HttpCoordinator(f"http://127.0.0.1:{free_port()}", session="s", worker_id="w", retries=1)
    with pytest.raises(CoordinatorUnreachableError, match="cannot reach"):
        coordinator.acquire_next_work_item()
    with pytest.raises(OSError):  # also a ConnectionError, for generic handlers
        coordinator.create_unassigned_work_item("a")


class CannedTransport:
    def __init__(self, status: int, body: bytes) -> None:
        self.status, self.body = status, body

    def request(self, method: str, target: str, headers: Any, body: bytes | None) -> tuple[int, bytes]:
        return self.status, self.body

    def close(self) -> None:
        pass


def test_answers_that_are_not_the_api_raise_unreachable_not_a_parse_error() -> None:
    proxy = HttpCoordinator("http://x", session="s", transport=CannedTransport(502, b"<html>Bad Gateway</html>"))
    with pytest.raises(CoordinatorUnreachableError, match="502"):
        proxy.status()
    wrong = HttpCoordinator("http://x", session="s", transport=CannedTransport(404, b'{"message": "nope"}'))
    with pytest.raises(CoordinatorUnreachableError, match="404"):
        wrong.acquire_next_work_item()


def test_route_404_is_not_mistaken_for_no_work_or_a_missing_item(server: Server) -> None:
    wrong_prefix = HttpCoordinator(server.url + "/api", session="s1", worker_id="w1")
    with pytest.raises(LitecoordError) as info:
        wrong_prefix.acquire_next_work_item()
    assert not isinstance(info.value, WorkItemNotFoundError)
    assert info.value.code == "not_found" and info.value.http_status == 404


# -- against a real server --------------------------------------------------------------------


def test_server_reports_its_port_and_url(server: Server) -> None:
    assert server.effective_port > 0
    assert server.url == f"http://127.0.0.1:{server.effective_port}"


def test_ids_with_slashes_spaces_and_unicode_survive_a_real_server(server: Server) -> None:
    coordinator = HttpCoordinator(server.url, session="team/s 1", worker_id="w1")
    ids = ["logs/2024/01", "with space", "ünïcødé-索引", "100%", "status", "..", "a?b#c", "index__0__0"]
    assert len(coordinator.create_work_items([{"work_item_id": i} for i in ids])) == len(ids)
    for item_id in ids:
        assert coordinator.get_work_item(item_id).work_item_id == item_id
        assert coordinator.create_or_update_lease_for_work_item(item_id).work_item_id == item_id
        assert coordinator.complete_work_item(item_id).status.value == "completed"
    raw = http.client.HTTPConnection("127.0.0.1", server.effective_port, timeout=10)
    raw.request("GET", "/sessions/team%2Fs%201/backfill/work-items/logs%2F2024%2F01")
    reply = raw.getresponse()
    assert reply.status == 200 and json.loads(reply.read())["work_item_id"] == "logs/2024/01"
    raw.close()


def test_lease_expiry_through_a_real_server_follows_the_fake_clock(server: Server, clock: FakeClock) -> None:
    w1 = HttpCoordinator(server.url, session="s1", worker_id="w1")
    w2 = HttpCoordinator(server.url, session="s1", worker_id="w2")
    w1.create_unassigned_work_item("a")
    w1.acquire_next_work_item(timedelta(minutes=5))
    assert isinstance(w2.acquire_next_work_item(), NoAvailableWorkToBeDone)
    with pytest.raises(LeaseConflictError):
        w2.complete_work_item("a")
    clock.advance(minutes=6)
    assert w2.acquire_next_work_item().work_item.worker_id == "w2"


def test_sixteen_concurrent_clients_share_the_work_without_lock_errors(db_path: Path, clock: FakeClock) -> None:
    with make_server(db_path, port=0, clock=clock, threads=8, durability="normal") as srv:
        srv.start()
        setup = HttpCoordinator(srv.url, session="s1", worker_id="setup")
        setup.create_work_items([{"work_item_id": f"idx__{n}__0", "document_count": 10} for n in range(96)])
        done: list[tuple[str, str]] = []
        errors: list[BaseException] = []
        start = threading.Barrier(16)

        def worker(n: int) -> None:
            coordinator = HttpCoordinator(srv.url, session="s1", worker_id=f"w{n}")
            try:
                start.wait()
                while True:
                    outcome = coordinator.acquire_next_work_item()
                    if isinstance(outcome, NoAvailableWorkToBeDone):
                        if outcome.all_work_done:
                            return
                        continue  # others hold the rest; they are about to complete
                    coordinator.update_progress_and_renew_lease(outcome.work_item_id, 5, 50)
                    coordinator.complete_work_item(outcome.work_item_id, lease_epoch=outcome.lease_epoch)
                    done.append((outcome.work_item_id, coordinator.worker_id))
            except BaseException as exc:  # collected: an assertion in a thread would be lost
                errors.append(exc)
            finally:
                coordinator.close()

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert errors == []
        counts = Counter(item for item, _ in done)
        assert len(counts) == 96 and set(counts.values()) == {1}  # every item completed exactly once
        assert len({w for _, w in done}) > 1
        status = setup.status()
        assert status.completed_work_items == 96 and status.total_documents_processed == 960


def test_more_kept_alive_clients_than_waitress_default_limit_are_all_served(server: Server) -> None:
    # waitress stops accepting at 100 connections by default; each worker keeps one open.
    # With retries=0 and a short timeout, a stalled accept fails this test instead of waiting it out.
    coordinators = [
        HttpCoordinator(server.url, session="s1", worker_id=f"w{n}", timeout=5, retries=0) for n in range(150)
    ]
    coordinators[0].create_work_items([{"work_item_id": f"i{n}"} for n in range(150)])
    leased = {c.acquire_next_work_item().work_item_id for c in coordinators}
    assert len(leased) == 150
    for coordinator in coordinators:
        coordinator.close()


def test_a_restarted_server_is_reached_through_a_stale_keep_alive_connection(db_path: Path, clock: FakeClock) -> None:
    first = make_server(db_path, port=0, clock=clock, threads=2).start()
    port = first.effective_port
    coordinator = HttpCoordinator(first.url, session="s1", worker_id="w1", retries=1)
    coordinator.create_unassigned_work_item("a")  # leaves a kept-alive connection open
    first.close()
    with make_server(db_path, port=port, clock=clock, threads=2) as second:
        second.start()
        # Not idempotent, yet safely resent: the old connection was dead before the request left.
        assert coordinator.create_unassigned_work_item("b") is True
        assert [i.work_item_id for i in coordinator.list_work_items()] == ["a", "b"]


def test_bearer_token_through_a_real_server(db_path: Path, clock: FakeClock) -> None:
    with make_server(db_path, port=0, clock=clock, token="s3cret", threads=2) as srv:
        srv.start()
        with pytest.raises(AuthenticationError):
            HttpCoordinator(srv.url, session="s1", worker_id="w1").status()
        with pytest.raises(AuthenticationError):
            HttpCoordinator(srv.url, session="s1", worker_id="w1", token="wrong").status()
        authorized = HttpCoordinator(srv.url, session="s1", worker_id="w1", token="s3cret")
        assert authorized.list_sessions() == []
        health = http.client.HTTPConnection("127.0.0.1", srv.effective_port, timeout=10)
        health.request("GET", "/health")
        assert health.getresponse().status == 200
        health.close()


# -- serving -------------------------------------------------------------------------------------


def test_close_stops_a_server_wherever_it_runs(db_path: Path) -> None:
    on_user_thread = make_server(db_path, port=0, threads=2)
    thread = threading.Thread(target=on_user_thread.run)
    thread.start()
    assert HttpCoordinator(on_user_thread.url, session="s1").list_sessions() == []
    on_user_thread.close()
    thread.join(10)
    assert not thread.is_alive()
    never_served = make_server(db_path, port=0, threads=2).start()
    never_served.close()  # at once, maybe before its thread entered run()
    for server in (on_user_thread, never_served):
        with pytest.raises(ConnectionRefusedError):  # the listening socket is closed
            socket.create_connection(("127.0.0.1", server.effective_port), timeout=5)


def test_a_running_server_shortens_the_thread_switch_interval_and_restores_it(db_path: Path) -> None:
    before = sys.getswitchinterval()
    server = make_server(db_path, port=0, threads=2)
    assert server.switch_interval == SWITCH_INTERVAL < before
    server.start()
    try:
        HttpCoordinator(server.url, session="s1").list_sessions()  # the loop is running
        assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL)
    finally:
        server.close()
    assert sys.getswitchinterval() == pytest.approx(before)
    left_alone = make_server(db_path, port=0, threads=2, switch_interval=None).start()
    try:
        HttpCoordinator(left_alone.url, session="s1").list_sessions()
        assert sys.getswitchinterval() == pytest.approx(before)
    finally:
        left_alone.close()
    # Two servers in one process: the first to stop leaves the second its interval.
    first, second = make_server(db_path, port=0, threads=2).start(), make_server(db_path, port=0, threads=2).start()
    try:
        for running in (first, second):
            HttpCoordinator(running.url, session="s1").list_sessions()
        first.close()
        assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL)
    finally:
        first.close()
        second.close()
    assert sys.getswitchinterval() == pytest.approx(before)
    for bad in (0, -1, "fast", True):
        with pytest.raises(ValidationError) as err:
            make_server(db_path, port=0, switch_interval=bad)  # type: ignore[arg-type]
        assert err.value.field == "switch_interval"


def test_missing_waitress_gives_a_friendly_install_hint(monkeypatch: pytest.MonkeyPatch, db_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "waitress", None)
    monkeypatch.setitem(sys.modules, "waitress.server", None)
    with pytest.raises(ImportError, match=r"pip install 'litecoord\[server\]'"):
        make_server(db_path, port=0)


def test_serve_announces_the_url_and_returns_on_ctrl_c(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], db_path: Path
) -> None:
    ran: list[int] = []

    def interrupted(self: Server) -> None:
        ran.append(self.effective_port)
        raise KeyboardInterrupt

    monkeypatch.setattr(Server, "run", interrupted)
    serve(db_path, port=0, token="t", threads=2)
    assert ran and ran[0] > 0
    err = capsys.readouterr().err
    assert f"http://127.0.0.1:{ran[0]}" in err and "bearer token" in err


def test_serve_keeps_the_cli_keyword_names() -> None:
    params = inspect.signature(serve).parameters
    assert list(params)[:3] == ["db_path", "host", "port"]
    assert {"token", "threads"} <= set(params)
    assert params["host"].default == "127.0.0.1"  # loopback unless told otherwise


# -- several interchangeable servers -----------------------------------------------------------


def test_several_base_urls_as_a_list_or_comma_separated() -> None:
    listed = HttpCoordinator(["http://a:1", "http://b:2/api/"], session="s", worker_id="w")
    joined = HttpCoordinator(" http://a:1 ,http://b:2/api/", session="s", worker_id="w")
    assert listed.base_urls == joined.base_urls == ("http://a:1", "http://b:2/api")
    assert listed.base_url == "http://a:1"  # the first, until another one answers
    assert "http://a:1,http://b:2/api" in repr(joined)
    for bad, named in [("http://a:1,ftp://b", "'ftp://b'"), ("http://a:1,", "''"), ([], "at least one")]:
        with pytest.raises(ValidationError, match=named) as info:
            HttpCoordinator(bad, session="s")
        assert info.value.field == "base_url"
    with pytest.raises(ValidationError) as info:
        HttpCoordinator("http://a:1,http://b:2", session="s", transport=CannedTransport(200, b"{}"))
    assert info.value.field == "transport"


def test_a_dead_server_is_skipped_and_the_one_that_answered_is_remembered(db_path: Path, clock: FakeClock) -> None:
    first = make_server(db_path, port=0, clock=clock, threads=2, durability="normal").start()
    second = make_server(db_path, port=0, clock=clock, threads=2, durability="normal").start()
    dead = f"http://127.0.0.1:{free_port()}"
    coordinator = HttpCoordinator([dead, first.url, second.url], session="s1", worker_id="w1", retries=0)
    try:
        # Refused: provably never sent, so even a create moves on to the next server.
        assert coordinator.create_unassigned_work_item("a") is True
        assert coordinator.base_url == first.url
        lease = coordinator.acquire_next_work_item()
        assert isinstance(lease, WorkItemAndDuration) and lease.lease_epoch == 1

        first.close()  # mid-lease: the kept-alive connection to it is now dead too
        renewed = coordinator.update_progress_and_renew_lease("a", 5, lease_epoch=1)
        assert (renewed.documents_processed, coordinator.base_url) == (5, second.url)
        bound = coordinator.bind(worker_id="w2")
        assert bound.base_url == second.url  # bind copies share what was learned
        done = coordinator.complete_work_item("a", lease_epoch=1)
        assert (done.status.value, done.worker_id, done.lease_epoch) == ("completed", "w1", 1)
    finally:
        coordinator.close()
        second.close()
    assert SqliteCoordinator(db_path, session="s1", clock=clock).get_work_item("a").status.value == "completed"


def test_a_lost_answer_is_resent_to_the_next_server_only_when_safe(db_path: Path, clock: FakeClock) -> None:
    app = create_app(db_path, clock=clock)
    SqliteCoordinator(db_path, session="s1", clock=clock).create_work_items([{"work_item_id": "a"}])
    lost = FlakyTransport(WsgiTransport(app), {0, 1}, ConnectionResetError("reset"), after_server=True)
    other = FlakyTransport(WsgiTransport(app), set(), ConnectionResetError("unused"), after_server=True)
    coordinator = HttpCoordinator(["http://one", "http://two"], session="s1", worker_id="w1", transport=[lost, other])

    lease = coordinator.acquire_next_work_item()  # reached server one, answer lost: asked again of server two
    assert isinstance(lease, WorkItemAndDuration) and lease.lease_epoch == 1
    assert (lost.reached_server, other.reached_server, coordinator.base_url) == (1, 1, "http://two")

    coordinator._servers.current = 0
    with pytest.raises(CoordinatorUnreachableError, match="http://one"):
        coordinator.fail_work_item("a", "boom")  # reached server one: a resend would count a second failure
    assert other.reached_server == 1  # not resent anywhere
    assert coordinator.get_work_item("a").failure_count == 1


def test_failover_retries_are_bounded_per_server(db_path: Path, clock: FakeClock) -> None:
    app = create_app(db_path, clock=clock)
    down = [FlakyTransport(WsgiTransport(app), set(range(9)), RequestNotSentError("down"), after_server=False)
            for _ in range(3)]  # fmt: skip
    urls = ["http://one", "http://two", "http://three"]
    coordinator = HttpCoordinator(urls, session="s1", worker_id="w1", transport=down, retries=1)
    with pytest.raises(CoordinatorUnreachableError, match="any of http://one, http://two, http://three"):
        coordinator.status()
    assert [len(t.calls) for t in down] == [2, 2, 2]
