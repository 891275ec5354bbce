"""Lease cycles over HTTP: the REST server vs a minimal WSGI app, same server.

Both apps run on waitress on 127.0.0.1 with the same number of threads, in a
child process; 1, 4 and 16 client processes each keep one HTTP/1.1
connection open and run the console flow the Java client uses:
``GET …/acquire?worker_id=W`` (404: no work), ``PUT …/{id}/lease`` with
progress, ``PUT …/{id}/complete`` with the bare worker id as the body.

The minimal app answers the same three routes with the same statements as
the embedded backend on a per-thread ``sqlite3`` connection, one ``BEGIN
IMMEDIATE`` per step, and a JSON body of the returned row with RFC 3339
times: what the REST layer could cost at the least.
"""

from __future__ import annotations

import http.client
import inspect
import json
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from .common import (
    SESSION,
    Results,
    Row,
    Settings,
    Target,
    build_db,
    connect_raw,
    cycle_loop,
    log,
    median,
    round_ratios,
    run_processes,
    summarize,
    unfinished_items,
    write_transaction,
)
from .cycles import ACQUIRE, COMPLETE, HELD_BY_WORKER, RENEW

CLIENTS = (1, 4, 16)
#: Whether the litecoord server writes its access log, as `litecoord serve` does by default
#: (LITECOORD_BENCH_ACCESS_LOG=0 measures it without, for the comparison in BENCHMARKS.md).
ACCESS_LOG = os.environ.get("LITECOORD_BENCH_ACCESS_LOG", "1") != "0"
#: Whether the litecoord server writes JSON with orjson when it is installed, as `litecoord serve` does
#: (LITECOORD_BENCH_ORJSON=0 measures it with the standard library's encoder, for BENCHMARKS.md).
ORJSON = os.environ.get("LITECOORD_BENCH_ORJSON", "1") != "0"
DURABILITIES = ("full", "normal")
#: waitress threads when litecoord.rest.server is missing (then: what make_server uses by default).
DEFAULT_THREADS = 8
BASE = f"/sessions/{SESSION}/backfill/work-items"
_TIME_COLUMNS = frozenset(
    {"lease_expiry", "last_progress_update", "created_at", "started_at", "completed_at", "last_heartbeat",
     "progress_changed_at"}
)  # fmt: skip


# -- the servers -----------------------------------------------------------------


#: What the http-parts group can switch off in the litecoord server (benchmarks/rest_parts.py).
PARTS = ("access log", "metrics", "host check")


def litecoord_server(path: str, durability: str, without: tuple[str, ...] = ()) -> tuple[Any, int, str]:
    """The server ``litecoord serve`` runs (its defaults), on an ephemeral loopback port.

    ``without`` names parts of :data:`PARTS` to switch off, to measure what
    each costs. Returns the server, its thread count and how it was made.
    """
    try:
        from litecoord.rest.server import make_server
    except ImportError:  # the REST helper's module is not there: the same app on waitress
        make_server = None
    if make_server is not None:
        extra: dict[str, Any] = {}
        if ACCESS_LOG and "access log" not in without and "access_log" in inspect.signature(make_server).parameters:
            # `litecoord serve` logs every request unless --quiet; the lines go to /dev/null here.
            extra["access_log"] = open(os.devnull, "w")  # noqa: SIM115 - open for the server's life
        server = make_server(path, host="127.0.0.1", port=0, durability=durability, **extra)
        threads = server.waitress.adj.threads
        if "metrics" in without:  # this server's process only: the benchmark forked it
            import litecoord.rest.wsgi

            litecoord.rest.wsgi._metrics_available = lambda: False  # type: ignore[attr-defined]
        if "host check" in without:
            server.app.local_only = False
        logged = ", access log" if extra else ""
        try:  # which JSON writer answered: orjson (the server extra) or the standard library
            import litecoord.rest.encoding as encoding

            if not ORJSON:
                encoding.orjson = None  # this server's process only: the benchmark forked it
            orjson = encoding.orjson
        except (ImportError, AttributeError):
            orjson = None
        writer = ", JSON by orjson" if orjson is not None else ", JSON by the standard library"
        return server, threads, f"litecoord.rest.server.make_server (defaults: {threads} threads{logged}{writer})"
    import waitress

    from litecoord import SqliteCoordinator
    from litecoord.rest.wsgi import create_app

    app = create_app(SqliteCoordinator(path, durability=durability))
    server = waitress.create_server(app, host="127.0.0.1", port=0, threads=DEFAULT_THREADS)
    return server, DEFAULT_THREADS, "waitress + litecoord.rest.wsgi.create_app (no litecoord.rest.server)"


def _rfc3339(micros: int | None) -> str | None:
    if micros is None:
        return None
    seconds, fraction = divmod(micros, 1_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{fraction:06d}Z"


def minimal_app(path: str, durability: str) -> Callable:
    """The least a REST layer over the same SQL can do: route, one transaction, JSON out."""
    local = threading.local()
    sessions: dict[str, int] = {}

    def conn():
        c = getattr(local, "conn", None)
        if c is None:
            c = local.conn = connect_raw(path, durability)
        return c

    def write(fn):
        return write_transaction(conn(), fn)

    def respond(start_response, status: str, body: Any) -> list[bytes]:
        data = json.dumps(body, separators=(",", ":")).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]

    def item(cursor, row) -> dict:
        names = [d[0] for d in cursor.description]
        return {n: (_rfc3339(v) if n in _TIME_COLUMNS else v) for n, v in zip(names, row, strict=True)}

    def app(environ, start_response):
        parts = environ["PATH_INFO"].split("/")  # '', sessions, S, backfill, work-items, X[, action]
        session = parts[2]
        sid = sessions.get(session)
        if sid is None:
            sid = sessions[session] = conn().execute("SELECT id FROM sessions WHERE name = ?", (session,)).fetchone()[0]
        now = int(time.time() * 1_000_000)
        method = environ["REQUEST_METHOD"]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = json.loads(environ["wsgi.input"].read(length)) if length else None
        if len(parts) == 6 and parts[5] == "acquire":
            worker = environ["QUERY_STRING"].partition("worker_id=")[2].partition("&")[0]

            def take(c):
                cur = c.execute(HELD_BY_WORKER, (sid, worker, now))
                row = cur.fetchone()
                if row is None:
                    cur = c.execute(ACQUIRE, {"session": sid, "worker": worker, "now": now, "duration": 300_000_000})
                    row = cur.fetchone()
                return None if row is None else item(cur, row)

            got = write(take)
            if got is None:
                return respond(start_response, "404 Not Found", {"detail": "No work available"})
            return respond(start_response, "200 OK", {"work_item": got, "lease_duration_seconds": 300})
        if method == "PUT" and len(parts) == 7 and parts[6] in ("lease", "complete"):
            if parts[6] == "lease":
                progress = body.get("progress") or {}
                sql, params = RENEW, {
                    "session": sid, "id": parts[5], "worker": body["worker_id"], "epoch": None, "now": now,
                    "duration": None, "docs": progress.get("documents_processed"),
                    "bytes": progress.get("bytes_processed"),
                }  # fmt: skip
            else:
                # No final figures in the body (the Java client's bare worker id): the holder is trusted.
                sql, params = COMPLETE, {
                    "session": sid, "id": parts[5], "worker": body, "epoch": None, "now": now, "docs": None,
                    "bytes": None,
                }  # fmt: skip

            def update(c):
                cur = c.execute(sql, params)
                row = cur.fetchone()
                return None if row is None else item(cur, row)

            got = write(update)
            if got is None:
                return respond(start_response, "409 Conflict", {"detail": "not the lease holder"})
            return respond(start_response, "200 OK", got)
        return respond(start_response, "404 Not Found", {"detail": "no such route"})

    return app


def _serve(
    kind: str, path: str, durability: str, threads: int, ports: Any, stop: Any, without: tuple[str, ...] = ()
) -> None:
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "Task queue depth" is expected under load
    if kind == "litecoord":
        server, threads, how = litecoord_server(path, durability, without)
    else:
        import waitress

        # The same interpreter setting as the litecoord server runs with, so only the app differs.
        switch = litecoord_switch_interval()
        if switch is not None:
            sys.setswitchinterval(switch)
        server = waitress.create_server(minimal_app(path, durability), host="127.0.0.1", port=0, threads=threads)
        how = f"waitress + minimal WSGI app ({threads} threads)"
    threading.Thread(target=server.run, daemon=True).start()
    ports.put((server.effective_port, threads, how))
    stop.wait(timeout=900)  # the process ends here, and the daemon server threads with it


class Server:
    """A server in a child process for the duration of a ``with`` block."""

    def __init__(self, kind: str, path: str, durability: str, threads: int = 0, without: tuple[str, ...] = ()) -> None:
        import multiprocessing as mp

        ctx = mp.get_context("fork")
        self._ports = ctx.Queue()
        self._stop = ctx.Event()
        args = (kind, path, durability, threads, self._ports, self._stop, without)
        self._proc = ctx.Process(target=_serve, args=args, daemon=True)

    def __enter__(self) -> Server:
        self._proc.start()
        try:
            self.port, self.threads, self.how = self._ports.get(timeout=30)
        except queue.Empty:
            self._proc.terminate()
            raise RuntimeError("the server did not start") from None
        self.pid = self._proc.pid
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._proc.join(timeout=5)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(timeout=5)


# -- the clients -----------------------------------------------------------------------


def client_ops(port: int, worker: str):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    json_headers = {"Content-Type": "application/json"}

    def call(method: str, url: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body)
        conn.request(method, url, body=data, headers=json_headers)
        response = conn.getresponse()
        payload = response.read()
        return response.status, json.loads(payload) if payload else None

    def acquire() -> str | None:
        status, body = call("GET", f"{BASE}/acquire?worker_id={worker}")
        if status == 404:
            return None
        if status != 200:
            raise RuntimeError(f"acquire: HTTP {status}: {body}")
        return body["work_item"]["work_item_id"]

    def renew(item: str) -> None:
        progress = {"documents_processed": 500, "bytes_processed": 500_000}
        status, body = call("PUT", f"{BASE}/{item}/lease", {"worker_id": worker, "progress": progress})
        if status != 200:
            raise RuntimeError(f"renew: HTTP {status}: {body}")

    def complete(item: str) -> None:
        status, body = call("PUT", f"{BASE}/{item}/complete", worker)
        if status != 200:
            raise RuntimeError(f"complete: HTTP {status}: {body}")

    return acquire, renew, complete


def _serve_default(name: str, fallback: Any) -> Any:
    """A default of ``litecoord serve`` (``make_server``), or ``fallback`` without litecoord.rest.server."""
    try:
        from litecoord.rest.server import make_server
    except ImportError:
        return fallback
    parameter = inspect.signature(make_server).parameters.get(name)
    return fallback if parameter is None else parameter.default


def litecoord_switch_interval() -> float | None:
    """The thread switch interval ``litecoord serve`` runs with (None: the interpreter's own)."""
    return _serve_default("switch_interval", None)


def server_threads() -> int:
    """The thread count ``litecoord serve`` uses by default; the minimal app gets the same."""
    return int(_serve_default("threads", DEFAULT_THREADS))


def items_for(durability: str, settings: Settings) -> int:
    if settings.quick:
        return 200
    return 1000 if durability == "full" else 2000


def one_run(kind: str, path: str, durability: str, clients: int, items: int, threads: int) -> tuple[Any, str]:
    build_db(path, items)
    with Server(kind, path, durability, threads) as server:

        def prepare(i: int):
            ops = client_ops(server.port, f"worker-{i:02d}")
            return lambda: cycle_loop(*ops)

        reports = run_processes(clients, prepare)
    if server.threads != threads:
        raise RuntimeError(f"{kind} server ran {server.threads} threads, expected {threads}")
    return summarize(reports, items, unfinished_items(path)), server.how


def run(settings: Settings, results: Results) -> None:
    threads = server_threads()
    measured: dict[tuple[str, str, int], dict] = {}
    how = ""
    for durability in DURABILITIES:
        for clients in CLIENTS:
            log(f"http: {durability} x{clients}")
            found: dict[str, list] = {"minimal": [], "litecoord": []}
            for _ in range(settings.runs):  # interleaved: drift in the machine hits both apps alike
                for kind, outcomes in found.items():
                    path = settings.path(f"http-{kind}-{durability}-{clients}.db")
                    outcome, served = one_run(kind, path, durability, clients, items_for(durability, settings), threads)
                    outcomes.append(outcome)
                    if kind == "litecoord":
                        how = served
            for kind, outcomes in found.items():
                measured[kind, durability, clients] = {
                    "throughput": median(o.throughput for o in outcomes),
                    "throughputs": [o.throughput for o in outcomes],
                    "duplicates": sum(o.duplicates for o in outcomes),
                    "lost": sum(o.lost for o in outcomes),
                    "p99": median(o.p99_wait for o in outcomes),
                    "worst": max(o.worst_wait for o in outcomes),
                }
    for durability in DURABILITIES:
        for clients in CLIENTS:
            base = measured["minimal", durability, clients]
            for kind, label in (("minimal", "minimal WSGI app, same SQL"), ("litecoord", "litecoord REST server")):
                m = measured[kind, durability, clients]
                results.rows.append(
                    Row("http", label, durability.upper(), clients, m["throughput"], "cycles/s",
                        None if kind == "minimal" else m["throughput"] / base["throughput"],
                        "" if kind == "minimal" else "minimal", m["duplicates"], m["lost"],
                        f"p99 call {m['p99'] * 1000:.1f} ms, worst {m['worst'] * 1000:.0f} ms"
                        + ("" if kind == "minimal" else
                           f"; per round {round_ratios(m['throughputs'], base['throughputs'])}"))
                )  # fmt: skip
        ratios = [measured["litecoord", durability, c]["throughput"] / measured["minimal", durability, c]["throughput"]
                  for c in CLIENTS]  # fmt: skip
        worst = min(ratios)
        results.targets.append(
            Target(f"HTTP cycles vs minimal WSGI app, {durability.upper()} (worst of 1/4/16 clients)",
                   f"{worst:.3f}x", ">= 0.80x", worst >= 0.8)
        )  # fmt: skip
    switch = litecoord_switch_interval()
    results.notes.append(
        f"http: the litecoord side ran as {how}; the minimal app on waitress with {threads} threads"
        + ("" if switch is None else f"; both servers with a thread switch interval of {switch * 1000:g} ms")
    )
