"""The WSGI app, request by request: routes, bodies, every status code, bad input.

The app is called in-process with hand-built environs (see rest_support.call),
so these tests pin down the HTTP contract itself, including what the Java
console client sends.
"""

from __future__ import annotations

import logging
import re
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from rest_support import BASE, JSON_HEADERS, call

from litecoord import DatabaseBusyError, FakeClock, SqliteCoordinator, create_app
from litecoord.rest.wsgi import ROUTES, App

RFC3339_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
SEED_STATUS_KEYS = {
    "session_name", "total_work_items", "pending_work_items", "assigned_work_items", "completed_work_items",
    "total_documents", "total_documents_processed", "total_size_bytes", "total_bytes_processed",
    "started_at", "last_update",
}  # fmt: skip
SEED_ITEM_KEYS = {
    "work_item_id", "session_name", "status", "index_name", "shard_number", "document_count",
    "total_size_bytes", "worker_id", "lease_expiry", "documents_processed", "bytes_processed",
    "last_progress_update", "created_at", "started_at", "completed_at",
}  # fmt: skip
ITEM = {"work_item_id": "index1_shard0", "index_name": "my-index", "shard_number": 0,
        "document_count": 50000, "total_size_bytes": 1024000}  # fmt: skip


@pytest.fixture
def app(db_path: Path, clock: FakeClock) -> App:
    app = create_app(db_path, clock=clock)
    yield app
    app.root.close()


def create(app: App, *ids: str) -> None:
    reply = call(app, "POST", f"{BASE}/batch", [{"work_item_id": i} for i in ids], headers=JSON_HEADERS)
    assert reply.status == 201, reply.json


def acquire(app: App, worker: str = "worker-001", **query: Any) -> Any:
    extra = "".join(f"&{k}={v}" for k, v in query.items())
    return call(app, "GET", f"{BASE}/acquire?worker_id={worker}{extra}", headers=JSON_HEADERS)


def assert_error(reply: Any, status: int, code: str, field: str | None = None) -> dict[str, Any]:
    assert reply.status == status, (reply.status, reply.raw)
    assert reply.headers["Content-Type"] == "application/json"
    body = reply.json
    assert body["code"] == code, body
    assert isinstance(body["detail"], str) and body["detail"]
    assert "Traceback" not in body["detail"]
    if field is not None:
        assert body["field"] == field, body
    return body


# -- creating -------------------------------------------------------------------------


def test_create_returns_201_and_the_item_with_every_console_field(app: App) -> None:
    reply = call(app, "POST", f"{BASE}/", ITEM, headers=JSON_HEADERS)
    assert reply.status == 201
    item = reply.json
    assert SEED_ITEM_KEYS <= set(item)
    assert item["status"] == "pending" and item["session_name"] == "s1"
    assert {k: item[k] for k in ITEM} == ITEM
    assert RFC3339_Z.match(item["created_at"])


def test_create_existing_id_is_409_work_item_exists(app: App) -> None:
    assert call(app, "POST", f"{BASE}/", ITEM).status == 201
    body = assert_error(call(app, "POST", f"{BASE}/", ITEM), 409, "work_item_exists")
    assert body["work_item_id"] == "index1_shard0"


def test_create_without_trailing_slash_is_the_same_route(app: App) -> None:
    assert call(app, "POST", BASE, {"work_item_id": "x"}).status == 201
    assert [i["work_item_id"] for i in call(app, "GET", BASE).json] == ["x"]


def test_batch_returns_only_newly_created_items(app: App) -> None:
    create(app, "a")
    reply = call(app, "POST", f"{BASE}/batch", [{"work_item_id": "a"}, {"work_item_id": "b"}, {"work_item_id": "b"}])
    assert reply.status == 201
    assert [i["work_item_id"] for i in reply.json] == ["b"]


def test_batch_with_one_invalid_entry_names_it_and_creates_nothing(app: App) -> None:
    reply = call(app, "POST", f"{BASE}/batch", [{"work_item_id": "a"}, {"work_item_id": "b", "shard_number": -1}])
    assert_error(reply, 422, "validation_error", "items[1].shard_number")
    assert_error(call(app, "GET", f"{BASE}/"), 404, "session_not_found")  # not even the session exists


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"work_item_id": 5}, "work_item_id"),
        ({"work_item_id": ""}, "work_item_id"),
        ({"work_item_id": "x" * 513}, "work_item_id"),
        ({"work_item_id": "a\nb"}, "work_item_id"),
        ({}, "work_item_id"),
        ({"work_item_id": "x", "shard_number": "0"}, "shard_number"),
        ({"work_item_id": "x", "document_count": True}, "document_count"),
        ({"work_item_id": "x", "total_size_bytes": 2**64}, "total_size_bytes"),
        ({"work_item_id": "x", "colour": "red"}, "colour"),
        (["not", "an", "object"], "item"),
    ],
)
def test_create_with_invalid_fields_is_422_naming_the_field(app: App, body: Any, field: str) -> None:
    assert_error(call(app, "POST", f"{BASE}/", body), 422, "validation_error", field)


def test_create_with_no_body_is_422(app: App) -> None:
    assert call(app, "POST", f"{BASE}/", raw=b"", headers=JSON_HEADERS).status == 422


def test_batch_body_must_be_an_array(app: App) -> None:
    assert_error(call(app, "POST", f"{BASE}/batch", {"work_item_id": "a"}), 422, "validation_error", "body")


def test_overlong_session_name_is_422(app: App) -> None:
    uri = f"/sessions/{'s' * 129}/backfill/work-items/"
    assert_error(call(app, "POST", uri, {"work_item_id": "a"}), 422, "validation_error", "session")


# -- acquiring ------------------------------------------------------------------------


def test_acquire_is_a_get_with_json_content_type_and_no_body(app: App) -> None:
    create(app, "index__0__0")
    reply = acquire(app)
    assert reply.status == 200
    body = reply.json
    assert body["work_item"]["work_item_id"] == "index__0__0"
    assert body["work_item"]["status"] == "assigned" and body["work_item"]["worker_id"] == "worker-001"
    assert body["lease_duration_seconds"] == 300
    assert RFC3339_Z.match(body["work_item"]["lease_expiry"]) and body["lease_expiry"] == "2025-01-19T20:35:00Z"
    assert body["lease_epoch"] == body["work_item"]["lease_epoch"] == 1


def test_acquire_also_accepts_post_with_an_empty_body_or_json_fields(app: App) -> None:
    create(app, "a", "b")
    empty = call(app, "POST", f"{BASE}/acquire?worker_id=w1", raw=b"", headers=JSON_HEADERS)
    assert empty.status == 200 and empty.json["work_item"]["worker_id"] == "w1"
    body = call(app, "POST", f"{BASE}/acquire", {"worker_id": "w2", "lease_duration_seconds": 60})
    assert body.status == 200
    assert body.json["work_item"]["worker_id"] == "w2" and body.json["lease_duration_seconds"] == 60


def test_acquire_with_lease_duration_seconds(app: App) -> None:
    create(app, "a")
    assert acquire(app, lease_duration_seconds="90.5").json["lease_expiry"] == "2025-01-19T20:31:30.500000Z"


def test_acquire_retried_returns_the_held_lease(app: App) -> None:
    create(app, "a", "b")
    first, again = acquire(app).json, acquire(app).json
    assert again == first


def test_acquire_404_says_unknown_session_all_leased_or_none_remain(app: App, clock: FakeClock) -> None:
    # The Java client reads any 404 as "no work"; the code tells an unknown session from an empty queue.
    unknown = assert_error(acquire(app), 404, "session_not_found")
    assert unknown["session"] == "s1" and "reason" not in unknown
    create(app, "a")
    assert acquire(app, "w1").status == 200
    leased = acquire(app, "w2")
    assert leased.status == 404
    assert leased.json["reason"] == "all_leased" and leased.json["remaining_work_items"] == 1
    assert "leased" in leased.json["detail"]
    clock.advance(minutes=6)  # w1's lease lapses: w2 may take the item
    assert acquire(app, "w2").json["work_item"]["worker_id"] == "w2"
    assert call(app, "PUT", f"{BASE}/a/complete", "w2", headers=JSON_HEADERS).status == 200
    none = acquire(app, "w3")
    assert none.status == 404 and none.json["reason"] == "none_remain" and none.json["code"] == "no_available_work"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("", "worker_id"),
        ("?worker_id=", "worker_id"),
        ("?worker_id=w&lease_duration_seconds=abc", "lease_duration_seconds"),
        ("?worker_id=w&lease_duration_seconds=0", "lease_duration_seconds"),
        ("?worker_id=w&lease_duration_seconds=-5", "lease_duration_seconds"),
        ("?worker_id=w&lease_duration_seconds=nan", "lease_duration_seconds"),
        ("?worker_id=w&lease_duration_seconds=1e99", "lease_duration_seconds"),
        ("?worker_id=w&lease_duration_seconds=-inf", "lease_duration_seconds"),
        ("?worker_id=w&lease_duration_seconds=-1e999", "lease_duration_seconds"),
        ("?worker_id=w&lease_duration_seconds=-9223372036854775808000", "lease_duration_seconds"),
        ("?worker_id=w&lease_duration_seconds=Infinity", "lease_duration_seconds"),
    ],
)
def test_acquire_bad_query_is_422(app: App, query: str, field: str) -> None:
    assert_error(call(app, "GET", f"{BASE}/acquire{query}"), 422, "validation_error", field)


def test_named_lease_creates_leases_and_reports_already_completed(app: App) -> None:
    reply = call(app, "POST", f"{BASE}/shard_setup/acquire", {"worker_id": "w1"})
    assert reply.status == 200 and reply.json["work_item"]["worker_id"] == "w1"
    conflict = call(app, "POST", f"{BASE}/shard_setup/acquire?worker_id=w2", raw=b"")
    assert_error(conflict, 409, "lease_conflict")
    assert call(app, "PUT", f"{BASE}/shard_setup/complete", "w1").status == 200
    done = call(app, "POST", f"{BASE}/shard_setup/acquire", {"worker_id": "w2"})
    assert done.status == 200 and done.json["already_completed"] is True
    assert done.json["work_item"]["status"] == "completed"


# -- renewing -------------------------------------------------------------------------


def renew(app: App, item: str, body: Any) -> Any:
    return call(app, "PUT", f"{BASE}/{item}/lease", body, headers=JSON_HEADERS)


def test_renew_records_progress_and_extends_the_lease(app: App, clock: FakeClock) -> None:
    create(app, "a")
    acquire(app)
    clock.advance(minutes=4)
    reply = renew(
        app, "a", {"worker_id": "worker-001", "progress": {"documents_processed": 25000, "bytes_processed": 512000}}
    )
    assert reply.status == 200
    item = reply.json
    assert (item["documents_processed"], item["bytes_processed"]) == (25000, 512000)
    assert item["lease_expiry"] == "2025-01-19T20:39:00Z"
    assert item["last_progress_update"] == "2025-01-19T20:34:00Z"


def test_renew_without_progress_and_with_epoch_and_duration(app: App) -> None:
    create(app, "a")
    epoch = acquire(app).json["lease_epoch"]
    reply = renew(app, "a", {"worker_id": "worker-001", "lease_epoch": epoch, "lease_duration_seconds": 60})
    assert reply.status == 200 and reply.json["lease_expiry"] == "2025-01-19T20:31:00Z"
    assert_error(renew(app, "a", {"worker_id": "worker-001", "lease_epoch": epoch + 1}), 409, "lease_conflict")


def test_renew_statuses_404_409_410(app: App, clock: FakeClock) -> None:
    create(app, "a")
    acquire(app)
    assert_error(renew(app, "nope", {"worker_id": "worker-001"}), 404, "work_item_not_found")
    body = assert_error(renew(app, "a", {"worker_id": "intruder"}), 409, "lease_conflict")
    assert body["holder"] == "worker-001"
    clock.advance(minutes=6)
    assert_error(renew(app, "a", {"worker_id": "worker-001"}), 410, "lease_expired")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "worker_id"),
        ({"worker_id": 7}, "worker_id"),
        ({"worker_id": "worker-001", "progress": [1, 2]}, "progress"),
        ({"worker_id": "worker-001", "progress": {"documents_processed": "many"}}, "documents_processed"),
        ({"worker_id": "worker-001", "progress": {"documents_processed": -1}}, "documents_processed"),
        ({"worker_id": "worker-001", "progress": {"docs": 1}}, "progress.docs"),
        ({"worker_id": "worker-001", "lease_epoch": "1"}, "lease_epoch"),
        ({"worker_id": "worker-001", "lease_duration_seconds": "60"}, "lease_duration_seconds"),
        ({"worker_id": "worker-001", "extra": 1}, "extra"),
        ("worker-001", "body"),
    ],
)
def test_renew_bad_fields_are_422(app: App, body: Any, field: str) -> None:
    create(app, "a")
    acquire(app)
    assert_error(renew(app, "a", body), 422, "validation_error", field)


# -- completing -----------------------------------------------------------------------


def test_complete_with_a_bare_json_string_body(app: App) -> None:
    create(app, "index__0__0")
    acquire(app)
    reply = call(app, "PUT", f"{BASE}/index__0__0/complete", raw=b'"worker-001"', headers=JSON_HEADERS)
    assert reply.status == 200
    assert reply.json["status"] == "completed" and RFC3339_Z.match(reply.json["completed_at"])
    again = call(app, "PUT", f"{BASE}/index__0__0/complete", raw=b'"worker-001"', headers=JSON_HEADERS)
    assert again.status == 200 and again.json == reply.json


def test_complete_with_an_object_and_lease_epoch(app: App) -> None:
    create(app, "a")
    epoch = acquire(app).json["lease_epoch"]
    stale = call(app, "PUT", f"{BASE}/a/complete", {"worker_id": "worker-001", "lease_epoch": epoch + 1})
    assert_error(stale, 409, "lease_conflict")
    ok = call(app, "PUT", f"{BASE}/a/complete", {"worker_id": "worker-001", "lease_epoch": epoch})
    assert ok.status == 200 and ok.json["status"] == "completed"


def test_complete_with_final_figures_records_them_and_bad_ones_are_422_with_nothing_written(app: App) -> None:
    create(app, "a")
    epoch = acquire(app).json["lease_epoch"]
    for progress, field in [
        ({"docs": 1}, "progress.docs"),
        ({"documents_processed": -1}, "documents_processed"),
        ([600], "progress"),
    ]:
        bad = call(app, "PUT", f"{BASE}/a/complete", {"worker_id": "worker-001", "progress": progress})
        assert_error(bad, 422, "validation_error", field)
    assert call(app, "GET", f"{BASE}/a").json["status"] == "assigned"
    body = {"worker_id": "worker-001", "lease_epoch": epoch, "progress": {"documents_processed": 600}}
    ok = call(app, "PUT", f"{BASE}/a/complete", body)
    assert ok.status == 200 and (ok.json["status"], ok.json["documents_processed"]) == ("completed", 600)


def test_complete_statuses(app: App) -> None:
    create(app, "a")
    acquire(app)
    assert_error(call(app, "PUT", f"{BASE}/zzz/complete", "worker-001"), 404, "work_item_not_found")
    assert_error(call(app, "PUT", f"{BASE}/a/complete", "someone-else"), 409, "lease_conflict")
    assert_error(call(app, "PUT", f"{BASE}/a/complete", raw=b""), 422, "validation_error", "worker_id")
    assert_error(call(app, "PUT", f"{BASE}/a/complete", 42), 422, "validation_error", "body")
    assert_error(call(app, "PUT", f"{BASE}/a/complete", ""), 422, "validation_error", "worker_id")


# -- the other lease-holder calls ------------------------------------------------------


def test_release_fail_retry_and_successors(app: App) -> None:
    call(app, "PUT", "/sessions/s1", {"max_attempts": 1})
    create(app, "a", "b", "c")
    first = acquire(app, "w1").json["work_item"]["work_item_id"]
    released = call(app, "POST", f"{BASE}/{first}/release", {"worker_id": "w1"})
    assert released.status == 200 and released.json == {"work_item_id": first, "released": True}
    not_holder = call(app, "POST", f"{BASE}/{first}/release", {"worker_id": "w1"})
    assert not_holder.json["released"] is False

    item = acquire(app, "w1").json["work_item"]["work_item_id"]
    failed = call(app, "POST", f"{BASE}/{item}/fail", {"worker_id": "w1", "error": "boom"})
    assert failed.status == 200 and failed.json["status"] == "failed" and failed.json["last_error"] == "boom"
    retried = call(app, "POST", f"{BASE}/{item}/retry", raw=b"")
    assert retried.status == 200 and retried.json["status"] == "pending"

    lease = acquire(app, "w2").json
    parent = lease["work_item"]["work_item_id"]
    split = call(
        app,
        "POST",
        f"{BASE}/{parent}/successors",
        {"worker_id": "w2", "successor_work_item_ids": ["p__1", "p__2"], "lease_epoch": lease["lease_epoch"]},
    )
    assert split.status == 200 and split.json["status"] == "completed"
    assert split.json["successor_ids"] == ["p__1", "p__2"]
    assert call(app, "GET", f"{BASE}/p__2").json["parent_id"] == parent
    other = call(app, "POST", f"{BASE}/{parent}/successors", {"worker_id": "w2", "successor_work_item_ids": ["zz"]})
    assert_error(other, 409, "successor_conflict")


@pytest.mark.parametrize(
    ("action", "body", "field"),
    [
        ("fail", {"worker_id": "w1"}, "error"),
        ("fail", {"worker_id": "w1", "error": 3}, "error"),
        ("successors", {"worker_id": "w1"}, "successor_work_item_ids"),
        ("successors", {"worker_id": "w1", "successor_work_item_ids": "b"}, "successor_work_item_ids"),
        ("successors", {"worker_id": "w1", "successor_work_item_ids": ["a"]}, "successor_work_item_ids[0]"),
        ("successors", {"worker_id": "w1", "successor_work_item_ids": ["x,y"]}, "successor_work_item_ids[0]"),
        ("release", {"worker_id": "w1", "lease_epoch": -1}, "lease_epoch"),
        ("release", {}, "worker_id"),
        ("retry", {"worker_id": "w1"}, "worker_id"),
    ],
)
def test_holder_calls_reject_bad_bodies(app: App, action: str, body: Any, field: str) -> None:
    create(app, "a")
    acquire(app, "w1")
    assert_error(call(app, "POST", f"{BASE}/a/{action}", body), 422, "validation_error", field)


def test_holder_calls_on_unknown_items_are_404(app: App) -> None:
    create(app, "a")
    bodies = {
        "release": {"worker_id": "w"},
        "fail": {"worker_id": "w", "error": "e"},
        "retry": None,
        "successors": {"worker_id": "w", "successor_work_item_ids": ["b"]},
    }
    for action, body in bodies.items():
        assert_error(call(app, "POST", f"{BASE}/nope/{action}", body), 404, "work_item_not_found")


# -- reading and housekeeping --------------------------------------------------------------


def test_status_has_the_seed_fields_and_counts(app: App, clock: FakeClock) -> None:
    call(app, "POST", f"{BASE}/batch", [dict(ITEM), {**ITEM, "work_item_id": "index1_shard1", "shard_number": 1}])
    acquire(app)
    reply = call(app, "GET", f"{BASE}/status", headers=JSON_HEADERS)
    assert reply.status == 200
    body = reply.json
    assert SEED_STATUS_KEYS <= set(body)
    assert (body["total_work_items"], body["pending_work_items"], body["assigned_work_items"]) == (2, 1, 1)
    assert body["total_documents"] == 100000 and body["started_at"] == "2025-01-19T20:30:00Z"


def test_status_of_a_session_nobody_wrote_to_reads_as_an_empty_one(app: App) -> None:
    # The console's Java client calls /status first (RFS setup()) and needs a 200.
    fresh = call(app, "GET", "/sessions/never/backfill/work-items/status")
    assert fresh.status == 200 and fresh.json["session_exists"] is False
    assert call(app, "PUT", "/sessions/empty").status == 200  # setup: the session exists, with no items
    empty = call(app, "GET", "/sessions/empty/backfill/work-items/status").json
    assert empty["session_exists"] is True
    assert fresh.json == {**empty, "session_name": "never", "session_exists": False}  # the same zeros
    cleaned = call(app, "POST", "/sessions/never/backfill/work-items/cleanup-expired")
    assert (cleaned.status, cleaned.json) == (200, {"session_name": "never", "cleaned": 0, "session_exists": False})
    assert [s["session_name"] for s in call(app, "GET", "/sessions/").json] == ["empty"]  # reads created nothing
    create(app, "a")  # the session exists from its first item on
    status = call(app, "GET", f"{BASE}/status").json
    assert status["total_work_items"] == 1 and status["session_exists"] is True


def test_list_and_get_items(app: App) -> None:
    create(app, "a", "b")
    acquire(app)
    listed = call(app, "GET", f"{BASE}/", headers=JSON_HEADERS)
    assert listed.status == 200 and [i["work_item_id"] for i in listed.json] == ["a", "b"]
    assigned = call(app, "GET", f"{BASE}/?status=assigned").json
    assert [i["work_item_id"] for i in assigned] == ["a"]
    assert call(app, "GET", f"{BASE}/b").json["status"] == "pending"
    assert_error(call(app, "GET", f"{BASE}/nope"), 404, "work_item_not_found")
    assert_error(call(app, "GET", f"{BASE}/?status=bogus"), 422, "validation_error", "status")


def test_cleanup_expired_with_json_content_type_and_empty_body(app: App, clock: FakeClock) -> None:
    create(app, "a", "b")
    acquire(app)
    clock.advance(minutes=6)
    reply = call(app, "POST", f"{BASE}/cleanup-expired", raw=b"", headers=JSON_HEADERS)
    assert reply.status == 200 and reply.json["cleaned"] == 1
    assert call(app, "POST", f"{BASE}/cleanup-expired", raw=b"").json["cleaned"] == 0


def test_delete_removes_the_sessions_items(app: App) -> None:
    create(app, "a", "b")
    reply = call(app, "DELETE", f"{BASE}/")
    assert reply.status == 200 and reply.json["deleted"] == 2
    assert call(app, "GET", f"{BASE}/").json == []


def test_sessions_listing_and_setup(app: App) -> None:
    create(app, "a")
    setup = call(app, "PUT", "/sessions/s2", {"lease_mode": "exponential", "acquire_order": "fifo"})
    assert setup.status == 200 and setup.json["lease_mode"] == "exponential"
    assert call(app, "PUT", "/sessions/s2", raw=b"").json["acquire_order"] == "fifo"  # None keeps what is stored
    sessions = call(app, "GET", "/sessions/").json
    assert [s["session_name"] for s in sessions] == ["s1", "s2"]
    assert call(app, "GET", "/sessions").status == 200
    assert_error(call(app, "PUT", "/sessions/s2", {"lease_mode": "random"}), 422, "validation_error", "lease_mode")
    assert_error(call(app, "PUT", "/sessions/s2", {"max_attempts": 0}), 422, "validation_error", "max_attempts")


def test_health_and_openapi(app: App) -> None:
    health = call(app, "GET", "/health")
    assert health.status == 200 and health.json["status"] == "ok"
    doc = call(app, "GET", "/openapi.json")
    assert doc.status == 200 and doc.json["openapi"].startswith("3.")


def test_every_timestamp_in_a_lease_is_rfc3339_with_z(app: App) -> None:
    create(app, "a")
    lease = acquire(app).json
    renew(app, "a", {"worker_id": "worker-001", "progress": {"documents_processed": 1}})
    item = call(app, "GET", f"{BASE}/a").json
    keys = ("created_at", "started_at", "lease_expiry", "last_progress_update", "last_heartbeat")
    stamps = [lease["lease_expiry"], *(item[k] for k in keys)]
    assert all(RFC3339_Z.match(s) for s in stamps), stamps


# -- paths: percent-encoding ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("item_id", "encoded"),
    [
        ("logs/2024", "logs%2F2024"),
        ("with space", "with%20space"),
        ("ünïcødé-索引", "%C3%BCn%C3%AFc%C3%B8d%C3%A9-%E7%B4%A2%E5%BC%95"),
        ("100%", "100%25"),
        ("a?b#c", "a%3Fb%23c"),
        ("index__0__0", "index__0__0"),
        ("status", "%73tatus"),
        ("..", "%2E%2E"),
    ],
)
def test_percent_encoded_ids_round_trip(app: App, item_id: str, encoded: str) -> None:
    created = call(app, "POST", f"{BASE}/", {"work_item_id": item_id})
    assert created.status == 201
    got = call(app, "GET", f"{BASE}/{encoded}")
    assert got.status == 200 and got.json["work_item_id"] == item_id
    assert acquire(app).json["work_item"]["work_item_id"] == item_id
    done = call(app, "PUT", f"{BASE}/{encoded}/complete", "worker-001")
    assert done.status == 200 and done.json["work_item_id"] == item_id


def test_without_a_raw_uri_paths_fall_back_to_path_info(app: App) -> None:
    create(app, "with space", "ü")
    assert call(app, "GET", f"{BASE}/with%20space", raw_uri=False).json["work_item_id"] == "with space"
    assert call(app, "GET", f"{BASE}/%C3%BC", raw_uri=False).json["work_item_id"] == "ü"


def test_session_names_are_percent_decoded_too(app: App) -> None:
    reply = call(app, "POST", "/sessions/team%2Fmigration%201/backfill/work-items/", {"work_item_id": "a"})
    assert reply.status == 201 and reply.json["session_name"] == "team/migration 1"


def test_overlong_or_unprintable_ids_in_the_path_are_422(app: App) -> None:
    assert_error(call(app, "GET", f"{BASE}/{'x' * 513}"), 422, "validation_error", "work_item_id")
    assert_error(call(app, "PUT", f"{BASE}/a%0Ab/complete", "w"), 422, "validation_error", "work_item_id")


def test_invalid_utf8_in_the_path_or_query_is_400(app: App) -> None:
    assert_error(call(app, "GET", f"{BASE}/%FF%FE"), 400, "bad_request")
    assert_error(call(app, "GET", f"{BASE}/acquire?worker_id=%FF"), 400, "bad_request")


@pytest.mark.parametrize(
    "query",
    ["worker_id=w1", "worker_id=w1&lease_duration_seconds=30", "a=1&a=2", "a&b=", "=x&&a=b=c&", "worker_id=",
     "a;b=1", "worker_id=w%201", "worker_id=w+1", "worker_id=w%C3%A9", "worker_id=w\xc3\xa9", "a=1&a"],
)  # fmt: skip
def test_query_strings_read_as_parse_qs_reads_them(query: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from urllib.parse import parse_qs

    from litecoord.rest import request

    expected = {k: v[-1] for k, v in parse_qs(query.encode("latin-1").decode("utf-8"), keep_blank_values=True).items()}
    assert request._query({"QUERY_STRING": query}) == expected  # the last value of each name
    if query.isascii() and "%" not in query and "+" not in query:
        # Nothing escaped (the Java client's ?worker_id=W, on every acquire) needs no parse_qs at all.
        monkeypatch.setattr(request, "parse_qs", None)
        assert request._query({"QUERY_STRING": query}) == expected


# -- protocol errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [b"{", b'{"worker_id": }', b"\xff\xfe", b"NaN", b'{"a": Infinity}', b"[" * 100_000, b"'single'"],
)
def test_malformed_json_is_400(app: App, raw: bytes) -> None:
    create(app, "a")
    assert_error(call(app, "PUT", f"{BASE}/a/lease", raw=raw, headers=JSON_HEADERS), 400, "malformed_json")


def test_body_over_the_limit_is_413(db_path: Path, clock: FakeClock) -> None:
    app = create_app(db_path, clock=clock, max_body_bytes=1000)
    big = [{"work_item_id": f"item-{i}"} for i in range(100)]
    assert_error(call(app, "POST", f"{BASE}/batch", big), 413, "payload_too_large")
    assert_error(call(app, "POST", f"{BASE}/batch", big, chunked=True), 413, "payload_too_large")
    # Refused on the declared length alone, on any route, before reading the body.
    assert_error(call(app, "GET", f"{BASE}/status", raw=b"", content_length="5000"), 413, "payload_too_large")
    small = call(app, "POST", f"{BASE}/batch", big[:5], chunked=True)
    assert small.status == 201 and len(small.json) == 5


def test_bad_content_length_is_400(app: App) -> None:
    assert_error(call(app, "POST", f"{BASE}/", raw=b"{}", content_length="ten"), 400, "bad_request")


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", f"{BASE}/status", "GET"),
        ("PUT", f"{BASE}/acquire", "GET, POST"),
        ("GET", f"{BASE}/a/lease", "PUT"),
        ("POST", f"{BASE}/a/complete", "PUT"),
        ("PATCH", f"{BASE}/", "POST, GET, DELETE"),
        ("POST", "/health", "GET"),
        ("DELETE", "/sessions/", "GET"),
        ("GET", "/sessions/s1", "PUT"),
        ("GET", f"{BASE}/batch/release", "POST"),
    ],
)
def test_wrong_method_is_405_with_allow(app: App, method: str, path: str, allow: str) -> None:
    reply = call(app, method, path, raw=b"")
    body = assert_error(reply, 405, "method_not_allowed")
    assert reply.headers["Allow"] == allow
    assert body["allow"] == allow.split(", ")


@pytest.mark.parametrize(
    "path",
    ["/nope", "/ui/nope.js", "/sessions/s1/backfill", f"{BASE}/a/b/c", f"{BASE}/a/unknown-action", f"{BASE}//lease"],
)
def test_unknown_routes_are_404_not_found(app: App, path: str) -> None:
    assert_error(call(app, "GET", path), 404, "not_found")


#: Routes that answer in another format than JSON (the page, its assets, the metrics).
NOT_JSON = {"/", "/ui/{asset}", "/metrics"}


def test_every_route_answers_json(app: App) -> None:
    create(app, "a")
    for route in ROUTES:
        if route.template in NOT_JSON:
            continue
        path = route.template.replace("{session}", "s1").replace("{work_item_id}", "a")
        reply = call(app, route.method, path, raw=b"")
        assert reply.headers["Content-Type"] == "application/json"
        assert reply.status < 500, (route, reply.raw)
        assert isinstance(reply.json, (dict, list))


# -- authentication ---------------------------------------------------------------------------


def test_bearer_token_is_required_everywhere_but_health(db_path: Path, clock: FakeClock) -> None:
    app = create_app(db_path, clock=clock, token="s3cret")
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic s3cret"},
        {"Authorization": "s3cret"},
    ):
        reply = call(app, "GET", f"{BASE}/status", headers=headers)
        assert_error(reply, 401, "unauthorized")
        assert reply.headers["WWW-Authenticate"].startswith("Bearer")
    assert call(app, "GET", "/nope").status == 401  # no route discovery without the token
    assert call(app, "GET", "/sessions/", headers={"Authorization": "Bearer s3cret"}).status == 200
    assert call(app, "GET", "/sessions/", headers={"Authorization": "bearer s3cret"}).status == 200
    assert call(app, "GET", "/health").status == 200


def test_app_arguments_are_checked(db_path: Path) -> None:
    with pytest.raises(ValueError):
        create_app(db_path, token="")
    with pytest.raises(ValueError):
        create_app(db_path, max_body_bytes=0)


def test_app_shares_an_existing_coordinators_store(db_path: Path, clock: FakeClock) -> None:
    embedded = SqliteCoordinator(db_path, session="s1", worker_id="w", clock=clock)
    embedded.create_unassigned_work_item("from-embedded")
    app = create_app(embedded)
    assert app.root.store is embedded.store
    assert call(app, "GET", f"{BASE}/from-embedded").status == 200
    other_clock = FakeClock(clock() + timedelta(days=1))
    later = create_app(embedded, clock=other_clock)
    assert later.root.store is embedded.store
    assert call(later, "GET", f"{BASE}/status").json["as_of"] == "2025-01-20T20:30:00Z"


def test_app_accepts_a_store(db_path: Path, clock: FakeClock) -> None:
    embedded = SqliteCoordinator(db_path, session="s1", clock=clock)
    app = create_app(embedded.store, clock=clock)
    assert app.root.store is embedded.store


# -- server errors ----------------------------------------------------------------------------


def test_database_busy_is_503(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    def busy(*args: Any, **kwargs: Any) -> Any:
        raise DatabaseBusyError("coord.db stayed locked for over 60s")

    monkeypatch.setattr(SqliteCoordinator, "status", busy)
    assert_error(call(app, "GET", f"{BASE}/status"), 503, "database_busy")


def test_unexpected_errors_are_a_logged_json_500_without_traceback(
    app: App, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(SqliteCoordinator, "list_work_items", broken)
    with caplog.at_level(logging.ERROR, logger="litecoord.rest.wsgi"):
        reply = call(app, "GET", f"{BASE}/")
    body = assert_error(reply, 500, "internal_error")
    assert "secret" not in reply.raw.decode()
    assert any("secret internals" in (r.exc_text or "") or r.exc_info for r in caplog.records)
    assert body == {"detail": body["detail"], "code": "internal_error"}


# -- conventions and the access log -------------------------------------------------


def test_bodies_end_with_a_newline_and_whole_lease_seconds_are_integers(app: App) -> None:
    create(app, "a")
    reply = acquire(app)
    assert reply.raw.endswith(b"}\n") and reply.headers["Content-Length"] == str(len(reply.raw))
    assert b'"lease_duration_seconds":300,' in reply.raw  # an int, as the console's model declares
    assert type(reply.json["work_item"]["lease_duration_seconds"]) is int
    half = acquire(app, "worker-002", lease_duration_seconds="0.5")
    assert half.status == 404 or half.json["lease_duration_seconds"] == 0.5
    assert call(app, "GET", "/nope").raw.endswith(b"\n")  # errors too


def test_the_access_log_has_one_line_per_request(db_path: Path, clock: FakeClock) -> None:
    import io

    log = io.StringIO()
    app = create_app(db_path, clock=clock, access_log=log)
    try:
        create(app, "a", "b")
        acquire(app, "worker 7")  # a space in the id must not split the line's fields
        call(app, "PUT", f"{BASE}/a/complete", "worker 7", headers=JSON_HEADERS)
        call(app, "POST", f"{BASE}/b/fail", {"worker_id": "w2", "error": "x"}, headers=JSON_HEADERS)
        call(app, "GET", "/nope")
    finally:
        app.root.close()
    lines = log.getvalue().splitlines()
    assert len(lines) == 5
    fields = [line.split(" ") for line in lines]
    assert [f[2:5] for f in fields] == [
        ["POST", f"{BASE}/batch", "201"],
        ["GET", f"{BASE}/acquire?worker_id=worker 7".replace(" ", "\\x20"), "200"],
        ["PUT", f"{BASE}/a/complete", "200"],
        ["POST", f"{BASE}/b/fail", "409"],
        ["GET", "/nope", "404"],
    ]
    assert [f[6] for f in fields] == ["worker=-", "worker=worker\\x207", "worker=worker\\x207", "worker=w2", "worker=-"]
    assert all(re.fullmatch(r"\d+\.\dms", f[5]) for f in fields)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", f[0]) for f in fields)


def test_a_logged_request_leaves_no_reference_cycle_behind(db_path: Path, clock: FakeClock) -> None:
    # The access log reads the worker id from the parsed request, which refers to the environ.
    # Left in the environ, it made a cycle per request (environ, request, body) that only the
    # garbage collector could free: collections every few hundred requests under load.
    import gc
    import io

    from litecoord.rest.request import Request

    app = create_app(db_path, clock=clock, access_log=io.StringIO())
    try:
        create(app, "a")
        environ: dict[str, Any] = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": f"{BASE}/acquire",
            "REQUEST_URI": f"{BASE}/acquire?worker_id=w1",
            "QUERY_STRING": "worker_id=w1",
            "wsgi.input": io.BytesIO(b""),
        }
        gc.disable()
        try:
            assert app(environ, lambda status, headers: None)[0].startswith(b'{"work_item"')
            left = [o for o in gc.get_referrers(environ) if isinstance(o, Request)]
        finally:
            gc.enable()
        assert left == []
        assert app.access_log.getvalue().endswith(" worker=w1\n")  # the line still names the worker
    finally:
        app.root.close()


def test_lines_of_concurrent_requests_are_batched_in_order_and_a_lone_request_writes_at_once() -> None:
    # Under load a line is queued and written in a batch (no system call per request, each of
    # which gave the interpreter lock away); a request alone still writes before it answers.
    import io

    from litecoord.rest.access_log import AccessLog

    def logger(batch_seconds: float) -> tuple[io.StringIO, AccessLog, Any]:
        stream = io.StringIO()
        log = AccessLog(stream)
        log.BATCH_SECONDS = batch_seconds

        def line(path: str) -> None:
            log.log({"REQUEST_METHOD": "GET", "REMOTE_ADDR": "127.0.0.1", "PATH_INFO": path}, None, 200, 0.001)

        return stream, log, line

    def paths(stream: io.StringIO) -> list[str]:
        return [x.split(" ")[3] for x in stream.getvalue().splitlines()]

    stream, log, line = logger(600)  # its writer thread would wait ten minutes: only requests write here
    log.begin()
    line("/alone")
    assert paths(stream) == ["/alone"]  # written before the request answers
    log.begin()
    log.begin()
    line("/first")  # another request is in flight: queued
    assert paths(stream) == ["/alone"]
    line("/second")  # alone again: writes what is queued, then its own
    assert paths(stream) == ["/alone", "/first", "/second"]

    stream, log, line = logger(0.01)
    log.begin()
    log.begin()
    line("/batched")  # the other request is still in flight: the writer thread writes it
    deadline = time.monotonic() + 20
    while not stream.getvalue() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert paths(stream) == ["/batched"]
    line("/last")
    assert paths(stream) == ["/batched", "/last"]


def test_a_server_that_stops_writes_the_lines_still_queued(db_path: Path) -> None:
    import io

    from litecoord.rest.server import make_server

    stream = io.StringIO()
    server = make_server(db_path, host="127.0.0.1", port=0, access_log=stream)
    access = server.app._access
    access.BATCH_SECONDS = 600  # the writer thread would not write it for ten minutes
    access.begin()
    access.begin()
    access.log({"REQUEST_METHOD": "GET", "PATH_INFO": "/queued"}, None, 200, 0.001)
    assert stream.getvalue() == ""
    server.close()
    assert stream.getvalue().split(" ")[3] == "/queued"


def test_no_access_log_by_default(app: App) -> None:
    assert app.access_log is None
@pytest.mark.parametrize("seconds", ["-1e999", "1e999", "-1e300", "-9223372036854775808000"])
def test_huge_or_infinite_lease_durations_in_bodies_are_422_everywhere(app: App, seconds: str) -> None:
    # JSON has no infinity, but 1e999 parses to one.
    create(app, "a", "b")
    lease = acquire(app, "w1").json
    item = lease["work_item"]["work_item_id"]
    for method, path, body in (
        ("POST", f"{BASE}/acquire", f'{{"worker_id": "w2", "lease_duration_seconds": {seconds}}}'),
        ("POST", f"{BASE}/b/acquire", f'{{"worker_id": "w2", "lease_duration_seconds": {seconds}}}'),
        ("PUT", f"{BASE}/{item}/lease", f'{{"worker_id": "w1", "lease_duration_seconds": {seconds}}}'),
        ("POST", f"{BASE}/{item}/complete-and-acquire", f'{{"worker_id": "w1", "lease_duration_seconds": {seconds}}}'),
    ):
        reply = call(app, method, path, raw=body.encode(), headers=JSON_HEADERS)
        assert_error(reply, 422, "validation_error", "lease_duration_seconds")
    assert call(app, "GET", f"{BASE}/status").json["assigned_work_items"] == 1  # nothing changed
