"""The makespan group (:mod:`benchmarks.makespan`) on PostgreSQL: a fresh schema per run."""

from __future__ import annotations

from .common import Results, Settings
from .makespan import run_on
from .pg_common import fresh_schema


def run(settings: Settings, results: Results, dsn: str) -> None:
    counter = iter(range(1_000_000))

    def fresh() -> str:
        return fresh_schema(dsn, f"makespan_{next(counter)}")

    run_on(settings, results, "postgresql", fresh)
