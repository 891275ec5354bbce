"""What recording every attempt (``work_item_history``) costs the lease cycle, side by side.

Two stores built alike, in the same run: one as litecoord makes it, one with
the attempt triggers dropped (the schema before history was recorded: the
same statements, the same code, nothing written to ``attempts``). Each round
drains both with the same workers, alternating which goes first, at FULL
durability (the figure the issue holds to >= 0.95x) and at NORMAL. A cycle
is acquire, one renewal with progress, complete.

    python -m benchmarks.history [--items 1000] [--rounds 9] [--procs 1,4] [--postgres DSN] [--previous]

Each pair of rounds runs back to back, so the ratio of a pair compares two
drains under the same load; the median of the pairs' ratios is reported,
with each pair's ratio. At FULL durability a cycle waits for syncs, which a
loaded machine makes noisy; the CPU time per cycle (SQLite: the workers'
own, which includes SQLite and the triggers; PostgreSQL on this machine: the
workers' and the server's, every process of it) is steadier and shows what
the history itself costs; on PostgreSQL the WAL bytes written per cycle do
not depend on the load at all.

``--previous`` adds a third store to each round: the same, with the history
triggers of the schema version before the one that writes a row only when an
attempt ends (SQLite 4, PostgreSQL 3, as tests/data freezes them: a row at
each lease, updated at its end), so the change is measured in one run too.

PostgreSQL (``--postgres`` or ``LITECOORD_TEST_POSTGRES``) runs the same
comparison over schemas of that database.
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from litecoord import SqliteCoordinator

from .common import SESSION, build_db, coordinator_ops, cycle_loop, log, median, run_processes

#: The triggers that write history are named so (schema.sql, both databases, every schema
#: version since history was recorded): found by name, so this script measures older code too.
TRIGGER_PREFIX = "work_items_attempt"


#: The previous schema versions, whose triggers ``--previous`` installs instead of this version's.
_DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
PREVIOUS_SQLITE = _DATA / "schema_v4.sql"
PREVIOUS_PG = _DATA / "pg_schema_v3.sql"


def _previous_sqlite_triggers() -> list[str]:
    text = PREVIOUS_SQLITE.read_text(encoding="utf-8")
    found = re.findall(rf"CREATE TRIGGER IF NOT EXISTS {TRIGGER_PREFIX}\w* .*?\nEND;", text, re.S)
    assert len(found) == 3, f"expected 3 history triggers in {PREVIOUS_SQLITE}"
    return found


def _previous_pg_triggers() -> list[str]:
    text = PREVIOUS_PG.read_text(encoding="utf-8")
    found = re.findall(r"CREATE OR REPLACE FUNCTION litecoord_attempts\(\).*?END \$\$;", text, re.S)
    found += re.findall(rf"CREATE TRIGGER {TRIGGER_PREFIX}\w* .*?EXECUTE FUNCTION litecoord_attempts\(\);", text, re.S)
    assert len(found) == 3, f"expected a function and 2 history triggers in {PREVIOUS_PG}"
    return found


def _drop_sqlite_history(path: str, install: Sequence[str] = ()) -> None:
    """Drop the history triggers of ``path``, and create ``install`` (other triggers) instead."""
    import sqlite3

    conn = sqlite3.connect(path, isolation_level=None)
    names = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE ?", (TRIGGER_PREFIX + "%",)
    )]  # fmt: skip
    assert names, "no history triggers to drop"
    for name in names:
        conn.execute(f"DROP TRIGGER {name}")
    for statement in install:
        conn.execute(statement)
    conn.close()


def _timed_loop(coord: Any) -> dict:
    """A drain of the store by one worker, with the CPU time it took (what load on the machine changes least)."""
    cpu = time.process_time()
    report = cycle_loop(*coordinator_ops(coord))
    report["cpu"] = time.process_time() - cpu
    return report


def _sqlite_round(path: str, procs: int, durability: str) -> tuple[float, float]:
    """Cycles per second draining ``path`` with ``procs`` processes, and CPU microseconds per cycle."""

    def prepare(i: int) -> Callable[[], dict]:
        coord = SqliteCoordinator(path, session=SESSION, worker_id=f"w{i}", durability=durability)
        coord.status()  # open and check the file before the clock starts
        return lambda: _timed_loop(coord)

    reports = run_processes(procs, prepare)
    done = sum(len(r["ids"]) for r in reports)
    took = max(r["t1"] for r in reports) - min(r["t0"] for r in reports)
    return done / took, sum(r["cpu"] for r in reports) * 1e6 / done


#: The stores of a round: this version's history, none, and (``--previous``) the previous version's.
WITH, WITHOUT, PREVIOUS = "with", "without", "previous"


def _line(db: str, durability: str, procs: int, rates: dict[str, list[float]], cpus: dict[str, list[float]]) -> str:
    """One result line: cycles per second of each store, the pairs' ratios to the store without history, CPU."""
    base = rates[WITHOUT]
    line = f"{db} {durability:6} {procs} proc:"
    for store in (WITH, PREVIOUS):
        if store not in rates:
            continue
        ratios = [a / b for a, b in zip(rates[store], base, strict=True)]
        label = "with history" if store == WITH else "previous version's history"
        line += (
            f" {label} {median(rates[store]):.0f} cycles/s, ratio median {median(ratios):.3f} "
            f"(rounds {', '.join(f'{x:.3f}' for x in ratios)});"
        )
    line += f" without {median(base):.0f} cycles/s"
    if all(cpus[store] for store in rates):
        where = "" if db == "sqlite" else " (workers and server)"
        order = [store for store in (WITH, PREVIOUS, WITHOUT) if store in rates]
        line += f"; CPU per cycle{where} " + ", ".join(f"{median(cpus[store]):.0f} us {store}" for store in order)
        line += " (ratio to without: " + ", ".join(
            f"{store} {median(cpus[WITHOUT]) / median(cpus[store]):.3f}" for store in order if store != WITHOUT
        ) + ")"
    return line


def _rounds(rounds: int, stores: list[str], drain: Callable[[str], tuple[float, float | None]]) -> tuple[dict, dict]:
    """``rounds`` drains of each store, the order turning each round so none always goes first."""
    rates: dict[str, list[float]] = {store: [] for store in stores}
    cpus: dict[str, list[float]] = {store: [] for store in stores}
    for r in range(rounds):
        for store in stores[r % len(stores):] + stores[: r % len(stores)]:
            rate, cpu = drain(store)
            rates[store].append(rate)
            if cpu is not None:
                cpus[store].append(cpu)
    return rates, cpus


def sqlite_rows(
    items: int, rounds: int, procs_list: list[int], durabilities: list[str], previous: bool = False
) -> list[str]:
    lines = []
    stores = [WITH, WITHOUT] + ([PREVIOUS] if previous else [])
    installs: dict[str, list[str]] = {WITHOUT: [], PREVIOUS: _previous_sqlite_triggers() if previous else []}
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        for durability in durabilities:
            for procs in procs_list:

                def drain(store: str, procs: int = procs, durability: str = durability) -> tuple[float, float | None]:
                    path = os.path.join(tmp, f"{store}.db")
                    build_db(path, items)
                    if store != WITH:
                        _drop_sqlite_history(path, installs[store])
                    return _sqlite_round(path, procs, durability)

                line = _line("sqlite", durability, procs, *_rounds(rounds, stores, drain))
                log(line)
                lines.append(line)
    return lines


def _proc_cpu(pid: int) -> tuple[int, int]:
    """(parent pid, CPU ticks of the process and of its children it reaped) from /proc."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as file:
        fields = file.read().rsplit(")", 1)[1].split()
    return int(fields[1]), sum(int(f) for f in fields[11:15])


def _server_cpu(postmaster: int | None) -> float | None:
    """CPU seconds the PostgreSQL server has used so far: the postmaster, every backend and
    background process it runs, and those that exited (reaped, so counted in its own)."""
    if postmaster is None:
        return None
    ticks = _proc_cpu(postmaster)[1]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parent, used = _proc_cpu(int(entry))
            except (OSError, IndexError, ValueError):
                continue  # gone meanwhile
            if parent == postmaster:
                ticks += used
    return ticks / os.sysconf("SC_CLK_TCK")


def _postmaster(dsn: str) -> int | None:
    """The server's postmaster pid, if it runs on this machine and its files can be read (else None)."""
    import psycopg

    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            data = conn.execute("SHOW data_directory").fetchone()[0]
        with open(os.path.join(data, "postmaster.pid"), encoding="ascii") as file:
            pid = int(file.readline())
        _proc_cpu(pid)
        return pid
    except Exception:  # a remote server, or no right to read its files: no server CPU figure
        return None


#: WAL bytes written per cycle, by store, of the rounds of one line (the server writes them
#: all, whatever the load: the steadiest figure of what a cycle writes).
_WAL: dict[str, list[float]] = {}


def _pg_round(
    dsn: str, schema: str, items: int, procs: int, durability: str, store: str, postmaster: int | None
) -> tuple[float, float | None]:
    """Cycles per second, and CPU microseconds per cycle (workers and server) when the server is local."""
    import psycopg

    from litecoord import PostgresCoordinator

    scoped = f"{dsn}{'&' if '?' in dsn else '?'}options=-csearch_path%3D{schema}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.execute(f"CREATE SCHEMA {schema}")
    setup = PostgresCoordinator(scoped, session=SESSION)
    setup.setup()
    setup.create_work_items({"work_item_id": f"item-{i:07d}", "total_size_bytes": i % 97} for i in range(items))
    setup.close()
    if store != WITH:
        with psycopg.connect(scoped, autocommit=True) as conn:
            names = conn.execute(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = 'work_items'::regclass AND tgname LIKE %s",
                (TRIGGER_PREFIX + "%",),
            ).fetchall()
            assert names, "no history triggers to drop"
            for (name,) in names:
                conn.execute(f"DROP TRIGGER {name} ON work_items")
            for statement in _previous_pg_triggers() if store == PREVIOUS else []:
                conn.execute(statement)

    def prepare(i: int) -> Callable[[], dict]:
        coord = PostgresCoordinator(scoped, session=SESSION, worker_id=f"w{i}", durability=durability)
        coord.status()
        return lambda: _timed_loop(coord)

    lsn = "SELECT pg_current_wal_insert_lsn()::text"
    with psycopg.connect(dsn, autocommit=True) as conn:
        wal_before = conn.execute(lsn).fetchone()[0]
    server_before = _server_cpu(postmaster)
    reports = run_processes(procs, prepare)
    time.sleep(0.5)  # the workers' backends exit once their connections close: let the server reap them
    server_after = _server_cpu(postmaster)
    with psycopg.connect(dsn, autocommit=True) as conn:
        wal = conn.execute(f"SELECT ({lsn})::pg_lsn - %s::pg_lsn", (wal_before,)).fetchone()[0]
    done = sum(len(r["ids"]) for r in reports)
    _WAL.setdefault(store, []).append(float(wal) / done)
    rate = done / (max(r["t1"] for r in reports) - min(r["t0"] for r in reports))
    if server_before is None or server_after is None:
        return rate, None
    return rate, (server_after - server_before + sum(r["cpu"] for r in reports)) * 1e6 / done


def pg_rows(
    dsn: str, items: int, rounds: int, procs_list: list[int], durabilities: list[str], previous: bool = False
) -> list[str]:
    lines = []
    postmaster = _postmaster(dsn)
    stores = [WITH, WITHOUT] + ([PREVIOUS] if previous else [])
    for durability in durabilities:
        for procs in procs_list:

            def drain(store: str, procs: int = procs, durability: str = durability) -> tuple[float, float | None]:
                return _pg_round(dsn, "lc_bench_history", items, procs, durability, store, postmaster)

            _WAL.clear()
            line = _line("postgres", durability, procs, *_rounds(rounds, stores, drain))
            line += "; WAL per cycle " + ", ".join(
                f"{median(_WAL[store]):.0f} bytes {store}" for store in (WITH, PREVIOUS, WITHOUT) if store in _WAL
            )
            log(line)
            lines.append(line)
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--procs", default="1,4")
    parser.add_argument("--durability", default="full,normal")
    parser.add_argument("--postgres", default=os.environ.get("LITECOORD_TEST_POSTGRES"))
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--previous", action="store_true", help="also measure the previous version's triggers")
    args = parser.parse_args(argv)
    procs = [int(p) for p in args.procs.split(",")]
    durabilities = args.durability.split(",")
    started = time.time()
    lines: list[Any] = []
    if not args.no_sqlite:
        lines += sqlite_rows(args.items, args.rounds, procs, durabilities, args.previous)
    if args.postgres:
        lines += pg_rows(args.postgres, args.items, args.rounds, procs, durabilities, args.previous)
    print("\n".join(lines))
    log(f"took {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
