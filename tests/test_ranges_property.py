"""Random interleavings of everything that changes ranges, against one SQLite file and a fake clock.

A hypothesis state machine plays three workers and an operator: acquire
(whose idle polls make split requests), renew with progress, live splits
(at the request or anywhere the holder may), RFS successors, failures,
retries, lapsed leases (the clock moves past them) taken over by another
worker, completion (stating no final count, the whole range, or one
document short of it), and stale holders acting on leases they lost. After
every step the items of each shard, complete or not, must tile the shard
exactly and completed items must have covered their whole range unless their
holder said it fell short; the session's document total must never change.
At the end the remaining work is finished and the coverage audit must be ok
exactly when nothing was completed short, naming each short item and its gap.

Sized for CI: EXAMPLES runs of up to STEPS steps each (about 15 s on 2 shared cores).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from litecoord import (
    FakeClock,
    LeaseConflictError,
    LeaseExpiredError,
    SqliteCoordinator,
    SuccessorConflictError,
    ValidationError,
    WorkItemAndDuration,
    WorkItemStatus,
)

EXAMPLES = 60
STEPS = 40
LEASE = timedelta(seconds=60)
#: Shard number -> its document count.
SHARDS = {0: 400, 1: 120, 2: 37}
WORKERS = ("w0", "w1", "w2")

#: Refusals a worker may meet when its lease is gone (lapsed, taken over, failed, completed).
LOST = (LeaseConflictError, LeaseExpiredError)


class RangesMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="lc-ranges-"))
        self.clock = FakeClock()
        self.admin = SqliteCoordinator(self.dir / "p.db", session="p", worker_id="admin", clock=self.clock,
                                       durability="normal")  # fmt: skip
        #: What each worker believes it holds: (item id, lease epoch), possibly stale.
        self.held: dict[str, tuple[str, int] | None] = dict.fromkeys(WORKERS)
        #: Items whose holder completed them one document short of their range: id -> its range.
        self.short: dict[str, tuple[int, int]] = {}

    @initialize()
    def create_shards(self) -> None:
        self.admin.setup(max_attempts=2, retry_delay=0, split_min_documents=5)
        self.admin.create_work_items(
            [{"work_item_id": f"logs__{n}__0", "index_name": "logs", "shard_number": n, "document_count": count,
              "total_size_bytes": count * 10} for n, count in SHARDS.items()]
        )  # fmt: skip

    def teardown(self) -> None:
        try:
            if self.admin.list_sessions():
                self.finish_and_audit()
        finally:
            self.admin.close()
            shutil.rmtree(self.dir, ignore_errors=True)

    def worker(self, name: str) -> SqliteCoordinator:
        return self.admin.bind(worker_id=name)

    # -- rules ---------------------------------------------------------------------------

    @rule(name=st.sampled_from(WORKERS))
    def acquire(self, name: str) -> None:
        outcome = self.worker(name).acquire_next_work_item(LEASE)
        if isinstance(outcome, WorkItemAndDuration):
            self.held[name] = (outcome.work_item_id, outcome.lease_epoch)

    @rule(name=st.sampled_from(WORKERS), step=st.integers(0, 150))
    def renew(self, name: str, step: int) -> None:
        if self.held[name] is None:
            return
        item_id, epoch = self.held[name]  # type: ignore[misc]
        item = self.admin.get_work_item(item_id)
        length = (item.range_end or item.range_start + 10_000) - item.range_start
        try:
            self.worker(name).update_progress_and_renew_lease(
                item_id, min(length, item.documents_processed + step), lease_epoch=epoch
            )
        except LOST:
            self.held[name] = None

    @rule(name=st.sampled_from(WORKERS), share=st.floats(0, 1), at_request=st.booleans())
    def split(self, name: str, share: float, at_request: bool) -> None:
        if self.held[name] is None:
            return
        item_id, epoch = self.held[name]  # type: ignore[misc]
        item = self.admin.get_work_item(item_id)
        if item.range_end is None or item.position >= item.range_end:
            return
        if at_request and item.split_requested_at is not None and item.split_requested_at < item.range_end:
            at = max(item.split_requested_at, item.position)
        else:
            at = item.position + int((item.range_end - 1 - item.position) * share)
        if at == item.range_start:
            return  # the item would keep nothing: refused (a holder gives the whole item back instead)
        try:
            kept, new = self.worker(name).split_work_item(item_id, at, lease_epoch=epoch)
        except LOST:
            self.held[name] = None
            return
        assert (kept.range_end, new.range_start, new.parent_id) == (at, at, item_id)

    @rule(name=st.sampled_from(WORKERS), shares=st.lists(st.floats(0, 1), min_size=1, max_size=3))
    def successors(self, name: str, shares: list[float]) -> None:
        if self.held[name] is None:
            return
        item_id, epoch = self.held[name]  # type: ignore[misc]
        item = self.admin.get_work_item(item_id)
        if item.range_end is None or item.position >= item.range_end or item.position == item.range_start:
            return  # RFS makes successors past what it processed; a successor at the item's own start is the item
        if item.status is WorkItemStatus.COMPLETED and not item.successor_ids:
            # Completed short by this holder: successors now would be a different set, refused, nothing written.
            before = self.admin.list_work_items()
            with pytest.raises(SuccessorConflictError):
                self.worker(name).create_successor_work_items_and_mark_complete(
                    item_id, [f"logs__{item.shard_number}__{item.position}"], lease_epoch=epoch
                )
            assert self.admin.list_work_items() == before
            return
        starts = {item.position + int((item.range_end - 1 - item.position) * s) for s in shares}
        ids = [f"logs__{item.shard_number}__{start}" for start in sorted(starts)]
        try:
            done = self.worker(name).create_successor_work_items_and_mark_complete(item_id, ids, lease_epoch=epoch)
        except LOST:
            self.held[name] = None
            return
        assert done.status is WorkItemStatus.COMPLETED and done.range_end == min(starts)
        self.held[name] = None

    @rule(name=st.sampled_from(WORKERS))
    def fail(self, name: str) -> None:
        if self.held[name] is None:
            return
        item_id, epoch = self.held[name]  # type: ignore[misc]
        try:
            self.worker(name).fail_work_item(item_id, "boom", lease_epoch=epoch)
        except LOST:
            pass
        self.held[name] = None

    @rule(name=st.sampled_from(WORKERS), stated=st.sampled_from(["nothing", "whole", "short"]))
    def complete(self, name: str, stated: str) -> None:
        if self.held[name] is None:
            return
        item_id, epoch = self.held[name]  # type: ignore[misc]
        mine = self.admin.get_work_item(item_id)
        length = (mine.range_end or 0) - mine.range_start
        docs = {"nothing": None, "whole": length, "short": max(0, length - 1)}[stated]
        try:
            item = self.worker(name).complete_work_item(item_id, lease_epoch=epoch, documents_processed=docs)
        except LOST:
            self.held[name] = None
            return
        if mine.status is WorkItemStatus.COMPLETED or stated != "short" or length == 0:
            # A repeated completion changes nothing; otherwise the item covers all of its range.
            assert item.documents_processed >= length or item_id in self.short, item
        else:
            assert item.documents_processed == length - 1, item
            self.short[item_id] = (item.range_start, item.range_end)  # type: ignore[assignment]

    @rule()
    def retry_failed(self) -> None:
        for item in self.admin.list_work_items(WorkItemStatus.FAILED):
            self.admin.retry_work_item(item.work_item_id)

    @rule(seconds=st.sampled_from([10, 61]))
    def time_passes(self, seconds: int) -> None:
        # Past 60 s every lease lapses: the next acquire takes them over; their holders keep believing.
        self.clock.advance(seconds=seconds)

    @rule(name=st.sampled_from(WORKERS))
    def a_stale_holder_is_refused(self, name: str) -> None:
        """Whoever is not the current holder at that epoch cannot renew or split (writes nothing)."""
        if self.held[name] is None:
            return
        item_id, epoch = self.held[name]  # type: ignore[misc]
        item = self.admin.get_work_item(item_id)
        if item.worker_id == name and item.lease_epoch == epoch and item.status is not WorkItemStatus.COMPLETED:
            return  # still the holder
        before = self.admin.list_work_items()
        with contextlib.suppress(*LOST):
            self.worker(name).update_progress_and_renew_lease(item_id, lease_epoch=epoch)
            raise AssertionError(f"{name} renewed {item_id} at epoch {epoch} without holding it")
        try:
            kept, new = self.worker(name).split_work_item(item_id, item.position, lease_epoch=epoch)
        except (*LOST, ValidationError):
            pass
        else:  # only the repeat of a split it made while it held the item: the same pair, nothing written
            assert new in before and kept in before, (kept, new)
        assert self.admin.list_work_items() == before
        self.held[name] = None

    # -- what must hold after every step ----------------------------------------------------

    @invariant()
    def every_shard_is_tiled_exactly(self) -> None:
        if not self.admin.list_sessions():
            return
        items = self.admin.list_work_items()
        for number, count in SHARDS.items():
            pieces = sorted((i for i in items if i.shard_number == number), key=lambda i: i.range_start)
            assert pieces[0].range_start == 0, pieces
            for before, after in zip(pieces, pieces[1:], strict=False):
                assert before.range_end == after.range_start, (before, after)
            assert pieces[-1].range_end == count
            for piece in pieces:
                if piece.status is WorkItemStatus.COMPLETED:
                    short = piece.work_item_id in self.short
                    assert (piece.documents_processed < piece.range_end - piece.range_start) == short, piece
        assert self.admin.status().total_documents == sum(SHARDS.values())

    # -- the end --------------------------------------------------------------------------

    def finish_and_audit(self) -> None:
        finisher = self.worker("finisher")
        for _ in range(1000):
            self.clock.advance(seconds=61)  # every lease lapses; failed items come back
            for item in self.admin.list_work_items(WorkItemStatus.FAILED):
                self.admin.retry_work_item(item.work_item_id)
            outcome = finisher.acquire_next_work_item(LEASE)
            if not isinstance(outcome, WorkItemAndDuration):
                if outcome.remaining == 0 and not outcome.failed:
                    break
                continue
            finisher.complete_work_item(outcome.work_item_id, lease_epoch=outcome.lease_epoch)
        report = self.admin.verify_coverage()
        event(f"short items at the end: {min(len(self.short), 3)}")
        assert report.ok == (not self.short), report
        for shard in report.shards:
            short = {k: span for k, span in self.short.items() if k in {i.work_item_id for i in self._items(shard)}}
            assert sorted(shard.short) == sorted(short), (shard, short)
            assert shard.gaps == tuple(sorted((end - 1, end) for _, end in short.values())), (shard, short)
        status = self.admin.status()
        assert status.total_documents == sum(SHARDS.values())
        assert status.total_documents_processed == status.total_documents - len(self.short)

    def _items(self, shard) -> list:
        return [i for i in self.admin.list_work_items() if i.shard_number == shard.shard_number]


RangesMachine.TestCase.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_ranges_property = RangesMachine.TestCase
