"""What each part of a REST request costs the server, at 16 clients (group ``http-parts``).

The http group's flow and servers (:mod:`benchmarks.rest`): 16 client
processes drain a file through ``GET …/acquire``, ``PUT …/lease``, ``PUT
…/complete``. The litecoord server runs as shipped, then with one part
switched off at a time (its access log, its request metrics, its Host/Origin
check), then with all three off; the minimal WSGI app runs beside them. The
variants are interleaved round by round.

The figure is the server process's CPU time (user + system, from
``/proc``) per request, not the wall clock: 16 clients keep the server's
threads busy, so its CPU per request is what bounds its throughput, and it
moves far less than cycles/s on a machine other programs share. A part's
cost is the shipped server's figure minus the figure without that part, the
median over the rounds of each round's difference.

The same variants also run **in process**: as many threads as the server
has call the WSGI app directly with the same requests (no sockets, no
waitress), which leaves out most of what a request costs and most of the
noise, and shows the app's own share.
"""

from __future__ import annotations

import io
import json
import os
import resource
import sys
import threading
from collections.abc import Callable
from typing import Any

from .common import SESSION, Results, Row, Settings, build_db, cycle_loop, log, median, run_processes, summarize
from .rest import PARTS, Server, client_ops, litecoord_server, litecoord_switch_interval, minimal_app, server_threads

CLIENTS = 16
DURABILITIES = ("full", "normal")
#: Each variant: (label, kind, parts switched off).
VARIANTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("litecoord REST server as shipped", "litecoord", ()),
    *((f"without the {part}", "litecoord", (part,)) for part in PARTS),
    ("without all three", "litecoord", PARTS),
    ("minimal WSGI app, same SQL", "minimal", ()),
)


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of process ``pid`` so far (None where /proc is missing)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_run(kind: str, without: tuple[str, ...], path: str, durability: str, items: int, threads: int) -> dict:
    build_db(path, items)
    with Server(kind, path, durability, threads, without) as server:

        def prepare(i: int):
            ops = client_ops(server.port, f"worker-{i:02d}")
            return lambda: cycle_loop(*ops)

        before = _cpu_seconds(server.pid)
        reports = run_processes(CLIENTS, prepare)
        after = _cpu_seconds(server.pid)
    outcome = summarize(reports, items)
    # Each item: acquire, renew, complete; then each client's last acquire finds no work.
    requests = outcome.handed_out * 3 + CLIENTS
    cpu = None if before is None or after is None else (after - before) / requests * 1e6
    return {"cpu": cpu, "throughput": outcome.throughput, "duplicates": outcome.duplicates, "lost": outcome.lost}


# -- in process --------------------------------------------------------------------

_BASE = f"/sessions/{SESSION}/backfill/work-items"
_PROGRESS = {"documents_processed": 500, "bytes_processed": 500_000}


def _environ(method: str, uri: str, body: Any = None) -> dict[str, Any]:
    """What waitress hands the app for this request from the benchmark's client."""
    path, _, query = uri.partition("?")
    data = b"" if body is None else json.dumps(body).encode()
    environ = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query, "REQUEST_URI": uri,
        "SCRIPT_NAME": "", "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "127.0.0.1:8000", "HTTP_CONNECTION": "keep-alive",
        "wsgi.input": io.BytesIO(data), "wsgi.input_terminated": True, "wsgi.url_scheme": "http",
        "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False, "wsgi.version": (1, 0),
    }  # fmt: skip
    if body is not None:
        environ["CONTENT_TYPE"] = "application/json"
        environ["CONTENT_LENGTH"] = str(len(data))
    return environ


def _drain(app: Callable, worker: str, counts: list[int]) -> None:
    """The console flow against the app itself until no work is left; appends the request count."""

    def start_response(status: str, headers: list, exc_info: Any = None) -> None:
        return None

    requests = 0
    while True:
        requests += 1
        body = json.loads(b"".join(app(_environ("GET", f"{_BASE}/acquire?worker_id={worker}"), start_response)))
        if "work_item" not in body:
            break
        item = body["work_item"]["work_item_id"]
        app(_environ("PUT", f"{_BASE}/{item}/lease", {"worker_id": worker, "progress": _PROGRESS}), start_response)
        app(_environ("PUT", f"{_BASE}/{item}/complete", worker), start_response)
        requests += 2
    counts.append(requests)


def in_process(kind: str, without: tuple[str, ...], path: str, durability: str, items: int, threads: int) -> float:
    """CPU microseconds per request of ``threads`` threads calling the app directly."""
    import litecoord.rest.wsgi as wsgi

    build_db(path, items)
    metrics_available = wsgi._metrics_available
    switch, saved = litecoord_switch_interval(), sys.getswitchinterval()
    server = None
    try:
        if kind == "litecoord":
            server = litecoord_server(path, durability, without)[0]  # bound, never run: its app is called
            app = server.app
        else:
            app = minimal_app(path, durability)
        if switch is not None:
            sys.setswitchinterval(switch)  # as the server runs
        counts: list[int] = []
        workers = [threading.Thread(target=_drain, args=(app, f"worker-{i:02d}", counts)) for i in range(threads)]
        before = resource.getrusage(resource.RUSAGE_SELF)
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join()
        after = resource.getrusage(resource.RUSAGE_SELF)
    finally:
        sys.setswitchinterval(saved)
        wsgi._metrics_available = metrics_available  # litecoord_server switched it off for "metrics"
        if server is not None:
            server.close()
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return cpu / sum(counts) * 1e6


def _rows(
    results: Results, setting: str, procs: int | str, label_of: str, found: dict[str, list[dict]], note_of: Callable
) -> None:
    shipped = found[VARIANTS[0][0]]
    base = median(o["cpu"] for o in shipped)
    for label, _, _ in VARIANTS:
        outcomes = found[label]
        cpu = median(o["cpu"] for o in outcomes)
        costs = sorted(s["cpu"] - o["cpu"] for s, o in zip(shipped, outcomes, strict=True))
        note = note_of(outcomes)
        if outcomes is not shipped:
            spread = f"rounds {costs[0]:+.0f} to {costs[-1]:+.0f}"
            note += f"; shipped minus this: {median(costs):+.1f} us/request ({spread})"
        results.rows.append(
            Row("http-parts", f"{label_of}{label}", setting, procs, cpu, "us",
                cpu / base, "shipped", sum(o.get("duplicates", 0) for o in outcomes),
                sum(o.get("lost", 0) for o in outcomes), note)
        )  # fmt: skip


def run(settings: Settings, results: Results) -> None:
    threads = server_threads()
    items = 300 if settings.quick else 1000
    for durability in DURABILITIES:
        log(f"http-parts: {durability} x{CLIENTS}")
        found: dict[str, list[dict]] = {label: [] for label, _, _ in VARIANTS}
        for _ in range(settings.runs):  # interleaved: drift in the machine hits every variant alike
            for label, kind, without in VARIANTS:
                path = settings.path(f"http-parts-{durability}.db")
                found[label].append(one_run(kind, without, path, durability, items, threads))
        if any(o["cpu"] is None for outcomes in found.values() for o in outcomes):
            results.notes.append("http-parts: no /proc on this system, so no CPU figures")
            return
        def served(outs: list[dict]) -> str:
            return f"server CPU per request; {median(o['throughput'] for o in outs):,.0f} cycles/s"

        _rows(results, durability.upper(), CLIENTS, "", found, served)
        log(f"http-parts: {durability} in process")
        inside: dict[str, list[dict]] = {label: [] for label, _, _ in VARIANTS}
        for _ in range(max(settings.runs * 3, 9)):  # cheap rounds, and noisier alone: more of them
            for label, kind, without in VARIANTS:
                path = settings.path(f"http-parts-inside-{durability}.db")
                inside[label].append({"cpu": in_process(kind, without, path, durability, items // 2, threads)})
        _rows(results, durability.upper(), f"{threads} threads", "in process: ", inside,
              lambda outs: "app CPU per request")  # fmt: skip
    results.notes.append(
        f"http-parts: server CPU time per request at {CLIENTS} clients, {threads} server threads; 'in process': "
        f"{threads} threads call the WSGI app directly; a part's cost is the shipped server's CPU per request "
        "minus that without the part (benchmarks/rest_parts.py)"
    )
