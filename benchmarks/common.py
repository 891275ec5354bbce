"""What every benchmark group shares: files, worker processes, checks, rows.

Worker processes are forked children of the one ``benchmarks.run`` process
(or threads of one such child, for the threaded cases):
each builds what it needs (a connection, a client), waits at a barrier so all
start together, runs a bounded loop and sends back a report: the item ids it
was handed and how long each call took. The parent checks the ids (nothing
handed out twice, nothing lost) and turns the reports into rows.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import platform
import queue
import sqlite3
import statistics
import sys
import threading
import time
import traceback
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

import litecoord
from litecoord.backends.sqlite.store import Store, schema_statements

T = TypeVar("T")

#: The session every benchmark file uses.
SESSION = "bench"
#: Leases long enough never to lapse during a run: every hand-out is a real one.
LEASE_SECONDS = 300
#: A worker loop never runs longer than this, whatever happens.
MAX_LOOP_SECONDS = 120.0
#: How long the parent waits for reports beyond the loop bound.
REPORT_GRACE_SECONDS = 60.0

_PRAGMAS = {
    # The same pragmas litecoord's Store applies (store.py), so only the code differs.
    "full": ("journal_mode=wal", "synchronous=full", "foreign_keys=1", "journal_size_limit=67108864"),
    "normal": ("journal_mode=wal", "synchronous=normal", "foreign_keys=1", "journal_size_limit=67108864"),
}


@dataclass
class Settings:
    """What one invocation of the suite runs with."""

    quick: bool
    runs: int
    workdir: str

    def path(self, name: str) -> str:
        return os.path.join(self.workdir, name)


@dataclass
class Row:
    """One line of the results table."""

    group: str
    case: str
    setting: str
    procs: int | str
    value: float | None
    unit: str
    ratio: float | None = None
    ratio_of: str = ""
    dup: int | None = None
    lost: int | None = None
    note: str = ""


@dataclass
class Target:
    """One target of the issue, evaluated in this run."""

    name: str
    measured: str
    wanted: str
    met: bool | None  # None: could not be measured in this run
    note: str = ""


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# -- the machine ---------------------------------------------------------------


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(dist: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def load_average() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "unknown"
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def machine(workdir: str, load_at_start: str = "") -> list[tuple[str, str]]:
    """The facts a figure depends on, in print order."""
    fs = ""
    try:
        with open("/proc/mounts", encoding="utf-8") as f:
            mounts = [line.split() for line in f]
        real = os.path.realpath(workdir)
        best = max((m for m in mounts if real.startswith(m[1])), key=lambda m: len(m[1]), default=None)
        if best:
            fs = f" ({best[2]} on {best[0]})"
    except OSError:
        pass
    mem = ""
    try:
        mem = f", {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB RAM"
    except (ValueError, OSError, AttributeError):
        pass
    load = f"load average (1, 5, 15 min) {load_at_start or '?'} at the start, {load_average()} at the end"
    return [
        ("CPU", f"{cpu_model()}, {os.cpu_count()} cores{mem}"),
        ("load", load),
        ("OS", f"{platform.system()} {platform.release()}"),
        ("Python", f"{platform.python_implementation()} {sys.version.split()[0]}"),
        ("SQLite", sqlite3.sqlite_version),
        ("files in", f"{workdir}{fs}"),
        (
            "packages",
            f"litecoord {litecoord.__version__}, peewee {_version('peewee')}, huey {_version('huey')}, "
            f"persist-queue {_version('persist-queue')}, litequeue {_version('litequeue')}, "
            f"waitress {_version('waitress')}, psycopg {_version('psycopg')}, pgqueuer {_version('pgqueuer')}, "
            f"procrastinate {_version('procrastinate')}",
        ),
    ]


# -- files -----------------------------------------------------------------------


def remove_db(path: str) -> None:
    for suffix in ("", "-wal", "-shm", "-journal", ".lock"):
        try:
            os.remove(path + suffix)
        except FileNotFoundError:
            pass


def connect_raw(path: str, durability: str, busy_timeout: float = 60.0) -> sqlite3.Connection:
    """A plain sqlite3 connection in autocommit mode with litecoord's pragmas."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=busy_timeout, check_same_thread=False)
    for pragma in _PRAGMAS[durability]:
        conn.execute("PRAGMA " + pragma)
    return conn


def write_transaction(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    """``fn(conn)`` in one ``BEGIN IMMEDIATE`` transaction on a plain connection: the raw baselines' step."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return result


def item_id(i: int) -> str:
    return f"bench__{i}__0"


def build_db(path: str, n_items: int, *, completed_share: float = 0.0, now_micros: int | None = None) -> int:
    """A fresh file with litecoord's schema, one session and ``n_items`` items.

    Built with plain ``executemany`` (the schema's triggers keep the session
    counters, exactly as litecoord's own inserts would). The first
    ``completed_share`` of the items are completed history; the rest are
    pending with varied sizes, so the largest-first index has work to do.
    Returns the number of pending items.
    """
    remove_db(path)
    now = now_micros if now_micros is not None else int(time.time() * 1e6)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"PRAGMA page_size={Store.PAGE_SIZE}")  # the layout litecoord gives the files it creates
    conn.execute("PRAGMA journal_mode=wal")
    conn.execute("PRAGMA synchronous=off")  # building only; the run reopens with its own setting
    conn.execute("PRAGMA cache_size=-262144")
    conn.execute("BEGIN")
    for statement in schema_statements():
        conn.execute(statement)
    conn.execute("INSERT INTO sessions (name, created_at) VALUES (?, ?)", (SESSION, now))
    sid = conn.execute("SELECT id FROM sessions WHERE name = ?", (SESSION,)).fetchone()[0]
    done = int(n_items * completed_share)
    conn.executemany(
        "INSERT INTO work_items (session_id, work_item_id, status, index_name, shard_number, document_count,"
        " total_size_bytes, worker_id, lease_epoch, lease_micros, lease_expiry, documents_processed,"
        " bytes_processed, created_at, started_at, completed_at, updated_at)"
        " VALUES (?, ?, 'completed', 'bench', ?, 1000, ?, 'history', 1, 300000000, ?, 1000, ?, ?, ?, ?, ?)",
        (
            (sid, item_id(i), i, _size(i), now - 3000, _size(i), now - 10_000, now - 5000, now - 2000, now - 2000)
            for i in range(done)
        ),
    )
    conn.executemany(
        "INSERT INTO work_items (session_id, work_item_id, index_name, shard_number, document_count,"
        " total_size_bytes, created_at, updated_at) VALUES (?, ?, 'bench', ?, 1000, ?, ?, ?)",
        ((sid, item_id(i), i, _size(i), now - 10_000, now - 10_000) for i in range(done, n_items)),
    )
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return n_items - done


def _size(i: int) -> int:
    return 1_000_000 + (i * 7919 % 1000) * 1000


def unfinished_items(path: str) -> list[str]:
    """Ids of items in the benchmark session that are not completed (after a drain: the lost ones)."""
    conn = sqlite3.connect(path)
    try:
        return [
            r[0]
            for r in conn.execute(
                "SELECT work_item_id FROM work_items w JOIN sessions s ON s.id = w.session_id "
                "WHERE s.name = ? AND w.status != 'completed'",
                (SESSION,),
            )
        ]
    finally:
        conn.close()


# -- worker processes ------------------------------------------------------------------


class WorkerError(RuntimeError):
    pass


def _child(index: int, prepare: Callable[[int], Callable[[], dict]], barrier: Any, out: Any) -> None:
    try:
        run = prepare(index)
    except BaseException:
        barrier.abort()
        out.put({"index": index, "error": traceback.format_exc()})
        return
    try:
        barrier.wait(timeout=REPORT_GRACE_SECONDS)
        report = run()
        report["index"] = index
    except BaseException:
        report = {"index": index, "error": traceback.format_exc()}
    out.put(report)


def run_processes(n: int, prepare: Callable[[int], Callable[[], dict]]) -> list[dict]:
    """Fork ``n`` workers; each runs ``prepare(i)()`` after all are ready; return their reports.

    ``prepare(i)`` runs first (open connections: not timed), then every
    worker passes one barrier and runs the returned loop. Bounded: a worker
    that does not report within the loop bound plus a grace period is
    terminated and the run fails.
    """
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(n)
    out = ctx.Queue()
    procs = [ctx.Process(target=_child, args=(i, prepare, barrier, out), daemon=True) for i in range(n)]
    for p in procs:
        p.start()
    reports: list[dict] = []
    deadline = time.monotonic() + MAX_LOOP_SECONDS + REPORT_GRACE_SECONDS
    try:
        while len(reports) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise WorkerError(f"only {len(reports)} of {n} workers reported in time")
            try:
                reports.append(out.get(timeout=min(left, 5.0)))
            except queue.Empty:
                if not any(p.is_alive() for p in procs) and out.empty():
                    raise WorkerError(f"workers exited; only {len(reports)} of {n} reported") from None
    finally:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()
                p.join(timeout=5)
    errors = [r["error"] for r in reports if "error" in r]
    if errors:
        raise WorkerError("a worker failed:\n" + errors[0])
    return sorted(reports, key=lambda r: r["index"])


def run_threads(
    n: int,
    prepare: Callable[[int, Any], Callable[[], dict]],
    shared: Callable[[], Any] = lambda: None,
) -> list[dict]:
    """``n`` threads of one forked process, each running a loop; return their reports.

    In that process ``shared()`` runs once (say, a coordinator the threads
    share), then each thread runs ``prepare(i, shared())`` itself (a
    ``sqlite3`` connection belongs to the thread that opens it), passes one
    barrier and runs the returned loop.
    """

    def in_child(_index: int) -> Callable[[], dict]:
        state = shared()
        barrier = threading.Barrier(n)
        reports: list[dict] = [{}] * n

        def body(i: int) -> None:
            try:
                run = prepare(i, state)
            except BaseException:
                barrier.abort()
                reports[i] = {"error": traceback.format_exc()}
                return
            try:
                barrier.wait(timeout=REPORT_GRACE_SECONDS)
                reports[i] = run()
            except BaseException:
                reports[i] = {"error": traceback.format_exc()}

        def run_all() -> dict:
            threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            return {"threads": reports}

        return run_all

    [report] = run_processes(1, in_child)
    errors = [r["error"] for r in report["threads"] if "error" in r]
    if errors:
        raise WorkerError("a worker thread failed:\n" + errors[0])
    return [dict(r, index=i) for i, r in enumerate(report["threads"])]


def cycle_loop(
    acquire: Callable[[], str | None],
    renew: Callable[[str], object] | None,
    complete: Callable[[str], object] | None,
) -> dict:
    """Lease items until none is left: acquire, renew with progress, complete.

    Every call is timed from call to return (the caller's wait, lock
    queueing included). Bounded by :data:`MAX_LOOP_SECONDS`.
    """
    perf = time.perf_counter
    ids: list[str] = []
    waits = array("d")
    t0 = perf()
    stop = t0 + MAX_LOOP_SECONDS
    timed_out = False
    while True:
        s = perf()
        item = acquire()
        e = perf()
        waits.append(e - s)
        if item is None:
            break
        if renew is not None:
            renew(item)
            s, e = e, perf()
            waits.append(e - s)
        if complete is not None:
            complete(item)
            s, e = e, perf()
            waits.append(e - s)
        ids.append(item)
        if e > stop:
            timed_out = True
            break
    return {"ids": ids, "waits": waits.tobytes(), "t0": t0, "t1": perf(), "timed_out": timed_out}


def coordinator_ops(coord: Any) -> tuple[Callable[[], str | None], Callable[[str], None], Callable[[str], None]]:
    """Acquire, renew once with progress, complete: one lease cycle's steps through any coordinator."""
    lease = timedelta(seconds=LEASE_SECONDS)

    def acquire() -> str | None:
        got = coord.acquire_next_work_item(lease)
        return got.work_item.work_item_id if isinstance(got, litecoord.WorkItemAndDuration) else None

    def renew(item: str) -> None:
        coord.update_progress_and_renew_lease(item, 500, 500_000)

    def complete(item: str) -> None:
        coord.complete_work_item(item)

    return acquire, renew, complete


@dataclass
class Outcome:
    """What the parent makes of one multi-process run."""

    throughput: float  # items per second, wall clock from the first start to the last finish
    handed_out: int
    duplicates: int
    lost: int
    shares: list[int]
    worst_wait: float
    p99_wait: float
    timed_out: bool


def summarize(reports: Sequence[dict], expected: int, unfinished: Iterable[str] | None = None) -> Outcome:
    """Check and reduce the reports of one drain run of ``expected`` items.

    Duplicates: hand-outs of an id beyond its first (across all workers).
    Lost: expected items that nobody was handed, plus items the file does not
    show as completed (``unfinished``) when given.
    """
    counts: Counter[str] = Counter()
    for r in reports:
        counts.update(r["ids"])
    duplicates = sum(c - 1 for c in counts.values() if c > 1)
    lost = max(0, expected - len(counts))
    if unfinished is not None:
        lost = max(lost, len(list(unfinished)))
    waits = array("d")
    for r in reports:
        waits.frombytes(r["waits"])
    ordered = sorted(waits)
    start = min(r["t0"] for r in reports)
    end = max(r["t1"] for r in reports)
    handed = sum(counts.values())
    return Outcome(
        throughput=handed / (end - start) if end > start else 0.0,
        handed_out=handed,
        duplicates=duplicates,
        lost=lost,
        shares=[len(r["ids"]) for r in reports],
        worst_wait=ordered[-1] if ordered else 0.0,
        p99_wait=percentile(ordered, 0.99),
        timed_out=any(r.get("timed_out") for r in reports),
    )


def percentile(ordered: Sequence[float], q: float) -> float:
    """The ``q`` quantile of an already sorted sequence (nearest rank)."""
    if not ordered:
        return 0.0
    k = min(len(ordered) - 1, max(0, int(round(q * len(ordered) + 0.5)) - 1))
    return ordered[k]


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


class GrowthSample:
    """One session of ``size`` items and its one worker, for the scale groups: acquire and status() samples.

    The worker completes outside the timed span, so every sample leases a
    fresh item. ``coord`` is open on a session built with ``pending`` items
    left (``build`` seconds to build); a few untimed cycles warm it up.
    """

    WARMUP = 5

    def __init__(self, size: int, coord: Any, pending: int, build: float, rounds: int) -> None:
        self.size = size
        self.pending = pending
        self.build = build
        self.coord = coord
        self.per_round = max(5, min(40, (self.pending - self.WARMUP) // rounds))
        self.acquired: list[str] = []
        self.acquire_times: list[float] = []
        self.status_times: list[float] = []
        for _ in range(self.WARMUP):
            self._cycle(timed=False)

    def _cycle(self, timed: bool) -> None:
        perf = time.perf_counter
        s = perf()
        got = self.coord.acquire_next_work_item(timedelta(seconds=LEASE_SECONDS))
        e = perf()
        if not isinstance(got, litecoord.WorkItemAndDuration):
            raise AssertionError(f"no work at {self.size} items after {len(self.acquired)} acquisitions")
        if timed:
            self.acquire_times.append(e - s)
        self.acquired.append(got.work_item.work_item_id)
        self.coord.complete_work_item(got.work_item.work_item_id)

    def round(self) -> None:
        for _ in range(self.per_round):
            self._cycle(timed=True)
        perf = time.perf_counter
        for _ in range(10):
            s = perf()
            self.last_status = self.coord.status()
            self.status_times.append(perf() - s)

    def result(self) -> dict:
        st = self.last_status
        # Checks: nothing handed out twice, and the counters agree with what was completed.
        duplicates = len(self.acquired) - len(set(self.acquired))
        expected_done = self.size - self.pending + len(self.acquired)
        lost = abs(st.completed_work_items - expected_done) + abs(st.total_work_items - self.size)
        self.coord.close()
        ordered = sorted(self.acquire_times)
        return {
            "p50": percentile(ordered, 0.5),
            "p99": percentile(ordered, 0.99),
            "status": median(self.status_times),
            "samples": len(ordered),
            "duplicates": duplicates,
            "lost": lost,
            "build": self.build,
        }


def measure_growth(samples: Sequence[GrowthSample], rounds: int) -> dict[int, dict]:
    """Each sample's result by size, after ``rounds`` rounds of every sample in turn."""
    for _ in range(rounds):  # interleaved: drift in the machine's load hits every size alike
        for sample in samples:
            sample.round()
    return {sample.size: sample.result() for sample in samples}


def report_growth(
    results: Results, measured: dict[int, dict], rounds: int, *, group: str, setting: str, built: str, what: str = ""
) -> None:
    """The scale groups' rows (against the 1k-item size) and targets; ``built`` names the build in the note,
    ``what`` prefixes the targets' names."""
    base = measured[1_000]
    for size, m in measured.items():
        note = f"{m['samples']} samples; p99 {m['p99'] * 1e6:,.0f} us; {built} in {m['build']:.1f} s"
        results.rows.append(
            Row(group, "acquire p50", setting, 1, m["p50"] * 1e6, "us",
                m["p50"] / base["p50"], f"1k ({size:,} items)", m["duplicates"], m["lost"], note)
        )  # fmt: skip
        results.rows.append(
            Row(group, "status()", setting, 1, m["status"] * 1e6, "us",
                m["status"] / base["status"], f"1k ({size:,} items)", note=f"median of {10 * rounds} calls")
        )  # fmt: skip
    top = max(measured)
    ratio = measured[top]["p50"] / base["p50"]
    results.targets.append(
        Target(f"{what}acquire p50 at {top:,} vs 1k items", f"{ratio:.2f}x", "<= 1.20x", ratio <= 1.2)
    )
    ratio = measured[top]["status"] / base["status"]
    results.targets.append(Target(f"{what}status() at {top:,} vs 1k items", f"{ratio:.2f}x", "<= 3.00x", ratio <= 3.0))


def round_ratios(ours: Sequence[float], base: Sequence[float]) -> str:
    """How far a ratio moved between rounds: ours/base of each interleaved round, lowest to highest.

    The table's ratio is of the medians; this shows whether one round's drift
    carried it (runs of the two sides alternate, so a round's pair shares the
    machine's state).
    """
    ratios = sorted(o / b for o, b in zip(ours, base, strict=True))
    return f"{ratios[0]:.2f}x" if len(ratios) == 1 else f"{ratios[0]:.2f}-{ratios[-1]:.2f}x"


def log(message: str) -> None:
    """Progress on stderr, so stdout holds only the results."""
    print(message, file=sys.stderr, flush=True)
