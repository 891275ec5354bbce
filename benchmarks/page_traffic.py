"""The bytes a status-page tab moves in an hour of a 300-item run, before and after issue 19.

A real server (waitress, loopback) runs on a FakeClock; a simulated backfill of
300 items over 10 indexes (8 workers renewing with progress every 10 s, a few
failures and one stalled lease) moves through an hour of that clock in steps
of 2 s, the page's refresh period. At every step two tabs watching the
session's page (``/?session=S``) ask what that page asks, over their own
keep-alive connections, side by side on the same data:

* **before** (the page as it was): ``GET /sessions/`` and ``GET …/overview?limit=25``,
  every answer sent whole and uncompressed (no ``If-None-Match``, no gzip: the
  server then compressed nothing);
* **after**: ``GET …/overview?limit=25&samples_after=T`` with ``Accept-Encoding: gzip``
  and the ``If-None-Match`` of its last answer (304 when nothing changed but the
  clock); ``T`` is the newest throughput sample it holds, so only newer ones come;
* **after, hidden half the time**: the same, but the tab is in the background
  every other 5 minutes (it asks nothing then, and once when shown again).

Every byte on the socket is counted, both ways: request lines and headers,
status lines and headers, bodies. The page's own files (loaded once per tab)
are left out of all three.
"""

from __future__ import annotations

import gzip
import json
import socket
import urllib.parse
from datetime import timedelta
from typing import Any

from litecoord import FakeClock, SqliteCoordinator

from .common import Results, Row, Settings, log

SESSION = "traffic"
STEP = 2.0  # the page's refresh period, seconds
WORKERS = 8
RENEW = 10.0  # a worker's heartbeat period, seconds


class Tab:
    """One tab's connection: raw HTTP/1.1 over one socket, so every byte is counted."""

    def __init__(self, port: int, *, conditional: bool, gzipped: bool, paths: tuple[str, ...]) -> None:
        self.port = port
        self.last_sample: str | None = None
        self.sock: socket.socket | None = None
        self.conditional, self.gzip, self.paths = conditional, gzipped, paths
        self.tags: dict[str, str] = {}
        self.sent = self.received = self.requests = self.not_modified = self.connections = 0

    def get(self, path: str) -> None:
        if self.conditional and "/overview" in path and self.last_sample:
            path += f"&samples_after={urllib.parse.quote(self.last_sample)}"  # what the page does
        if self.sock is None:
            self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
            self.connections += 1
        headers = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", "Accept: application/json"]
        if self.gzip:
            headers.append("Accept-Encoding: gzip, deflate, br")
        if self.conditional and path in self.tags:
            headers.append(f"If-None-Match: {self.tags[path]}")
        request = ("\r\n".join(headers) + "\r\n\r\n").encode("latin-1")
        self.sock.sendall(request)
        self.sent += len(request)
        self.requests += 1
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed the connection")
            head += chunk
        header_block, _, body = head.partition(b"\r\n\r\n")
        lines = header_block.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = 0 if status == 304 else int(fields.get("content-length", "0"))
        while len(body) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed the connection")
            body += chunk
        if status not in (200, 304):
            raise AssertionError(f"{path}: HTTP {status}")
        self.received += len(header_block) + 4 + length
        self.not_modified += status == 304
        if "etag" in fields:
            self.tags[path] = fields["etag"]
        if status == 200 and self.conditional and "/overview" in path:
            data = json.loads(gzip.decompress(body[:length]) if fields.get("content-encoding") == "gzip" else body)
            if data["samples"]:
                self.last_sample = data["samples"][-1]["sampled_at"]
        if fields.get("connection", "").lower() == "close":
            # waitress closes the connection after an answer without Content-Length (a 304 must
            # not carry one): the browser connects again for its next request, as here.
            self.sock.close()
            self.sock = None

    def refresh(self) -> None:
        for path in self.paths:
            self.get(path)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()


class Run:
    """The simulated backfill: workers lease, renew with progress, complete; a few fail once."""

    def __init__(self, path: str, clock: FakeClock, items: int) -> None:
        self.clock = clock
        self.root = SqliteCoordinator(path, clock=clock, durability="normal")
        admin = self.root.bind(session=SESSION, worker_id="admin")
        admin.setup(max_attempts=3, acquire_order="fifo")
        admin.create_work_items(
            {
                "work_item_id": f"index{n % 10}__{n}__0",
                "index_name": f"index{n % 10}",
                "shard_number": n,
                "document_count": 20_000 + 500 * (n % 7),
                "total_size_bytes": 10_000_000,
            }
            for n in range(items)
        )
        self.workers = [self.root.bind(session=SESSION, worker_id=f"worker-{n}") for n in range(WORKERS)]
        self.held: list[Any] = [None] * WORKERS
        self.next_renew = [0.0] * WORKERS
        self.elapsed = 0.0

    def step(self, seconds: float) -> None:
        self.clock.advance(seconds=seconds)
        self.elapsed += seconds
        for n, worker in enumerate(self.workers):
            if self.elapsed < self.next_renew[n]:
                continue
            self.next_renew[n] = self.elapsed + RENEW
            lease = self.held[n]
            if lease is None:
                got = worker.acquire_next_work_item(timedelta(minutes=5))
                self.held[n] = None if not hasattr(got, "work_item") else got.work_item
                continue
            # Worker 0 stalls (heartbeats, no progress) from minute 10 to 20; every 40th item fails once half way.
            speed = 0 if n == 0 and 600 < self.elapsed < 1200 else 2_800
            done = min(lease.document_count, lease.documents_processed + int(speed * RENEW / 10))
            item = worker.update_progress_and_renew_lease(lease.work_item_id, done, done * 500)
            failing = int(lease.work_item_id.split("__")[1]) % 40 == 0 and item.failure_count == 0
            if failing and done * 2 >= lease.document_count:
                worker.fail_work_item(lease.work_item_id, f"exit code 1: shard {lease.shard_number} failed: 429")
                self.held[n] = None
            elif done >= lease.document_count:
                worker.complete_work_item(lease.work_item_id)
                self.held[n] = None
            else:
                self.held[n] = item

    def close(self) -> None:
        self.root.close()


def measure(path: str, seconds: float, items: int) -> tuple[dict[str, Tab], Any]:
    """The three tabs after ``seconds`` of a run of ``items`` on the file ``path``, and the run's final status."""
    from litecoord.rest.server import make_server

    clock = FakeClock()
    sim = Run(path, clock, items)
    server = make_server(path, port=0, clock=clock, threads=2, durability="normal").start()
    overview = f"/sessions/{SESSION}/backfill/overview?limit=25"
    tabs = {
        "before": Tab(server.effective_port, conditional=False, gzipped=False, paths=("/sessions/", overview)),
        "after": Tab(server.effective_port, conditional=True, gzipped=True, paths=(overview,)),
        "after, hidden half the time": Tab(server.effective_port, conditional=True, gzipped=True, paths=(overview,)),
    }
    try:
        for n in range(int(seconds / STEP)):
            sim.step(STEP)
            for name, tab in tabs.items():
                if name.startswith("after, hidden") and (n * STEP // 300) % 2 == 1:
                    continue  # in the background: the page asks nothing
                tab.refresh()
        status = sim.root.bind(session=SESSION).status()
    finally:
        for tab in tabs.values():
            tab.close()
        server.close()
        sim.close()
    return tabs, status


def run(settings: Settings, results: Results) -> None:
    hour, items = (600.0, 60) if settings.quick else (3600.0, 300)
    log(f"page-traffic: {hour / 60:.0f} min of a {items}-item run, a refresh every {STEP:g} s")
    tabs, status = measure(settings.path("page-traffic.db"), hour, items)
    scale = 3600.0 / hour
    base = (tabs["before"].sent + tabs["before"].received) * scale
    ended = f"finished after {(status.elapsed_seconds or 0) / 60:.0f} min" if status.finished_at else "did not finish"
    for name, tab in tabs.items():
        moved = (tab.sent + tab.received) * scale
        note = (
            f"{tab.requests:,} requests ({tab.not_modified:,} answered 304) on {tab.connections:,} connections; "
            f"{tab.received * scale / 1e6:,.2f} MB "
            f"received, {tab.sent * scale / 1e6:,.2f} MB sent; the run {ended}"
        )
        results.rows.append(
            Row("page-traffic", f"one tab, {name}", "NORMAL", 1, moved / 1e6, "MB/h", moved / base, "before", note=note)
        )
