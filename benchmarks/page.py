"""The status page's data request at 1k and 100k items.

Each refresh of the page (``GET /`` of ``litecoord serve``) asks, per
session shown, for ``GET /sessions/{session}/backfill/overview?limit=25``:
the status, aggregates per index, the progress samples, flag counts over
every lease, and one page each of leased and failed items. This measures that
request through a real waitress server on loopback (one client, keep-alive),
on files where 80% of the items are completed history spread over 50 indexes,
with 64 live leases and 10 failed items, beside ``GET …/status`` (one row of
counters: the cheapest request the server has) on the same file and server,
in interleaved rounds so drift in the machine's load hits both alike.
"""

from __future__ import annotations

import http.client
import json
import sqlite3
import time
from datetime import timedelta

from litecoord import SqliteCoordinator

from .common import SESSION, Results, Row, Settings, Target, build_db, log, median, percentile

DURABILITY = "normal"
INDEXES = 50
LEASES = 64
FAILED = 10
PAGE = 25


def sizes(settings: Settings) -> tuple[int, ...]:
    return (1_000, 100_000)


def build(path: str, size: int) -> None:
    build_db(path, size, completed_share=0.8)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("UPDATE work_items SET index_name = 'index-' || (seq % ?)", (INDEXES,))
    conn.close()
    coord = SqliteCoordinator(path, session=SESSION, durability=DURABILITY)
    for n in range(LEASES):
        coord.bind(worker_id=f"page-worker-{n}").acquire_next_work_item(timedelta(minutes=30))
    coord.setup(max_attempts=1)
    for n in range(FAILED):
        failing = coord.bind(worker_id=f"page-failing-{n}")
        lease = failing.acquire_next_work_item(timedelta(minutes=30))
        failing.fail_work_item(lease.work_item_id, "exit code 1: simulated failure")  # type: ignore[union-attr]
    coord.close()


class Sample:
    def __init__(self, size: int, settings: Settings) -> None:
        from litecoord.rest.server import make_server

        self.size = size
        path = settings.path(f"page-{size}.db")
        started = time.perf_counter()
        build(path, size)
        self.build = time.perf_counter() - started
        self.server = make_server(path, port=0, durability=DURABILITY, threads=2).start()
        self.conn = http.client.HTTPConnection("127.0.0.1", self.server.effective_port, timeout=60)
        self.paths = {
            "overview": f"/sessions/{SESSION}/backfill/overview?limit={PAGE}",
            # The same request when the server's per-index aggregates must be recomputed (the first
            # refresh, and then at most every few seconds): the cache is emptied before each one.
            "overview_cold": f"/sessions/{SESSION}/backfill/overview?limit={PAGE}",
            "status": f"/sessions/{SESSION}/backfill/work-items/status",
        }
        self.times: dict[str, list[float]] = {k: [] for k in self.paths}
        self.bytes = 0
        self.checked: dict = {}
        for _ in range(3):  # warm the page cache and the connection
            self.round(timed=False)

    def _get(self, path: str) -> bytes:
        self.conn.request("GET", path)
        response = self.conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise AssertionError(f"{path}: {response.status} {body[:200]!r}")
        return body

    def round(self, timed: bool = True) -> None:
        perf = time.perf_counter
        for kind, path in self.paths.items():
            for _ in range(5):
                if kind == "overview_cold":
                    self.server.app.index_cache.clear()
                s = perf()
                body = self._get(path)
                e = perf()
                if timed:
                    self.times[kind].append(e - s)
                if kind == "overview":
                    self.bytes = len(body)
                    self.checked = json.loads(body)

    def result(self) -> dict:
        self.conn.close()
        self.server.close()
        view = self.checked
        # Checks: the view holds one page, counts every lease, and agrees with the file.
        wrong = (
            (view["status"]["total_work_items"] != self.size)
            + (len(view["leased"]["items"]) != min(PAGE, LEASES))
            + (view["counts"]["live"] != LEASES)
            + (view["counts"]["failed"] != FAILED)
            + (view["indexes_total"] != INDEXES)
        )
        return {kind: sorted(times) for kind, times in self.times.items()} | {
            "wrong": wrong,
            "bytes": self.bytes,
            "build": self.build,
        }


def run(settings: Settings, results: Results) -> None:
    rounds = 10 * settings.runs
    samples = []
    for size in sizes(settings):
        log(f"page: building {size:,} items")
        samples.append(Sample(size, settings))
    for _ in range(rounds):
        for sample in samples:
            sample.round()
    measured = {s.size: s.result() for s in samples}
    base = measured[1_000]
    for size, m in measured.items():
        status = median(m["status"])
        for kind, case in (("overview", "overview (page data)"), ("overview_cold", "overview, aggregates recomputed")):
            figure = median(m[kind])
            note = (
                f"{len(m[kind])} requests; p99 {percentile(m[kind], 0.99) * 1e3:,.1f} ms; "
                f"{m['bytes']:,} bytes; {figure / status:.1f}x GET status ({status * 1e3:.2f} ms)"
            )
            results.rows.append(
                Row("page", case, DURABILITY.upper(), 1, figure * 1e3, "ms",
                    figure / median(base[kind]), f"1k ({size:,} items)", 0, m["wrong"], note)
            )  # fmt: skip
    top = max(measured)
    for kind, wanted in (("overview", 0.05), ("overview_cold", 1.0)):
        worst = median(measured[top][kind])
        results.targets.append(
            Target(
                f"page data request at {top:,} items" + (", aggregates recomputed" if kind != "overview" else ""),
                f"{worst * 1e3:.1f} ms",
                f"<= {wanted * 1e3:.0f} ms",
                worst <= wanted,
            )
        )
