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

from .common import SESSION, GrowthSample, Results, Row, Settings, Target, log
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
    for _ in range(rounds):  # interleaved: drift in the machine's load hits every size alike
        for sample in samples:
            sample.round()
    measured = {s.size: s.result() for s in samples}
    base = measured[1_000]
    for size, m in measured.items():
        note = f"{m['samples']} samples; p99 {m['p99'] * 1e6:,.0f} us; loaded in {m['build']:.1f} s"
        results.rows.append(
            Row("pg-scale", "acquire p50", "synchronous_commit=off", 1, m["p50"] * 1e6, "us",
                m["p50"] / base["p50"], f"1k ({size:,} items)", m["duplicates"], m["lost"], note)
        )  # fmt: skip
        results.rows.append(
            Row("pg-scale", "status()", "synchronous_commit=off", 1, m["status"] * 1e6, "us",
                m["status"] / base["status"], f"1k ({size:,} items)", note=f"median of {10 * rounds} calls")
        )  # fmt: skip
    top = max(measured)
    ratio = measured[top]["p50"] / base["p50"]
    results.targets.append(
        Target(f"PostgreSQL acquire p50 at {top:,} vs 1k items", f"{ratio:.2f}x", "<= 1.20x", ratio <= 1.2)
    )
    ratio = measured[top]["status"] / base["status"]
    results.targets.append(
        Target(f"PostgreSQL status() at {top:,} vs 1k items", f"{ratio:.2f}x", "<= 3.00x", ratio <= 3.0)
    )
