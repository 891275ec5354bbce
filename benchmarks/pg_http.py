"""Lease cycles over HTTP through 1 and 3 ``litecoord serve`` processes over one PostgreSQL.

Each server is a real ``litecoord serve --db postgresql://...`` process
(its defaults: 8 threads, a connection pool). The clients are 6 processes,
each an :class:`~litecoord.HttpCoordinator` given every server's URL, its
list rotated so the clients spread over the servers (with one server they
all share it). Each runs the cycle of :mod:`benchmarks.cycles`: acquire,
renew with progress, complete. The ratio is 3 servers over 1: what adding
servers buys on this machine (whose cores the servers, the clients and
PostgreSQL share).
"""

from __future__ import annotations

import os
import subprocess
import sys

from .common import (
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
from .pg_common import SYNCHRONOUS_COMMIT, build_pg, fresh_schema, unfinished_pg, with_options

SERVERS = (1, 3)
CLIENTS = 6
DURABILITIES = ("full", "normal")


class Servers:
    """``n`` ``litecoord serve`` processes over ``dsn`` for the duration of a ``with`` block."""

    def __init__(self, dsn: str, n: int) -> None:
        self.dsn, self.n = dsn, n
        self.procs: list[subprocess.Popen[str]] = []
        self.urls: list[str] = []

    def __enter__(self) -> Servers:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LITECOORD_")}
        for _ in range(self.n):
            proc = subprocess.Popen(
                [sys.executable, "-m", "litecoord.cli", "serve", "--db", self.dsn, "--port", "0", "--quiet"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            self.procs.append(proc)
            line = proc.stderr.readline() if proc.stderr else ""
            if " on http://" not in line:
                self.__exit__()
                raise RuntimeError(f"litecoord serve did not start: {line}")
            self.urls.append(line.split(" on ", 1)[1].split()[0])
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def client_ops(urls: list[str], worker: str):
    from litecoord import HttpCoordinator

    coord = HttpCoordinator(urls, session=SESSION, worker_id=worker, timeout=60)
    coord.status()  # connect before the clock starts
    return coordinator_ops(coord)


def one_run(
    server: str, durability: str, servers: int, items: int, clients: int = CLIENTS, schema: str = "bench_http"
) -> Outcome:
    dsn = fresh_schema(server, schema)
    build_pg(dsn, items)
    # The servers' connections commit at this synchronous_commit (litecoord's FULL leaves the server's default).
    served = with_options(dsn, synchronous_commit=SYNCHRONOUS_COMMIT[durability])
    with Servers(served, servers) as running:

        def prepare(i: int):
            k = i % servers  # client i asks server i % n first
            ops = client_ops(running.urls[k:] + running.urls[:k], f"client-{i:02d}")
            return lambda: cycle_loop(*ops)

        reports = run_processes(clients, prepare)
    return summarize(reports, items, unfinished_pg(dsn))


def items_for(durability: str, settings: Settings) -> int:
    if settings.quick:
        return 300
    return 1200 if durability == "full" else 2400


def run(settings: Settings, results: Results, server: str) -> None:
    measured: dict[tuple[str, int], list[Outcome]] = {}
    for durability in DURABILITIES:
        log(f"pg-http: {durability}")
        for _ in range(settings.runs):
            for n in SERVERS:
                outcome = one_run(server, durability, n, items_for(durability, settings))
                measured.setdefault((durability, n), []).append(outcome)
    for durability in DURABILITIES:
        one = measured[durability, 1]
        one_median = median(o.throughput for o in one)
        for n in SERVERS:
            found = measured[durability, n]
            value = median(o.throughput for o in found)
            rounds = round_ratios([o.throughput for o in found], [o.throughput for o in one])
            results.rows.append(
                Row("pg-http", f"{n} litecoord serve process{'es' if n > 1 else ''}",
                    f"synchronous_commit={SYNCHRONOUS_COMMIT[durability]}", f"{CLIENTS} clients", value, "cycles/s",
                    None if n == 1 else value / one_median, "" if n == 1 else "1 server",
                    sum(o.duplicates for o in found), sum(o.lost for o in found),
                    f"p99 call {median(o.p99_wait for o in found) * 1000:.1f} ms"
                    + ("" if n == 1 else f"; per round {rounds}"))
            )  # fmt: skip
        three = median(o.throughput for o in measured[durability, 3])
        results.targets.append(
            Target(
                f"HTTP over PostgreSQL, synchronous_commit={SYNCHRONOUS_COMMIT[durability]}: 3 servers vs 1",
                f"{three / one_median:.2f}x, {sum(o.duplicates for o in measured[durability, 3])} duplicates",
                "0 duplicates (the ratio is reported, not a target)",
                sum(o.duplicates + o.lost for n in SERVERS for o in measured[durability, n]) == 0,
            )
        )
