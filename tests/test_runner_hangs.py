"""The runner when coordinator calls hang or the store is down: deadlines kept, outcomes never dropped.

In-process and deterministic: a FakeClock measures the lease, and wrapper
coordinators block a call until the test lets it go (a frozen database or
server, as far as the runner can tell) or fail it as an unreachable store.
Nothing waits for a lease to lapse; the clock is moved. The same hangs with
real processes, real databases and SIGSTOP are in tests/test_freeze.py.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from proc_support import alive
from test_worker import BLOCKING_COMMAND, LEASE, Background, options, py, started_pids, wait_for

from litecoord import (
    CoordinatorUnreachableError,
    DatabaseUnavailableError,
    FakeClock,
    LeaseExpiredError,
    SqliteCoordinator,
    WorkItemStatus,
)
from litecoord.cli.runner import EXIT_ALL_DONE, Runner


@pytest.fixture
def coord(db_path: Path, clock: FakeClock) -> SqliteCoordinator:
    c = SqliteCoordinator(db_path, session="s", worker_id="w1", clock=clock)
    yield c
    c.close()


class HangingRenewals:
    """Renewals pass through until ``hang()``; then each one blocks until ``let_go(error)``."""

    def __init__(self, inner: SqliteCoordinator) -> None:
        self._inner = inner
        self._hanging = False
        self.entered = threading.Event()  # a renewal is blocked right now
        self._go = threading.Event()
        self._error: BaseException | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def hang(self) -> None:
        self._hanging = True

    def let_go(self, error: BaseException | None = None) -> None:
        self._error = error
        self._hanging = False
        self._go.set()

    def update_progress_and_renew_lease(self, *args: Any, **kwargs: Any) -> Any:
        if self._hanging:
            self.entered.set()
            self._go.wait(60)  # a bound against a broken test, far beyond what any assertion waits
            if self._error is not None:
                raise self._error
        return self._inner.update_progress_and_renew_lease(*args, **kwargs)


def test_a_renewal_that_hangs_cannot_keep_the_command_running_past_the_lease(
    coord: SqliteCoordinator, clock: FakeClock, tmp_path: Path
) -> None:
    coord.create_unassigned_work_item("a")
    frozen = HangingRenewals(coord)
    expiry = clock() + LEASE
    bg = Background(frozen, options(py(BLOCKING_COMMAND), env={"OUT": str(tmp_path)}), clock)
    pid, child = started_pids(tmp_path)
    frozen.hang()
    assert frozen.entered.wait(10), "no renewal was attempted"

    # The renewal never returns; half a second before the lease could lapse (inside
    # the margin, a tenth of the lease at most a second) the command must be gone anyway.
    clock.advance(LEASE - timedelta(milliseconds=500))
    wait_for(lambda: not alive(pid), "the command to be killed while the renewal still hangs", timeout=10)
    assert frozen.entered.is_set() and not frozen._go.is_set()  # still in flight
    item = coord.get_work_item("a")
    assert item.status is WorkItemStatus.ASSIGNED and item.lease_expiry == expiry > clock()  # killed first
    wait_for(lambda: any("lost the lease on a (epoch 1)" in line for line in bg.logs), "the loss to be logged")

    # The hung call comes back as if nothing happened: the item is still not run again on that lease.
    frozen.let_go()
    clock.advance(seconds=1)  # now the lease has lapsed; the next one is epoch 2
    result = bg.join()
    assert result.lost == ["a"] and result.completed == ["a"]
    assert sum("acquired a (epoch 1" in line for line in bg.logs) == 1
    assert any("acquired a (epoch 2" in line for line in bg.logs)
    wait_for(lambda: not alive(child), "the grandchild to die")


FINISH_ON_SIGNAL = """
import os, sys, time
out = os.environ["OUT"]
with open(os.path.join(out, "runs"), "a") as f:
    f.write(f"{os.environ['LITECOORD_LEASE_EPOCH']} {os.getpid()}\\n")
while not os.path.exists(os.path.join(out, "go")):
    time.sleep(0.01)
"""


def test_a_command_that_exited_0_while_its_renewal_hung_is_completed_not_rerun(
    coord: SqliteCoordinator, clock: FakeClock, tmp_path: Path
) -> None:
    coord.create_unassigned_work_item("a")
    frozen = HangingRenewals(coord)
    bg = Background(frozen, options(py(FINISH_ON_SIGNAL), env={"OUT": str(tmp_path)}), clock)
    pid = int(wait_for(lambda: (tmp_path / "runs").exists() and (tmp_path / "runs").read_text(), "a run").split()[1])
    frozen.hang()
    assert frozen.entered.wait(10), "no renewal was attempted"

    (tmp_path / "go").touch()  # the command finishes its work and exits 0 during the hang
    wait_for(lambda: not alive(pid), "the command to exit")
    clock.advance(LEASE + timedelta(seconds=1))  # the lease lapses meanwhile; nobody takes the item over
    frozen.let_go(LeaseExpiredError("the lease on a lapsed"))  # the renewal comes back 410 after the hang

    result = bg.join()
    assert result.completed == ["a"] and result.lost == [] and result.exit_code == EXIT_ALL_DONE
    runs = [line.split()[0] for line in (tmp_path / "runs").read_text().splitlines()]
    assert runs == ["1"]  # run once: the result was kept, not thrown away
    assert coord.get_work_item("a").status is WorkItemStatus.COMPLETED


class FailsWhileDown:
    """``fail_work_item`` meets an unreachable store ``times`` times; ``commits`` of those take effect anyway."""

    def __init__(self, inner: SqliteCoordinator, times: int, commits: int = 0) -> None:
        self._inner, self._times, self._commits = inner, times, commits
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def fail_work_item(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self._times:
            self._times -= 1
            if self._commits:
                self._commits -= 1
                self._inner.fail_work_item(*args, **kwargs)  # committed, but the answer was lost
            raise DatabaseUnavailableError("the connection to PostgreSQL was lost while committing")
        return self._inner.fail_work_item(*args, **kwargs)


@pytest.mark.parametrize("commits", [0, 1], ids=["lost-before-commit", "committed-answer-lost"])
def test_a_failure_that_could_not_be_recorded_is_retried_and_counted_once(
    coord: SqliteCoordinator, clock: FakeClock, commits: int
) -> None:
    coord.create_unassigned_work_item("a")
    down = FailsWhileDown(coord, times=3, commits=commits)
    result = Runner(down, options(py("import sys; sys.exit(7)"), wait=False), clock=clock).run()
    assert down.calls >= 2
    item = coord.get_work_item("a")
    assert item.failure_count == 1 and "exited with code 7" in (item.last_error or "")
    assert result.failed == ["a"] and result.unrecorded == []


class DownFor:
    """Every call fails as an unreachable server until ``failures`` acquires failed, each moving the clock."""

    def __init__(self, inner: SqliteCoordinator, clock: FakeClock, failures: int, step: timedelta) -> None:
        self._inner, self._clock, self._left, self._step = inner, clock, failures, step

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def acquire_next_work_item(self, *args: Any) -> Any:
        if self._left:
            self._left -= 1
            self._clock.advance(self._step)  # the outage goes on: 30 s pass between attempts
            raise CoordinatorUnreachableError("cannot reach http://127.0.0.1:1: connection refused")
        return self._inner.acquire_next_work_item(*args)


def test_a_long_outage_is_waited_out_with_a_line_once_in_a_while(coord: SqliteCoordinator, clock: FakeClock) -> None:
    coord.create_unassigned_work_item("a")
    down = DownFor(coord, clock, failures=8, step=timedelta(seconds=30))  # four minutes without a store
    logs: list[str] = []
    result = Runner(down, options(py("pass"), poll_interval=0.001), clock=clock, log=logs.append).run()
    assert result.exit_code == EXIT_ALL_DONE and result.completed == ["a"]  # not a crash after 60 s
    waiting = [line for line in logs if "acquire failed" in line or "still waiting for the store" in line]
    # One line when it starts (at 30 s), then one a minute (90, 150, 210 s), and one when it ends.
    assert len(waiting) == 4, waiting
    assert any("acquire works again after 210s (8 failed attempts)" in line for line in logs), logs
