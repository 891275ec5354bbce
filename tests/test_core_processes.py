"""Concurrency claims, proven with real processes sharing one database.

The tests taking ``target`` run against a SQLite file and against
PostgreSQL (a schema of the test's own). Worker processes are started with
the ``spawn`` method, so each opens the database from nothing, as separate
programs would. Where leases must lapse, the
processes share a clock offset (a ``multiprocessing.Value``) that only the
test moves: no sleeping.
"""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import resource
import sqlite3
import threading
from datetime import datetime, timedelta, timezone

import pytest
from freezegun import freeze_time
from pg_support import fresh_schema

from litecoord import NoAvailableWorkToBeDone, SqliteCoordinator, WorkItemAndDuration, WorkItemStatus
from litecoord.backends.choose import is_postgres, open_coordinator

CTX = multiprocessing.get_context("spawn")
BASE = datetime(2025, 1, 19, 20, 30, tzinfo=timezone.utc).timestamp()


class SharedClock:
    """A clock all processes read: BASE plus an offset only the test moves."""

    def __init__(self, offset):  # a multiprocessing.Value('d')
        self.offset = offset

    def __call__(self) -> float:
        return BASE + self.offset.value


def _run_pool(target, args_list, timeout=240):
    results = CTX.Queue()
    procs = [CTX.Process(target=_capture, args=(results, target, args)) for args in args_list]
    for proc in procs:
        proc.start()
    out = [results.get(timeout=timeout) for _ in procs]
    for proc in procs:
        proc.join(timeout=30)
        assert proc.exitcode == 0
    errors = [r for r in out if isinstance(r, str)]
    assert not errors, errors
    return out


def _capture(results, target, args):
    try:
        results.put(target(*args))
    except BaseException as exc:  # report, never hang the parent
        import traceback

        results.put(f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, db_path):
    """Where the processes coordinate: a SQLite path or a PostgreSQL DSN."""
    if request.param == "sqlite":
        yield str(db_path)
    else:
        with fresh_schema() as dsn:
            yield dsn


def _sqlite_integrity_ok(target) -> None:
    if not is_postgres(target):
        conn = sqlite3.connect(target)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        conn.close()


# -- process bodies ------------------------------------------------------------------


def drain(db_path, worker_id, durability, start):
    """Acquire, renew with progress, complete, until no work remains.

    ``start`` (a barrier of all the processes) makes them begin together: on a
    loaded machine a process that starts late would otherwise find the work gone.
    """
    coord = open_coordinator(db_path, session="stress", worker_id=worker_id, durability=durability)
    done = []
    start.wait(timeout=120)
    while True:
        outcome = coord.acquire_next_work_item(timedelta(minutes=5))
        if isinstance(outcome, NoAvailableWorkToBeDone):
            if outcome.all_work_done:
                return done
            continue
        coord.update_progress_and_renew_lease(outcome.work_item_id, 10, 100, lease_epoch=outcome.lease_epoch)
        coord.complete_work_item(outcome.work_item_id, lease_epoch=outcome.lease_epoch)
        done.append((outcome.work_item_id, worker_id, outcome.lease_epoch))


def drain_in_threads(db_path, prefix, threads, durability, start):
    """``drain`` in several threads of this process, one coordinator shared by all (a server's shape).

    Every thread of every process waits at one start line (``start`` across the
    processes, then a barrier of this process's threads), as in ``drain``.
    """
    coord = open_coordinator(db_path, session="stress", worker_id=f"{prefix}-main", durability=durability)
    done: list[list] = [[] for _ in range(threads)]
    start.wait(timeout=120)
    together = threading.Barrier(threads)

    def body(k):
        worker = coord.bind(worker_id=f"{prefix}-t{k}")
        together.wait(timeout=120)
        while True:
            outcome = worker.acquire_next_work_item(timedelta(minutes=5))
            if isinstance(outcome, NoAvailableWorkToBeDone):
                if outcome.all_work_done:
                    return
                continue
            worker.update_progress_and_renew_lease(outcome.work_item_id, 10, 100, lease_epoch=outcome.lease_epoch)
            worker.complete_work_item(outcome.work_item_id, lease_epoch=outcome.lease_epoch)
            done[k].append((outcome.work_item_id, worker.worker_id, outcome.lease_epoch))

    pool = [threading.Thread(target=body, args=(k,)) for k in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return done


def acquire_each(db_path, worker_ids, offset, complete):
    """Each worker id leases one item (with 1-minute leases), completing it if asked."""
    got = []
    for worker_id in worker_ids:
        coord = open_coordinator(db_path, session="s", worker_id=worker_id, clock=SharedClock(offset))
        outcome = coord.acquire_next_work_item(timedelta(minutes=1))
        assert isinstance(outcome, WorkItemAndDuration), outcome
        if complete:
            coord.complete_work_item(outcome.work_item_id, lease_epoch=outcome.lease_epoch)
        got.append((outcome.work_item_id, outcome.lease_epoch))
    return got


def acquire_and_split(db_path, worker_ids):
    for worker_id in worker_ids:
        coord = open_coordinator(db_path, session="s", worker_id=worker_id)
        outcome = coord.acquire_next_work_item()
        assert isinstance(outcome, WorkItemAndDuration), outcome
        parent = outcome.work_item_id
        coord.create_successor_work_items_and_mark_complete(parent, [f"{parent}__{k}" for k in (1, 2, 3)])
    return len(worker_ids)


# -- tests ---------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(("processes", "items", "durability"), [(8, 2000, "normal"), (4, 2000, "full")])
def test_stress_every_item_completed_exactly_once(target, processes, items, durability):
    if is_postgres(target):
        items //= 2  # sized for CI's two cores, where the database server shares them
    open_coordinator(target, session="stress", worker_id="creator").create_work_items(
        [{"work_item_id": f"idx__{n}__0", "document_count": 10, "total_size_bytes": n % 97} for n in range(items)]
    )
    start = CTX.Barrier(processes)
    results = _run_pool(drain, [(target, f"w{p}", durability, start) for p in range(processes)])
    completions = [c for worker in results for c in worker]
    ids = [c[0] for c in completions]
    assert len(ids) == items, "an item was completed twice or lost"
    assert set(ids) == {f"idx__{n}__0" for n in range(items)}
    # Each item was leased exactly once (epoch 1): never two holders at once.
    assert {c[2] for c in completions} == {1}
    # Every worker got a share of the work.
    assert all(len(worker) > 0 for worker in results)
    coord = open_coordinator(target, session="stress", worker_id="checker")
    status = coord.status()
    assert (status.completed_work_items, status.pending_work_items, status.assigned_work_items) == (items, 0, 0)
    assert status.total_documents_processed == 10 * items
    assert {i.lease_epoch for i in coord.list_work_items()} == {1}
    _sqlite_integrity_ok(target)


@pytest.mark.slow
def test_threads_of_several_processes_complete_every_item_exactly_once(target):
    # At FULL the threads of each SQLite process share commits (group commit); on
    # PostgreSQL each thread has its own connection. The items must still go to
    # one holder each, and each thread keep its own.
    items, processes, threads = (1200 if not is_postgres(target) else 600), 2, 4
    open_coordinator(target, session="stress", worker_id="creator").create_work_items(
        [{"work_item_id": f"idx__{n}__0", "document_count": 10} for n in range(items)]
    )
    start = CTX.Barrier(processes)
    results = _run_pool(drain_in_threads, [(target, f"p{p}", threads, "full", start) for p in range(processes)])
    per_thread = [thread for process in results for thread in process]
    completions = [c for thread in per_thread for c in thread]
    assert sorted(c[0] for c in completions) == sorted(f"idx__{n}__0" for n in range(items))
    assert {c[2] for c in completions} == {1}
    assert all(per_thread), "a thread got no items"
    coord = open_coordinator(target, session="stress", worker_id="checker")
    # Each item was completed by the worker that leased it.
    assert sorted((i.work_item_id, i.worker_id) for i in coord.list_work_items(WorkItemStatus.COMPLETED)) == sorted(
        (c[0], c[1]) for c in completions
    )
    _sqlite_integrity_ok(target)


@pytest.mark.slow
def test_concurrent_acquisition_is_unique_and_lapsed_leases_are_reacquired_uniquely(target):
    offset = CTX.Value("d", 0.0)
    open_coordinator(target, session="s", worker_id="creator").create_work_items(
        [{"work_item_id": f"idx__{n}__0"} for n in range(40)]
    )
    first = _run_pool(acquire_each, [(target, [f"a{p}-{k}" for k in range(10)], offset, False) for p in range(4)])
    leased = [item for chunk in first for item in chunk]
    assert len({item for item, _ in leased}) == 40
    assert {epoch for _, epoch in leased} == {1}

    offset.value += 61  # every 1-minute lease has lapsed; nobody cleaned up
    second = _run_pool(acquire_each, [(target, [f"b{p}-{k}" for k in range(10)], offset, True) for p in range(4)])
    retaken = [item for chunk in second for item in chunk]
    assert len({item for item, _ in retaken}) == 40
    assert {epoch for _, epoch in retaken} == {2}
    coord = open_coordinator(target, session="s", worker_id="checker", clock=SharedClock(offset))
    assert coord.status().completed_work_items == 40
    assert all(i.worker_id.startswith("b") for i in coord.list_work_items())


@pytest.mark.slow
def test_twenty_splits_at_once_leave_exactly_sixty_pending(target):
    open_coordinator(target, session="s", worker_id="creator").create_work_items(
        [{"work_item_id": f"idx__{n}__0"} for n in range(20)]
    )
    _run_pool(acquire_and_split, [(target, [f"w{p}-{k}" for k in range(5)]) for p in range(4)])
    coord = open_coordinator(target, session="s", worker_id="checker")
    assert len(coord.list_work_items(WorkItemStatus.PENDING)) == 60
    assert len(coord.list_work_items(WorkItemStatus.COMPLETED)) == 20
    assert coord.num_work_items_not_yet_complete() == 60


def hold_write_lock(lock_path, held, release):
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    held.set()
    release.wait(60)
    fcntl.flock(fd, fcntl.LOCK_UN)


def write_one_item(db_path, results):
    coord = SqliteCoordinator(db_path, session="s", worker_id="w", durability="normal")
    # One thread at NORMAL: the writer polls the lock before it sleeps on it (Store.SPIN).
    polls = threading.active_count() == 1 and coord.store._spin > 0
    # Under a frozen clock (freezegun stops perf_counter too) the polling must
    # still end and the writer sleep on the lock rather than burn a core.
    before = resource.getrusage(resource.RUSAGE_SELF)
    with freeze_time("2025-01-19 20:30:00"):
        created = coord.create_unassigned_work_item("x")
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    results.put((polls, created, cpu))


def test_a_polling_writer_still_waits_for_a_holder_in_another_process(db_path):
    SqliteCoordinator(db_path, session="s").store.ensure_schema()  # the schema exists
    held, release, results = CTX.Event(), CTX.Event(), CTX.Queue()
    holder = CTX.Process(target=hold_write_lock, args=(f"{db_path}.lock", held, release))
    holder.start()
    try:
        assert held.wait(30)
        writer = CTX.Process(target=write_one_item, args=(db_path, results))
        writer.start()
        writer.join(timeout=1.0)  # thousands of times the polling budget
        assert writer.is_alive(), "the writer did not wait for the lock"
        with sqlite3.connect(db_path) as conn:
            assert conn.execute("SELECT count(*) FROM work_items").fetchone() == (0,)
    finally:
        release.set()
        holder.join(timeout=30)
    polls, created, cpu_seconds = results.get(timeout=30)
    assert polls and created
    assert cpu_seconds < 0.5, f"the writer spent {cpu_seconds:.2f}s of CPU waiting over a second for the lock"
    writer.join(timeout=30)
    assert writer.exitcode == 0 and holder.exitcode == 0
