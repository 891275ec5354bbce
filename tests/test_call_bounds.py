"""Every coordinator call is bounded: a store that hangs makes a call fail as unreachable, never wait.

Real hangs: a PostgreSQL backend process stopped with SIGSTOP (over the test
server's Unix socket, where TCP gives no signal), and a TCP server that
accepts connections but never answers. Each call runs under
``bounds.call_bound`` (what the runner passes: what is left of a lease) in a
thread the test can give up on, so a call that ignores its bound fails the
test instead of hanging it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from litecoord import CoordinatorUnreachableError, DatabaseUnavailableError, HttpCoordinator, SqliteCoordinator
from litecoord.backends.bounds import call_bound, time_left

#: The bound given to the call, and how long the test waits for it at most (a hang guard, not a timing check).
BOUND = 1.0
GIVE_UP = 20.0


def outcome_within(fn: Callable[[], Any], bound: float, pool: ThreadPoolExecutor | None = None) -> Any:
    """``fn()`` under ``call_bound(bound)`` on a thread of ``pool`` (default: a new one): its result or exception.

    Fails if the call is still running long after its bound.
    """

    def run() -> Any:
        try:
            with call_bound(bound):
                return fn()
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            return exc

    own = pool is None
    pool = pool or ThreadPoolExecutor(1)
    try:
        return pool.submit(run).result(timeout=GIVE_UP)
    except FutureTimeout:
        raise AssertionError(f"the call ignored its {bound:g}s bound (still running after {GIVE_UP:g}s)") from None
    finally:
        if own:
            pool.shutdown(wait=False)


def test_bounds_only_tighten() -> None:
    assert time_left() is None and time_left(5.0) == 5.0
    with call_bound(10.0):
        with call_bound(100.0):  # cannot extend the outer bound
            assert time_left() <= 10.0
        with call_bound(0.5):
            assert time_left() <= 0.5
        with call_bound(None):
            assert 0.5 < time_left() <= 10.0


@pytest.fixture
def pg() -> Iterator[Any]:
    from pg_support import fresh_schema

    from litecoord import PostgresCoordinator

    with fresh_schema() as dsn:
        coord = PostgresCoordinator(f"{dsn}&application_name=lc-bounds", session="s", worker_id="w1")
        try:
            yield coord
        finally:
            coord.close()


def backends(application_name: str) -> list[int]:
    import psycopg
    from pg_support import admin_dsn

    with psycopg.connect(admin_dsn(), autocommit=True) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", (application_name,))
        return [pid for (pid,) in rows.fetchall()]


def test_a_call_to_a_frozen_postgresql_backend_runs_out_as_unavailable(pg: Any) -> None:
    worker = ThreadPoolExecutor(1)  # connections are per thread: every call of this test uses this one's
    worker.submit(pg.create_unassigned_work_item, "a").result()
    epoch = worker.submit(pg.acquire_next_work_item, timedelta(seconds=30)).result().lease_epoch
    frozen = backends("lc-bounds")
    assert len(frozen) == 1
    os.kill(frozen[0], signal.SIGSTOP)
    try:
        outcome = outcome_within(lambda: pg.update_progress_and_renew_lease("a", lease_epoch=epoch), BOUND, worker)
    finally:
        os.kill(frozen[0], signal.SIGCONT)
    assert isinstance(outcome, DatabaseUnavailableError), outcome  # unreachable, never a success
    # The cut-off connection is not used again: the next call opens another and works.
    renewed = worker.submit(pg.update_progress_and_renew_lease, "a", lease_epoch=epoch).result(timeout=GIVE_UP)
    assert renewed.work_item_id == "a"
    assert frozen[0] not in backends("lc-bounds")
    worker.shutdown()


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A URL whose server accepts TCP connections (the kernel's backlog) and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()


def test_an_http_call_to_a_server_that_never_answers_runs_out_as_unreachable(silent_server: str) -> None:
    coord = HttpCoordinator(silent_server, session="s", worker_id="w1", retries=3)
    outcome = outcome_within(lambda: coord.update_progress_and_renew_lease("a", lease_epoch=1), BOUND)
    assert isinstance(outcome, CoordinatorUnreachableError), outcome


@pytest.mark.slow  # a real `litecoord serve` beside the test
def test_failover_from_a_server_that_hangs_fits_in_the_bound(silent_server: str, tmp_path: Path) -> None:
    """The first server hangs and gets half of the bound; the second answers within the rest."""
    db = str(tmp_path / "c.db")
    with SqliteCoordinator(db, session="s", worker_id="admin") as admin:
        admin.create_unassigned_work_item("a")
    proc = subprocess.Popen(
        [sys.executable, "-m", "litecoord.cli", "serve", "--db", db, "--port", "0", "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()  # "litecoord: serving ... on http://127.0.0.1:PORT (auth: none)"
        assert " on http://" in line, line
        live = line.split(" on ", 1)[1].split()[0]
        coord = HttpCoordinator([silent_server, live], session="s", worker_id="w1")
        outcome = outcome_within(lambda: coord.acquire_next_work_item(timedelta(seconds=30)), 2 * BOUND)
        assert not isinstance(outcome, BaseException), outcome
        assert outcome.work_item_id == "a" and coord.base_url == live
    finally:
        proc.kill()
        proc.wait()
