"""Acquire latency and ``status()`` time as the file grows: 1k, 100k, 1M items.

80% of each file is completed history (what a long backfill leaves behind)
and 20% pending, built with plain ``executemany`` into litecoord's schema and
then opened with :class:`SqliteCoordinator`. One worker acquires, and
completes outside the timed span, so every sample leases a fresh item. Runs
at ``synchronous=NORMAL``: at FULL an fsync per commit would hide what the
index does behind the disk's latency.
"""

from __future__ import annotations

import time

from litecoord import SqliteCoordinator

from .common import SESSION, GrowthSample, Results, Row, Settings, Target, build_db, log

COMPLETED_SHARE = 0.8
DURABILITY = "normal"


def sizes(settings: Settings) -> tuple[int, ...]:
    return (1_000, 100_000) if settings.quick else (1_000, 100_000, 1_000_000)


class Sample(GrowthSample):
    """One file and its worker: builds, then takes acquire and status() samples on request."""

    def __init__(self, size: int, settings: Settings, rounds: int) -> None:
        path = settings.path(f"scale-{size}.db")
        t = time.perf_counter()
        pending = build_db(path, size, completed_share=COMPLETED_SHARE)
        build = time.perf_counter() - t
        coord = SqliteCoordinator(path, session=SESSION, worker_id="scale-worker", durability=DURABILITY)
        super().__init__(size, coord, pending, build, rounds)


def run(settings: Settings, results: Results) -> None:
    rounds = 5 * settings.runs
    files = []
    for size in sizes(settings):
        log(f"scale: building {size:,} items")
        files.append(Sample(size, settings, rounds))
    # Rounds interleave the sizes, so drift in the machine's load hits every size alike.
    for _ in range(rounds):
        for f in files:
            f.round()
    measured = {f.size: f.result() for f in files}
    base = measured[1_000]
    for size, m in measured.items():
        note = f"{m['samples']} samples; p99 {m['p99'] * 1e6:,.0f} us; file built in {m['build']:.1f} s"
        results.rows.append(
            Row("scale", "acquire p50", DURABILITY.upper(), 1, m["p50"] * 1e6, "us",
                m["p50"] / base["p50"], f"1k ({size:,} items)", m["duplicates"], m["lost"], note)
        )  # fmt: skip
        results.rows.append(
            Row("scale", "status()", DURABILITY.upper(), 1, m["status"] * 1e6, "us",
                m["status"] / base["status"], f"1k ({size:,} items)", note=f"median of {10 * rounds} calls")
        )  # fmt: skip
    top = max(measured)
    if top < 1_000_000:
        results.notes.append("scale: the 1M-item file is skipped in --quick mode; targets judged at the largest size")
    ratio = measured[top]["p50"] / base["p50"]
    results.targets.append(Target(f"acquire p50 at {top:,} vs 1k items", f"{ratio:.2f}x", "<= 1.20x", ratio <= 1.2))
    ratio = measured[top]["status"] / base["status"]
    results.targets.append(Target(f"status() at {top:,} vs 1k items", f"{ratio:.2f}x", "<= 3.00x", ratio <= 3.0))
