"""The threads of one process write through one connection, one at a time.

SQLite drops a connection's page cache when it begins a transaction after
another connection wrote, so a server whose request threads each wrote
through their own connection read every write's pages again. The store now
gives the threads of a process one write connection, used only under the
flock; reads keep a connection per thread. These tests pin what that must
keep: one connection, never two transactions on it at once, every write
committed, close() and fork() handled.
"""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from litecoord import SqliteCoordinator
from litecoord.backends.sqlite.store import Durability, Store


@pytest.fixture(params=Durability.ALL)
def store(db_path: Path, request: pytest.FixtureRequest) -> Iterator[Store]:
    store = Store(db_path, durability=request.param)
    store.write(lambda conn: conn.execute("CREATE TABLE t (k TEXT PRIMARY KEY, thread TEXT)"))
    yield store
    store.close()


def _write_from_threads(store: Store, threads: int, each: int, prefix: str = "") -> tuple[set[int], int]:
    """Each thread inserts ``each`` rows; returns the connections the writes ran on and the most in one at once."""
    seen: set[int] = set()
    inside = {"now": 0, "most": 0}
    guard = threading.Lock()
    start = threading.Barrier(threads)

    def insert(key: str):
        def fn(conn: sqlite3.Connection) -> None:
            with guard:
                seen.add(id(conn))
                inside["now"] += 1
                inside["most"] = max(inside["most"], inside["now"])
            try:
                conn.execute("INSERT INTO t (k, thread) VALUES (?, ?)", (key, threading.current_thread().name))
            finally:
                with guard:
                    inside["now"] -= 1

        return fn

    def run(t: int) -> None:
        start.wait()
        for i in range(each):
            store.write(insert(f"{prefix}{t}-{i}"))

    workers = [threading.Thread(target=run, args=(t,), name=f"w{t}") for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return seen, inside["most"]


def test_the_threads_of_a_process_write_through_one_connection_one_at_a_time(store: Store) -> None:
    seen, most = _write_from_threads(store, threads=6, each=50)
    assert len(seen) == 1  # one write connection, whichever thread wrote
    assert most == 1  # never two writes in it at once
    assert store.read(lambda conn: conn.execute("SELECT count(*) FROM t").fetchone()[0]) == 300
    # Reads keep a connection of their own per thread (they run side by side).
    assert store.read(lambda conn: id(conn)) not in seen


def test_close_closes_the_write_connection_and_a_later_write_opens_another(store: Store) -> None:
    _write_from_threads(store, threads=2, each=5)
    writer = store._writer
    assert writer is not None
    store.close()
    assert store._writer is None
    with pytest.raises(sqlite3.ProgrammingError):
        writer.execute("SELECT 1")  # closed
    _write_from_threads(store, threads=2, each=5, prefix="again-")
    assert store._writer is not None and store._writer is not writer
    assert store.read(lambda conn: conn.execute("SELECT count(*) FROM t").fetchone()[0]) == 20


def test_close_does_not_wait_for_a_write_lock_held_elsewhere(store: Store) -> None:
    # Another process holding the write lock (or stopped while holding it) must not hang close():
    # the write connection is then left open, and closed by a later close().
    import fcntl
    import os
    import time

    _write_from_threads(store, threads=2, each=3)
    writer = store._writer
    fd = os.open(store.path + ".lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        started = time.monotonic()
        store.close()
        assert time.monotonic() - started < 1.0
        assert store._writer is writer  # left open: a write may be running through it
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    store.close()
    assert store._writer is None
    with pytest.raises(sqlite3.ProgrammingError):
        writer.execute("SELECT 1")


def _child_writes(path: str, out: mp.Queue) -> None:
    store = _STORE
    parent = store._writer
    seen, most = _write_from_threads(store, threads=3, each=10, prefix="child-")
    out.put((len(seen), most, store._writer is not parent and store._writer is not None))


_STORE: Store | None = None


def test_a_forked_child_never_writes_through_its_parents_connection(db_path: Path) -> None:
    global _STORE
    store = _STORE = Store(db_path)
    store.write(lambda conn: conn.execute("CREATE TABLE t (k TEXT PRIMARY KEY, thread TEXT)"))
    _write_from_threads(store, threads=2, each=5)  # the parent has a write connection
    assert store._writer is not None
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    child = ctx.Process(target=_child_writes, args=(str(db_path), out))
    child.start()
    result = out.get(timeout=60)
    child.join(timeout=60)
    assert child.exitcode == 0
    assert result == (1, 1, True)
    _write_from_threads(store, threads=2, each=5, prefix="after-")  # the parent's own still works
    assert store.read(lambda conn: conn.execute("SELECT count(*) FROM t").fetchone()[0]) == 50
    store.close()


def test_a_server_s_leases_stay_exclusive_through_the_shared_connection(db_path: Path) -> None:
    # The real writes (acquire, renew, complete) from many threads: each item leased once at a time,
    # all completed, none lost, as with a connection per thread.
    root = SqliteCoordinator(db_path, durability="normal")
    root.bind(session="s").create_work_items([{"work_item_id": f"logs__{i}__0"} for i in range(200)])
    done: list[str] = []
    errors: list[BaseException] = []

    def worker(w: int) -> None:
        coord = root.bind(session="s", worker_id=f"w{w}")
        try:
            while True:
                lease = coord.acquire_next_work_item()
                if not hasattr(lease, "work_item"):
                    return
                item = lease.work_item.work_item_id
                coord.update_progress_and_renew_lease(item, 1, 1)
                coord.complete_work_item(item)
                done.append(item)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(done) == sorted(f"logs__{i}__0" for i in range(200))  # each exactly once
    assert root.bind(session="s").status().completed_work_items == 200
    root.close()
