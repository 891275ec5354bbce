"""What a transaction-mode pooler costs: the lease cycle direct and through PgBouncer, same run.

A cycle is acquire, renew once with progress, complete (as in
:mod:`benchmarks.pg_cycles`), through :class:`PostgresCoordinator`, at 1 and
4 processes, one connection each. Three sides, interleaved run by run:

* ``direct, prepared``: a direct connection with psycopg's prepared
  statements (each statement prepared on its connection from its 5th run:
  litecoord's behaviour before it learned to work behind a pooler, now
  ``prepared_statements=True``);
* ``direct, unprepared``: a direct connection, nothing prepared (what
  litecoord does by default since, so that the same DSN works behind a pooler);
* ``PgBouncer``: the same, through a PgBouncer in ``pool_mode=transaction``
  (``.ci/pgbouncer``, a unix socket in front of the same server).

The ratios are against ``direct, prepared``: the first says what not
preparing costs on its own, the second what the pooler adds (a hop through
one more process and a socket per statement). Every run gets a fresh
database (PgBouncer 1.18 passes no ``search_path`` option through, so a
schema per run would not do).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from .common import (
    Outcome,
    Results,
    Row,
    Settings,
    coordinator_ops,
    cycle_loop,
    log,
    median,
    round_ratios,
    run_processes,
    summarize,
)
from .cycles import Kind
from .pg_common import SYNCHRONOUS_COMMIT, build_pg, unfinished_pg

PROCS = (1, 4)
DURABILITIES = ("full", "normal")

PREPARED = Kind("prepared", "litecoord, direct, prepared statements")
UNPREPARED = Kind("unprepared", "litecoord, direct, no prepared statements (default)")
POOLED = Kind("pgbouncer", "litecoord through PgBouncer (transaction mode)")
KINDS = (PREPARED, UNPREPARED, POOLED)

_SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".ci", "pgbouncer")


def available() -> str | None:
    """Why this group cannot run, or None."""
    for path in ("/usr/sbin/pgbouncer", "/usr/local/sbin/pgbouncer"):
        if os.access(path, os.X_OK):
            return None
    from shutil import which

    return None if which("pgbouncer") else "pgbouncer is not installed (apt-get install -y pgbouncer)"


@contextmanager
def pgbouncer(server: str) -> Iterator[str]:
    """A PgBouncer in transaction mode in front of ``server`` (a DSN with host=SOCKET_DIR); its DSN."""
    directory = tempfile.mkdtemp(prefix="litecoord-bench-pgb-", dir="/tmp")
    done = subprocess.run([_SCRIPT, "start", directory, server], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f".ci/pgbouncer start failed: {done.stderr.strip()}")
    try:
        yield done.stdout.strip()
    finally:
        subprocess.run([_SCRIPT, "stop", directory], capture_output=True)


def with_dbname(dsn: str, dbname: str) -> str:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    return make_conninfo("", **{**conninfo_to_dict(dsn), "dbname": dbname})


@contextmanager
def fresh_database(server: str) -> Iterator[str]:
    import psycopg

    name = f"bench_pooler_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield name
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


def one_run(kind: Kind, server: str, pooled: str, durability: str, procs: int, items: int) -> Outcome:
    """``procs`` worker processes drain a fresh session of ``items`` items in a database of their own."""
    with fresh_database(server) as name:
        direct = with_dbname(server, name)
        build_pg(direct, items)
        dsn = with_dbname(pooled, name) if kind is POOLED else direct

        def prepare(i: int):
            from litecoord.backends.postgres import PostgresCoordinator

            coord = PostgresCoordinator(
                dsn, session="bench", worker_id=f"worker-{i:02d}", durability=durability,
                prepared_statements=kind is PREPARED,
            )  # fmt: skip
            coord.num_work_items_not_yet_complete()  # connect and check the schema before the clock starts
            ops = coordinator_ops(coord)
            return lambda: cycle_loop(*ops)

        reports = run_processes(procs, prepare)
        return summarize(reports, items, unfinished_pg(direct))


def items_for(durability: str, settings: Settings) -> int:
    if settings.quick:
        return 300 if durability == "full" else 1000
    return 1500 if durability == "full" else 4000


def run(settings: Settings, results: Results, server: str) -> None:
    missing = available()
    if missing:
        results.notes.append(f"pg-pooler skipped: {missing}")
        return
    measured: dict[tuple[str, str, int], list[Outcome]] = {}
    with pgbouncer(server) as pooled:
        for durability in DURABILITIES:
            for procs in PROCS:
                log(f"pg-pooler: {durability} x{procs}")
                for _ in range(settings.runs):  # interleaved: drift in the machine hits every side alike
                    for kind in KINDS:
                        outcome = one_run(kind, server, pooled, durability, procs, items_for(durability, settings))
                        measured.setdefault((kind.key, durability, procs), []).append(outcome)
    for durability in DURABILITIES:
        for procs in PROCS:
            base = measured[PREPARED.key, durability, procs]
            base_median = median(o.throughput for o in base)
            for kind in KINDS:
                found = measured[kind.key, durability, procs]
                value = median(o.throughput for o in found)
                rounds = round_ratios([o.throughput for o in found], [o.throughput for o in base])
                results.rows.append(
                    Row("pg-pooler", kind.label, f"synchronous_commit={SYNCHRONOUS_COMMIT[durability]}", procs,
                        value, "cycles/s",
                        None if kind is PREPARED else value / base_median, "" if kind is PREPARED else "prepared",
                        sum(o.duplicates for o in found), sum(o.lost for o in found),
                        f"worst call {max(o.worst_wait for o in found) * 1000:.0f} ms"
                        + ("" if kind is PREPARED else f"; per round {rounds}"))
                )  # fmt: skip
