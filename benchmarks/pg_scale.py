"""PostgreSQL: acquire latency and ``status()`` time as the session grows: 1k, 100k, 1M items.

As :mod:`benchmarks.scale` does for SQLite: 80% of each session is
completed history and 20% pending, loaded with ``COPY`` into litecoord's
schema (one schema per size), then opened with ``PostgresCoordinator``.
One worker acquires, and completes outside the timed span, so every sample
leases a fresh item. ``status()`` sums the session's counter shards and
counts live leases from a partial index, so its time should not grow with
the table. Runs at ``synchronous_commit=off``: at ``on`` the WAL flush per
commit would hide what the indexes do behind the disk's latency.
"""

from __future__ import annotations

import time

from .common import SESSION, GrowthSample, Results, Settings, log, measure_growth, report_growth
from .pg_common import build_pg, fresh_schema

COMPLETED_SHARE = 0.8
DURABILITY = "normal"


def sizes(settings: Settings) -> tuple[int, ...]:
    return (1_000, 100_000) if settings.quick else (1_000, 100_000, 1_000_000)


class Sample(GrowthSample):
    """One session and its worker: builds, then takes acquire and status() samples on request."""

    def __init__(self, size: int, server: str, rounds: int, schema: str | None = None) -> None:
        from litecoord.backends.postgres import PostgresCoordinator

        dsn = fresh_schema(server, schema or f"bench_scale_{size}")
        t = time.perf_counter()
        pending = build_pg(dsn, size, completed_share=COMPLETED_SHARE)
        build = time.perf_counter() - t
        coord = PostgresCoordinator(dsn, session=SESSION, worker_id="scale-worker", durability=DURABILITY)
        super().__init__(size, coord, pending, build, rounds)


def run(settings: Settings, results: Results, server: str) -> None:
    rounds = 5 * settings.runs
    samples = []
    for size in sizes(settings):
        log(f"pg-scale: loading {size:,} items")
        samples.append(Sample(size, server, rounds))
    measured = measure_growth(samples, rounds)
    setting = "synchronous_commit=off"
    report_growth(results, measured, rounds, group="pg-scale", setting=setting, built="loaded", what="PostgreSQL ")
