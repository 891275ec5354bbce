"""What recording every attempt (``work_item_history``) costs the lease cycle, side by side.

Two stores built alike, in the same run: one as litecoord makes it, one with
the attempt triggers dropped (the schema before history was recorded: the
same statements, the same code, nothing written to ``attempts``). Each round
drains both with the same workers, alternating which goes first, at FULL
durability (the figure the issue holds to >= 0.95x) and at NORMAL. A cycle
is acquire, one renewal with progress, complete.

    python -m benchmarks.history [--items 1000] [--rounds 9] [--procs 1,4] [--postgres DSN]

Each pair of rounds runs back to back, so the ratio of a pair compares two
drains under the same load; the median of the pairs' ratios is reported,
with each pair's ratio. At FULL durability a cycle waits for syncs, which a
loaded machine makes noisy; the CPU time per cycle (SQLite: the workers'
own, which includes SQLite and the triggers; PostgreSQL on this machine: the
workers' and the server's, every process of it) is steadier and shows what
the history itself costs.

PostgreSQL (``--postgres`` or ``LITECOORD_TEST_POSTGRES``) runs the same
comparison over two schemas of that database.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any

from litecoord import SqliteCoordinator

from .common import SESSION, build_db, coordinator_ops, cycle_loop, log, median, run_processes

#: The triggers that write history are named so (schema.sql, both databases, every schema
#: version since history was recorded): found by name, so this script measures older code too.
TRIGGER_PREFIX = "work_items_attempt"


def _drop_sqlite_history(path: str) -> None:
    import sqlite3

    conn = sqlite3.connect(path, isolation_level=None)
    names = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE ?", (TRIGGER_PREFIX + "%",)
    )]  # fmt: skip
    assert names, "no history triggers to drop"
    for name in names:
        conn.execute(f"DROP TRIGGER {name}")
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


def sqlite_rows(items: int, rounds: int, procs_list: list[int], durabilities: list[str]) -> list[str]:
    lines = []
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        with_path, without_path = os.path.join(tmp, "with.db"), os.path.join(tmp, "without.db")
        for durability in durabilities:
            for procs in procs_list:
                ours: list[float] = []
                base: list[float] = []
                cpu_ours: list[float] = []
                cpu_base: list[float] = []
                for r in range(rounds):
                    order = [(with_path, ours, cpu_ours), (without_path, base, cpu_base)]
                    if r % 2:
                        order.reverse()
                    for path, into, cpu_into in order:
                        build_db(path, items)
                        if path == without_path:
                            _drop_sqlite_history(path)
                        rate, cpu = _sqlite_round(path, procs, durability)
                        into.append(rate)
                        cpu_into.append(cpu)
                ratios = [a / b for a, b in zip(ours, base, strict=True)]
                line = (
                    f"sqlite {durability:6} {procs} proc: with history {median(ours):8.0f} cycles/s, "
                    f"without {median(base):8.0f} cycles/s, ratio median {median(ratios):.3f} "
                    f"(rounds {', '.join(f'{x:.3f}' for x in ratios)}); CPU per cycle {median(cpu_ours):.0f} us "
                    f"with, {median(cpu_base):.0f} us without (ratio {median(cpu_base) / median(cpu_ours):.3f})"
                )
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


def _pg_round(
    dsn: str, schema: str, items: int, procs: int, durability: str, drop: bool, postmaster: int | None
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
    if drop:
        with psycopg.connect(scoped, autocommit=True) as conn:
            names = conn.execute(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = 'work_items'::regclass AND tgname LIKE %s",
                (TRIGGER_PREFIX + "%",),
            ).fetchall()
            assert names, "no history triggers to drop"
            for (name,) in names:
                conn.execute(f"DROP TRIGGER {name} ON work_items")

    def prepare(i: int) -> Callable[[], dict]:
        coord = PostgresCoordinator(scoped, session=SESSION, worker_id=f"w{i}", durability=durability)
        coord.status()
        return lambda: _timed_loop(coord)

    server_before = _server_cpu(postmaster)
    reports = run_processes(procs, prepare)
    time.sleep(0.5)  # the workers' backends exit once their connections close: let the server reap them
    server_after = _server_cpu(postmaster)
    done = sum(len(r["ids"]) for r in reports)
    rate = done / (max(r["t1"] for r in reports) - min(r["t0"] for r in reports))
    if server_before is None or server_after is None:
        return rate, None
    return rate, (server_after - server_before + sum(r["cpu"] for r in reports)) * 1e6 / done


def pg_rows(dsn: str, items: int, rounds: int, procs_list: list[int], durabilities: list[str]) -> list[str]:
    lines = []
    postmaster = _postmaster(dsn)
    for durability in durabilities:
        for procs in procs_list:
            ours: list[float] = []
            base: list[float] = []
            cpu_ours: list[float] = []
            cpu_base: list[float] = []
            for r in range(rounds):
                order = [(False, ours, cpu_ours), (True, base, cpu_base)]
                if r % 2:
                    order.reverse()
                for drop, into, cpu_into in order:
                    rate, cpu = _pg_round(dsn, "lc_bench_history", items, procs, durability, drop, postmaster)
                    into.append(rate)
                    if cpu is not None:
                        cpu_into.append(cpu)
            ratios = [a / b for a, b in zip(ours, base, strict=True)]
            line = (
                f"postgres {durability:6} {procs} proc: with history {median(ours):8.0f} cycles/s, "
                f"without {median(base):8.0f} cycles/s, ratio median {median(ratios):.3f} "
                f"(rounds {', '.join(f'{x:.3f}' for x in ratios)})"
            )
            if cpu_ours and cpu_base:
                line += (
                    f"; CPU per cycle (workers and server) {median(cpu_ours):.0f} us with, "
                    f"{median(cpu_base):.0f} us without (ratio {median(cpu_base) / median(cpu_ours):.3f})"
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
    args = parser.parse_args(argv)
    procs = [int(p) for p in args.procs.split(",")]
    durabilities = args.durability.split(",")
    started = time.time()
    lines: list[Any] = []
    if not args.no_sqlite:
        lines += sqlite_rows(args.items, args.rounds, procs, durabilities)
    if args.postgres:
        lines += pg_rows(args.postgres, args.items, args.rounds, procs, durabilities)
    print("\n".join(lines))
    log(f"took {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
