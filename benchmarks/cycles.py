"""Raw ``sqlite3`` vs the embedded backend: full lease cycles per second.

A cycle is what a backfill worker does per item: acquire, renew once with
progress, complete. Both sides run the same statements on the same schema
with the same pragmas; the raw side runs each step as one ``BEGIN
IMMEDIATE`` transaction on a plain connection and waits with SQLite's own
busy handler. What separates the two figures is therefore litecoord's own
cost: Python per call, row objects, and the ``flock()`` that queues writers
fairly. A third line (``fair_lock=False``) shows that lock's share.

The 8-process runs double as the fairness measurement (each worker's share
and the worst wait for any call), see :func:`fairness_rows`.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from litecoord import SqliteCoordinator
from litecoord.backends.sqlite import coordinator as core

from .common import (
    LEASE_SECONDS,
    SESSION,
    Outcome,
    Results,
    Row,
    Settings,
    Target,
    build_db,
    connect_raw,
    coordinator_ops,
    cycle_loop,
    log,
    median,
    round_ratios,
    run_processes,
    run_threads,
    summarize,
    unfinished_items,
    write_transaction,
)

# The hot statements, taken from litecoord itself so "same SQL" stays true as it changes.
HELD_BY_WORKER = core._HELD_BY_WORKER
ACQUIRE = core._ACQUIRE
RENEW = core._RENEW
COMPLETE = core._COMPLETE

PROCS = (1, 4, 8)
#: Threads of one process, sharing one coordinator (the shape of a server).
THREADS = 8
DURABILITIES = ("full", "normal")
#: The README's shortest recommended lease; the worst write wait must stay under a tenth of it.
SHORTEST_LEASE_SECONDS = 30.0


@dataclass(frozen=True)
class Kind:
    key: str
    label: str


RAW = Kind("raw", "raw sqlite3, same SQL")
EMBEDDED = Kind("litecoord", "litecoord SqliteCoordinator")
NO_FLOCK = Kind("litecoord-nolock", "litecoord, fair_lock=False")
KINDS = (RAW, EMBEDDED, NO_FLOCK)


def raw_ops(path: str, durability: str, worker: str):
    """Acquire/renew/complete on a plain connection: one BEGIN IMMEDIATE per step."""
    conn = connect_raw(path, durability)
    sid = conn.execute("SELECT id FROM sessions WHERE name = ?", (SESSION,)).fetchone()[0]
    duration = LEASE_SECONDS * 1_000_000

    def now() -> int:
        return int(time.time() * 1_000_000)

    def acquire() -> str | None:
        t = now()

        def take(conn: sqlite3.Connection) -> Any:
            row = conn.execute(HELD_BY_WORKER, (sid, worker, t)).fetchone()
            if row is None:
                row = conn.execute(
                    ACQUIRE, {"session": sid, "worker": worker, "now": t, "duration": duration}
                ).fetchone()
            return row

        row = write_transaction(conn, take)
        return None if row is None else row[0]

    def step(sql: str, params: dict) -> None:
        row = write_transaction(conn, lambda conn: conn.execute(sql, params).fetchone())
        if row is None:
            raise AssertionError(f"{worker}: statement matched no row: {params}")

    def renew(item: str) -> None:
        step(
            RENEW,
            {"session": sid, "id": item, "worker": worker, "epoch": None, "now": now(),
             "duration": None, "docs": 500, "bytes": 500_000},
        )  # fmt: skip

    def complete(item: str) -> None:
        step(
            COMPLETE,
            {"session": sid, "id": item, "worker": worker, "epoch": None, "now": now(), "docs": None, "bytes": None},
        )

    return acquire, renew, complete


def embedded_ops(
    path: str, durability: str, worker: str, fair_lock: bool = True, shared: SqliteCoordinator | None = None
):
    """The same steps through a coordinator: its own, or ``shared`` bound to ``worker`` (threads)."""
    if shared is not None:
        coord = shared.bind(worker_id=worker)
    else:
        coord = SqliteCoordinator(path, session=SESSION, worker_id=worker, durability=durability, fair_lock=fair_lock)
    coord.num_work_items_not_yet_complete()  # open the connection and check the schema before the clock starts
    return coordinator_ops(coord)


def one_run(kind: Kind, path: str, durability: str, procs: int, items: int, *, threads: bool = False) -> Outcome:
    """``procs`` worker processes drain a fresh file; with ``threads``, that many threads of one process."""
    build_db(path, items)

    def prepare(i: int, shared: SqliteCoordinator | None = None):
        worker = f"worker-{i:02d}"
        if kind is RAW:
            ops = raw_ops(path, durability, worker)
        else:
            ops = embedded_ops(path, durability, worker, fair_lock=kind is not NO_FLOCK, shared=shared)
        return lambda: cycle_loop(*ops)

    if threads:
        # The threads share one coordinator, as a server's do: they share its commits (group commit).
        def shared() -> SqliteCoordinator | None:
            return None if kind is RAW else SqliteCoordinator(path, session=SESSION, durability=durability)

        reports = run_threads(procs, prepare, shared)
    else:
        reports = run_processes(procs, prepare)
    return summarize(reports, items, unfinished_items(path))


def items_for(durability: str, settings: Settings) -> int:
    if settings.quick:
        return 300 if durability == "full" else 1000
    return 1500 if durability == "full" else 5000


@dataclass
class Measured:
    """The median of several runs of one configuration, with the checks summed."""

    throughput: float
    throughputs: list[float]  # each run's, in round order
    duplicates: int
    lost: int
    worst_wait: float  # the worst over all runs
    p99_wait: float  # median over runs
    min_share: float  # median over runs of (smallest worker share / average share)
    max_share: float
    runs: int


def reduce(outcomes: list[Outcome]) -> Measured:
    shares = []
    for o in outcomes:
        average = sum(o.shares) / len(o.shares)
        shares.append((min(o.shares) / average, max(o.shares) / average))
    return Measured(
        throughput=median(o.throughput for o in outcomes),
        throughputs=[o.throughput for o in outcomes],
        duplicates=sum(o.duplicates for o in outcomes),
        lost=sum(o.lost for o in outcomes),
        worst_wait=max(o.worst_wait for o in outcomes),
        p99_wait=median(o.p99_wait for o in outcomes),
        min_share=median(s[0] for s in shares),
        max_share=median(s[1] for s in shares),
        runs=len(outcomes),
    )


def measure(durability: str, procs: int, settings: Settings, *, threads: bool = False) -> dict[str, Measured]:
    """All kinds at one setting, runs interleaved (raw, litecoord, ..., raw, ...) so drift hits all alike."""
    items = items_for(durability, settings)
    kinds = (RAW, EMBEDDED) if threads else KINDS
    outcomes: dict[str, list[Outcome]] = {kind.key: [] for kind in kinds}
    for _ in range(settings.runs):
        for kind in kinds:
            path = settings.path(f"cycles-{kind.key}-{durability}-{procs}{'t' if threads else ''}.db")
            outcomes[kind.key].append(one_run(kind, path, durability, procs, items, threads=threads))
    return {key: reduce(found) for key, found in outcomes.items()}


def _row(kind: Kind, durability: str, procs: int | str, m: Measured, raw: Measured) -> Row:
    return Row(
        group="cycles",
        case=kind.label,
        setting=durability.upper(),
        procs=procs,
        value=m.throughput,
        unit="cycles/s",
        ratio=None if kind is RAW else m.throughput / raw.throughput,
        ratio_of="" if kind is RAW else "raw",
        dup=m.duplicates,
        lost=m.lost,
        note=f"worst call {m.worst_wait * 1000:.0f} ms"
        + ("" if kind is RAW else f"; per round {round_ratios(m.throughputs, raw.throughputs)}"),
    )


def run(settings: Settings, results: Results) -> None:
    measured: dict[tuple[str, str, int], Measured] = {}
    threaded: dict[tuple[str, str], Measured] = {}
    for durability in DURABILITIES:
        for procs in PROCS:
            log(f"cycles: {durability} x{procs}")
            for key, m in measure(durability, procs, settings).items():
                measured[key, durability, procs] = m
        log(f"cycles: {durability} x{THREADS} threads")
        for key, m in measure(durability, THREADS, settings, threads=True).items():
            threaded[key, durability] = m
    for durability in DURABILITIES:
        for procs in PROCS:
            raw = measured[RAW.key, durability, procs]
            for kind in KINDS:
                results.rows.append(_row(kind, durability, procs, measured[kind.key, durability, procs], raw))
        raw = threaded[RAW.key, durability]
        for kind in (RAW, EMBEDDED):
            results.rows.append(_row(kind, durability, f"1, {THREADS} threads", threaded[kind.key, durability], raw))
    for durability in DURABILITIES:
        ours, raw = measured[EMBEDDED.key, durability, 4], measured[RAW.key, durability, 4]
        ratio = ours.throughput / raw.throughput
        results.targets.append(
            Target(
                name=f"embedded cycle at 4 processes vs raw, {durability.upper()}",
                measured=f"{ratio:.3f}x (rounds {round_ratios(ours.throughputs, raw.throughputs)})",
                wanted=">= 0.70x",
                met=ratio >= 0.7,
            )
        )
    fairness_rows(measured, results)


def fairness_rows(measured: dict[tuple[str, str, int], Measured], results: Results) -> None:
    """Shares and waits at 8 processes, from the same runs as the cycle figures."""
    limit = SHORTEST_LEASE_SECONDS / 10
    for durability in DURABILITIES:
        for kind in KINDS:
            m = measured[kind.key, durability, 8]
            results.rows.append(
                Row(
                    group="fairness",
                    case=kind.label,
                    setting=durability.upper(),
                    procs=8,
                    value=m.min_share,
                    unit="min share/avg",
                    dup=m.duplicates,
                    lost=m.lost,
                    note=f"max share {m.max_share:.2f}; worst wait {m.worst_wait * 1000:.0f} ms, "
                    f"p99 {m.p99_wait * 1000:.1f} ms",
                )
            )
        m = measured[EMBEDDED.key, durability, 8]
        results.targets.append(
            Target(
                name=f"8 processes, {durability.upper()}: smallest worker share",
                measured=f"{m.min_share:.2f} of average",
                wanted=">= 0.50",
                met=m.min_share >= 0.5,
            )
        )
        results.targets.append(
            Target(
                name=f"8 processes, {durability.upper()}: worst wait for any write",
                measured=f"{m.worst_wait * 1000:.0f} ms",
                wanted=f"< {limit:.0f} s (a tenth of a {SHORTEST_LEASE_SECONDS:.0f} s lease)",
                met=m.worst_wait < limit,
            )
        )
