"""The contract of document ranges, live splits, split requests and the coverage audit, on every backend.

Like tests/test_conformance.py: each test takes ``make`` (coordinators of one
backend over one store and one fake clock), so it runs on SQLite, PostgreSQL
and HttpCoordinator over either, through the REST layer.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from litecoord import (
    LeaseConflictError,
    LeaseExpiredError,
    NoAvailableWorkToBeDone,
    ValidationError,
    WorkItemAndDuration,
    WorkItemStatus,
)

FIVE_MIN = timedelta(minutes=5)


def lease_of(outcome: object) -> WorkItemAndDuration:
    assert isinstance(outcome, WorkItemAndDuration), outcome
    return outcome


def shard(coord, item_id: str, docs: int | None, size: int | None = None, index: str = "logs", number: int = 0):
    coord.create_work_items(
        [
            {"work_item_id": item_id, "index_name": index, "shard_number": number, "document_count": docs,
             "total_size_bytes": size},
        ]
    )  # fmt: skip


# -- ranges ------------------------------------------------------------------------------


def test_a_new_item_covers_its_rfs_start_and_count(make):
    coord = make()
    shard(coord, "logs__0__0", 1000)
    shard(coord, "logs__1__250", 100, number=1)
    shard(coord, "plain", None)
    coord.create_unassigned_work_item("other__2__40")
    items = {i.work_item_id: i for i in coord.list_work_items()}
    assert {k: (i.range_start, i.range_end) for k, i in items.items()} == {
        "logs__0__0": (0, 1000), "logs__1__250": (250, 350), "plain": (0, None), "other__2__40": (40, None),
    }  # fmt: skip
    assert items["logs__1__250"].to_dict()["range_start"] == 250
    assert items["plain"].to_dict()["range_end"] is None
    named = lease_of(make("w").create_or_update_lease_for_work_item("rfs__3__77", FIVE_MIN)).work_item
    assert (named.range_start, named.range_end, named.split_requested_at) == (77, None, None)


def test_rfs_successors_partition_the_parents_range(make):
    a = make("a")
    shard(a, "logs__0__0", 1000, 10_000)
    lease_of(a.acquire_next_work_item())
    a.update_progress_and_renew_lease("logs__0__0", 200)
    done = a.create_successor_work_items_and_mark_complete("logs__0__0", ["logs__0__700", "logs__0__300"])
    # The parent keeps [0, 300) and is recorded as having processed it; the successors tile the rest.
    assert (done.range_start, done.range_end, done.documents_processed) == (0, 300, 300)
    parts = {i: a.get_work_item(i) for i in ("logs__0__300", "logs__0__700")}
    assert [(p.range_start, p.range_end, p.document_count) for p in parts.values()] == [
        (300, 700, 400),
        (700, 1000, 300),
    ]
    assert all(p.parent_id == "logs__0__0" for p in parts.values())
    status = a.status()
    assert (status.total_documents, status.total_size_bytes) == (1000, 10_000)
    for name in parts:
        worker = make(f"w-{name}")
        lease_of(worker.create_or_update_lease_for_work_item(name, FIVE_MIN))
        worker.complete_work_item(name)
    assert a.status().total_documents_processed == 1000
    assert a.verify_coverage().ok


@pytest.mark.parametrize(
    ("successors", "why"),
    [
        (["logs__0__100"], "behind the recorded position 200"),
        (["logs__0__1000"], "outside the range"),
        (["logs__0__500", "logs__0__1200"], "outside the range"),
    ],
)
def test_rfs_successors_outside_the_range_or_behind_the_position_are_refused(make, successors, why):
    a = make("a")
    shard(a, "logs__0__0", 1000)
    lease_of(a.acquire_next_work_item())
    a.update_progress_and_renew_lease("logs__0__0", 200)
    with pytest.raises(ValidationError, match=why):
        a.create_successor_work_items_and_mark_complete("logs__0__0", successors)
    item = a.get_work_item("logs__0__0")
    assert (item.status, item.range_end, item.successor_ids) == (WorkItemStatus.ASSIGNED, 1000, ())
    assert [i.work_item_id for i in a.list_work_items()] == ["logs__0__0"]  # nothing written


def test_successors_without_rfs_ids_keep_working_and_make_the_shard_unverifiable(make):
    a = make("a")
    shard(a, "x", 1000)
    lease_of(a.acquire_next_work_item())
    a.update_progress_and_renew_lease("x", 400)
    a.create_successor_work_items_and_mark_complete("x", ["x2", "x3"])
    assert [a.get_work_item(i).document_count for i in ("x2", "x3")] == [300, 300]
    for name in ("x2", "x3"):
        worker = make(f"w-{name}")
        lease_of(worker.acquire_next_work_item())
        worker.complete_work_item(name)
    report = a.verify_coverage()
    assert [s.verdict for s in report.shards] == ["unverifiable"]
    assert "not RFS ids" in report.shards[0].reason


# -- live splits -------------------------------------------------------------------------


def test_the_holder_splits_its_item_and_the_totals_stay(make):
    a = make("a")
    shard(a, "logs__0__0", 1000, 10_000)
    lease = lease_of(a.acquire_next_work_item())
    a.update_progress_and_renew_lease("logs__0__0", 100)
    kept, new = a.split_work_item("logs__0__0", 600, lease_epoch=lease.lease_epoch)
    assert (kept.range_start, kept.range_end, kept.document_count, kept.total_size_bytes) == (0, 600, 600, 6000)
    assert (kept.status, kept.worker_id, kept.lease_epoch) == (WorkItemStatus.ASSIGNED, "a", lease.lease_epoch)
    assert (new.work_item_id, new.range_start, new.range_end, new.document_count, new.total_size_bytes) == (
        "logs__0__600", 600, 1000, 400, 4000,
    )  # fmt: skip
    assert (new.status, new.parent_id, new.index_name, new.shard_number) == (
        WorkItemStatus.PENDING,
        "logs__0__0",
        "logs",
        0,
    )
    status = a.status()
    assert (status.total_documents, status.total_size_bytes, status.total_work_items) == (1000, 10_000, 2)
    # The same call again returns the same pair, and writes nothing.
    assert a.split_work_item("logs__0__0", 600, lease_epoch=lease.lease_epoch) == (kept, new)
    assert len(a.list_work_items()) == 2
    # The new item is handed out; both complete, and every document is covered once.
    b = make("b")
    assert lease_of(b.acquire_next_work_item()).work_item_id == "logs__0__600"
    b.complete_work_item("logs__0__600")
    a.complete_work_item("logs__0__0")
    status = a.status()
    assert (status.total_documents_processed, status.percent_complete) == (1000, 100.0)
    report = a.verify_coverage()
    assert report.ok and report.shards[0].covered == ((0, 1000),) and report.shards[0].extent == (0, 1000)


def test_a_split_of_a_split_and_of_a_non_rfs_id(make):
    a = make("a")
    shard(a, "big", 100)
    lease_of(a.acquire_next_work_item())
    with pytest.raises(ValidationError, match="must be after the start 0"):
        a.split_work_item("big", 0)  # it would keep nothing
    _, new = a.split_work_item("big", 50)
    assert (new.work_item_id, new.range_start, new.range_end) == ("big@50", 50, 100)
    _, newer = a.split_work_item("big", 20)
    assert (newer.work_item_id, newer.range_start, newer.range_end) == ("big@20", 20, 50)
    assert a.status().total_documents == 100


def test_split_refusals_write_nothing(make, clock):
    a, b = make("a"), make("b")
    shard(a, "logs__0__0", 1000)
    shard(a, "logs__1__0", None, number=1)
    lease = lease_of(a.acquire_next_work_item())
    a.update_progress_and_renew_lease(lease.work_item_id, 300)
    held = lease.work_item_id
    for at, why in ((299, "behind the recorded position 300"), (1000, "before the end"), (5000, "before the end")):
        with pytest.raises(ValidationError, match=why):
            a.split_work_item(held, at)
    with pytest.raises(ValidationError, match="at"):
        a.split_work_item(held, -1)
    with pytest.raises(LeaseConflictError):
        b.split_work_item(held, 500)
    with pytest.raises(LeaseConflictError, match="stale"):
        a.split_work_item(held, 500, lease_epoch=lease.lease_epoch + 1)
    clock.advance(minutes=6)
    with pytest.raises(LeaseExpiredError):
        a.split_work_item(held, 500)
    assert len(a.list_work_items()) == 2
    assert a.get_work_item(held).range_end == 1000
    # An open range (no count) splits anywhere from the position on; the new item is open too.
    other = lease_of(b.acquire_next_work_item())  # the lapsed lease comes back first
    assert other.work_item_id == held
    lease_of(a.acquire_next_work_item())
    kept, new = a.split_work_item("logs__1__0", 5000)
    assert (kept.range_end, kept.document_count, new.range_start, new.range_end, new.document_count) == (
        5000, None, 5000, None, None,
    )  # fmt: skip


# -- split requests ----------------------------------------------------------------------


def test_an_idle_acquire_asks_the_lease_with_most_work_left_once(make, clock):
    a, b, idle = make("a"), make("b"), make("idle")
    a.setup(split_min_documents=100)
    shard(a, "logs__0__0", 100_000, 10)
    shard(a, "logs__1__0", 10_000, 10, number=1)
    assert lease_of(a.acquire_next_work_item()).work_item_id == "logs__0__0"
    assert lease_of(b.acquire_next_work_item()).work_item_id == "logs__1__0"
    assert isinstance(idle.acquire_next_work_item(), NoAvailableWorkToBeDone)
    # Both have no rate yet: the most documents left is asked, halfway through them.
    assert [i.split_requested_at for i in a.list_work_items()] == [50_000, None]
    # With rates, the longest time left wins: a runs at 100 docs/s (990 s left), b at 1 doc/s (9,990 s).
    clock.advance(seconds=10)
    assert a.update_progress_and_renew_lease("logs__0__0", 1000).split_requested_at == 50_000
    b.update_progress_and_renew_lease("logs__1__0", 10)
    idle.acquire_next_work_item()  # a's request is outstanding, b is now the longest: b is asked too
    requested = {i.work_item_id: i.split_requested_at for i in a.list_work_items()}
    assert requested == {"logs__0__0": 50_000, "logs__1__0": 5005}
    # The holder answers with a split at the proposal (or later); that clears the request.
    kept, new = b.split_work_item("logs__1__0", 5005)
    assert kept.split_requested_at is None and new.split_requested_at is None
    assert lease_of(idle.acquire_next_work_item()).work_item_id == "logs__1__5005"


def test_idle_polls_with_a_request_outstanding_write_nothing(make):
    a, idle = make("a"), make("idle")
    a.setup(split_min_documents=10)
    shard(a, "logs__0__0", 1000)
    lease_of(a.acquire_next_work_item())
    idle.acquire_next_work_item()
    before = a.get_work_item("logs__0__0")
    assert before.split_requested_at == 500
    a.update_progress_and_renew_lease("logs__0__0", 600)  # past the proposal: a later one is not written
    for _ in range(3):
        idle.acquire_next_work_item()
    after = a.get_work_item("logs__0__0")
    assert after.split_requested_at == 500
    # The holder may answer at any later position than the proposal.
    kept, new = a.split_work_item("logs__0__0", 800)
    assert (kept.range_end, new.range_start, kept.split_requested_at) == (800, 800, None)


@pytest.mark.parametrize("ending", ["complete", "release", "fail", "takeover"])
def test_the_end_of_a_lease_clears_its_request(make, clock, ending):
    a, idle = make("a"), make("idle")
    a.setup(split_min_documents=10)
    shard(a, "logs__0__0", 1000)
    lease_of(a.acquire_next_work_item())
    idle.acquire_next_work_item()
    assert a.get_work_item("logs__0__0").split_requested_at == 500
    if ending == "complete":
        item = a.complete_work_item("logs__0__0")
    elif ending == "release":
        a.release_work_item("logs__0__0")
        item = a.get_work_item("logs__0__0")
    elif ending == "fail":
        item = a.fail_work_item("logs__0__0", "boom")
    else:
        clock.advance(minutes=6)
        item = lease_of(idle.acquire_next_work_item()).work_item
    assert item.split_requested_at is None
    assert a.get_work_item("logs__0__0").split_requested_at is None


def test_requests_only_for_enough_work_left_and_off_with_none(make):
    a, idle = make("a"), make("idle")
    shard(a, "logs__0__0", 19_999)
    lease_of(a.acquire_next_work_item())
    assert a.list_sessions()[0].split_min_documents == 10_000  # the default is on
    idle.acquire_next_work_item()
    assert a.get_work_item("logs__0__0").split_requested_at is None  # fewer than 2 x 10,000 left
    a.setup(split_min_documents=None)
    assert a.list_sessions()[0].split_min_documents is None
    a.setup()  # left out: kept
    assert a.list_sessions()[0].split_min_documents is None
    a.setup(split_min_documents=1)
    idle.acquire_next_work_item()
    assert a.get_work_item("logs__0__0").split_requested_at == 9999
    with pytest.raises(ValidationError, match="split_min_documents"):
        a.setup(split_min_documents=-1)


# -- the audit ---------------------------------------------------------------------------


def test_the_audit_reports_gaps_short_items_and_unfinished_work(make):
    a = make("a")
    shard(a, "logs__0__0", 1000)
    shard(a, "logs__1__0", 500, number=1)
    shard(a, "nocount", None, index="other")
    report = a.verify_coverage()
    assert not report.ok and report.gap_count == 2
    verdicts = {(s.index_name, s.shard_number): (s.verdict, s.gaps, s.incomplete) for s in report.shards}
    assert verdicts[("logs", 0)] == ("not_ok", ((0, 1000),), ("logs__0__0",))
    assert verdicts[("other", 0)][0] == "unverifiable"
    lease_of(a.acquire_next_work_item())
    a.split_work_item("logs__0__0", 400)
    a.complete_work_item("logs__0__0")
    report = a.verify_coverage()
    logs0 = next(s for s in report.shards if s.shard_number == 0 and s.index_name == "logs")
    assert (logs0.covered, logs0.gaps, logs0.incomplete) == (((0, 400),), ((400, 1000),), ("logs__0__400",))
    assert report.to_dict()["gap_count"] == report.gap_count == 2


def test_a_holder_that_completes_short_of_its_range_is_reported_short_with_the_gap(make):
    a = make("a")
    shard(a, "logs__0__0", 1000, size=10_000)
    shard(a, "logs__1__0", 500, size=5_000, number=1)
    lease_of(a.acquire_next_work_item())
    a.update_progress_and_renew_lease("logs__0__0", 600, 6_000)
    done = a.complete_work_item("logs__0__0", documents_processed=600, bytes_processed=6_000)
    assert (done.status, done.documents_processed, done.bytes_processed) == (WorkItemStatus.COMPLETED, 600, 6_000)
    # The other completes in one step with the next lease, and states its whole range.
    lease = lease_of(a.acquire_next_work_item())
    done, _ = a.complete_and_acquire_next(lease.work_item_id, FIVE_MIN, documents_processed=500)
    assert (done.documents_processed, done.bytes_processed) == (500, 5_000)  # bytes not stated: in full
    report = a.verify_coverage()
    shards = {s.shard_number: s for s in report.shards}
    assert not report.ok
    assert (shards[0].verdict, shards[0].short, shards[0].gaps) == ("not_ok", ("logs__0__0",), ((600, 1000),))
    assert (shards[1].verdict, shards[1].short) == ("ok", ())
    status = a.status()
    assert (status.total_documents, status.total_documents_processed) == (1500, 1100)  # what was done, not 100%
    # Completing again is a no-op that returns the item as it was recorded.
    again = a.complete_work_item("logs__0__0", documents_processed=1000)
    assert again.documents_processed == 600


def test_a_holder_that_states_no_final_figures_is_trusted_with_its_whole_range(make):
    a = make("a")
    shard(a, "logs__0__0", 1000, size=10_000)
    lease_of(a.acquire_next_work_item())
    a.update_progress_and_renew_lease("logs__0__0", 600, 6_000)  # its last report, then it finished
    done = a.complete_work_item("logs__0__0")  # as the Java client completes: its worker id only
    assert (done.documents_processed, done.bytes_processed) == (1000, 10_000)
    assert a.verify_coverage().ok


def test_bad_final_figures_are_refused_and_nothing_is_written(make):
    a = make("a")
    shard(a, "logs__0__0", 1000)
    lease_of(a.acquire_next_work_item())
    with pytest.raises(ValidationError, match="documents_processed"):
        a.complete_work_item("logs__0__0", documents_processed=-1)
    with pytest.raises(ValidationError, match="bytes_processed"):
        a.complete_and_acquire_next("logs__0__0", FIVE_MIN, bytes_processed=-5)
    item = a.get_work_item("logs__0__0")
    assert (item.status, item.documents_processed) == (WorkItemStatus.ASSIGNED, 0)
    with pytest.raises(LeaseConflictError):
        make("b").complete_work_item("logs__0__0", documents_processed=1000)
    assert a.get_work_item("logs__0__0").status is WorkItemStatus.ASSIGNED


def test_an_rfs_successor_that_exists_already_is_refused_and_nothing_is_written(make):
    a = make("a")
    shard(a, "logs__0__0", 1000)
    a.create_unassigned_work_item("logs__0__500")  # made by hand: it would not take the range
    lease_of(a.acquire_next_work_item())
    with pytest.raises(ValidationError, match="'logs__0__500' already exists"):
        a.create_successor_work_items_and_mark_complete("logs__0__0", ["logs__0__200", "logs__0__500"])
    assert sorted(i.work_item_id for i in a.list_work_items()) == ["logs__0__0", "logs__0__500"]
    assert a.get_work_item("logs__0__0").status is WorkItemStatus.ASSIGNED


def test_a_paused_session_asks_for_no_split(make):
    a, idle = make("a"), make("idle")
    a.setup(split_min_documents=10)
    shard(a, "logs__0__0", 1000)
    lease_of(a.acquire_next_work_item())
    a.pause()
    paused = idle.acquire_next_work_item()
    assert isinstance(paused, NoAvailableWorkToBeDone) and paused.paused
    assert a.get_work_item("logs__0__0").split_requested_at is None  # idle on purpose: nobody would take a piece
    a.resume()
    idle.acquire_next_work_item()
    assert a.get_work_item("logs__0__0").split_requested_at == 500
