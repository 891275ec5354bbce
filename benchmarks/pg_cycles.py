"""Raw psycopg vs the PostgreSQL backend: full lease cycles per second, at 1, 4 and 8 processes.

A cycle is acquire, renew once with progress, complete (as in
:mod:`benchmarks.cycles`). Both sides run litecoord's own SQL (read from the
backend, so "same SQL" stays true as it changes), one transaction per step,
on one connection per process, at the same ``synchronous_commit``: ``on``
(litecoord's FULL, the default) and ``off`` (NORMAL, ``SET LOCAL`` in each
transaction). The raw side sends exactly what the backend sends (the round
trip that begins the transaction and reads the database's clock, the step's
statements, ``COMMIT``) and builds no objects. What separates the figures is
therefore litecoord's own cost: Python per call, row objects, retry handling.
"""

from __future__ import annotations

from .common import (
    LEASE_SECONDS,
    SESSION,
    Outcome,
    Results,
    Row,
    Settings,
    Target,
    coordinator_ops,
    cycle_loop,
    log,
    median,
    round_ratios,
    run_processes,
    summarize,
)
from .cycles import Kind
from .pg_common import SYNCHRONOUS_COMMIT, build_pg, fresh_schema, unfinished_pg

PROCS = (1, 4, 8)
DURABILITIES = ("full", "normal")


RAW = Kind("raw", "raw psycopg, same SQL")
EMBEDDED = Kind("litecoord", "litecoord PostgresCoordinator")
KINDS = (RAW, EMBEDDED)


def raw_ops(dsn: str, durability: str, worker: str):
    """Acquire/renew/complete on a plain psycopg connection: litecoord's transactions, statement for statement.

    Each step sends what the backend sends: the statement that begins its
    transaction (``BEGIN``, ``SET LOCAL synchronous_commit`` at NORMAL, and
    the database's clock, in one round trip), the step's statements, ``COMMIT``.
    """
    import psycopg

    from litecoord.backends.postgres import coordinator as pg
    from litecoord.backends.postgres import store

    # Unprepared, as the backend sends its statements (PgStore.prepared_statements is off by default,
    # so that a transaction-mode pooler works; benchmarks.pg_pooler measures what preparing would save).
    conn = psycopg.connect(dsn, autocommit=True, prepare_threshold=None)
    sid = conn.execute("SELECT id FROM sessions WHERE name = %s", (SESSION,)).fetchone()[0]  # type: ignore[index]
    cur = conn.cursor()
    begin = store._BEGIN[durability, True]
    duration = LEASE_SECONDS * 1_000_000

    def start() -> int:
        cur.execute(begin)
        while cur.description is None and cur.nextset():
            pass
        return cur.fetchone()[0]  # type: ignore[index]

    def acquire() -> str | None:
        params = {"session": sid, "worker": worker, "now": start(), "duration": duration}
        cur.execute(pg._HELD_BY_WORKER, params)
        row = cur.fetchone()
        if row is None:
            cur.execute(pg._ACQUIRE, params)
            row = cur.fetchone()
        cur.execute("COMMIT")
        return None if row is None else row[0]

    def step(sql: str, params: dict) -> None:
        params["now"] = start()
        cur.execute(sql, params)
        row = cur.fetchone()
        cur.execute("COMMIT")
        if row is None:
            raise AssertionError(f"{worker}: statement matched no row: {params}")

    def renew(item: str) -> None:
        step(
            pg._RENEW,
            {"session": sid, "id": item, "worker": worker, "epoch": None, "duration": None,
             "docs": 500, "bytes": 500_000},
        )  # fmt: skip

    def complete(item: str) -> None:
        step(pg._COMPLETE, {"session": sid, "id": item, "worker": worker, "epoch": None, "docs": None, "bytes": None})

    return acquire, renew, complete


def embedded_ops(dsn: str, durability: str, worker: str):
    from litecoord.backends.postgres import PostgresCoordinator

    coord = PostgresCoordinator(dsn, session=SESSION, worker_id=worker, durability=durability)
    coord.num_work_items_not_yet_complete()  # connect and check the schema before the clock starts
    return coordinator_ops(coord)


def one_run(kind: Kind, server: str, durability: str, procs: int, items: int, schema: str = "bench_cycles") -> Outcome:
    """``procs`` worker processes drain a fresh session of ``items`` items in ``schema``."""
    dsn = fresh_schema(server, schema)
    build_pg(dsn, items)

    def prepare(i: int):
        worker = f"worker-{i:02d}"
        ops = raw_ops(dsn, durability, worker) if kind is RAW else embedded_ops(dsn, durability, worker)
        return lambda: cycle_loop(*ops)

    reports = run_processes(procs, prepare)
    return summarize(reports, items, unfinished_pg(dsn))


def items_for(durability: str, settings: Settings) -> int:
    if settings.quick:
        return 300 if durability == "full" else 1000
    return 1500 if durability == "full" else 4000


def run(settings: Settings, results: Results, server: str) -> None:
    measured: dict[tuple[str, str, int], list[Outcome]] = {}
    for durability in DURABILITIES:
        for procs in PROCS:
            log(f"pg-cycles: {durability} x{procs}")
            for _ in range(settings.runs):  # interleaved: drift in the machine hits both sides alike
                for kind in KINDS:
                    outcome = one_run(kind, server, durability, procs, items_for(durability, settings))
                    measured.setdefault((kind.key, durability, procs), []).append(outcome)
    for durability in DURABILITIES:
        for procs in PROCS:
            raw = measured[RAW.key, durability, procs]
            raw_median = median(o.throughput for o in raw)
            for kind in KINDS:
                found = measured[kind.key, durability, procs]
                value = median(o.throughput for o in found)
                rounds = round_ratios([o.throughput for o in found], [o.throughput for o in raw])
                results.rows.append(
                    Row("pg-cycles", kind.label, f"synchronous_commit={SYNCHRONOUS_COMMIT[durability]}", procs,
                        value, "cycles/s",
                        None if kind is RAW else value / raw_median, "" if kind is RAW else "raw",
                        sum(o.duplicates for o in found), sum(o.lost for o in found),
                        f"worst call {max(o.worst_wait for o in found) * 1000:.0f} ms"
                        + ("" if kind is RAW else f"; per round {rounds}"))
                )  # fmt: skip
        ours = median(o.throughput for o in measured[EMBEDDED.key, durability, 4])
        raw4 = median(o.throughput for o in measured[RAW.key, durability, 4])
        results.targets.append(
            Target(
                f"PostgreSQL cycle at 4 processes vs raw psycopg, synchronous_commit={SYNCHRONOUS_COMMIT[durability]}",
                f"{ours / raw4:.3f}x",
                ">= 0.80x",
                ours / raw4 >= 0.8,
            )
        )
