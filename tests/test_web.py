"""The status page's server side: its files, its data request, the flags, the metrics.

The page itself is tested in a real browser in test_web_page.py.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from browser_support import FAILED, LAPSED, OK, SILENT, STALLED, populate
from click.testing import CliRunner
from rest_support import call

from litecoord import FakeClock, SqliteCoordinator, create_app
from litecoord.cli import commands
from litecoord.rest.ui import ASSETS

prometheus_client = pytest.importorskip("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

AUTH = {"Authorization": "Bearer s3cret"}


@pytest.fixture
def root(db_path: Path, clock: FakeClock) -> SqliteCoordinator:
    coord = SqliteCoordinator(db_path, clock=clock, durability="normal")
    populate(coord, clock)
    return coord


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_the_page_and_its_files_load_without_the_token_and_hold_no_data(root: SqliteCoordinator) -> None:
    app = create_app(root, token="s3cret")
    page = call(app, "GET", "/?session=demo")
    assert page.status == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert b"demo" not in page.raw and b"logs__" not in page.raw  # the data comes with the token only
    for name, content_type in ASSETS.items():
        asset = call(app, "GET", f"/ui/{name}")
        assert (asset.status, asset.headers["Content-Type"]) == (200, content_type)
        # Nothing is fetched from elsewhere: the only URL is the SVG namespace (a name, never loaded).
        assert set(re.findall(rb"https?://[^\s\"'`)]+", asset.raw)) <= {b"http://www.w3.org/2000/svg"}
    assert call(app, "GET", "/ui/other.js").status == 404
    for path in ("/sessions/demo/backfill/overview", "/metrics", "/sessions/demo/backfill/attention?kind=failed"):
        assert call(app, "GET", path).status == 401, path
        assert call(app, "GET", path, headers=AUTH).status == 200, path


def test_overview_flags_each_kind_of_trouble_at_the_servers_time(root: SqliteCoordinator) -> None:
    view = call(create_app(root), "GET", "/sessions/demo/backfill/overview").json
    flags = {item["work_item_id"]: item["flags"] for item in view["leased"]["items"] + view["failed"]["items"]}
    assert flags == {OK: [], STALLED: ["stalled"], SILENT: ["silent"], LAPSED: ["lapsed"], FAILED: ["failed"]}
    assert view["leased"]["items"][0]["work_item_id"] == LAPSED  # lapsed leases lead
    assert view["counts"] == {"leased": 4, "live": 3, "lapsed": 1, "silent": 1, "stalled": 1, "failed": 1}
    status = call(create_app(root), "GET", "/sessions/demo/backfill/work-items/status").json
    assert status.pop("session_exists") is True  # /status's own field (the overview 404s on an unknown session)
    assert view["status"] == status
    silent = next(i for i in view["leased"]["items"] if i["work_item_id"] == SILENT)
    assert silent["heartbeat_age_seconds"] == 110.0 and silent["lease_remaining_seconds"] == 190.0
    by_index = {i["index_name"]: i for i in view["indexes"]}
    assert by_index["logs"]["completed_work_items"] == 3 and by_index["orders"]["failed_work_items"] == 1
    assert len(view["samples"]) >= 10


def test_overview_pages_and_counts_every_lease(root: SqliteCoordinator) -> None:
    app = create_app(root)
    first = call(app, "GET", "/sessions/demo/backfill/overview?limit=1").json
    assert len(first["leased"]["items"]) == 1 and first["leased"]["total"] == 4
    assert first["counts"]["stalled"] == 1 and first["counts"]["silent"] == 1  # counted beyond the page
    cursor = first["leased"]["next_cursor"]
    second = call(app, "GET", f"/sessions/demo/backfill/overview?limit=1&leased_after={cursor}").json
    assert second["leased"]["items"][0]["work_item_id"] != first["leased"]["items"][0]["work_item_id"]
    bad = call(app, "GET", "/sessions/demo/backfill/overview?limit=0")
    assert (bad.status, bad.json["field"]) == (422, "limit")
    assert call(app, "GET", "/sessions/demo/backfill/overview?leased_after=x").json["field"] == "after"
    stalls = call(app, "GET", "/sessions/demo/backfill/overview?stall_after_seconds=1000").json
    assert stalls["counts"]["stalled"] == 0


def test_metrics_report_the_status_figures_and_the_flags(root: SqliteCoordinator) -> None:
    app = create_app(root, token="s3cret")
    status = call(app, "GET", "/sessions/demo/backfill/work-items/status", headers=AUTH).json
    reply = call(app, "GET", "/metrics", headers=AUTH)
    assert reply.headers["Content-Type"].startswith("text/plain")
    got = samples(reply.raw.decode())

    def items(state: str) -> float:
        return got[("litecoord_work_items", (("session", "demo"), ("status", state)))]

    assert items("completed") == status["completed_work_items"] == 3
    assert items("assigned") == status["assigned_work_items"] == 3
    assert items("lease_expired") == status["expired_lease_work_items"] == 1
    assert items("failed") == 1
    assert sum(items(s) for s in ("pending", "assigned", "lease_expired", "completed", "failed")) == 14
    one = (("session", "demo"),)
    assert got[("litecoord_documents_processed_total", one)] == status["total_documents_processed"]
    assert got[("litecoord_bytes_processed_total", one)] == status["total_bytes_processed"]
    assert got[("litecoord_stalled_items", one)] == 1
    assert got[("litecoord_silent_items", one)] == 1
    assert got[("litecoord_lease_expired_items", one)] == 1
    assert got[("litecoord_retrying_items", one)] == status["retrying_work_items"] == 0
    # Failed attempts, counted from the history: a retry does not take one back.
    assert got[("litecoord_work_item_failures_total", one)] == 1
    assert got[("litecoord_session_paused", one)] == 0
    root.bind(session="demo").retry_work_item(FAILED)
    root.bind(session="demo").pause()
    later = samples(call(app, "GET", "/metrics", headers=AUTH).raw.decode())
    assert later[("litecoord_work_item_failures_total", one)] == 1 and later[("litecoord_session_paused", one)] == 1
    # When the figures last moved, as Unix time; what runs, as labels of a constant 1.
    moved = datetime.fromisoformat(status["last_update"].replace("Z", "+00:00")).timestamp()
    assert got[("litecoord_last_progress_timestamp_seconds", one)] == moved
    from litecoord import __version__

    build = [labels for (name, labels), value in got.items() if name == "litecoord_build_info" and value == 1]
    assert len(build) == 1 and dict(build[0])["version"] == __version__
    # The status request above was counted, by route template; so was the refused one.
    call(app, "GET", "/metrics")
    again = samples(call(app, "GET", "/metrics", headers=AUTH).raw.decode())
    status_route = (("code", "200"), ("route", "/sessions/{session}/backfill/work-items/status"))
    assert again[("litecoord_http_requests_total", status_route)] == 1
    assert again[("litecoord_http_requests_total", (("code", "401"), ("route", "/metrics")))] == 1
    durations = (("route", "/sessions/{session}/backfill/work-items/status"),)
    assert again[("litecoord_http_request_duration_seconds_count", durations)] == 1


def test_request_metrics_from_many_threads_are_all_counted_and_never_pile_up(root: SqliteCoordinator) -> None:
    # Requests are counted into the series in batches (when read, or when enough wait): every
    # one of them must be there when read, and a server nobody scrapes must not grow.
    import threading

    from litecoord.metrics import ServerMetrics

    metrics = ServerMetrics(root)
    per_thread, threads = 2_000, 8

    def serve(n: int) -> None:
        for i in range(per_thread):
            metrics.observe(f"/route-{n % 2}", 200 if i % 4 else 404, 0.003)

    workers = [threading.Thread(target=serve, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(metrics._pending) <= metrics.PENDING_LIMIT
    got = samples(metrics.render().decode())
    total = sum(v for (name, _), v in got.items() if name == "litecoord_http_requests_total")
    assert total == per_thread * threads
    assert got[("litecoord_http_requests_total", (("code", "404"), ("route", "/route-0")))] == per_thread
    counts = [got[("litecoord_http_request_duration_seconds_count", (("route", f"/route-{r}"),))] for r in (0, 1)]
    assert counts == [per_thread * threads / 2] * 2
    buckets = (("le", "0.005"), ("route", "/route-1"))
    assert got[("litecoord_http_request_duration_seconds_bucket", buckets)] == per_thread * threads / 2
    assert not metrics._pending


def test_status_prometheus_prints_the_same_text_for_a_textfile_collector(
    root: SqliteCoordinator, db_path: Path
) -> None:
    result = CliRunner().invoke(commands.cli, ["status", "--db", str(db_path), "--prometheus"])
    assert result.exit_code == 0, result.output
    got = samples(result.output)
    served = samples(call(create_app(root), "GET", "/metrics").raw.decode())
    # The CLI reads the wall clock, the server the fake one: compare what does not depend on time.
    for key in (
        ("litecoord_work_items", (("session", "demo"), ("status", "completed"))),
        ("litecoord_work_items", (("session", "demo"), ("status", "failed"))),
        ("litecoord_documents_processed_total", (("session", "demo"),)),
    ):
        assert got[key] == served[key]
    assert not any(name.startswith("litecoord_http") for name, _ in got)
    bad = CliRunner().invoke(commands.cli, ["status", "--db", str(db_path), "--prometheus", "--json"])
    assert bad.exit_code == 2


def test_index_aggregates_are_kept_a_while_longer_the_longer_they_took(root: SqliteCoordinator) -> None:
    from litecoord.monitor import IndexCache

    now = [0.0]
    calls: list[str] = []

    class Slow:
        session = "demo"

        def index_progress(self) -> list:
            calls.append("scan")
            now[0] += 0.5  # each scan takes half a second
            return [len(calls)]

    cache = IndexCache(min_age=2.0, share=20.0, clock=lambda: now[0])
    assert cache.get(Slow()) == [1]
    now[0] += 9.0
    assert cache.get(Slow()) == [1]  # kept 20 x 0.5 s = 10 s
    now[0] += 1.1
    assert cache.get(Slow()) == [2]
    assert len(calls) == 2
    # A changed session is scanned again once share x took has passed, not before: meanwhile the
    # aggregates say which time they are of.
    now[0] += 10.0
    assert cache.lookup(Slow(), version="v1", as_of="t1") == ([3], "t1")
    now[0] += 1.0
    assert cache.lookup(Slow(), version="v1", as_of="t2") == ([3], "t2")  # unchanged: current
    assert cache.lookup(Slow(), version="v2", as_of="t3") == ([3], "t1")  # changed, too soon: t1's figures
    now[0] += 9.0
    assert cache.lookup(Slow(), version="v2", as_of="t4") == ([4], "t4")


def test_demo_serve_shows_the_demo_on_the_page_while_it_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("waitress")
    import threading
    import time
    import urllib.request

    import litecoord.rest.server as server_module
    from litecoord.cli.demo import run_demo

    servers: list[Any] = []
    real = server_module.make_server
    monkeypatch.setattr(server_module, "make_server", lambda *a, **kw: servers.append(real(*a, **kw)) or servers[-1])
    codes: list[int] = []
    demo = threading.Thread(
        target=lambda: codes.append(
            run_demo(str(tmp_path / "demo.db"), workers=3, items=6, lease=2, serve_port=0, hold=False)
        )
    )
    demo.start()
    seen = None
    deadline = time.monotonic() + 60
    while seen is None and demo.is_alive() and time.monotonic() < deadline:
        if servers:  # the server starts before the demo creates its items
            with urllib.request.urlopen(servers[0].url + "/sessions/demo/backfill/overview", timeout=10) as reply:
                view = json.loads(reply.read())
            if view["status"]["total_work_items"]:
                seen = view
                with urllib.request.urlopen(servers[0].url + "/?session=demo", timeout=10) as reply:
                    assert b"ui/app.js" in reply.read()
        if seen is None:
            time.sleep(0.05)  # polls for the server and the items to appear; no lease is waited out
    demo.join(timeout=120)
    assert codes == [0]
    # The 6 shards and the giant one, created in one batch (the splits come later).
    assert seen is not None and seen["status"]["total_work_items"] == 7
    assert f"watch it at {servers[0].url}/?session=demo" in capsys.readouterr().err


def test_an_item_taken_over_from_a_dead_worker_is_not_taken_for_stalled(db_path: Path, clock: FakeClock) -> None:
    from datetime import timedelta

    from litecoord.monitor import item_flags

    coord = SqliteCoordinator(db_path, session="s", worker_id="dead", clock=clock, durability="normal")
    coord.create_work_items([{"work_item_id": "x", "document_count": 100}])
    coord.acquire_next_work_item(timedelta(seconds=30))
    coord.update_progress_and_renew_lease("x", 40, 0)  # progress moves once, then the worker dies
    clock.advance(seconds=120)
    heir = coord.bind(worker_id="heir")
    heir.acquire_next_work_item(timedelta(seconds=300))  # resumes at 40 documents
    clock.advance(seconds=10)
    heir.update_progress_and_renew_lease("x", 40, 0)  # a heartbeat, no progress yet
    assert item_flags(heir.get_work_item("x"), clock()) == []
    clock.advance(seconds=55)
    heir.update_progress_and_renew_lease("x", 40, 0)
    assert item_flags(heir.get_work_item("x"), clock()) == ["stalled"]  # 65 s without progress under this lease


def test_items_waiting_to_retry_are_counted_in_the_metrics(db_path: Path, clock: FakeClock) -> None:
    coord = SqliteCoordinator(db_path, session="r", worker_id="w", clock=clock, durability="normal")
    coord.setup(max_attempts=3)
    coord.create_work_items([{"work_item_id": "x"}, {"work_item_id": "y"}])
    coord.acquire_next_work_item()
    coord.fail_work_item(coord.list_work_items("assigned")[0].work_item_id, "boom")  # back to pending, to retry
    got = samples(call(create_app(coord), "GET", "/metrics").raw.decode())
    assert got[("litecoord_retrying_items", (("session", "r"),))] == coord.status().retrying_work_items == 1


def test_the_session_summaries_hold_each_sessions_status_and_flag_counts(root: SqliteCoordinator) -> None:
    root.bind(session="other", worker_id="w").create_work_items([{"work_item_id": "x"}])
    app = create_app(root)
    summary = call(app, "GET", "/sessions/summary").json
    by_name = {s["session_name"]: s for s in summary["sessions"]}
    assert list(by_name) == ["demo", "other"]
    status = call(app, "GET", "/sessions/demo/backfill/work-items/status").json
    assert by_name["demo"]["status"] == {k: v for k, v in status.items() if k != "session_exists"}
    assert by_name["demo"]["counts"] == {"leased": 4, "live": 3, "lapsed": 1, "silent": 1, "stalled": 1}
    assert by_name["other"]["status"]["total_work_items"] == 1 and summary["as_of"]


def test_health_says_whether_a_token_is_needed_so_the_page_need_not_be_refused_first(root: SqliteCoordinator) -> None:
    assert call(create_app(root, token="s3cret"), "GET", "/health").json["token_required"] is True
    assert call(create_app(root), "GET", "/health").json["token_required"] is False


def test_the_index_figures_agree_with_the_leases_in_the_same_overview(
    root: SqliteCoordinator, clock: FakeClock
) -> None:
    app = create_app(root)
    path = "/sessions/demo/backfill/overview"

    def in_progress(view: dict[str, Any], index: str) -> tuple[int, int]:
        row = next(i for i in view["indexes"] if i["index_name"] == index)
        leases = [i for i in view["leased"]["items"] if i["index_name"] == index and "lapsed" not in i["flags"]]
        return row["assigned_work_items"] - row["lapsed_work_items"], len(leases)

    first = call(app, "GET", path).json
    assert in_progress(first, "logs") == (2, 2) and first["indexes_as_of"] == first["as_of"]
    root.bind(session="demo", worker_id="worker-logs-0").complete_work_item(OK)  # within the cache's 5 s
    after = call(app, "GET", path).json
    assert in_progress(after, "logs") == (1, 1) and after["indexes_as_of"] == after["as_of"]
    clock.advance(seconds=250)  # the silent customers lease lapses with time alone
    later = call(app, "GET", path).json
    assert in_progress(later, "customers") == (0, 0)
    assert next(i for i in later["indexes"] if i["index_name"] == "customers")["lapsed_work_items"] == 2


def test_overview_sends_only_the_samples_after_the_newest_one_the_page_holds(root: SqliteCoordinator) -> None:
    app = create_app(root)
    path = "/sessions/demo/backfill/overview"
    full = call(app, "GET", path).json
    assert full["samples_complete"] is True and len(full["samples"]) >= 10
    assert full["samples_first"] == full["samples"][0]["sampled_at"]
    held = full["samples"][-3]["sampled_at"]
    newer = call(app, "GET", f"{path}?samples_after={held}").json
    assert newer["samples_complete"] is False and newer["samples"] == full["samples"][-2:]
    # A sample the server no longer holds (or never had): everything again.
    unknown = call(app, "GET", f"{path}?samples_after=2000-01-01T00:00:00Z").json
    assert unknown["samples_complete"] is True and unknown["samples"] == full["samples"]
    bad = call(app, "GET", f"{path}?samples_after=yesterday")
    assert (bad.status, bad.json["field"]) == (422, "samples_after")


def test_the_coverage_audit_of_a_finished_session_is_in_the_metrics(db_path: Path, clock: FakeClock) -> None:
    coord = SqliteCoordinator(db_path, session="cov", worker_id="w", clock=clock, durability="normal")
    coord.setup(max_attempts=1)
    coord.create_work_items([{"work_item_id": f"logs__{n}__0", "document_count": 100} for n in range(3)])
    app = create_app(coord)
    one = (("session", "cov"),)
    running = samples(call(app, "GET", "/metrics").raw.decode())
    assert ("litecoord_coverage_gaps", one) not in running  # while work remains, no audit is read
    for _ in range(2):
        lease = coord.acquire_next_work_item()
        coord.update_progress_and_renew_lease(lease.work_item_id, 100)
        coord.complete_work_item(lease.work_item_id)
    coord.fail_work_item(coord.acquire_next_work_item().work_item_id, "gone")  # parked: the session is finished
    done = samples(call(app, "GET", "/metrics").raw.decode())
    assert (done[("litecoord_coverage_gaps", one)], done[("litecoord_coverage_ok", one)]) == (1, 0)
    text = CliRunner().invoke(commands.cli, ["status", "--db", str(db_path), "--prometheus"]).output
    assert samples(text)[("litecoord_coverage_gaps", one)] == 1
    coord.retry_work_item("logs__2__0")
    coord.complete_work_item(coord.acquire_next_work_item().work_item_id)
    again = samples(call(app, "GET", "/metrics").raw.decode())  # the audit is read again once the session moved
    assert (again[("litecoord_coverage_gaps", one)], again[("litecoord_coverage_ok", one)]) == (0, 1)


def test_the_failures_metric_reads_the_history_only_when_the_session_moved(
    make: Any, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from litecoord.metrics import ServerMetrics

    coord = make(worker_id="w", session="s")
    # Every read of the session's history for the metric, whichever way the backend offers it.
    reads: list[str] = []
    for name in ("list_workers", "_failed_attempts"):
        real = getattr(type(coord), name, None)
        if real is not None:
            counted = lambda self, real=real, name=name: (reads.append(name), real(self))[1]  # noqa: E731
            monkeypatch.setattr(type(coord), name, counted)
    coord.create_work_items([{"work_item_id": "a"}, {"work_item_id": "b"}])
    metrics = ServerMetrics(coord)
    one = (("session", "s"),)

    def failures() -> float:
        return samples(metrics.render().decode())[("litecoord_work_item_failures_total", one)]

    lease = coord.acquire_next_work_item()
    coord.fail_work_item(lease.work_item_id, "boom")
    assert failures() == 1 and len(reads) == 1
    clock.advance(60)
    assert failures() == 1 and len(reads) == 1  # nothing moved: the history is not read again
    clock.advance(60)  # past the retry delay
    lease = coord.acquire_next_work_item()
    assert failures() == 1 and len(reads) == 2  # a lease moved the figures: read again
    coord.fail_work_item(lease.work_item_id, "boom again")
    assert failures() == 2 and len(reads) == 3
    assert failures() == 2 and len(reads) == 3
    # Deleted and made again under the same name: counted from its own (empty) history.
    coord.delete_session()
    coord.create_work_items([{"work_item_id": "a"}])
    assert failures() == 0 and len(reads) == 4
