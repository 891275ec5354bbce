"""The console's part of the coordinator contract, on every backend: each item's history, the
workers, failure groups and their bulk retry, pause and resume, and the ETA's honesty.

Each test takes ``make`` (see conftest.py and backends.py): coordinators of one
backend over one store and one fake clock. Time only moves when a test moves ``clock``.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from litecoord import (
    LeaseConflictError,
    NoAvailableWorkToBeDone,
    ValidationError,
    WorkItemAndDuration,
    WorkItemNotFoundError,
)
from litecoord.console import Attempt, AttemptOutcome

FIVE_MIN = timedelta(minutes=5)


def lease_of(outcome: object) -> WorkItemAndDuration:
    assert isinstance(outcome, WorkItemAndDuration), outcome
    return outcome


def shape(attempts: list[Attempt]) -> list[tuple[int, str, str, bool]]:
    return [(a.lease_epoch, a.worker_id, a.outcome.value, a.ended_at is None) for a in attempts]


# -- history ------------------------------------------------------------------------------------


def test_every_attempt_is_recorded_oldest_first_with_how_it_ended(make, clock):
    a, b = make("a"), make("b")
    a.create_work_items([{"work_item_id": "x", "document_count": 100, "total_size_bytes": 1000}])
    start = clock()
    lease_of(a.acquire_next_work_item(timedelta(seconds=30)))
    assert shape(a.work_item_history("x")) == [(1, "a", "running", True)]
    a.update_progress_and_renew_lease("x", 10, 100)
    clock.advance(seconds=60)  # a's lease lapsed at 30 s; b takes the item over
    lease_of(b.acquire_next_work_item(FIVE_MIN))
    clock.advance(seconds=5)
    b.fail_work_item("x", "shard 52 failed: 429")
    b.retry_work_item("x")  # not failed (one failure of three): a no-op
    clock.advance(seconds=20)
    lease_of(a.acquire_next_work_item(FIVE_MIN))
    a.release_work_item("x")
    lease_of(a.acquire_next_work_item(FIVE_MIN))
    clock.advance(seconds=7)
    a.complete_work_item("x")

    history = b.work_item_history("x")
    assert shape(history) == [
        (1, "a", "lapsed", False), (2, "b", "failed", False), (3, "a", "released", False), (4, "a", "completed", False),
    ]  # fmt: skip
    lapsed, failed, released, completed = history
    assert (lapsed.leased_at, lapsed.ended_at) == (start, start + timedelta(seconds=30))  # ended when it expired
    assert (lapsed.documents_processed, lapsed.bytes_processed, lapsed.error) == (10, 100, None)
    assert failed.ended_at == start + timedelta(seconds=65) and failed.error == "shard 52 failed: 429"
    assert released.ended_at == released.leased_at == start + timedelta(seconds=85)
    assert completed.duration == timedelta(seconds=7)
    assert (completed.documents_processed, completed.bytes_processed) == (100, 1000)  # a completed item counts whole
    assert all(h.work_item_id == "x" for h in history)
    assert [Attempt.from_dict(h.to_dict()) for h in history] == history


def test_renewals_and_repeated_calls_add_no_attempts(make, clock):
    a = make("a")
    a.create_unassigned_work_item("x")
    lease_of(a.acquire_next_work_item(FIVE_MIN))
    lease_of(a.acquire_next_work_item(FIVE_MIN))  # the held lease, unchanged
    for n in range(3):
        clock.advance(seconds=10)
        a.update_progress_and_renew_lease("x", n)
    a.complete_work_item("x")
    a.complete_work_item("x")  # completing twice is a no-op
    assert shape(a.work_item_history("x")) == [(1, "a", "completed", False)]


def test_a_split_ends_its_attempt_as_split_and_named_leases_are_attempts_too(make, clock):
    a, b = make("a"), make("b")
    a.create_or_update_lease_for_work_item("parent", FIVE_MIN)  # created under a lease (RFS)
    clock.advance(seconds=3)
    a.create_successor_work_items_and_mark_complete("parent", ["c1", "c2"])
    assert shape(a.work_item_history("parent")) == [(1, "a", "split", False)]
    assert a.work_item_history("c1") == []  # not leased yet
    b.create_or_update_lease_for_work_item("c1", FIVE_MIN)
    assert shape(a.work_item_history("c1")) == [(1, "b", "running", True)]


def test_history_of_an_unknown_item_is_not_found_and_delete_session_removes_it(make):
    a = make("a")
    a.create_unassigned_work_item("x")
    with pytest.raises(WorkItemNotFoundError):
        a.work_item_history("nope")
    with pytest.raises(ValidationError):
        a.work_item_history("")
    a.complete_work_item(lease_of(a.acquire_next_work_item()).work_item_id)
    assert a.delete_session() == 1
    a.create_unassigned_work_item("x")  # the same id again: a new item with no past
    assert a.work_item_history("x") == []
    assert a.list_workers() == []


# -- workers ---------------------------------------------------------------------------------


def test_workers_are_listed_with_their_item_heartbeat_counts_and_rate(make, clock):
    a, b, c = make("a"), make("b"), make("c")
    a.create_work_items([{"work_item_id": f"i{n}", "document_count": 600} for n in range(4)])
    start = clock()
    lease_of(a.acquire_next_work_item(FIVE_MIN))
    clock.advance(seconds=60)
    a.complete_work_item("i0")  # 600 documents in 60 s
    held = lease_of(a.acquire_next_work_item(FIVE_MIN)).work_item_id
    lease_of(b.acquire_next_work_item(timedelta(seconds=60)))
    b.fail_work_item("i2", "boom")
    lease_of(c.acquire_next_work_item(timedelta(seconds=30)))  # c goes silent, then its lease lapses
    clock.advance(seconds=15)
    a.update_progress_and_renew_lease(held, 50)

    workers = {w.worker_id: w for w in a.list_workers()}
    assert sorted(workers) == ["a", "b", "c"]
    wa, wb, wc = workers["a"], workers["b"], workers["c"]
    assert (wa.current_work_item_id, wa.lease_live, wa.completed, wa.failed, wa.attempts) == (held, True, 1, 0, 2)
    assert wa.last_heartbeat == clock() and wa.first_seen == start
    assert wa.documents_processed == 600 and wa.busy_seconds == pytest.approx(75.0)  # 60 s done + 15 s running
    assert wa.documents_per_second == pytest.approx(600 / 75) and wa.items_per_hour == pytest.approx(3600 / 75)
    assert (wb.current_work_item_id, wb.completed, wb.failed, wb.silent) == (None, 0, 1, False)
    assert wb.last_heartbeat == start + timedelta(seconds=60)
    assert (wc.current_work_item_id, wc.lease_live, wc.silent) == ("i3", True, True)  # no heartbeat for 15 s of 30
    clock.advance(seconds=30)
    wc = {w.worker_id: w for w in a.list_workers()}["c"]
    assert (wc.current_work_item_id, wc.lease_live, wc.silent) == ("i3", False, False)  # lapsed, not silent
    assert wc.to_dict()["current_work_item_id"] == "i3"


# -- failure groups and bulk retry ----------------------------------------------------------------


def _fail(make, names: dict[str, str]) -> None:
    """Each named item leased by name (which waives any retry delay) and failed with its error."""
    w = make("w")
    for name, error in names.items():
        w.create_or_update_lease_for_work_item(name, FIVE_MIN)
        w.fail_work_item(name, error)


def test_failures_are_grouped_by_their_error_with_numbers_ids_and_quotes_masked(make, clock):
    a = make("a")
    a.setup(max_attempts=2, acquire_order="fifo")
    errors = {
        "s52": "shard 52 failed: 429",
        "s7": "shard 7 failed: 429",
        "s9": "shard 9 failed: 429",
        "m1": "index 'logs-2024' is missing",
        "m2": "index 'metrics' is missing",
        "t1": "timeout",
    }
    a.create_work_items([{"work_item_id": name} for name in errors] + [{"work_item_id": "fine"}])
    _fail(make, errors)  # each once: retrying
    _fail(make, {k: v for k, v in errors.items() if k.startswith("s")})  # again: parked (max_attempts 2)

    groups = a.failure_groups()
    assert [(g.error_pattern, g.count, g.failed, g.retrying) for g in groups] == [
        ("shard N failed: N", 3, 3, 0),
        ("index '?' is missing", 2, 0, 2),
        ("timeout", 1, 0, 1),
    ]
    assert groups[0].example_work_item_ids == ("s52", "s7", "s9") and groups[0].example_error == "shard 52 failed: 429"
    assert groups[1].to_dict()["example_work_item_ids"] == ["m1", "m2"]


def test_bulk_retry_takes_one_group_or_every_failed_item(make, clock):
    a = make("a")
    a.setup(max_attempts=1, acquire_order="fifo")
    errors = {"s1": "shard 1 failed: 429", "s2": "shard 2 failed: 429", "x": "mapping 'a' rejected", "y": "boom"}
    a.create_work_items([{"work_item_id": name} for name in errors])
    _fail(make, errors)
    assert a.retry_failed_work_items("nothing like it") == []
    # A group is named by its pattern or by any error of it.
    assert a.retry_failed_work_items("shard N failed: N") == ["s1", "s2"]
    assert [i.work_item_id for i in a.list_work_items("failed")] == ["x", "y"]
    assert a.retry_failed_work_items("mapping 'b' rejected") == ["x"]
    assert a.retry_failed_work_items() == ["y"]
    assert a.retry_failed_work_items() == []
    assert a.list_work_items("failed") == [] and a.status().pending_work_items == 4
    assert all(i.failure_count == 0 for i in a.list_work_items())
    assert a.failure_groups() == []


# -- pause and resume ----------------------------------------------------------------------------


def test_a_paused_session_hands_out_nothing_while_leases_in_flight_complete(make, clock):
    a, b = make("a"), make("b")
    a.create_work_items([{"work_item_id": f"i{n}"} for n in range(3)])
    held = lease_of(a.acquire_next_work_item(FIVE_MIN))
    assert a.status().paused is False
    clock.advance(seconds=5)
    b.pause()
    paused_at = clock()
    clock.advance(seconds=5)
    b.pause()  # pausing again keeps the first time
    status = a.status()
    assert (status.paused, status.paused_at, status.eta_seconds, status.eta_reason) == (True, paused_at, None, "paused")

    outcome = b.acquire_next_work_item(FIVE_MIN)
    assert isinstance(outcome, NoAvailableWorkToBeDone)
    assert (outcome.paused, outcome.reason, outcome.remaining, outcome.all_work_done) == (True, "paused", 3, False)
    assert outcome.to_dict()["reason"] == "paused" and outcome.to_dict()["paused"] is True
    # The lease in flight goes on: asking again returns it, it renews and completes.
    assert a.acquire_next_work_item(FIVE_MIN).work_item_id == held.work_item_id
    a.update_progress_and_renew_lease(held.work_item_id, 5)
    done, nxt = a.complete_and_acquire_next(held.work_item_id, FIVE_MIN)
    assert done.status.value == "completed" and isinstance(nxt, NoAvailableWorkToBeDone) and nxt.paused
    assert a.work_item_history(held.work_item_id)[-1].outcome is AttemptOutcome.COMPLETED

    b.resume()
    assert a.status().paused is False and a.status().paused_at is None
    assert lease_of(b.acquire_next_work_item(FIVE_MIN)).work_item_id in ("i1", "i2")
    b.resume()  # resuming a running session is a no-op
    with pytest.raises(LeaseConflictError):
        b.complete_work_item(held.work_item_id)


def test_pausing_an_unknown_session_is_an_error(make):
    from litecoord import SessionNotFoundError

    with pytest.raises(SessionNotFoundError):
        make("a", session="never-made").pause()


# -- an honest ETA -------------------------------------------------------------------------------


def test_no_eta_when_only_stalled_or_silent_leases_remain(make, clock):
    a, b = make("a"), make("b")
    a.create_work_items([{"work_item_id": f"i{n}", "document_count": 1000} for n in range(2)])
    la = lease_of(a.acquire_next_work_item(FIVE_MIN))
    lb = lease_of(b.acquire_next_work_item(FIVE_MIN))
    for n in range(1, 4):
        clock.advance(seconds=20)
        a.update_progress_and_renew_lease(la.work_item_id, 100 * n)
        b.update_progress_and_renew_lease(lb.work_item_id, 100 * n)
    assert a.status().eta_seconds is not None and a.status().eta_reason is None
    # Both keep renewing but their progress stands still for over a minute: stalled.
    for _ in range(4):
        clock.advance(seconds=20)
        a.update_progress_and_renew_lease(la.work_item_id, 300)
        b.update_progress_and_renew_lease(lb.work_item_id, 300)
    status = a.status()
    assert (status.eta_seconds, status.estimated_completion) == (None, None)
    assert status.eta_reason == "only_stalled_or_silent"
    # One moves again: an ETA comes back.
    clock.advance(seconds=5)
    a.update_progress_and_renew_lease(la.work_item_id, 400)
    assert a.status().eta_seconds is not None
    # Then both go silent (no heartbeat for over a third of the lease), then lapse.
    clock.advance(seconds=110)
    assert a.status().eta_reason == "only_stalled_or_silent"
    clock.advance(minutes=5)
    assert (a.status().eta_seconds, a.status().eta_reason) == (None, "no_live_lease")


def test_the_eta_waits_for_the_slowest_lease_and_says_so(make, clock):
    fast, slow = make("fast"), make("slow")
    fast.setup(acquire_order="fifo")
    fast.create_work_items(
        [{"work_item_id": "big", "document_count": 10_000}]
        + [{"work_item_id": f"s{n}", "document_count": 100} for n in range(3)]
    )
    big = lease_of(slow.acquire_next_work_item(FIVE_MIN))
    assert big.work_item_id == "big"
    for n in range(1, 7):  # big: 10 documents a second, 9,400 left after 60 s: about 940 s more
        clock.advance(seconds=10)
        slow.update_progress_and_renew_lease("big", 100 * n)
        if n % 2 == 0:
            item = lease_of(fast.acquire_next_work_item(FIVE_MIN))
            fast.complete_work_item(item.work_item_id)
    status = fast.status()
    assert status.eta_bound_by == "big"
    assert status.eta_seconds == pytest.approx(940, rel=0.05)
    # The mean rate (over the run) and the recent one (over the window) are both given, labelled.
    assert status.mean_documents_per_second == pytest.approx((600 + 300) / 60)
    assert status.recent_documents_per_second is not None and status.rate_window_seconds is not None
    assert status.took_seconds is None


def test_a_finished_run_says_when_it_started_finished_and_how_long_it_took(make, clock):
    a = make("a")
    a.create_work_items([{"work_item_id": "x", "document_count": 10}])
    start = clock()
    lease_of(a.acquire_next_work_item(FIVE_MIN))
    clock.advance(seconds=42)
    a.complete_work_item("x")
    clock.advance(hours=2)
    status = a.status()
    assert (status.started_at, status.finished_at, status.took_seconds) == (start, start + timedelta(seconds=42), 42)
    assert status.to_dict()["took_seconds"] == 42 and status.eta_reason is None
