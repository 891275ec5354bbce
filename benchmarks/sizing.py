"""Sizing: the capacity model of docs/sizing.md, checked against a paced load on a big file.

The model: a backfill of ``W`` workers, each renewing its lease every ``h``
seconds (the heartbeat) and finishing an item every ``T`` seconds, asks its
store for

    L = W * (1/h + 2/T)   write transactions per second

(one renewal per heartbeat; per item, the last progress report and one
``complete_and_acquire_next``: what ``litecoord work`` sends).
One store carries ``C`` write transactions per second, measured here by
the same calls as fast as the store takes them. Run it at most half full
(``L <= C/2``): then a write waits little, and no renewal comes anywhere
near lapsing its lease. So one store holds

    W_max = C / (2 * (1/h + 2/T))   workers.

The check simulates exactly ``W_max`` workers on a file of 1,000,000 items
(half of them completed history; ``--quick``: 100,000): each holds a real
lease and renews it on its schedule, paced by the wall clock, in a few
processes. It
passes when the store keeps up (at least 97% of the offered writes done, no
lease lost) and the worst renewal ran late by under a tenth of the
shortest recommended lease (30 s), the suite's bound on any write's wait.
Lateness is how long after its scheduled time a worker's due calls
returned; it includes the wait behind the other simulated workers of its
process (one thread makes the calls of hundreds), so a real worker waits
less. A renewal only harms when it lands after its lease ran out: later
than the lease minus the heartbeat, 25 s for a 30 s lease renewed every
5 s (55 s for the 60 s leases simulated here). 3 s stays 8 times under
that, and far above the 0.45-0.6 s measured at ``W_max``, whereas a store
falling behind is late by ever more (7-14 s in the overload run). A tenth
of a heartbeat (0.5 s) would not tell those apart: it failed a PostgreSQL
run that did every call on time and lost no lease (worst 0.602 s).
A second run offers 1.5x ``C``: the store falls behind, and what it does
stays near ``C``, which shows ``C`` is the real limit. ``C`` is measured
again at the end, to show how far the machine moved it.
"""

from __future__ import annotations

import heapq
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from litecoord import LeaseConflictError, LeaseExpiredError, NoAvailableWorkToBeDone, SqliteCoordinator

from .common import SESSION, Results, Row, Settings, Target, build_db, log, percentile, run_processes
from .cycles import SHORTEST_LEASE_SECONDS

#: The worker runner's heartbeat for leases of 15 s and longer (a third of the lease, at most 5 s).
HEARTBEAT = 5.0
#: Heartbeats per item: items of 60 s of work (short shards, so the model's second term is felt).
HEARTBEATS_PER_ITEM = 12
ITEM_SECONDS = HEARTBEATS_PER_ITEM * HEARTBEAT
#: Workers whose calls measure C: rows spread over the table, as a backfill's are.
CAPACITY_WORKERS = 4000
#: Long enough that the simulated workers' first leases outlive the set-up of thousands of them.
LEASE = timedelta(seconds=60)
PROCS = 4
DURABILITY = "full"
#: Share of the measured capacity the model allows, and the overload run's offer.
UTILIZATION = 0.5
OVERLOAD = 1.5
#: Of the items, this share is completed history (what a long backfill leaves behind).
COMPLETED_SHARE = 0.5


def writes_per_worker(heartbeat: float = HEARTBEAT, item_seconds: float = ITEM_SECONDS) -> float:
    """Write transactions per second one worker asks for."""
    return 1 / heartbeat + 2 / item_seconds


def max_workers(capacity: float, heartbeat: float = HEARTBEAT, item_seconds: float = ITEM_SECONDS) -> int:
    """Workers one store holds at ``UTILIZATION`` of its measured write ``capacity``."""
    return int(UTILIZATION * capacity / writes_per_worker(heartbeat, item_seconds))


@dataclass(frozen=True)
class Store:
    """One store under test: how to fill it, open a worker on it, and what it takes on disk."""

    group: str
    setting: str
    build: Callable[[int], int]  # items -> pending items
    open: Callable[[str], Any]  # worker id -> coordinator
    bytes_used: Callable[[], int]


def sqlite_store(path: str) -> Store:
    return Store(
        "sizing",
        DURABILITY.upper(),
        lambda items: build_db(path, items, completed_share=COMPLETED_SHARE),
        lambda worker: SqliteCoordinator(path, session=SESSION, worker_id=worker, durability=DURABILITY),
        lambda: sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p)),
    )


def simulate(store: Store, label: str, workers: int, seconds: float, *, paced: bool = True) -> dict[str, Any]:
    """``workers`` simulated workers, each holding a real lease: what the store did, and how late.

    Paced, each worker renews on its heartbeat (the first heartbeats spread
    over one period, as workers that started at different times); at every
    ``HEARTBEATS_PER_ITEM``-th heartbeat its item is done: after renewing,
    it reports its last progress and completes the item, taking the next
    (``complete_and_acquire_next``): ``1/h + 2/T`` writes per second, the
    model's. Unpaced, the same workers
    make the same calls in the same order as fast as the store takes them:
    that measures ``C`` on rows spread over the table as a backfill's are.
    """
    per_proc = [workers // PROCS + (1 if i < workers % PROCS else 0) for i in range(PROCS)]
    period = HEARTBEATS_PER_ITEM

    def prepare(index: int):
        root = store.open(f"{label}-{index}")
        sims = []
        for n in range(per_proc[index]):
            coord = root.bind(worker_id=f"{label}-{index}-{n}")
            lease = coord.acquire_next_work_item(LEASE)
            sims.append([coord, lease.work_item_id, lease.lease_epoch, n % period])  # ..., calls made so far

        def run() -> dict:
            start = time.monotonic()
            due = [(start + HEARTBEAT * n / max(1, len(sims)), n) for n in range(len(sims))]
            heapq.heapify(due)
            end, done, lost, completed, late = start + seconds, 0, 0, 0, []
            while due and (due[0][0] < end if paced else time.monotonic() < end):
                when, n = heapq.heappop(due)
                wait = when - time.monotonic()
                if paced and wait > 0:
                    time.sleep(wait)  # pacing the load generator, not waiting out a lease
                coord, item, epoch, calls = sims[n]
                try:
                    coord.update_progress_and_renew_lease(item, calls, calls, lease_epoch=epoch)
                    done += 1
                    if calls % period == period - 1:
                        coord.update_progress_and_renew_lease(item, calls + 1, calls + 1, lease_epoch=epoch)
                        done += 1
                        _, outcome = coord.complete_and_acquire_next(item, LEASE, lease_epoch=epoch)
                        done += 1
                        completed += 1
                        if isinstance(outcome, NoAvailableWorkToBeDone):
                            continue  # the store ran out of pending items: this worker is done
                        sims[n][1:3] = [outcome.work_item_id, outcome.lease_epoch]
                except (LeaseConflictError, LeaseExpiredError):
                    lost += 1
                sims[n][3] += 1
                late.append(time.monotonic() - when)
                heapq.heappush(due, (when + HEARTBEAT, n))
            elapsed = time.monotonic() - start
            # Calls that fell due before the end but were never made were offered all the same.
            missed = sum(1 + 2 * (sims[n][3] % period == period - 1) for when, n in due if when < end) if paced else 0
            root.close()
            return {"done": done, "offered": done + missed, "lost": lost, "completed": completed, "late": late,
                    "elapsed": elapsed}  # fmt: skip

        return run

    reports = run_processes(PROCS, prepare)
    late = sorted(x for r in reports for x in r["late"])
    elapsed = max(r["elapsed"] for r in reports)
    return {
        "done": sum(r["done"] for r in reports),
        "rate": sum(r["done"] for r in reports) / elapsed,
        "offered": sum(r["offered"] for r in reports),
        "lost": sum(r["lost"] for r in reports),
        "completed": sum(r["completed"] for r in reports),
        "late_max": late[-1] if late else 0.0,
        "late_p99": percentile(late, 0.99) if late else 0.0,
    }


def check(settings: Settings, results: Results, store: Store, items: int, seconds: float) -> None:
    """Measure ``C`` on ``store`` filled with ``items`` items, then run ``W_max`` workers and an overload."""
    group, setting = store.group, store.setting
    log(f"{group}: building {items:,} items")
    pending = store.build(items)
    results.rows.append(
        Row(group, "size on disk per item (half history)", setting, 1, store.bytes_used() / items, "bytes",
            note=f"{items:,} items")
    )  # fmt: skip
    per_worker, period = writes_per_worker(), HEARTBEATS_PER_ITEM
    model = f"h={HEARTBEAT:g}s, T={ITEM_SECONDS:g}s: {per_worker:.3f} writes/s per worker"
    # A warm-up by the same workers (so on the same rows): a row's first update costs more than the next ones
    # (on PostgreSQL, a full page's row cannot be updated in place), and a backfill updates each leased row
    # many times.
    simulate(store, "capacity", CAPACITY_WORKERS, seconds / 2, paced=False)
    saturated = simulate(store, "capacity", CAPACITY_WORKERS, seconds, paced=False)
    capacity = saturated["rate"]
    log(f"{group}: capacity {capacity:,.0f} writes/s")
    results.rows.append(
        Row(group, f"capacity C: {CAPACITY_WORKERS:,} workers' calls, unpaced", setting, PROCS, capacity,
            "writes/s", note=f"the same calls: per heartbeat a renewal; per {period}, a report and a complete")
    )  # fmt: skip
    workers = max_workers(capacity)
    log(f"{group}: {workers:,} simulated workers ({model})")
    fit = simulate(store, "fit", workers, seconds)
    kept_up = fit["done"] / fit["offered"]
    results.rows.append(
        Row(group, f"W_max = C/2 / per-worker rate: {workers:,} workers", setting, PROCS, fit["rate"], "writes/s",
            kept_up, "of offered", note=f"{model}; {fit['lost']} leases lost; late p99 "
            f"{fit['late_p99'] * 1000:.0f} ms, max {fit['late_max'] * 1000:.0f} ms"),
    )  # fmt: skip
    # Completions of every run use up pending items: the overload takes at most what the store has left.
    over_workers = min(int(OVERLOAD * capacity / per_worker), pending - 2 * CAPACITY_WORKERS - 2 * workers)
    offered = over_workers * per_worker / capacity
    log(f"{group}: overload, {over_workers:,} simulated workers ({offered:.2f}x C)")
    over = simulate(store, "over", over_workers, seconds)
    results.rows.append(
        Row(group, f"overload, {offered:.2f}x C offered: {over_workers:,} workers", setting, PROCS, over["rate"],
            "writes/s", over["rate"] / capacity, "of C", note=f"{over['lost']} leases lost; late p99 "
            f"{over['late_p99'] * 1000:.0f} ms, max {over['late_max'] * 1000:.0f} ms"),
    )  # fmt: skip
    # The suite's bound on any write's wait (benchmarks.cycles): a tenth of the shortest recommended lease,
    # 8 times under the lateness that would lapse it (lease - heartbeat: 25 s); see the module's docstring.
    bound = SHORTEST_LEASE_SECONDS / 10
    again = simulate(store, "capacity", CAPACITY_WORKERS, seconds, paced=False)["rate"]
    results.rows.append(
        Row(group, "capacity C measured again, after the runs", setting, PROCS, again, "writes/s", again / capacity,
            "of C", note="how far the machine moved C during the group")
    )  # fmt: skip
    results.targets.append(
        Target(
            f"{group}: {workers:,} workers (the model's W_max) on {items:,} items: the store keeps up",
            f"{kept_up:.1%} of offered writes done, {fit['lost']} leases lost, worst lateness {fit['late_max']:.3f} s",
            f">= 97%, 0 lost, < {bound:g} s (a tenth of a {SHORTEST_LEASE_SECONDS:g} s lease)",
            kept_up >= 0.97 and fit["lost"] == 0 and fit["late_max"] < bound,
        )
    )
    results.targets.append(
        Target(
            f"{group}: C is what the store does (offered {offered:.2f}x C)",
            f"{over['rate'] / capacity:.2f}x C done",
            "0.8-1.2x C",
            0.8 <= over["rate"] / capacity <= 1.2,
            "" if offered > 1.2 else "the store had too few pending items left to offer more than 1.2x C",
        )
    )


def run(settings: Settings, results: Results) -> None:
    items = 100_000 if settings.quick else 1_000_000
    check(settings, results, sqlite_store(settings.path("sizing.db")), items, 6.0 if settings.quick else 20.0)
