"""A backfill with one item of each kind the status page flags, built on a fake clock.

Used by the browser tests (tests/test_web_page.py). Time only moves when
``clock`` moves; the server shares the clock, so leases lapse without sleeping.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from litecoord import FakeClock, SqliteCoordinator

#: What :func:`populate` leaves, item by item.
OK, STALLED, SILENT, LAPSED, FAILED = "logs__0__0", "logs__1__0", "customers__0__0", "customers__1__0", "orders__0__0"


def populate(root: SqliteCoordinator, clock: FakeClock, session: str = "demo") -> dict[str, Any]:
    """Items in every state; returns the coordinators by role (to act on them later).

    After it returns: ``OK`` is healthy, ``STALLED`` heartbeats without progress
    for 120 s (stall threshold 60 s), ``SILENT`` has sent no heartbeat for 120 s
    on a 300 s lease (a third of it is 100 s), ``LAPSED``'s 30 s lease expired
    100 s ago, ``FAILED`` failed its only attempt; 3 items are complete.
    """
    admin = root.bind(session=session, worker_id="admin")
    admin.setup(max_attempts=1, acquire_order="fifo")
    specs = [(OK, "logs"), (STALLED, "logs"), (SILENT, "customers"), (LAPSED, "customers"), (FAILED, "orders")]
    specs += [(f"logs__{n}__0", "logs") for n in range(2, 8)] + [(f"orders__{n}__0", "orders") for n in range(1, 4)]
    admin.create_work_items(
        [
            {
                "work_item_id": item_id,
                "index_name": index,
                "shard_number": int(item_id.split("__")[1]),
                "document_count": 10_000,
                "total_size_bytes": 5_000_000,
            }
            for item_id, index in specs
        ]
    )
    roles = {}
    for item_id, lease in ((OK, 300), (STALLED, 300), (SILENT, 300), (LAPSED, 30), (FAILED, 300)):
        worker = root.bind(session=session, worker_id=f"worker-{item_id.split('__')[0]}-{item_id.split('__')[1]}")
        lease_got = worker.acquire_next_work_item(timedelta(seconds=lease))
        assert lease_got.work_item_id == item_id, (lease_got, item_id)  # fifo order
        roles[item_id] = worker
    roles[FAILED].fail_work_item(FAILED, "exit code 1: connection refused by the target cluster")
    finisher = root.bind(session=session, worker_id="worker-finisher")
    to_finish = iter(f"logs__{n}__0" for n in range(2, 8))
    for step in range(1, 13):  # 120 s in 10 s steps
        clock.advance(seconds=10)
        roles[OK].update_progress_and_renew_lease(OK, 700 * step, 350_000 * step)
        roles[STALLED].update_progress_and_renew_lease(STALLED, 2_000, 1_000_000)  # same figures each time
        if step == 1:
            roles[SILENT].update_progress_and_renew_lease(SILENT, 1_500, 700_000)
        if step % 4 == 0:
            # By name: acquire_next_work_item would hand out the lapsed lease first.
            item_id = next(to_finish)
            finisher.create_or_update_lease_for_work_item(item_id, timedelta(seconds=300))
            finisher.complete_work_item(item_id)
    roles["finisher"] = finisher
    return roles
