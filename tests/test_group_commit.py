"""Group commit: the writes of one process's threads that queue up share a transaction.

Each test builds its group deterministically: the test holds the flock on
``<db>.lock`` itself, so the first writer (the leader) waits on it while the
next writers queue up behind; releasing the flock lets the leader commit
alone, and the oldest queued writer then leads the rest as one group.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from litecoord import LitecoordError
from litecoord.backends.sqlite import store as store_module
from litecoord.backends.sqlite.store import Durability, Store


class Interrupt(BaseException):
    """Stands for KeyboardInterrupt (which pytest would take for itself)."""


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.001)


@contextmanager
def held_flock(path: str) -> Iterator[None]:
    fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def insert(key: str) -> Callable[[sqlite3.Connection], str]:
    def fn(conn: sqlite3.Connection) -> str:
        conn.execute("INSERT INTO t (k) VALUES (?)", (key,))
        return key

    return fn


def insert_then_raise(key: str, error: BaseException) -> Callable[[sqlite3.Connection], Any]:
    def fn(conn: sqlite3.Connection) -> Any:
        conn.execute("INSERT INTO t (k) VALUES (?)", (key,))
        raise error

    return fn


class Writers:
    """Threads calling ``store.write``; what each got back, and whether its row was visible on return."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.threads: dict[str, threading.Thread] = {}
        self.results: dict[str, Any] = {}
        self.visible: dict[str, bool] = {}

    def start(self, name: str, fn: Callable[[sqlite3.Connection], Any]) -> None:
        def body() -> None:
            try:
                self.results[name] = self.store.write(fn)
            except BaseException as exc:  # noqa: B036 - the test inspects it
                self.results[name] = exc
            # A fresh connection sees only what is committed.
            reader = sqlite3.connect(self.store.path)
            self.visible[name] = reader.execute("SELECT 1 FROM t WHERE k = ?", (name,)).fetchone() is not None
            reader.close()

        self.threads[name] = threading.Thread(target=body, name=name)
        self.threads[name].start()

    def join(self) -> None:
        for thread in self.threads.values():
            thread.join(timeout=30)
            assert not thread.is_alive(), f"{thread.name} still waits"


@pytest.fixture
def store(db_path) -> Iterator[Store]:
    store = Store(db_path)
    store.write(lambda conn: conn.execute("CREATE TABLE t (k TEXT PRIMARY KEY)"))
    yield store
    store.close()


@pytest.fixture
def groups(monkeypatch) -> list[list[str]]:
    """The groups committed, each as the names of its writers' threads."""
    seen: list[list[str]] = []
    commit_group = Store._commit_group

    def recording(self: Store, group: list) -> None:
        seen.append([threading.current_thread().name] + [""] * (len(group) - 1))
        commit_group(self, group)

    monkeypatch.setattr(Store, "_commit_group", recording)
    return seen


def queue_behind_a_leader(store: Store, writers: Writers, leader: tuple, followers: list[tuple]) -> None:
    """Start the leader (it waits on the test's flock), then the followers in order, queued behind it."""
    writers.start(*leader)
    wait_until(lambda: store._leader and not store._queue, "the leader to take its group")
    for count, follower in enumerate(followers, 1):
        writers.start(*follower)
        wait_until(lambda count=count: len(store._queue) == count, f"{count} queued writes")


def rows(store: Store) -> set[str]:
    return {k for (k,) in store.read(lambda conn: conn.execute("SELECT k FROM t").fetchall())}


def test_writes_queued_behind_a_running_one_share_one_commit(store, groups):
    writers = Writers(store)
    with held_flock(store.path):
        queue_behind_a_leader(store, writers, ("x", insert("x")), [("a", insert("a")), ("b", insert("b"))])
    writers.join()
    assert [len(group) for group in groups] == [1, 2]
    assert groups[1][0] == "a"  # the oldest queued write leads the next group
    assert writers.results == {"x": "x", "a": "a", "b": "b"}
    # Nobody got an answer before the commit that holds its write.
    assert writers.visible == {"x": True, "a": True, "b": True}
    assert rows(store) == {"x", "a", "b"}


def test_a_failing_write_rolls_back_alone_and_its_error_reaches_only_its_caller(store, groups):
    writers = Writers(store)
    broken = ValueError("bad input")
    with held_flock(store.path):
        queue_behind_a_leader(
            store,
            writers,
            ("x", insert("x")),
            [
                ("a", insert("a")),
                ("bad", insert_then_raise("bad", broken)),
                ("sql", lambda conn: conn.execute("INSERT INTO no_such_table VALUES (1)")),
                ("b", insert("b")),
            ],
        )
    writers.join()
    assert [len(group) for group in groups] == [1, 4]
    assert writers.results["bad"] is broken
    # A driver error becomes a LitecoordError, as it does outside a group.
    assert isinstance(writers.results["sql"], LitecoordError)
    assert "no_such_table" in str(writers.results["sql"])
    assert (writers.results["x"], writers.results["a"], writers.results["b"]) == ("x", "a", "b")
    assert rows(store) == {"x", "a", "b"}


def test_an_interrupted_group_is_rolled_back_and_the_others_run_again(store, groups):
    writers = Writers(store)
    with held_flock(store.path):
        queue_behind_a_leader(
            store,
            writers,
            ("x", insert("x")),
            [("stop", insert_then_raise("stop", Interrupt())), ("a", insert("a")), ("b", insert("b"))],
        )
    writers.join()
    # The interrupted leader's group ran nothing to the end; the oldest of the rest led them again.
    assert [len(group) for group in groups] == [1, 3, 2]
    assert groups[2][0] == "a"
    assert isinstance(writers.results["stop"], Interrupt)
    assert (writers.results["a"], writers.results["b"]) == ("a", "b")
    assert rows(store) == {"x", "a", "b"}


def test_a_group_that_finds_the_file_busy_waits_and_commits_every_write_once(store, groups):
    writers = Writers(store)
    blocker = sqlite3.connect(store.path, isolation_level=None, check_same_thread=False)
    with held_flock(store.path):
        queue_behind_a_leader(store, writers, ("x", insert("x")), [("a", insert("a")), ("b", insert("b"))])
        # A writer that ignores the flock holds the file: the group's BEGIN IMMEDIATE meets SQLITE_BUSY.
        blocker.execute("BEGIN IMMEDIATE")
    released = threading.Timer(1.5, lambda: blocker.execute("ROLLBACK"))
    released.start()
    try:
        writers.join()
    finally:
        released.join()
        blocker.close()
    assert writers.results == {"x": "x", "a": "a", "b": "b"}
    assert rows(store) == {"x", "a", "b"}  # a retried group inserted nothing twice (the key is unique)


def test_normal_durability_commits_each_write_alone(db_path, groups):
    # At NORMAL a commit costs no fsync, and a group would only idle the other
    # threads while its leader runs everyone's SQL.
    store = Store(db_path, durability=Durability.NORMAL)
    store.write(lambda conn: conn.execute("CREATE TABLE t (k TEXT PRIMARY KEY)"))
    writers = Writers(store)
    with held_flock(store.path):
        writers.start("x", insert("x"))
        writers.start("a", insert("a"))
        wait_until(lambda: all(t.is_alive() for t in writers.threads.values()), "both writers")
    writers.join()
    assert groups == []
    assert not store._queue
    assert rows(store) == {"x", "a"}
    store.close()


class InterruptedWake:
    """A write's wake-up whose waiter gets Interrupt: when ``go`` is set, or once it is woken."""

    def __init__(self, when_woken: bool) -> None:
        self.lock = threading.Lock()
        self.lock.acquire()
        self.go = threading.Event()
        self.when_woken = when_woken

    def acquire(self, blocking: bool = True) -> bool:
        if not blocking:
            return self.lock.acquire(blocking=False)
        if self.when_woken:
            self.lock.acquire()  # woken to lead, and interrupted right then
        else:
            self.go.wait(timeout=30)  # interrupted while still queued
        raise Interrupt()

    def release(self) -> None:
        self.lock.release()


def interruptible(monkeypatch, key: str, wake: InterruptedWake) -> None:
    """Writes of ``key`` wait on ``wake`` instead of their own lock."""
    make = store_module._Write

    def write_for(fn):
        write = make(fn)
        if getattr(fn, "key", None) == key:
            write.wake = wake
        return write

    monkeypatch.setattr(store_module, "_Write", write_for)


def tagged(key: str) -> Callable[[sqlite3.Connection], str]:
    fn = insert(key)
    fn.key = key  # type: ignore[attr-defined]
    return fn


@pytest.mark.parametrize("when_woken", [False, True], ids=["while-queued", "as-it-is-handed-the-lead"])
def test_a_caller_interrupted_while_waiting_neither_runs_its_write_later_nor_stalls_the_rest(
    store, groups, monkeypatch, when_woken
):
    wake = InterruptedWake(when_woken)
    interruptible(monkeypatch, "a", wake)
    writers = Writers(store)
    with held_flock(store.path):
        queue_behind_a_leader(store, writers, ("x", insert("x")), [("a", tagged("a")), ("b", insert("b"))])
        if not when_woken:
            wake.go.set()
            writers.threads["a"].join(timeout=30)
    writers.join()  # without the hand-over, b would wait for a lead that never comes
    assert isinstance(writers.results["a"], Interrupt)
    assert writers.results["b"] == "b"
    assert [len(group) for group in groups] == [1, 1]
    assert groups[1][0] == "b"
    assert rows(store) == {"x", "b"}  # a's write was taken back before any group ran it
