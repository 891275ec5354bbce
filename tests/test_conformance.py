"""The coordinator contract, written once and run against every backend.

Each test takes ``make`` (see conftest.py and backends.py): coordinators of
one backend over one file and one fake clock. Time only moves when a test
moves ``clock``.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from litecoord import (
    AlreadyCompleted,
    LeaseConflictError,
    LeaseExpiredError,
    LitecoordError,
    NoAvailableWorkToBeDone,
    SessionNotFoundError,
    SuccessorConflictError,
    ValidationError,
    WorkItemAndDuration,
    WorkItemNotFoundError,
    WorkItemStatus,
)
from litecoord.types import format_time
from litecoord.validation import MAX_COUNT

FIVE_MIN = timedelta(minutes=5)


def lease_of(outcome: object) -> WorkItemAndDuration:
    assert isinstance(outcome, WorkItemAndDuration), outcome
    return outcome


# -- creating ------------------------------------------------------------------


def test_setup_is_idempotent_and_creation_reports_novelty(make):
    coord = make()
    coord.setup()
    coord.setup()
    assert coord.create_unassigned_work_item("idx__0__0") is True
    assert coord.create_unassigned_work_item("idx__0__0") is False
    coord.setup()
    assert [i.work_item_id for i in coord.list_work_items()] == ["idx__0__0"]


def test_item_with_metadata_carries_the_console_fields(make, clock):
    coord = make()
    assert coord.create_work_item_with_metadata("index1_shard0", "my-index", 0, 50000, 1024000) is True
    assert coord.create_work_item_with_metadata("index1_shard0", "other", 1, 1, 1) is False
    item = coord.get_work_item("index1_shard0")
    assert (item.index_name, item.shard_number, item.document_count, item.total_size_bytes) == (
        "my-index",
        0,
        50000,
        1024000,
    )
    assert item.status is WorkItemStatus.PENDING
    assert item.session_name == "session-1"
    assert item.worker_id is None and item.lease_expiry is None
    assert item.created_at == clock()
    assert format_time(item.created_at).endswith("Z")


def test_batch_returns_only_new_items_and_skips_repeats(make):
    coord = make()
    coord.create_unassigned_work_item("a")
    created = coord.create_work_items(
        [
            {"work_item_id": "a", "index_name": "i", "shard_number": 0},
            {"work_item_id": "b", "index_name": "i", "shard_number": 1, "document_count": 5},
            {"work_item_id": "b", "index_name": "dup"},
            {"work_item_id": "c"},
        ]
    )
    assert [i.work_item_id for i in created] == ["b", "c"]
    assert created[0].document_count == 5
    assert coord.get_work_item("b").index_name == "i"
    assert coord.create_work_items([]) == []


def test_invalid_batch_names_the_entry_and_writes_nothing(make):
    coord = make()
    with pytest.raises(ValidationError) as err:
        coord.create_work_items([{"work_item_id": "ok"}, {"work_item_id": "x", "shard_number": -1}])
    assert err.value.field == "items[1].shard_number"
    with pytest.raises(SessionNotFoundError):  # not even the session was created
        coord.list_work_items()
    with pytest.raises(ValidationError) as err:
        coord.create_work_items([{"work_item_id": "ok", "shards": 3}])
    assert err.value.field == "items[0].shards"
    with pytest.raises(SessionNotFoundError):
        coord.list_work_items()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"work_item_id": ""}, "work_item_id"),
        ({"work_item_id": "x" * 513}, "work_item_id"),
        ({"work_item_id": "bad\nid"}, "work_item_id"),
        ({"work_item_id": "bad\x00id"}, "work_item_id"),
        ({"work_item_id": 7}, "work_item_id"),
        ({"work_item_id": "ok", "shard_number": -1}, "shard_number"),
        ({"work_item_id": "ok", "shard_number": 1.5}, "shard_number"),
        ({"work_item_id": "ok", "shard_number": True}, "shard_number"),
        ({"work_item_id": "ok", "document_count": "5"}, "document_count"),
        ({"work_item_id": "ok", "total_size_bytes": -3}, "total_size_bytes"),
        ({"work_item_id": "ok", "index_name": ""}, "index_name"),
        ({"work_item_id": "ok", "index_name": 12}, "index_name"),
    ],
)
def test_bad_input_is_named_and_nothing_is_written(make, kwargs, field):
    coord = make()
    full = {"index_name": None, "shard_number": None, "document_count": None, "total_size_bytes": None, **kwargs}
    with pytest.raises(ValidationError) as err:
        coord.create_work_item_with_metadata(
            full["work_item_id"], full["index_name"], full["shard_number"], full["document_count"],
            full["total_size_bytes"],
        )  # fmt: skip
    assert err.value.field == field
    assert field in str(err.value)
    with pytest.raises(SessionNotFoundError):  # not even the session was created
        coord.list_work_items()


def test_ids_are_opaque_printable_unicode(make):
    coord = make()
    ids = ["with space", "a/b/c", "idx__with__dunders__0__0", "ünïcødé-シャード", "x" * 512, "100%", "q?x=1&y#z"]
    for work_item_id in ids:
        assert coord.create_unassigned_work_item(work_item_id)
    assert [i.work_item_id for i in coord.list_work_items()] == ids
    for work_item_id in ids:
        assert coord.get_work_item(work_item_id).work_item_id == work_item_id


def test_unknown_item_is_not_found(make):
    coord = make()
    coord.create_unassigned_work_item("x")
    with pytest.raises(WorkItemNotFoundError):
        coord.get_work_item("nope")
    for call in (
        lambda: coord.update_progress_and_renew_lease("nope", 1, 1),
        lambda: coord.complete_work_item("nope"),
        lambda: coord.release_work_item("nope"),
        lambda: coord.fail_work_item("nope", "boom"),
        lambda: coord.create_successor_work_items_and_mark_complete("nope", ["n2"]),
    ):
        with pytest.raises(WorkItemNotFoundError):
            call()


# -- acquiring -------------------------------------------------------------------


def test_hundred_workers_get_hundred_distinct_items_then_no_work(make):
    setup = make("creator")
    setup.create_work_items([{"work_item_id": f"idx__{n}__0"} for n in range(100)])
    got = set()
    for n in range(100):
        got.add(lease_of(make(f"w{n}").acquire_next_work_item(FIVE_MIN)).work_item_id)
    assert len(got) == 100
    outcome = make("w100").acquire_next_work_item(FIVE_MIN)
    assert isinstance(outcome, NoAvailableWorkToBeDone)
    assert outcome.remaining == 100 and not outcome.all_work_done


def test_acquire_records_the_lease(make, clock):
    coord = make("w1")
    coord.create_unassigned_work_item("a")
    lease = lease_of(coord.acquire_next_work_item(FIVE_MIN))
    assert lease.lease_expiration_time == clock() + FIVE_MIN
    assert lease.lease_duration == FIVE_MIN
    item = lease.work_item
    assert item.status is WorkItemStatus.ASSIGNED
    assert item.worker_id == "w1"
    assert item.started_at == clock()
    assert item.lease_epoch == 1 and item.attempts == 1
    assert coord.get_work_item("a").lease_expiry == lease.lease_expiration_time


def test_asking_again_returns_the_held_lease_unchanged(make, clock):
    coord = make("w1")
    coord.create_work_items([{"work_item_id": "a"}, {"work_item_id": "b"}])
    first = lease_of(coord.acquire_next_work_item(FIVE_MIN))
    clock.advance(minutes=1)
    again = lease_of(coord.acquire_next_work_item(timedelta(minutes=30)))
    assert again.work_item_id == first.work_item_id
    assert again.lease_expiration_time == first.lease_expiration_time
    assert again.lease_epoch == first.lease_epoch
    assert coord.num_work_items_not_yet_complete() == 2
    other = lease_of(make("w2").acquire_next_work_item(FIVE_MIN))
    assert other.work_item_id != first.work_item_id


def test_largest_first_then_creation_order(make):
    coord = make("w")
    coord.create_work_items(
        [
            {"work_item_id": "small", "total_size_bytes": 10},
            {"work_item_id": "unknown"},
            {"work_item_id": "big1", "total_size_bytes": 1000},
            {"work_item_id": "mid", "total_size_bytes": 100},
            {"work_item_id": "big2", "total_size_bytes": 1000},
        ]
    )
    order = []
    for n in range(5):
        lease = lease_of(make(f"w{n}").acquire_next_work_item(FIVE_MIN))
        order.append(lease.work_item_id)
    assert order == ["big1", "big2", "mid", "small", "unknown"]


def test_fifo_order_is_a_session_option(make):
    coord = make("w")
    coord.setup(acquire_order="fifo")
    coord.create_work_items(
        [{"work_item_id": "small", "total_size_bytes": 1}, {"work_item_id": "big", "total_size_bytes": 99}]
    )
    assert lease_of(make("w1").acquire_next_work_item()).work_item_id == "small"
    with pytest.raises(ValidationError) as err:
        coord.setup(acquire_order="random")
    assert err.value.field == "acquire_order"


def test_lapsed_lease_is_available_without_cleanup(make, clock):
    a, b = make("a"), make("b")
    a.create_unassigned_work_item("x")
    first = lease_of(a.acquire_next_work_item(FIVE_MIN))
    assert isinstance(b.acquire_next_work_item(FIVE_MIN), NoAvailableWorkToBeDone)
    clock.advance(FIVE_MIN - timedelta(microseconds=1))
    assert isinstance(b.acquire_next_work_item(FIVE_MIN), NoAvailableWorkToBeDone)
    clock.advance(microseconds=1)
    second = lease_of(b.acquire_next_work_item(FIVE_MIN))
    assert second.work_item_id == "x"
    assert second.lease_epoch == first.lease_epoch + 1
    assert second.work_item.worker_id == "b"


def test_lapsed_leases_come_back_before_new_items(make, clock):
    a = make("a")
    a.create_work_items([{"work_item_id": "first", "total_size_bytes": 5}, {"work_item_id": "second"}])
    assert lease_of(a.acquire_next_work_item(FIVE_MIN)).work_item_id == "first"
    clock.advance(minutes=6)
    assert lease_of(make("b").acquire_next_work_item(FIVE_MIN)).work_item_id == "first"


def test_bad_lease_duration_is_refused(make):
    coord = make()
    coord.create_unassigned_work_item("a")
    for bad in (timedelta(0), timedelta(seconds=-1), timedelta(days=400)):
        with pytest.raises(ValidationError) as err:
            coord.acquire_next_work_item(bad)
        assert err.value.field == "lease_duration"
    assert coord.get_work_item("a").status is WorkItemStatus.PENDING


NON_FINITE_OR_HUGE = (float("-inf"), float("inf"), float("nan"), -1e300, -(2.0**63), 1e300)


@pytest.mark.parametrize("bad", NON_FINITE_OR_HUGE)
def test_non_finite_or_huge_lease_durations_are_refused_everywhere(make, bad):
    coord = make()
    coord.create_work_items([{"work_item_id": "a"}, {"work_item_id": "b"}])
    calls = {
        "acquire": lambda: coord.acquire_next_work_item(bad),
        "named lease": lambda: coord.create_or_update_lease_for_work_item("b", bad),
    }
    for name, call in calls.items():
        with pytest.raises(ValidationError) as err:
            call()
        assert err.value.field == "lease_duration", name
    lease = lease_of(coord.acquire_next_work_item(FIVE_MIN))
    for name, call in {
        "renew": lambda: coord.update_progress_and_renew_lease(lease.work_item_id, lease_duration=bad),
        "complete and acquire": lambda: coord.complete_and_acquire_next(lease.work_item_id, bad),
    }.items():
        with pytest.raises(ValidationError) as err:
            call()
        assert err.value.field == "lease_duration", name
    assert coord.get_work_item(lease.work_item_id).status is WorkItemStatus.ASSIGNED  # nothing was written
    assert coord.status().assigned_work_items == 1


def test_counts_stop_at_2_53_so_json_and_totals_stay_exact(make):
    coord = make()
    with pytest.raises(ValidationError) as err:
        coord.create_work_item_with_metadata("a", None, None, 2**63 - 1, None)
    assert err.value.field == "document_count"
    with pytest.raises(ValidationError) as err:
        coord.create_work_items([{"work_item_id": "a", "total_size_bytes": MAX_COUNT + 1}])
    assert err.value.field == "items[0].total_size_bytes"
    # 1100 items at the bound: the totals pass 2**63 - 1 and must stay exact integers.
    coord.create_work_items(
        [{"work_item_id": f"i{n}", "document_count": MAX_COUNT, "total_size_bytes": MAX_COUNT} for n in range(1100)]
    )
    lease = lease_of(coord.acquire_next_work_item(FIVE_MIN))
    with pytest.raises(ValidationError) as err:
        coord.update_progress_and_renew_lease(lease.work_item_id, MAX_COUNT + 1, 0)
    assert err.value.field == "documents_processed"
    coord.update_progress_and_renew_lease(lease.work_item_id, MAX_COUNT, MAX_COUNT)
    status = coord.status()
    assert status.total_documents == status.total_size_bytes == 1100 * MAX_COUNT > 2**63
    assert type(status.total_documents) is int and status.total_documents_processed == MAX_COUNT
    text = json.dumps(status.to_dict())
    assert str(1100 * MAX_COUNT) in text and "e+" not in text


def test_a_clock_whose_leases_would_end_after_year_9999_is_refused_before_writing(make, clock):
    coord = make()
    coord.create_unassigned_work_item("a")
    clock.set(datetime(9999, 12, 31, 12, tzinfo=timezone.utc))
    for call in (
        lambda: coord.acquire_next_work_item(timedelta(days=1)),
        lambda: coord.create_or_update_lease_for_work_item("b", timedelta(days=1)),
    ):
        with pytest.raises(LitecoordError, match="clock") as err:
            call()
        assert not isinstance(err.value, ValidationError)
    clock.set(datetime(2025, 1, 19, 20, 30, tzinfo=timezone.utc))
    item = coord.get_work_item("a")  # reads still work, and nothing was written
    assert (item.status, item.lease_expiry, item.lease_epoch) == (WorkItemStatus.PENDING, None, 0)
    with pytest.raises(WorkItemNotFoundError):
        coord.get_work_item("b")
    assert lease_of(coord.acquire_next_work_item(timedelta(days=365))).work_item_id == "a"


def test_exponential_lease_growth_stops_at_a_year_and_never_overflows_a_date(make, clock):
    coord = make()
    coord.setup(lease_mode="exponential")
    coord.create_unassigned_work_item("a")
    for _ in range(18):  # 2**17 years without the cap: past year 9999
        lease = lease_of(coord.acquire_next_work_item(timedelta(days=200)))
        assert lease.lease_duration <= timedelta(days=365)
        clock.advance(lease.lease_duration + timedelta(seconds=1))
    assert coord.get_work_item("a").lease_duration == timedelta(days=365)
    assert coord.status().total_work_items == 1


def test_an_eta_beyond_any_date_has_no_completion_date(make, clock):
    coord = make()
    coord.create_work_item_with_metadata("a", None, None, MAX_COUNT, None)
    lease_of(coord.acquire_next_work_item(FIVE_MIN))
    clock.advance(seconds=60)
    coord.update_progress_and_renew_lease("a", 1, None)  # one document a minute: 2**53 minutes to go
    status = coord.status()
    assert status.eta_seconds is not None and status.eta_seconds > 1e17
    assert status.estimated_completion is None


def test_fixed_leases_by_default_exponential_as_an_option(make, clock):
    coord = make("w")
    coord.create_unassigned_work_item("x")
    for _ in range(3):
        lease = lease_of(coord.acquire_next_work_item(FIVE_MIN))
        assert lease.lease_duration == FIVE_MIN
        clock.advance(lease.lease_duration)
    coord.setup(lease_mode="exponential")
    # Three acquisitions so far: the next gets 5 min x 2^3.
    lease = lease_of(coord.acquire_next_work_item(FIVE_MIN))
    assert lease.lease_epoch == 4
    assert lease.lease_duration == FIVE_MIN * 8
    assert lease.lease_expiration_time == clock() + FIVE_MIN * 8
    clock.advance(lease.lease_duration)
    assert lease_of(coord.acquire_next_work_item(FIVE_MIN)).lease_duration == FIVE_MIN * 16


# -- renewing --------------------------------------------------------------------


def test_renewal_records_absolute_progress_and_extends_from_now(make, clock):
    coord = make("w1")
    coord.create_work_item_with_metadata("a", "i", 0, 50000, 1024000)
    lease_of(coord.acquire_next_work_item(FIVE_MIN))
    clock.advance(minutes=4)
    item = coord.update_progress_and_renew_lease("a", 25000, 512000)
    assert (item.documents_processed, item.bytes_processed) == (25000, 512000)
    assert item.last_progress_update == clock()
    assert item.lease_expiry == clock() + FIVE_MIN
    again = coord.update_progress_and_renew_lease("a", 25000, 512000)  # a retried renewal
    assert again.documents_processed == 25000
    assert again.progress_changed_at == item.progress_changed_at
    clock.advance(minutes=1)
    bare = coord.update_progress_and_renew_lease("a", lease_duration=timedelta(minutes=10))
    assert bare.documents_processed == 25000
    assert bare.last_progress_update == item.last_progress_update
    assert bare.last_heartbeat == clock()
    assert bare.lease_expiry == clock() + timedelta(minutes=10)
    # The new length sticks for later renewals.
    assert coord.update_progress_and_renew_lease("a").lease_expiry == clock() + timedelta(minutes=10)


def test_renewal_refuses_negative_or_non_integer_progress(make):
    coord = make("w1")
    coord.create_unassigned_work_item("a")
    lease_of(coord.acquire_next_work_item())
    for docs, bytes_, field in (
        (-1, 0, "documents_processed"),
        (1, -5, "bytes_processed"),
        (1.5, 0, "documents_processed"),
    ):
        with pytest.raises(ValidationError) as err:
            coord.update_progress_and_renew_lease("a", docs, bytes_)
        assert err.value.field == field
    assert coord.get_work_item("a").documents_processed == 0


def test_renewal_by_another_worker_is_a_conflict(make):
    a, b = make("a"), make("b")
    a.create_unassigned_work_item("x")
    lease_of(a.acquire_next_work_item())
    with pytest.raises(LeaseConflictError):
        b.update_progress_and_renew_lease("x", 1, 1)
    assert a.get_work_item("x").documents_processed == 0


def test_renewal_of_a_lapsed_lease_is_gone(make, clock):
    a = make("a")
    a.create_unassigned_work_item("x")
    lease_of(a.acquire_next_work_item(FIVE_MIN))
    clock.advance(FIVE_MIN)
    with pytest.raises(LeaseExpiredError):
        a.update_progress_and_renew_lease("x", 5, 5)
    # Once someone else takes it over, the former holder is in conflict.
    lease_of(make("b").acquire_next_work_item())
    with pytest.raises(LeaseConflictError):
        a.update_progress_and_renew_lease("x", 5, 5)


def test_renewal_of_an_unleased_item_is_a_conflict(make):
    a = make("a")
    a.create_unassigned_work_item("x")
    with pytest.raises(LeaseConflictError):
        a.update_progress_and_renew_lease("x", 1, 1)


def test_epoch_fences_a_stale_holder_with_the_same_worker_id(make, clock):
    a = make("a")
    a.create_unassigned_work_item("x")
    first = lease_of(a.acquire_next_work_item(FIVE_MIN))
    clock.advance(FIVE_MIN)
    second = lease_of(a.acquire_next_work_item(FIVE_MIN))  # same worker, new lease on the same item
    assert second.work_item_id == "x" and second.lease_epoch == first.lease_epoch + 1
    for call in (
        lambda: a.update_progress_and_renew_lease("x", 1, 1, lease_epoch=first.lease_epoch),
        lambda: a.complete_work_item("x", lease_epoch=first.lease_epoch),
        lambda: a.fail_work_item("x", "late", lease_epoch=first.lease_epoch),
        lambda: a.create_successor_work_items_and_mark_complete("x", ["y"], lease_epoch=first.lease_epoch),
    ):
        with pytest.raises(LeaseConflictError) as err:
            call()
        assert "stale" in err.value.detail
    assert a.release_work_item("x", lease_epoch=first.lease_epoch) is False
    assert a.get_work_item("x").status is WorkItemStatus.ASSIGNED
    assert a.update_progress_and_renew_lease("x", 1, 1, lease_epoch=second.lease_epoch).documents_processed == 1
    assert a.complete_work_item("x", lease_epoch=second.lease_epoch).status is WorkItemStatus.COMPLETED


# -- completing ------------------------------------------------------------------


def test_complete_by_holder_twice_is_fine_and_others_conflict(make, clock):
    a, b = make("a"), make("b")
    a.create_work_item_with_metadata("x", "i", 0, 100, 1000)
    lease_of(a.acquire_next_work_item())
    with pytest.raises(LeaseConflictError):
        b.complete_work_item("x")
    done = a.complete_work_item("x")
    assert done.status is WorkItemStatus.COMPLETED and done.completed_at == clock()
    assert (done.documents_processed, done.bytes_processed) == (100, 1000)
    clock.advance(seconds=5)
    assert a.complete_work_item("x").completed_at == done.completed_at
    with pytest.raises(LeaseConflictError):
        b.complete_work_item("x")
    assert isinstance(b.acquire_next_work_item(), NoAvailableWorkToBeDone)


def test_holder_may_complete_after_lapse_unless_taken_over(make, clock):
    a, b = make("a"), make("b")
    a.create_work_items([{"work_item_id": "x"}, {"work_item_id": "y"}])
    assert lease_of(a.acquire_next_work_item(FIVE_MIN)).work_item_id == "x"
    clock.advance(minutes=10)
    assert a.complete_work_item("x").status is WorkItemStatus.COMPLETED

    lease_of(a.acquire_next_work_item(FIVE_MIN))  # y
    clock.advance(minutes=10)
    assert lease_of(b.acquire_next_work_item(FIVE_MIN)).work_item_id == "y"
    with pytest.raises(LeaseConflictError):
        a.complete_work_item("y")
    assert b.complete_work_item("y").worker_id == "b"


def test_unleased_item_cannot_be_completed(make):
    a = make("a")
    a.create_unassigned_work_item("x")
    with pytest.raises(LeaseConflictError):
        a.complete_work_item("x")


# -- releasing and failing --------------------------------------------------------


def test_release_allows_immediate_reacquisition(make):
    a, b = make("a"), make("b")
    a.create_unassigned_work_item("x")
    lease = lease_of(a.acquire_next_work_item())
    assert a.release_work_item("x", lease_epoch=lease.lease_epoch) is True
    item = a.get_work_item("x")
    assert item.status is WorkItemStatus.PENDING and item.worker_id is None
    again = lease_of(b.acquire_next_work_item())
    assert again.work_item_id == "x" and again.lease_epoch == lease.lease_epoch + 1


def test_late_release_after_takeover_is_a_noop(make, clock):
    a, b = make("a"), make("b")
    a.create_unassigned_work_item("x")
    lease_of(a.acquire_next_work_item(FIVE_MIN))
    clock.advance(minutes=6)
    lease_of(b.acquire_next_work_item(FIVE_MIN))
    assert a.release_work_item("x") is False
    item = a.get_work_item("x")
    assert item.status is WorkItemStatus.ASSIGNED and item.worker_id == "b"
    a_done = make("c")
    assert a_done.release_work_item("x") is False


def test_release_of_a_completed_item_is_a_noop(make):
    a = make("a")
    a.create_unassigned_work_item("x")
    lease_of(a.acquire_next_work_item())
    a.complete_work_item("x")
    assert a.release_work_item("x") is False
    assert a.get_work_item("x").status is WorkItemStatus.COMPLETED


def test_fail_gives_back_then_parks_after_max_attempts_until_retry(make, clock):
    a = make("a")
    a.setup(max_attempts=2)
    a.create_unassigned_work_item("x")
    lease_of(a.acquire_next_work_item())
    failed_once = a.fail_work_item("x", "exit 1: boom")
    assert failed_once.status is WorkItemStatus.PENDING
    assert (failed_once.failure_count, failed_once.last_error, failed_once.worker_id) == (1, "exit 1: boom", None)
    clock.advance(seconds=10)  # the default retry delay is up to 10 s after a first failure
    b = make("b")
    lease_of(b.acquire_next_work_item())
    with pytest.raises(LeaseConflictError):
        a.fail_work_item("x", "not mine")
    parked = b.fail_work_item("x", "exit 2: again")
    assert parked.status is WorkItemStatus.FAILED and parked.failure_count == 2
    outcome = make("c").acquire_next_work_item()
    assert isinstance(outcome, NoAvailableWorkToBeDone)
    assert (outcome.remaining, outcome.failed) == (0, 1)
    assert a.num_work_items_not_yet_complete() == 0
    assert a.status().failed_work_items == 1
    with pytest.raises(LeaseConflictError):
        a.create_or_update_lease_for_work_item("x")
    retried = a.retry_work_item("x")
    assert retried.status is WorkItemStatus.PENDING and retried.failure_count == 0
    assert lease_of(make("c").acquire_next_work_item()).work_item_id == "x"


# -- retry backoff -------------------------------------------------------------------


def _delay_of(item, clock) -> float:
    assert item.next_attempt_at is not None, item
    return (item.next_attempt_at - clock()).total_seconds()


def test_a_failed_item_waits_out_its_retry_delay_before_acquire_hands_it_out(make, clock):
    a, b = make("a"), make("b")
    a.create_unassigned_work_item("x")
    lease_of(a.acquire_next_work_item())
    failed = a.fail_work_item("x", "boom")
    assert failed.status is WorkItemStatus.PENDING
    delay = _delay_of(failed, clock)
    assert 5 <= delay <= 10  # the default: 10 s, jittered between half and all of it
    assert a.get_work_item("x").next_attempt_at == failed.next_attempt_at  # visible on reads too
    assert format_time(failed.next_attempt_at) == failed.to_dict()["next_attempt_at"]
    waiting = b.acquire_next_work_item()
    assert isinstance(waiting, NoAvailableWorkToBeDone)
    assert (waiting.remaining, waiting.reason, waiting.next_attempt_at) == (1, "retry_wait", failed.next_attempt_at)
    assert not waiting.all_work_done
    clock.advance(seconds=delay - 0.01)
    assert isinstance(b.acquire_next_work_item(), NoAvailableWorkToBeDone)
    clock.advance(seconds=0.01)
    lease = lease_of(b.acquire_next_work_item())
    assert lease.work_item_id == "x" and lease.work_item.next_attempt_at is None  # a lease clears it


def test_retry_delays_double_per_failure_up_to_the_cap(make, clock):
    a = make("a")
    a.setup(max_attempts=6, retry_delay=4, max_retry_delay=20)
    a.create_unassigned_work_item("x")
    delays = []
    for _ in range(5):
        lease_of(a.acquire_next_work_item())
        item = a.fail_work_item("x", "boom")
        delays.append(_delay_of(item, clock))
        clock.advance(seconds=delays[-1])
    for delay, full in zip(delays, (4, 8, 16, 20, 20), strict=True):
        assert full / 2 <= delay <= full, delays
    info = next(s for s in a.list_sessions() if s.session_name == "session-1")
    assert (info.retry_delay, info.max_retry_delay) == (timedelta(seconds=4), timedelta(seconds=20))


def test_retry_delays_are_jittered(make, clock):
    a = make("a")
    a.setup(retry_delay=100)
    a.create_work_items([{"work_item_id": f"i{n}"} for n in range(8)])
    delays = set()
    for n in range(8):
        worker = make(f"w{n}")
        lease = lease_of(worker.acquire_next_work_item())
        delays.add(_delay_of(worker.fail_work_item(lease.work_item_id, "boom"), clock))
    assert len(delays) > 1 and all(50 <= d <= 100 for d in delays)  # items failing together spread out


def test_no_retry_delay_gives_the_item_straight_back(make, clock):
    a = make("a")
    a.setup(retry_delay=0)
    a.create_unassigned_work_item("x")
    lease_of(a.acquire_next_work_item())
    assert a.fail_work_item("x", "boom").next_attempt_at is None
    assert lease_of(make("b").acquire_next_work_item()).work_item_id == "x"


def test_a_due_retry_comes_before_fresh_items_and_a_waiting_one_after_them(make, clock):
    a = make("a")
    a.setup(acquire_order="fifo", retry_delay=10)
    a.create_work_items([{"work_item_id": "x"}, {"work_item_id": "y"}, {"work_item_id": "z"}])
    lease_of(a.acquire_next_work_item())
    a.fail_work_item("x", "boom")
    assert lease_of(make("b").acquire_next_work_item()).work_item_id == "y"  # x waits
    clock.advance(seconds=10)
    assert lease_of(make("c").acquire_next_work_item()).work_item_id == "x"  # due: before z


def test_retry_and_a_named_lease_waive_the_delay(make, clock):
    a = make("a")
    a.create_work_items([{"work_item_id": "x"}, {"work_item_id": "y"}])
    for item_id in ("x", "y"):
        lease_of(a.create_or_update_lease_for_work_item(item_id))
        a.fail_work_item(item_id, "boom")
    named = lease_of(make("b").create_or_update_lease_for_work_item("x"))  # asked for by name
    assert named.work_item.next_attempt_at is None
    a.setup(max_attempts=1)
    lease_of(make("c").create_or_update_lease_for_work_item("y"))
    parked = make("c").fail_work_item("y", "again")
    assert parked.status is WorkItemStatus.FAILED and parked.next_attempt_at is None
    retried = a.retry_work_item("y")
    assert retried.status is WorkItemStatus.PENDING and retried.next_attempt_at is None
    assert lease_of(make("d").acquire_next_work_item()).work_item_id == "y"


@pytest.mark.parametrize(
    ("options", "field"),
    [({"retry_delay": -1}, "retry_delay"), ({"max_retry_delay": 86401}, "max_retry_delay"),
     ({"retry_delay": "soon"}, "retry_delay")],
)  # fmt: skip
def test_bad_retry_delays_are_refused(make, options, field):
    with pytest.raises(ValidationError) as err:
        make().setup(**options)
    assert err.value.context.get("field", getattr(err.value, "field", None)) == field


def test_fail_keeps_the_end_of_very_long_error_text(make):
    a = make("a")
    a.create_unassigned_work_item("x")
    lease_of(a.acquire_next_work_item())
    item = a.fail_work_item("x", "start " + "y" * 20000 + " the cause")
    assert item.last_error.endswith("the cause") and len(item.last_error) <= 8192


# -- successors --------------------------------------------------------------------


def test_twenty_items_split_in_three_leave_sixty_pending(make):
    creator = make("creator")
    creator.create_work_items(
        [{"work_item_id": f"idx__{n}__0", "index_name": "idx", "shard_number": n} for n in range(20)]
    )
    for n in range(20):
        worker = make(f"w{n}")
        lease = lease_of(worker.acquire_next_work_item())
        worker.create_successor_work_items_and_mark_complete(
            lease.work_item_id, [f"{lease.work_item_id}__{k}" for k in (100, 200, 300)]
        )
    pending = creator.list_work_items(WorkItemStatus.PENDING)
    assert len(pending) == 60
    assert creator.num_work_items_not_yet_complete() == 60
    assert len(creator.list_work_items(WorkItemStatus.COMPLETED)) == 20
    child = creator.get_work_item("idx__7__0__200")
    assert (child.index_name, child.shard_number, child.parent_id) == ("idx", 7, "idx__7__0")
    assert creator.get_work_item("idx__7__0").successor_ids == ("idx__7__0__100", "idx__7__0__200", "idx__7__0__300")


def test_successor_guard_rails(make):
    a = make("a")
    a.create_unassigned_work_item("x")
    lease_of(a.acquire_next_work_item())
    with pytest.raises(ValidationError):
        a.create_successor_work_items_and_mark_complete("x", ["x"])
    with pytest.raises(ValidationError):
        a.create_successor_work_items_and_mark_complete("x", ["y,z"])
    with pytest.raises(ValidationError):
        a.create_successor_work_items_and_mark_complete("x", [])
    assert a.get_work_item("x").status is WorkItemStatus.ASSIGNED
    with pytest.raises(LeaseConflictError):
        make("b").create_successor_work_items_and_mark_complete("x", ["y"])
    done = a.create_successor_work_items_and_mark_complete("x", ["y", "z"])
    assert done.status is WorkItemStatus.COMPLETED and done.successor_ids == ("y", "z")
    # The same set again, in any order, is a no-op.
    assert a.create_successor_work_items_and_mark_complete("x", ["z", "y"]).successor_ids == ("y", "z")
    with pytest.raises(SuccessorConflictError):
        a.create_successor_work_items_and_mark_complete("x", ["y", "w"])
    assert {i.work_item_id for i in a.list_work_items()} == {"x", "y", "z"}


def test_successors_share_the_remaining_work_and_status_counts_it_once(make):
    a = make("a")
    a.create_work_item_with_metadata("x", "idx", 3, 1000, 10_000)
    lease_of(a.acquire_next_work_item())
    a.update_progress_and_renew_lease("x", 400, 4000)
    a.create_successor_work_items_and_mark_complete("x", ["x2", "x3"])
    parts = [a.get_work_item(i) for i in ("x2", "x3")]
    assert [p.document_count for p in parts] == [300, 300]
    assert [p.total_size_bytes for p in parts] == [3000, 3000]
    status = a.status()
    assert status.total_documents == 1000 and status.total_size_bytes == 10_000
    assert status.total_documents_processed == 400
    assert status.percent_complete == 40.0
    for part in ("x2", "x3"):
        worker = make(f"w-{part}")
        lease_of(worker.acquire_next_work_item())
        worker.complete_work_item(part)
    status = a.status()
    assert status.total_documents_processed == 1000
    assert status.percent_complete == 100.0
    assert status.completed_work_items == 3 and status.pending_work_items == 0


# -- named leases ----------------------------------------------------------------------


def test_named_lease_creates_returns_unchanged_conflicts_and_completes(make, clock):
    a, b = make("a"), make("b")
    lease = lease_of(a.create_or_update_lease_for_work_item("shard_setup", FIVE_MIN))
    assert lease.work_item.status is WorkItemStatus.ASSIGNED and lease.lease_epoch == 1
    clock.advance(minutes=1)
    again = lease_of(a.create_or_update_lease_for_work_item("shard_setup", FIVE_MIN))
    assert again.lease_expiration_time == lease.lease_expiration_time
    with pytest.raises(LeaseConflictError):
        b.create_or_update_lease_for_work_item("shard_setup", FIVE_MIN)
    clock.advance(minutes=5)
    taken = lease_of(b.create_or_update_lease_for_work_item("shard_setup", FIVE_MIN))
    assert taken.work_item.worker_id == "b" and taken.lease_epoch == 2
    b.complete_work_item("shard_setup")
    outcome = a.create_or_update_lease_for_work_item("shard_setup", FIVE_MIN)
    assert isinstance(outcome, AlreadyCompleted)
    assert outcome.work_item.status is WorkItemStatus.COMPLETED


# -- status, listing, housekeeping ------------------------------------------------------


def test_status_counts_lapsed_leases_as_pending(make, clock):
    a = make("a")
    a.create_work_items(
        [
            {
                "work_item_id": f"s{n}",
                "index_name": "i",
                "shard_number": n,
                "document_count": 100,
                "total_size_bytes": 1000,
            }
            for n in range(4)
        ]
    )
    lease_of(a.acquire_next_work_item(FIVE_MIN))
    b = make("b")
    lease_of(b.acquire_next_work_item(timedelta(minutes=20)))
    c = make("c")
    lease_of(c.acquire_next_work_item(FIVE_MIN))
    c.complete_work_item(c.list_work_items(WorkItemStatus.ASSIGNED)[-1].work_item_id)
    status = a.status()
    assert (status.total_work_items, status.pending_work_items, status.assigned_work_items) == (4, 1, 2)
    assert status.completed_work_items == 1
    assert (status.total_documents, status.total_size_bytes) == (400, 4000)
    assert status.total_documents_processed == 100
    assert status.percent_complete == 25.0
    assert status.started_at == clock()
    clock.advance(minutes=6)
    status = a.status()
    assert (status.pending_work_items, status.assigned_work_items, status.expired_lease_work_items) == (2, 1, 1)
    assert status.not_yet_complete == 3 == a.num_work_items_not_yet_complete()
    assert a.work_items_not_yet_complete() is True
    as_dict = status.to_dict()
    for key in (
        "session_name", "total_work_items", "pending_work_items", "assigned_work_items", "completed_work_items",
        "total_documents", "total_documents_processed", "total_size_bytes", "total_bytes_processed",
        "started_at", "last_update",
    ):  # fmt: skip
        assert key in as_dict
    assert as_dict["started_at"].endswith("Z") and as_dict["session_name"] == "session-1"


def test_status_estimates_throughput_and_eta(make, clock):
    a = make("a")
    a.create_work_items([{"work_item_id": f"s{n}", "document_count": 1000} for n in range(4)])
    assert a.status().eta_seconds is None
    lease_of(a.acquire_next_work_item(FIVE_MIN))
    for _ in range(6):
        clock.advance(seconds=20)
        item = a.list_work_items(WorkItemStatus.ASSIGNED)[0]
        a.update_progress_and_renew_lease(item.work_item_id, item.documents_processed + 200, 0)
        if item.documents_processed + 200 >= 1000:
            a.complete_work_item(item.work_item_id)
            lease_of(a.acquire_next_work_item(FIVE_MIN))
    status = a.status()
    # 1200 documents in 120 s: 10 documents a second; 2800 left.
    assert status.documents_per_second == pytest.approx(10.0, rel=0.2)
    assert status.eta_seconds == pytest.approx(280.0, rel=0.2)
    assert status.estimated_completion is not None


def test_status_shows_no_eta_while_no_lease_is_live(make, clock):
    a = make("a")
    a.create_work_items([{"work_item_id": f"s{n}", "document_count": 1000} for n in range(3)])
    lease = lease_of(a.acquire_next_work_item(FIVE_MIN))
    for done in (300, 600, 1000):
        clock.advance(seconds=20)
        a.update_progress_and_renew_lease(lease.work_item_id, done, 0)
    a.complete_work_item(lease.work_item_id)
    status = a.status()
    # Progress was measured, but nobody holds a lease now: there is no completion time to promise.
    assert status.documents_per_second is not None and status.documents_per_second > 0
    assert (status.eta_seconds, status.estimated_completion, status.finished_at) == (None, None, None)
    lease_of(a.acquire_next_work_item(FIVE_MIN))
    assert a.status().eta_seconds is not None  # a worker is back


def test_a_finished_sessions_figures_are_frozen_at_completion(make, clock):
    a = make("a")
    a.setup(max_attempts=1)
    a.create_work_items([{"work_item_id": f"s{n}", "document_count": 1000} for n in range(3)])
    started = clock()
    for n in range(3):
        clock.advance(seconds=30)
        lease = lease_of(a.acquire_next_work_item(FIVE_MIN))
        clock.advance(seconds=30)
        if n < 2:
            a.complete_work_item(lease.work_item_id)
        else:
            a.fail_work_item(lease.work_item_id, "boom")  # only a failed item is left: finished too
    at_end = a.status()
    assert at_end.finished_at == clock() and at_end.elapsed_seconds == pytest.approx(150.0)
    assert (started + timedelta(seconds=30)) == at_end.started_at
    # The run's mean: 2000 documents in 150 s; nothing is left to estimate.
    assert at_end.documents_per_second == pytest.approx(2000 / 150)
    assert at_end.eta_seconds == 0.0 and at_end.estimated_completion == at_end.finished_at
    clock.advance(hours=1)
    later = a.status()
    frozen = ("documents_per_second", "bytes_per_second", "eta_seconds", "estimated_completion", "elapsed_seconds",
              "finished_at", "percent_complete")  # fmt: skip
    assert {k: getattr(later, k) for k in frozen} == {k: getattr(at_end, k) for k in frozen}
    assert later.as_of == at_end.as_of + timedelta(hours=1)


def test_status_counts_items_waiting_to_be_retried(make, clock):
    a = make("a")
    a.create_work_items([{"work_item_id": n} for n in "abc"])
    for _ in range(2):
        a.fail_work_item(lease_of(a.acquire_next_work_item()).work_item_id, "boom")
    status = a.status()
    assert (status.retrying_work_items, status.pending_work_items, status.elapsed_seconds) == (2, 3, 0.0)
    assert status.to_dict()["retrying_work_items"] == 2
    clock.advance(seconds=10)
    a.complete_work_item(lease_of(a.acquire_next_work_item()).work_item_id)
    assert a.status().retrying_work_items == 1


def test_an_existing_empty_session_reads_as_empty(make):
    empty = make("w", session="set-up-only")
    empty.setup()
    status = empty.status()
    assert (status.total_work_items, status.pending_work_items, status.percent_complete) == (0, 0, 0.0)
    assert empty.list_work_items() == []
    assert empty.num_work_items_not_yet_complete() == 0
    assert empty.work_items_not_yet_complete() is False
    outcome = empty.acquire_next_work_item()
    assert isinstance(outcome, NoAvailableWorkToBeDone) and outcome.all_work_done
    assert empty.cleanup_expired() == 0 and empty.delete_session() == 0


# Every call that only reads or works on existing items, on a session nothing created.
UNKNOWN_SESSION_CALLS = {
    "acquire": lambda c: c.acquire_next_work_item(FIVE_MIN),
    "status": lambda c: c.status(),
    "list": lambda c: c.list_work_items(),
    "list_pending": lambda c: c.list_work_items("pending"),
    "get": lambda c: c.get_work_item("x"),
    "num_not_complete": lambda c: c.num_work_items_not_yet_complete(),
    "not_complete": lambda c: c.work_items_not_yet_complete(),
    "renew": lambda c: c.update_progress_and_renew_lease("x", 1, 1),
    "complete": lambda c: c.complete_work_item("x"),
    "complete_with_epoch": lambda c: c.complete_work_item("x", lease_epoch=1),
    "complete_and_acquire": lambda c: c.complete_and_acquire_next("x", FIVE_MIN),
    "release": lambda c: c.release_work_item("x"),
    "fail": lambda c: c.fail_work_item("x", "boom"),
    "retry": lambda c: c.retry_work_item("x"),
    "successors": lambda c: c.create_successor_work_items_and_mark_complete("x", ["y"]),
    "cleanup": lambda c: c.cleanup_expired(),
    "delete_session": lambda c: c.delete_session(),
    "index_progress": lambda c: c.index_progress(),
    "progress_samples": lambda c: c.progress_samples(),
    "attention_items": lambda c: c.list_attention_items("leased"),
    "items_page": lambda c: c.list_work_items_page(id_contains="x"),
}


@pytest.mark.parametrize("operation", sorted(UNKNOWN_SESSION_CALLS))
def test_an_unknown_session_is_an_error_and_creates_nothing(make, operation):
    make("other", session="real").create_unassigned_work_item("x")
    typo = make("w", session="reall")
    with pytest.raises(SessionNotFoundError) as err:
        UNKNOWN_SESSION_CALLS[operation](typo)
    assert err.value.code == "session_not_found" and err.value.http_status == 404
    assert "reall" in str(err.value) and err.value.context["session"] == "reall"
    assert [s.session_name for s in typo.list_sessions()] == ["real"]  # no empty session row left behind


def test_creating_items_creates_the_session(make):
    creators = {
        "one": lambda c: c.create_unassigned_work_item("a"),
        "meta": lambda c: c.create_work_item_with_metadata("a", "idx", 0, 10, 20),
        "batch": lambda c: c.create_work_items([{"work_item_id": "a"}]),
        "named-lease": lambda c: c.create_or_update_lease_for_work_item("a", FIVE_MIN),
        "setup": lambda c: c.setup(),
    }
    for session, create in creators.items():
        coord = make("w", session=session)
        create(coord)
        assert coord.status().session_name == session
    assert [s.session_name for s in make().list_sessions()] == sorted(creators)


def test_sessions_are_separate_namespaces(make):
    one, two = make("w", session="one"), make("w", session="two")
    one.create_unassigned_work_item("same-id")
    two.create_unassigned_work_item("same-id")
    lease_of(one.acquire_next_work_item())
    assert two.get_work_item("same-id").status is WorkItemStatus.PENDING
    assert lease_of(two.acquire_next_work_item()).work_item_id == "same-id"
    names = [s.session_name for s in one.list_sessions()]
    assert names == ["one", "two"]
    assert one.status().total_work_items == 1


def test_list_filters_by_effective_status(make, clock):
    a = make("a")
    a.create_work_items([{"work_item_id": n} for n in "abcd"])
    lease_of(a.acquire_next_work_item(FIVE_MIN))
    a.complete_work_item("a")
    lease_of(a.acquire_next_work_item(FIVE_MIN))
    assert [i.work_item_id for i in a.list_work_items("assigned")] == ["b"]
    assert [i.work_item_id for i in a.list_work_items("pending")] == ["c", "d"]
    assert [i.work_item_id for i in a.list_work_items("completed")] == ["a"]
    clock.advance(minutes=6)
    assert [i.work_item_id for i in a.list_work_items("pending")] == ["b", "c", "d"]
    assert a.list_work_items("assigned") == []
    with pytest.raises(ValidationError):
        a.list_work_items("done")


def test_cleanup_expired_resets_lapsed_leases_and_keeps_the_former_holder(make, clock):
    a, b = make("a"), make("b")
    a.create_work_items([{"work_item_id": "x"}, {"work_item_id": "y"}])
    lease_of(a.acquire_next_work_item(FIVE_MIN))
    lease_of(b.acquire_next_work_item(timedelta(minutes=30)))
    assert a.cleanup_expired() == 0
    clock.advance(minutes=6)
    assert a.cleanup_expired() == 1
    assert a.cleanup_expired() == 0
    item = a.get_work_item("x")
    assert item.status is WorkItemStatus.PENDING and item.worker_id == "a"
    with pytest.raises(LeaseExpiredError):
        a.update_progress_and_renew_lease("x", 1, 1)
    assert a.status().expired_lease_work_items == 0
    assert b.get_work_item("y").status is WorkItemStatus.ASSIGNED


def test_delete_session_removes_its_items_only(make):
    one, two = make("w", session="one"), make("w", session="two")
    one.create_work_items([{"work_item_id": "a"}, {"work_item_id": "b"}])
    two.create_unassigned_work_item("c")
    assert one.delete_session() == 2
    assert one.list_work_items() == [] and one.status().total_work_items == 0
    assert [i.work_item_id for i in two.list_work_items()] == ["c"]
    assert one.create_unassigned_work_item("a") is True


def test_item_round_trips_through_its_json_shape(make):
    from litecoord import WorkItem

    a = make("a")
    a.create_work_item_with_metadata("x", "i", 1, 10, 20)
    lease = lease_of(a.acquire_next_work_item())
    item = a.update_progress_and_renew_lease("x", 3, 4)
    assert WorkItem.from_dict(item.to_dict()) == item
    assert WorkItemAndDuration.from_dict(lease.to_dict()) == lease
    assert item.to_dict()["lease_expiry"].endswith("Z")


def test_items_say_when_the_current_lease_began_and_how_long_it_is(make, clock):
    a = make("a")
    a.create_unassigned_work_item("x")
    lease_of(a.acquire_next_work_item(FIVE_MIN))
    clock.advance(minutes=6)
    taken = lease_of(make("b").acquire_next_work_item(timedelta(minutes=2))).work_item
    assert taken.leased_at == clock() and taken.started_at == clock() - timedelta(minutes=6)
    assert taken.lease_duration == timedelta(minutes=2)
    clock.advance(minutes=1)
    renewed = make("b").update_progress_and_renew_lease("x", 1, 1)
    assert renewed.leased_at == taken.leased_at and renewed.lease_duration == timedelta(minutes=2)


def test_complete_and_acquire_next_is_one_step(make, clock):
    a, b = make("a"), make("b")
    a.create_work_items([{"work_item_id": n, "total_size_bytes": s} for n, s in (("x", 3), ("y", 2), ("z", 1))])
    first = lease_of(a.acquire_next_work_item(FIVE_MIN))
    done, nxt = a.complete_and_acquire_next("x", FIVE_MIN, lease_epoch=first.lease_epoch)
    assert done.work_item_id == "x" and done.status is WorkItemStatus.COMPLETED
    nxt = lease_of(nxt)
    assert nxt.work_item_id == "y" and nxt.work_item.worker_id == "a"
    # Another worker cannot complete a's item, and then nothing is acquired for it either.
    with pytest.raises(LeaseConflictError):
        b.complete_and_acquire_next("y")
    assert lease_of(b.acquire_next_work_item()).work_item_id == "z"
    # A retried call (lost response) completes nothing twice and returns the held lease.
    again_done, again_next = a.complete_and_acquire_next("x", FIVE_MIN)
    assert again_done.completed_at == done.completed_at and lease_of(again_next).work_item_id == "y"
    done, last = a.complete_and_acquire_next("y", FIVE_MIN)
    assert done.status is WorkItemStatus.COMPLETED
    assert isinstance(last, NoAvailableWorkToBeDone) and last.remaining == 1
    # A stale epoch is refused as with complete_work_item.
    clock.advance(minutes=6)
    retaken = lease_of(a.acquire_next_work_item(FIVE_MIN))
    assert retaken.work_item_id == "z"
    with pytest.raises(LeaseConflictError):
        b.complete_and_acquire_next("z")


def test_changing_the_order_of_a_session_reorders_its_pending_items(make):
    coord = make("w")
    coord.create_work_items(
        [{"work_item_id": "small", "total_size_bytes": 1}, {"work_item_id": "big", "total_size_bytes": 99}]
    )
    coord.setup(acquire_order="fifo")
    assert lease_of(make("w1").acquire_next_work_item()).work_item_id == "small"
    coord.create_unassigned_work_item("later")
    coord.setup(acquire_order="largest_first")
    assert lease_of(make("w2").acquire_next_work_item()).work_item_id == "big"
    assert lease_of(make("w3").acquire_next_work_item()).work_item_id == "later"


# -- monitoring: aggregates and pages, never every item ---------------------------------


def test_index_progress_aggregates_each_index(make, clock):
    a = make("a")
    a.setup(max_attempts=1)
    a.create_work_items(
        [
            {"work_item_id": f"x{n}", "index_name": "logs", "document_count": 10, "total_size_bytes": 100}
            for n in range(3)
        ]
        + [{"work_item_id": "y0", "index_name": "docs", "document_count": 5}, {"work_item_id": "z"}]
    )
    assert a.index_progress()[0].index_name == "docs"  # by name, unnamed last
    first = lease_of(a.acquire_next_work_item(FIVE_MIN))  # largest first: a logs shard
    a.update_progress_and_renew_lease(first.work_item_id, 4, 40)
    b = make("b")
    second = lease_of(b.acquire_next_work_item(timedelta(minutes=1)))
    b.complete_work_item(second.work_item_id)
    c = make("c")
    third = lease_of(c.acquire_next_work_item(timedelta(minutes=1)))
    c.fail_work_item(third.work_item_id, "boom")
    d = make("d")
    lease_of(d.acquire_next_work_item(timedelta(minutes=1)))
    clock.advance(minutes=2)  # d's lease lapses, a's does not
    by_name = {i.index_name: i for i in a.index_progress()}
    assert list(by_name) == ["docs", "logs", None]
    logs = by_name["logs"]
    assert (logs.total_work_items, logs.assigned_work_items, logs.completed_work_items, logs.failed_work_items) == (
        3,
        1,
        1,
        1,
    )
    assert (logs.total_documents, logs.documents_processed, logs.total_size_bytes, logs.bytes_processed) == (
        30,
        14,
        300,
        140,
    )
    docs = by_name["docs"]
    assert (docs.assigned_work_items, docs.lapsed_work_items, docs.pending_work_items) == (1, 1, 0)
    assert by_name[None].pending_work_items == 1
    empty = make("e", session="empty")
    with pytest.raises(SessionNotFoundError):
        empty.index_progress()
    empty.setup()
    assert empty.index_progress() == []


def test_progress_samples_record_totals_over_time(make, clock):
    a = make("a")
    a.create_work_items([{"work_item_id": "x", "document_count": 100}])
    lease = lease_of(a.acquire_next_work_item(FIVE_MIN))
    for docs in (10, 20, 30):
        clock.advance(seconds=15)
        a.update_progress_and_renew_lease(lease.work_item_id, docs, 0)
    samples = a.progress_samples()
    assert [s.documents_processed for s in samples][-3:] == [10, 20, 30]
    assert samples[-1].sampled_at == clock()
    assert [s.sampled_at for s in samples] == sorted(s.sampled_at for s in samples)


def test_attention_pages_leases_lapsed_first_then_failed_items(make, clock):
    a = make("a")
    a.setup(max_attempts=1)
    a.create_work_items([{"work_item_id": f"i{n}"} for n in range(7)])
    workers = [make(f"w{n}") for n in range(5)]
    for n, worker in enumerate(workers):
        lease_of(worker.acquire_next_work_item(timedelta(minutes=10 - n)))  # w4's lease ends first
    workers[0].fail_work_item(workers[0].list_work_items(WorkItemStatus.ASSIGNED)[0].work_item_id, "boom")
    clock.advance(minutes=6.5)  # w4's 6-minute lease lapses
    seen, after = [], None
    while True:
        page = a.list_attention_items("leased", limit=2, after=after)
        assert page.total == 4 and len(page.items) <= 2
        seen += [item.worker_id for item in page.items]
        after = page.next_cursor
        if after is None:
            break
    assert seen == ["w4", "w3", "w2", "w1"]
    failed = a.list_attention_items("failed")
    assert (failed.total, [i.last_error for i in failed.items], failed.next_cursor) == (1, ["boom"], None)
    with pytest.raises(ValidationError) as bad:
        a.list_attention_items("leased", after="not-a-cursor")
    assert bad.value.field == "after"
    with pytest.raises(ValidationError):
        a.list_attention_items("pending")
    with pytest.raises(ValidationError):
        a.list_attention_items("failed", limit=0)


def _ids(page):
    return [i.work_item_id for i in page.items]


def test_items_page_filters_sorts_and_pages_on_the_server(make, clock):
    a = make("a")
    a.setup(max_attempts=1, acquire_order="fifo")
    a.create_work_items(
        [{"work_item_id": f"logs__{n}__0", "index_name": "logs", "document_count": 100} for n in range(4)]
        + [{"work_item_id": f"orders__{n}__0", "index_name": "orders", "document_count": 100} for n in range(3)]
        + [{"work_item_id": "misc"}]  # no index, no document count
    )
    w1, w2, w3 = make("w1"), make("w2"), make("w3")
    for worker, docs in ((w1, 90), (w2, 10), (w3, 50)):  # logs__0, logs__1, logs__2
        lease = lease_of(worker.acquire_next_work_item(FIVE_MIN))
        clock.advance(seconds=10)
        worker.update_progress_and_renew_lease(lease.work_item_id, docs, 0)
    w3.fail_work_item("logs__2__0", "boom")
    # Everything, in creation order, three at a time: the cursor walks every item once.
    seen, after, pages = [], None, 0
    while True:
        page = a.list_work_items_page(limit=3, after=after)
        assert page.total == 8
        seen += _ids(page)
        pages += 1
        after = page.next_cursor
        if after is None:
            break
    assert pages == 3 and seen == [f"logs__{n}__0" for n in range(4)] + [f"orders__{n}__0" for n in range(3)] + ["misc"]
    # Filters combine: substring of the id, index, status, holder.
    assert _ids(a.list_work_items_page(id_contains="__1__")) == ["logs__1__0", "orders__1__0"]
    assert _ids(a.list_work_items_page(index_name="orders", id_contains="__1")) == ["orders__1__0"]
    assert _ids(a.list_work_items_page(status="assigned")) == ["logs__0__0", "logs__1__0"]
    assert _ids(a.list_work_items_page(status="failed")) == ["logs__2__0"]
    assert _ids(a.list_work_items_page(worker_id="w2")) == ["logs__1__0"]
    assert a.list_work_items_page(worker_id="w2", status="completed").total == 0
    assert _ids(a.list_work_items_page(id_contains="%")) == []  # a substring, not a pattern
    # Sorted by progress: items without a document count last in both directions.
    by_progress = a.list_work_items_page(sort="progress", descending=True, limit=3)
    assert _ids(by_progress) == ["logs__0__0", "logs__2__0", "logs__1__0"] and by_progress.total == 8
    assert _ids(a.list_work_items_page(sort="progress"))[:3] == ["logs__3__0", "orders__0__0", "orders__1__0"]
    assert _ids(a.list_work_items_page(sort="progress"))[-1] == "misc"
    assert _ids(a.list_work_items_page(sort="failures", descending=True, limit=1)) == ["logs__2__0"]
    # Heartbeat age: w1 renewed 20 s before w2; only leases have one.
    clock.advance(seconds=5)
    assert _ids(a.list_work_items_page(sort="heartbeat", descending=True, limit=2)) == ["logs__0__0", "logs__1__0"]
    assert _ids(a.list_work_items_page(sort="heartbeat", limit=2)) == ["logs__1__0", "logs__0__0"]
    assert _ids(a.list_work_items_page(sort="id", descending=True, limit=1)) == ["orders__2__0"]
    # A lapsed lease reads as pending here too.
    clock.advance(minutes=10)
    assert "logs__0__0" in _ids(a.list_work_items_page(status="pending"))
    assert a.list_work_items_page(status="assigned").total == 0
    for bad, field in (
        ({"sort": "age"}, "sort"),
        ({"status": "lapsed"}, "status"),
        ({"after": "x"}, "after"),
        ({"limit": 0}, "limit"),
        ({"id_contains": ""}, "id_contains"),
    ):
        with pytest.raises(ValidationError) as err:
            a.list_work_items_page(**bad)
        assert err.value.field == field, bad
