"""PostgreSQL: the capacity model of :mod:`benchmarks.sizing`, checked on one PostgreSQL database.

The same measurement and check as for one SQLite file: ``C`` from processes
renewing as fast as they can, then ``W_max`` simulated workers paced on
their heartbeats, then an overload. At ``synchronous_commit=on`` (litecoord's
``"full"``), so the figure is what an acknowledged-and-durable call costs.
"""

from __future__ import annotations

from .common import SESSION, Results, Settings
from .pg_common import build_pg, fresh_schema
from .sizing import COMPLETED_SHARE, DURABILITY, Store, check

SCHEMA = "bench_sizing"


def pg_store(server: str) -> Store:
    from litecoord.backends.postgres import PostgresCoordinator

    dsn = fresh_schema(server, SCHEMA)

    def bytes_used() -> int:
        import psycopg

        with psycopg.connect(dsn) as conn:
            row = conn.execute("SELECT pg_total_relation_size('work_items')").fetchone()
        return int(row[0]) if row else 0

    def build(items: int) -> int:
        import psycopg

        pending = build_pg(dsn, items, completed_share=COMPLETED_SHARE)
        # The load wrote its rows to the WAL: checkpoint now, not during the measurement.
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CHECKPOINT")
        return pending

    return Store(
        "pg-sizing",
        "synchronous_commit=on",
        build,
        lambda worker: PostgresCoordinator(dsn, session=SESSION, worker_id=worker, durability=DURABILITY),
        bytes_used,
    )


def run(settings: Settings, results: Results, server: str) -> None:
    items = 100_000 if settings.quick else 1_000_000
    check(settings, results, pg_store(server), items, 6.0 if settings.quick else 20.0)
