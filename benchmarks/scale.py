"""Acquire latency and ``status()`` time as the file grows: 1k, 100k, 1M items.

80% of each file is completed history (what a long backfill leaves behind)
and 20% pending, built with plain ``executemany`` into litecoord's schema and
then opened with :class:`SqliteCoordinator`. One worker acquires, and
completes outside the timed span, so every sample leases a fresh item. Runs
at ``synchronous=NORMAL``: at FULL an fsync per commit would hide what the
index does behind the disk's latency.
"""

from __future__ import annotations

import time

from litecoord import SqliteCoordinator

from .common import SESSION, GrowthSample, Results, Settings, build_db, log, measure_growth, report_growth

COMPLETED_SHARE = 0.8
DURABILITY = "normal"


def sizes(settings: Settings) -> tuple[int, ...]:
    return (1_000, 100_000) if settings.quick else (1_000, 100_000, 1_000_000)


class Sample(GrowthSample):
    """One file and its worker: builds, then takes acquire and status() samples on request."""

    def __init__(self, size: int, settings: Settings, rounds: int) -> None:
        path = settings.path(f"scale-{size}.db")
        t = time.perf_counter()
        pending = build_db(path, size, completed_share=COMPLETED_SHARE)
        build = time.perf_counter() - t
        coord = SqliteCoordinator(path, session=SESSION, worker_id="scale-worker", durability=DURABILITY)
        super().__init__(size, coord, pending, build, rounds)


def run(settings: Settings, results: Results) -> None:
    rounds = 5 * settings.runs
    files = []
    for size in sizes(settings):
        log(f"scale: building {size:,} items")
        files.append(Sample(size, settings, rounds))
    measured = measure_growth(files, rounds)
    if max(measured) < 1_000_000:
        results.notes.append("scale: the 1M-item file is skipped in --quick mode; targets judged at the largest size")
    report_growth(results, measured, rounds, group="scale", setting=DURABILITY.upper(), built="file built")
