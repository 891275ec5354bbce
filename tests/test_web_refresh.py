"""What the status page's refreshes cost on the wire: ETag/If-None-Match (304) and gzip.

The page itself is tested in a real browser in test_web_page.py (it sends
If-None-Match and stops polling in a hidden tab); benchmarks/page.py measures
the bytes a tab moves in an hour.
"""

from __future__ import annotations

import gzip
from datetime import timedelta
from pathlib import Path

import pytest
from browser_support import OK, populate
from rest_support import call

from litecoord import FakeClock, SqliteCoordinator, create_app

OVERVIEW = "/sessions/demo/backfill/overview?limit=25"


@pytest.fixture
def root(db_path: Path, clock: FakeClock) -> SqliteCoordinator:
    coord = SqliteCoordinator(db_path, clock=clock, durability="normal")
    populate(coord, clock)
    return coord


def test_a_read_that_did_not_change_is_answered_304_without_a_body(root: SqliteCoordinator, clock: FakeClock) -> None:
    app = create_app(root)
    first = call(app, "GET", OVERVIEW)
    tag = first.headers["ETag"]
    assert first.status == 200 and tag.startswith('W/"')
    again = call(app, "GET", OVERVIEW, headers={"If-None-Match": tag})
    assert (again.status, again.raw, again.headers["ETag"]) == (304, b"", tag)
    assert "Content-Length" not in again.headers and "Content-Type" not in again.headers
    # Ages and flags are judged at the server's time: when it moves, the body changes.
    clock.advance(seconds=1)
    moved = call(app, "GET", OVERVIEW, headers={"If-None-Match": tag})
    assert moved.status == 200 and moved.headers["ETag"] != tag
    # So does a completion, at the same instant.
    tag = moved.headers["ETag"]
    root.bind(session="demo", worker_id="worker-logs-0").complete_work_item(OK)
    assert call(app, "GET", OVERVIEW, headers={"If-None-Match": tag}).status == 200
    # Any of several tags, weak or strong spelling.
    latest = call(app, "GET", OVERVIEW).headers["ETag"]
    assert call(app, "GET", OVERVIEW, headers={"If-None-Match": f'"x", {latest[2:]}'}).status == 304


def test_a_finished_session_stays_304_while_only_the_clock_moves(db_path: Path, clock: FakeClock) -> None:
    coord = SqliteCoordinator(db_path, session="done", worker_id="w", clock=clock, durability="normal")
    coord.create_work_items([{"work_item_id": "a", "document_count": 10}])
    lease = coord.acquire_next_work_item(timedelta(minutes=5))
    clock.advance(seconds=30)
    coord.update_progress_and_renew_lease(lease.work_item_id, 10, 100)  # type: ignore[union-attr]
    coord.complete_work_item("a")
    app = create_app(coord)
    for path in ("/sessions/done/backfill/overview", "/sessions/", "/sessions/done/backfill/work-items/status"):
        first = call(app, "GET", path)
        clock.advance(minutes=10)
        later = call(app, "GET", path, headers={"If-None-Match": first.headers["ETag"]})
        assert later.status == 304, path
    assert call(app, "GET", "/sessions/done/backfill/overview").json["as_of"] != first.json["as_of"]


def test_reads_are_gzipped_for_clients_that_ask(root: SqliteCoordinator) -> None:
    app = create_app(root)
    plain = call(app, "GET", OVERVIEW)
    packed = call(app, "GET", OVERVIEW, headers={"Accept-Encoding": "gzip, deflate, br"})
    assert "Content-Encoding" not in plain.headers and plain.headers["Vary"] == "Accept-Encoding"
    assert packed.headers["Content-Encoding"] == "gzip" and packed.headers["Vary"] == "Accept-Encoding"
    assert gzip.decompress(packed.raw) == plain.raw
    assert int(packed.headers["Content-Length"]) == len(packed.raw) < len(plain.raw) / 3
    assert packed.headers["ETag"] == plain.headers["ETag"]  # one resource, whatever its encoding
    refused = call(app, "GET", OVERVIEW, headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert "Content-Encoding" not in refused.headers
    # Small answers, writes and the Java client's GET acquire (a write) are sent as they are, untagged.
    small = call(app, "GET", "/health", headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in small.headers and "ETag" in small.headers
    gz = {"Accept-Encoding": "gzip"}
    acquire = call(app, "GET", "/sessions/demo/backfill/work-items/acquire?worker_id=j", headers=gz)
    assert acquire.status in (200, 404) and "ETag" not in acquire.headers
    post = call(app, "POST", "/sessions/demo/backfill/work-items/cleanup-expired", headers={"Accept-Encoding": "gzip"})
    assert post.status == 200 and "ETag" not in post.headers


def test_the_page_and_its_files_are_revalidated_not_sent_again(root: SqliteCoordinator) -> None:
    app = create_app(root)
    for path in ("/", "/ui/app.js", "/ui/app.css"):
        first = call(app, "GET", path, headers={"Accept-Encoding": "gzip"})
        assert first.headers["Content-Encoding"] == "gzip", path
        again = call(app, "GET", path, headers={"If-None-Match": first.headers["ETag"]})
        assert again.status == 304 and again.raw == b"", path
        assert again.headers["X-Content-Type-Options"] == "nosniff"
