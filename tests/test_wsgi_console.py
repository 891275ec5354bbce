"""The console routes over HTTP, request by request: shapes the status page relies on, and bad input.

(What the calls do is pinned on every backend by test_conformance_console.py;
here the wire: paths, bodies, statuses, and the 404 ``reason: paused`` that
existing console clients read as "no work".)
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rest_support import call

from litecoord import FakeClock, create_app
from litecoord.rest.wsgi import App

BACKFILL = "/sessions/s1/backfill"
ITEMS = BACKFILL + "/work-items"


@pytest.fixture
def app(db_path: Path, clock: FakeClock) -> App:
    app = create_app(db_path, clock=clock)
    yield app
    app.root.close()


def acquire(app: App, worker: str) -> tuple[int, dict]:
    reply = call(app, "GET", f"{ITEMS}/acquire?worker_id={worker}")
    return reply.status, reply.json


def test_paused_acquire_is_a_404_no_work_with_reason_paused_and_resume_hands_out_again(app: App) -> None:
    assert call(app, "POST", f"{ITEMS}/batch", [{"work_item_id": "a"}, {"work_item_id": "b"}]).status == 201
    assert acquire(app, "w1")[0] == 200
    reply = call(app, "POST", f"{BACKFILL}/pause")
    assert reply.status == 200 and reply.json["paused"] is True and reply.json["paused_at"].endswith("Z")
    status, body = acquire(app, "w2")
    assert status == 404
    assert (body["code"], body["reason"], body["paused"], body["remaining_work_items"]) == (
        "no_available_work", "paused", True, 2,
    )  # fmt: skip
    assert call(app, "GET", f"{ITEMS}/status").json["paused"] is True
    reply = call(app, "POST", f"{BACKFILL}/resume")
    assert reply.json == {"session_name": "s1", "paused": False, "paused_at": None}
    assert acquire(app, "w2")[0] == 200


def test_history_workers_and_failures_answer_the_documented_shapes(app: App) -> None:
    call(app, "POST", f"{ITEMS}/batch", [{"work_item_id": "a/b"}, {"work_item_id": "c"}])
    for _ in range(2):
        _, lease = acquire(app, "w1")
        name = lease["work_item"]["work_item_id"]
        path = f"{ITEMS}/{name.replace('/', '%2F')}/fail"
        assert call(app, "POST", path, {"worker_id": "w1", "error": f"shard {len(name)} failed: 429"}).status == 200
    history = call(app, "GET", f"{ITEMS}/a%2Fb/history").json
    assert history["work_item_id"] == "a/b"
    assert [(a["lease_epoch"], a["worker_id"], a["outcome"]) for a in history["attempts"]] == [(1, "w1", "failed")]
    assert history["attempts"][0]["error"] == "shard 3 failed: 429"
    workers = call(app, "GET", f"{BACKFILL}/workers").json["workers"]
    assert [(w["worker_id"], w["failed"], w["current_work_item_id"]) for w in workers] == [("w1", 2, None)]
    failures = call(app, "GET", f"{BACKFILL}/failures").json
    assert (failures["failed"], failures["retrying"]) == (0, 2)
    assert [(g["error_pattern"], g["count"]) for g in failures["groups"]] == [("shard N failed: N", 2)]
    assert call(app, "GET", f"{ITEMS}/nope/history").json["code"] == "work_item_not_found"


def test_bulk_retry_takes_a_group_or_everything_and_refuses_a_bad_body(app: App, clock: FakeClock) -> None:
    call(app, "PUT", "/sessions/s1", {"max_attempts": 1})
    call(app, "POST", f"{ITEMS}/batch", [{"work_item_id": n} for n in ("a", "b", "c")])
    for n in ("a", "b", "c"):
        call(app, "POST", f"{ITEMS}/{n}/acquire", {"worker_id": "w"})
        call(app, "POST", f"{ITEMS}/{n}/fail", {"worker_id": "w", "error": "boom" if n == "c" else f"{n!r} is bad"})
    reply = call(app, "POST", f"{BACKFILL}/failures/retry", {"error_pattern": "'z' is bad"})
    assert reply.json == {"retried": 2, "work_item_ids": ["a", "b"]}
    for bad, field in (({"error_pattern": 5}, "error_pattern"), ({"colour": "red"}, "colour")):
        reply = call(app, "POST", f"{BACKFILL}/failures/retry", bad)
        assert (reply.status, reply.json["field"]) == (422, field)
    assert call(app, "POST", f"{BACKFILL}/failures/retry").json == {"retried": 1, "work_item_ids": ["c"]}
    assert call(app, "POST", "/sessions/typo/backfill/pause").json["code"] == "session_not_found"
