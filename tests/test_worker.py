"""The worker runner (litecoord.cli.runner), driven in-process with real commands.

Commands are tiny ``python -c`` scripts. Leases never run out by waiting:
a FakeClock stands still, and a lease is taken away by moving a *second*
coordinator's clock (another machine whose clock is ahead) or by the epoch
fence. Heartbeats are real-time (a few milliseconds apart) so renewals happen
promptly; no test asserts how long anything took.
"""

from __future__ import annotations

import io
import json
import signal
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from proc_support import alive

from litecoord import DatabaseBusyError, FakeClock, SqliteCoordinator, ValidationError, WorkItemStatus
from litecoord.cli.runner import (
    EXIT_ALL_DONE,
    EXIT_ALL_LEASED,
    EXIT_ERROR,
    EXIT_FAILED_REMAIN,
    EXIT_INTERRUPTED,
    EXIT_SESSION_NOT_FOUND,
    Runner,
    RunnerOptions,
    RunResult,
    combine_exit_codes,
    parse_progress,
)
from litecoord.types import format_time

LEASE = timedelta(seconds=30)


def py(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    """Poll until ``predicate()`` is truthy (a deadline against hangs, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


class Background:
    """A runner in a thread, with its log lines and output captured."""

    def __init__(self, coord: Any, options: RunnerOptions, clock: Any) -> None:
        self.logs: list[str] = []
        self.stdout = io.BytesIO()
        self.stderr = io.BytesIO()
        self.runner = Runner(coord, options, clock=clock, log=self.logs.append, stdout=self.stdout, stderr=self.stderr)
        self.result: RunResult | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.result = self.runner.run()

    def join(self, timeout: float = 30.0) -> RunResult:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "runner did not finish"
        assert self.result is not None
        return self.result


@pytest.fixture
def coord(db_path: Path, clock: FakeClock) -> SqliteCoordinator:
    c = SqliteCoordinator(db_path, session="s", worker_id="w1", clock=clock)
    yield c
    c.close()


def options(command: list[str], **kwargs: Any) -> RunnerOptions:
    kwargs.setdefault("lease_duration", LEASE)
    kwargs.setdefault("poll_interval", 0.02)
    kwargs.setdefault("heartbeat", 0.02)
    return RunnerOptions(command=command, **kwargs)


def other(db_path: Path, worker_id: str, clock: Any) -> SqliteCoordinator:
    return SqliteCoordinator(db_path, session="s", worker_id=worker_id, clock=clock)


# -- running items ---------------------------------------------------------------


def test_runs_every_item_with_its_environment_and_completes_it(
    coord: SqliteCoordinator, clock: FakeClock, tmp_path: Path
) -> None:
    coord.create_work_item_with_metadata("logs__0__0", "logs", 0, 1000, 4096)
    coord.create_work_item_with_metadata("logs__1__0", "logs", 1, None, None)
    command = py(
        """
        import json, os
        env = {k: v for k, v in os.environ.items() if k.startswith("LITECOORD_")}
        with open(os.path.join(os.environ["OUT"], env["LITECOORD_WORK_ITEM_ID"] + ".json"), "w") as f:
            json.dump(env, f)
        """
    )
    result = Runner(coord, options(command, env={"OUT": str(tmp_path)}), clock=clock).run()

    assert result.exit_code == EXIT_ALL_DONE
    assert sorted(result.completed) == ["logs__0__0", "logs__1__0"]
    assert coord.num_work_items_not_yet_complete() == 0
    env = json.loads((tmp_path / "logs__0__0.json").read_text())
    assert env["LITECOORD_INDEX_NAME"] == "logs"
    assert env["LITECOORD_SHARD_NUMBER"] == "0"
    assert env["LITECOORD_DOCUMENT_COUNT"] == "1000"
    assert env["LITECOORD_TOTAL_SIZE_BYTES"] == "4096"
    assert env["LITECOORD_DOCUMENTS_PROCESSED"] == "0"
    assert env["LITECOORD_BYTES_PROCESSED"] == "0"
    assert env["LITECOORD_LEASE_EPOCH"] == "1"
    assert env["LITECOORD_ATTEMPT"] == "1"
    assert env["LITECOORD_LEASE_SECONDS"] == "30"
    assert env["LITECOORD_LEASE_EXPIRY"] == format_time(clock() + LEASE)
    assert env["LITECOORD_SESSION"] == "s"
    assert env["LITECOORD_WORKER_ID"] == "w1"
    assert env["LITECOORD_PROGRESS_FD"].isdigit()
    unknown = json.loads((tmp_path / "logs__1__0.json").read_text())
    assert unknown["LITECOORD_DOCUMENT_COUNT"] == "" and unknown["LITECOORD_SHARD_NUMBER"] == "1"


def test_an_existing_empty_session_means_all_work_done(coord: SqliteCoordinator, clock: FakeClock) -> None:
    coord.setup()  # the file and the session exist (a missing file is NotALitecoordFileError)
    result = Runner(coord, options(py("raise SystemExit(9)")), clock=clock).run()
    assert (result.exit_code, result.completed, result.failed) == (EXIT_ALL_DONE, [], [])


def test_an_unknown_session_is_not_all_work_done(coord: SqliteCoordinator, clock: FakeClock) -> None:
    coord.create_unassigned_work_item("a")
    typo = coord.bind(session="typo")
    result = Runner(typo, options(py("raise SystemExit(0)")), clock=clock).run()
    assert (result.exit_code, result.completed) == (EXIT_SESSION_NOT_FOUND, [])
    assert "typo" in result.reason and "not found" in result.reason
    assert [s.session_name for s in coord.list_sessions()] == ["s"]


def test_progress_from_stdout_and_fd_is_recorded_and_progress_lines_are_not_echoed(
    coord: SqliteCoordinator, clock: FakeClock
) -> None:
    coord.create_unassigned_work_item("a")  # no counts: completion keeps the reported figures
    command = py(
        """
        import os
        print("hello", flush=True)
        print("LITECOORD-PROGRESS docs=10", flush=True)
        os.write(int(os.environ["LITECOORD_PROGRESS_FD"]), b"bytes=20\\n")
        print("bye", flush=True)
        """
    )
    logs: list[str] = []
    out = io.BytesIO()
    result = Runner(coord, options(command), clock=clock, log=logs.append, stdout=out).run()

    assert result.completed == ["a"]
    item = coord.get_work_item("a")
    assert (item.documents_processed, item.bytes_processed) == (10, 20)
    assert out.getvalue() == b"hello\nbye\n"
    assert "w1: completed a (epoch 1)" in logs


def test_the_completion_records_what_the_command_last_reported_so_a_short_run_is_audited(
    coord: SqliteCoordinator, clock: FakeClock
) -> None:
    coord.create_work_item_with_metadata("logs__0__0", "logs", 0, 1000, 10_000)
    coord.create_work_item_with_metadata("logs__1__0", "logs", 1, 500, 5_000)
    # It reports its position as it goes and exits 0 having done only 600 of its 1,000 documents
    # on one shard; the whole 500 on the other, reporting every position it reached.
    command = py(
        """
        import os
        last = 600 if os.environ["LITECOORD_WORK_ITEM_ID"] == "logs__0__0" else 500
        for docs in range(100, last + 1, 100):
            print(f"LITECOORD-PROGRESS docs={docs}", flush=True)
        """
    )
    result = Runner(coord, options(command), clock=clock, log=lambda line: None).run()
    assert sorted(result.completed) == ["logs__0__0", "logs__1__0"]
    short = coord.get_work_item("logs__0__0")
    assert (short.documents_processed, short.bytes_processed) == (600, 10_000)  # bytes never reported: in full
    report = coord.verify_coverage()
    shards = {s.shard_number: s for s in report.shards}
    assert not report.ok and shards[0].short == ("logs__0__0",) and shards[0].gaps == ((600, 1000),)
    assert shards[1].verdict == "ok"


def test_a_command_that_reports_nothing_completes_its_item_in_full_even_after_an_earlier_holders_progress(
    coord: SqliteCoordinator, clock: FakeClock
) -> None:
    coord.create_work_item_with_metadata("logs__0__0", "logs", 0, 1000, 10_000)
    earlier = coord.acquire_next_work_item()
    coord.update_progress_and_renew_lease("logs__0__0", 400, 4_000, lease_epoch=earlier.lease_epoch)
    coord.release_work_item("logs__0__0")
    result = Runner(coord, options(py("pass")), clock=clock, log=lambda line: None).run()
    assert result.completed == ["logs__0__0"]
    item = coord.get_work_item("logs__0__0")
    assert (item.documents_processed, item.bytes_processed) == (1000, 10_000)
    assert coord.verify_coverage().ok


def test_heartbeats_carry_progress_while_the_command_runs(
    db_path: Path, coord: SqliteCoordinator, clock: FakeClock, tmp_path: Path
) -> None:
    coord.create_work_item_with_metadata("a", "i", 0, 100, 1000)
    go = tmp_path / "go"
    command = py(
        f"""
        import os, time
        print("LITECOORD-PROGRESS docs=42 bytes=420", flush=True)
        while not os.path.exists({str(go)!r}):
            time.sleep(0.01)
        """
    )
    bg = Background(coord, options(command), clock)
    watcher = other(db_path, "watcher", clock)
    item = wait_for(lambda: (i := watcher.get_work_item("a")).documents_processed == 42 and i, "progress")
    assert item.status is WorkItemStatus.ASSIGNED and item.bytes_processed == 420
    assert item.last_heartbeat is not None
    go.touch()
    assert bg.join().completed == ["a"]
    assert watcher.status().completed_work_items == 1


def test_a_failing_command_fails_the_item_with_exit_code_and_last_lines(
    coord: SqliteCoordinator, clock: FakeClock
) -> None:
    coord.setup(max_attempts=2, retry_delay=0)  # no backoff: the second attempt follows at once
    coord.create_unassigned_work_item("a")
    command = py(
        """
        import sys
        for n in range(5):
            print(f"line {n}", flush=True)
        print("disk full", file=sys.stderr, flush=True)
        sys.exit(3)
        """
    )
    result = Runner(coord, options(command, tail_lines=2), clock=clock).run()

    assert result.exit_code == EXIT_FAILED_REMAIN
    assert result.failed == ["a", "a"]  # two attempts, then parked
    item = coord.get_work_item("a")
    assert item.status is WorkItemStatus.FAILED and item.failure_count == 2
    assert item.last_error == "command exited with code 3\nstdout:\nline 3\nline 4\nstderr:\ndisk full"


def test_the_runner_waits_out_the_retry_delay_before_the_next_attempt(
    db_path: Path, coord: SqliteCoordinator, clock: FakeClock
) -> None:
    coord.setup(retry_delay=30)
    coord.create_unassigned_work_item("a")
    # Fails its first attempt, succeeds on the second.
    command = py('import os, sys; sys.exit(0 if os.environ["LITECOORD_ATTEMPT"] == "2" else 4)')
    bg = Background(coord, options(command), clock)
    watcher = other(db_path, "watcher", clock)
    failed = wait_for(lambda: (i := watcher.get_work_item("a")).failure_count == 1 and i, "the first failure")
    assert 15 <= (failed.next_attempt_at - clock()).total_seconds() <= 30
    wait_for(lambda: any("waiting out a retry delay" in line for line in bg.logs), "the runner to wait")
    assert watcher.get_work_item("a").lease_epoch == 1  # polled, but not handed out again
    clock.advance(seconds=30)
    result = bg.join()
    assert result.completed == ["a"] and result.failed == ["a"]
    assert watcher.get_work_item("a").attempts == 2


def test_a_command_killed_by_a_signal_is_reported_by_name(coord: SqliteCoordinator, clock: FakeClock) -> None:
    coord.setup(max_attempts=1)
    coord.create_unassigned_work_item("a")
    result = Runner(coord, options(py("import os; os.kill(os.getpid(), 9)")), clock=clock).run()
    assert result.exit_code == EXIT_FAILED_REMAIN
    assert coord.get_work_item("a").last_error == "command was killed by SIGKILL"


def test_a_command_that_cannot_start_releases_the_item_without_spending_an_attempt(
    coord: SqliteCoordinator, clock: FakeClock
) -> None:
    coord.create_unassigned_work_item("a")
    result = Runner(coord, options(["/nonexistent/litecoord-test-command"]), clock=clock).run()
    assert result.exit_code == EXIT_ERROR
    assert "cannot run '/nonexistent/litecoord-test-command'" in result.reason
    item = coord.get_work_item("a")
    assert (item.status, item.worker_id, item.failure_count) == (WorkItemStatus.PENDING, None, 0)


# -- losing the lease ----------------------------------------------------------------

BLOCKING_COMMAND = """
import os, subprocess, sys, time
out = os.environ["OUT"]
if os.environ["LITECOORD_LEASE_EPOCH"] != "1":
    sys.exit(0)  # a later lease of the same item just finishes
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
with open(os.path.join(out, "pids.tmp"), "w") as f:
    f.write(f"{os.getpid()} {child.pid}")
os.rename(os.path.join(out, "pids.tmp"), os.path.join(out, "pids"))  # never seen half-written
time.sleep(120)
open(os.path.join(out, "finished"), "w").close()
"""


def started_pids(tmp_path: Path) -> tuple[int, int]:
    text = wait_for(lambda: (tmp_path / "pids").exists() and (tmp_path / "pids").read_text(), "the command")
    pid, child = map(int, text.split())
    return pid, child


def test_losing_the_lease_to_another_worker_kills_the_command_and_its_children(
    db_path: Path, coord: SqliteCoordinator, clock: FakeClock, tmp_path: Path
) -> None:
    coord.create_unassigned_work_item("a")
    bg = Background(coord, options(py(BLOCKING_COMMAND), wait=False, env={"OUT": str(tmp_path)}), clock)
    pid, child = started_pids(tmp_path)

    # Another machine whose clock is past our lease takes the item over.
    ahead = FakeClock(clock() + LEASE + timedelta(seconds=1))
    thief = other(db_path, "w2", ahead)
    lease = thief.acquire_next_work_item(LEASE)
    assert lease.work_item_id == "a" and lease.lease_epoch == 2

    result = bg.join()
    assert result.lost == ["a"]
    assert result.exit_code == EXIT_ALL_LEASED  # the item is w2's now
    assert not alive(pid)  # the runner reaped it
    wait_for(lambda: not alive(child), "the grandchild to die")  # killed with the group; exits asynchronously
    assert not (tmp_path / "finished").exists()
    item = thief.get_work_item("a")
    assert (item.worker_id, item.lease_epoch, item.status) == ("w2", 2, WorkItemStatus.ASSIGNED)
    assert any("lost the lease on a (epoch 1)" in line for line in bg.logs)


def test_the_epoch_fence_stops_a_stale_lease_held_under_the_same_worker_id(
    db_path: Path, coord: SqliteCoordinator, clock: FakeClock, tmp_path: Path
) -> None:
    coord.create_unassigned_work_item("a")
    bg = Background(coord, options(py(BLOCKING_COMMAND), env={"OUT": str(tmp_path)}), clock)
    pid, child = started_pids(tmp_path)

    # The same worker id re-acquires the item (a restarted worker, or a duplicate):
    # only the epoch tells the old lease from the new one.
    twin = other(db_path, "w1", FakeClock(clock() + LEASE + timedelta(seconds=1)))
    assert twin.acquire_next_work_item(LEASE).lease_epoch == 2

    result = bg.join()
    assert result.lost == ["a"]
    assert not alive(pid)  # the runner reaped it
    wait_for(lambda: not alive(child), "the grandchild to die")  # killed with the group; exits asynchronously
    # The worker id holds epoch 2 now, so the loop picks that lease up and finishes it.
    assert result.completed == ["a"] and result.exit_code == EXIT_ALL_DONE


class FlakyRenewals:
    """A coordinator whose renewals always fail as if the store were locked."""

    def __init__(self, inner: SqliteCoordinator) -> None:
        self._inner = inner
        self.renewals = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def update_progress_and_renew_lease(self, *args: Any, **kwargs: Any) -> Any:
        self.renewals += 1
        raise DatabaseBusyError("locked")


def test_a_lease_that_runs_out_without_a_successful_renewal_kills_the_command(
    coord: SqliteCoordinator, clock: FakeClock, tmp_path: Path
) -> None:
    coord.create_unassigned_work_item("a")
    flaky = FlakyRenewals(coord)
    bg = Background(flaky, options(py(BLOCKING_COMMAND), env={"OUT": str(tmp_path)}), clock)
    pid, child = started_pids(tmp_path)
    wait_for(lambda: flaky.renewals >= 2, "failed renewals")
    assert alive(pid)  # a failed renewal alone is retried, not fatal
    clock.advance(LEASE)

    result = bg.join()
    assert result.lost == ["a"]
    assert not alive(pid)  # the runner reaped it
    wait_for(lambda: not alive(child), "the grandchild to die")  # killed with the group; exits asynchronously
    assert any("no renewal succeeded within the lease (30s)" in line for line in bg.logs)
    assert result.completed == ["a"]  # re-acquired after the lapse (epoch 2) and finished


# -- waiting, stopping, recovering -------------------------------------------------------


def test_a_stop_request_terminates_the_command_and_releases_the_item_with_its_progress(
    coord: SqliteCoordinator, clock: FakeClock, tmp_path: Path
) -> None:
    coord.create_work_item_with_metadata("a", "i", 0, 100, None)
    command = py(
        """
        import os, signal, sys, time
        out = os.environ["OUT"]
        def on_term(signum, frame):
            open(os.path.join(out, "terminated"), "w").close()
            sys.exit(1)
        signal.signal(signal.SIGTERM, on_term)
        print("LITECOORD-PROGRESS docs=7", flush=True)
        open(os.path.join(out, "started"), "w").close()
        time.sleep(120)
        """
    )
    bg = Background(coord, options(command, env={"OUT": str(tmp_path)}), clock)
    wait_for(lambda: (tmp_path / "started").exists(), "the command")
    bg.runner.request_stop()

    result = bg.join()
    assert result.exit_code == EXIT_INTERRUPTED
    assert result.released == ["a"] and result.failed == []
    assert (tmp_path / "terminated").exists()
    item = coord.get_work_item("a")
    assert (item.status, item.worker_id, item.failure_count) == (WorkItemStatus.PENDING, None, 0)
    assert item.documents_processed == 7  # the next holder resumes from here


def test_waits_while_others_hold_the_work_then_stops_when_it_is_done(
    db_path: Path, coord: SqliteCoordinator, clock: FakeClock
) -> None:
    coord.create_unassigned_work_item("a")
    holder = other(db_path, "w2", clock)
    holder.acquire_next_work_item(LEASE)

    bg = Background(coord, options(py("raise SystemExit(0)")), clock)
    wait_for(lambda: any("waiting" in line for line in bg.logs), "the runner to wait")
    assert bg.thread.is_alive()
    holder.complete_work_item("a")

    result = bg.join()
    assert (result.exit_code, result.completed) == (EXIT_ALL_DONE, [])


def test_no_wait_exits_4_when_all_remaining_work_is_leased(
    db_path: Path, coord: SqliteCoordinator, clock: FakeClock
) -> None:
    coord.create_unassigned_work_item("a")
    other(db_path, "w2", clock).acquire_next_work_item(LEASE)
    result = Runner(coord, options(py("raise SystemExit(0)"), wait=False), clock=clock).run()
    assert result.exit_code == EXIT_ALL_LEASED and "1 item(s) remain" in result.reason


def test_an_item_whose_holder_died_is_recovered_with_its_progress(
    db_path: Path, coord: SqliteCoordinator, clock: FakeClock, tmp_path: Path
) -> None:
    coord.create_work_item_with_metadata("a", "i", 0, 100, 1000)
    dead = other(db_path, "dead-worker", clock)
    dead.acquire_next_work_item(LEASE)
    dead.update_progress_and_renew_lease("a", 40, 400)
    clock.advance(LEASE + timedelta(seconds=1))  # the dead worker's lease lapses
    command = py(
        """
        import os
        with open(os.path.join(os.environ["OUT"], "env"), "w") as f:
            f.write(" ".join(os.environ[k] for k in (
                "LITECOORD_DOCUMENTS_PROCESSED", "LITECOORD_BYTES_PROCESSED", "LITECOORD_LEASE_EPOCH")))
        """
    )
    result = Runner(coord, options(command, env={"OUT": str(tmp_path)}), clock=clock).run()
    assert result.completed == ["a"]
    assert (tmp_path / "env").read_text() == "40 400 2"


class BusyAtFirst:
    """Acquire fails ``times`` times with ``error``, then works."""

    def __init__(self, inner: SqliteCoordinator, error: Exception, times: int) -> None:
        self._inner, self._error, self._left = inner, error, times

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def acquire_next_work_item(self, *args: Any) -> Any:
        if self._left:
            self._left -= 1
            raise self._error
        return self._inner.acquire_next_work_item(*args)


def test_transient_acquire_errors_are_retried(coord: SqliteCoordinator, clock: FakeClock) -> None:
    coord.create_unassigned_work_item("a")
    flaky = BusyAtFirst(coord, DatabaseBusyError("locked"), times=2)
    result = Runner(flaky, options(py("pass")), clock=clock).run()
    assert (result.exit_code, result.completed) == (EXIT_ALL_DONE, ["a"])


def test_other_acquire_errors_stop_the_runner(coord: SqliteCoordinator, clock: FakeClock) -> None:
    flaky = BusyAtFirst(coord, ValidationError("lease_duration", "bad"), times=1)
    result = Runner(flaky, options(py("pass")), clock=clock).run()
    assert result.exit_code == EXIT_ERROR and "lease_duration: bad" in result.reason


# -- helpers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("LITECOORD-PROGRESS docs=12 bytes=34", (12, 34)),
        ("docs=12", (12, None)),
        ("LITECOORD-PROGRESS bytes=5", (None, 5)),
        ("documents=3 bytes=4", (3, 4)),
        ("LITECOORD-PROGRESS", None),
        ("docs=-1", None),
        ("docs=1.5", None),
        ("docs=1 pages=2", None),
        ("hello", None),
    ],
)
def test_parse_progress(line: str, expected: tuple[int | None, int | None] | None) -> None:
    assert parse_progress(line) == expected


def test_combine_exit_codes_describes_the_whole_run(db_path: Path, coord: SqliteCoordinator) -> None:
    coord.create_unassigned_work_item("a")
    pending = coord.status()
    coord.acquire_next_work_item(LEASE)
    coord.complete_work_item("a")
    done = coord.status()
    # A worker killed by SIGKILL does not fail a run whose work all got done.
    assert combine_exit_codes([0, -signal.SIGKILL, 0], done, interrupted=False) == EXIT_ALL_DONE
    assert combine_exit_codes([0, 0], done, interrupted=True) == EXIT_INTERRUPTED
    assert combine_exit_codes([4, 4], pending, interrupted=False) == EXIT_ALL_LEASED
    assert combine_exit_codes([1, 4], pending, interrupted=False) == EXIT_ERROR


class StoreDownForHolders(FlakyRenewals):
    """Renewals and releases fail (the store is locked); acquire still works."""

    def __init__(self, inner: SqliteCoordinator) -> None:
        super().__init__(inner)
        self.releases = 0

    def release_work_item(self, *args: Any, **kwargs: Any) -> Any:
        self.releases += 1
        raise DatabaseBusyError("locked")


def test_a_lease_that_cannot_be_renewed_is_given_up_before_it_lapses_and_never_rerun(
    coord: SqliteCoordinator, clock: FakeClock, tmp_path: Path
) -> None:
    coord.create_unassigned_work_item("a")
    down = StoreDownForHolders(coord)
    expiry = clock() + LEASE
    bg = Background(down, options(py(BLOCKING_COMMAND), env={"OUT": str(tmp_path)}), clock)
    pid, child = started_pids(tmp_path)
    wait_for(lambda: down.renewals >= 2, "failed renewals")

    # Half a second before the lease lapses: inside the safety margin (a second for 30 s).
    clock.advance(LEASE - timedelta(milliseconds=500))
    wait_for(lambda: not alive(pid), "the command to be killed")
    item = coord.get_work_item("a")
    assert item.status is WorkItemStatus.ASSIGNED and item.lease_expiry == expiry > clock()  # still live: killed first

    # Acquire hands the worker its own live lease back; the runner must not run the command on it again.
    wait_for(lambda: down.releases >= 3, "the given-up lease to be offered back and refused")
    assert alive(pid) is False and (tmp_path / "pids").read_text().split()[0] == str(pid)

    clock.advance(seconds=1)  # now it lapses; the next acquisition is a new lease (epoch 2)
    result = bg.join()
    assert result.lost == ["a"] and result.completed == ["a"]
    assert sum("acquired a (epoch 1" in line for line in bg.logs) == 1
    assert any("acquired a (epoch 2" in line for line in bg.logs)
    wait_for(lambda: not alive(child), "the grandchild to die")


class CountingCalls:
    """Delegates to a coordinator, counting the calls made by name."""

    def __init__(self, inner: SqliteCoordinator) -> None:
        self._inner = inner
        self.calls: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            return attr(*args, **kwargs)

        return counted


def test_each_completion_and_the_next_lease_are_one_transaction(coord: SqliteCoordinator, clock: FakeClock) -> None:
    coord.create_work_items([{"work_item_id": f"i{n}"} for n in range(5)])
    counting = CountingCalls(coord)
    result = Background(counting, options(py("pass"), wait=False), clock).join()
    assert sorted(result.completed) == [f"i{n}" for n in range(5)] and result.exit_code == EXIT_ALL_DONE
    # One acquire to start; after that every completion leases the next item in the same call.
    assert counting.calls.get("acquire_next_work_item") == 1
    assert counting.calls.get("complete_and_acquire_next") == 5
    assert "complete_work_item" not in counting.calls
    assert coord.status().completed_work_items == 5


class StopAfterCompleting(CountingCalls):
    """Requests a stop right after the first completion has leased the next item."""

    runner: Runner

    def complete_and_acquire_next(self, *args: Any, **kwargs: Any) -> Any:
        outcome = self._inner.complete_and_acquire_next(*args, **kwargs)
        self.runner.request_stop()
        return outcome


def test_a_stop_after_a_completion_gives_back_the_lease_it_took_for_the_next_item(
    coord: SqliteCoordinator, clock: FakeClock
) -> None:
    coord.create_work_items([{"work_item_id": "first", "total_size_bytes": 2}, {"work_item_id": "second"}])
    wrapper = StopAfterCompleting(coord)
    wrapper.runner = Runner(wrapper, options(py("pass"), wait=False), clock=clock, stdout=io.BytesIO())
    result = wrapper.runner.run()
    assert result.exit_code == EXIT_INTERRUPTED and result.completed == ["first"]
    second = coord.get_work_item("second")
    assert second.status is WorkItemStatus.PENDING and second.worker_id is None  # released, not left leased
    assert second.lease_epoch == 1  # it had been leased once, with the completion of "first"


# -- timeouts, urgent stops, output prefixes, inherited leases -----------------------------

# Blocks until killed; with IGNORE set it shrugs off SIGTERM (noting that it got one).
STUBBORN = """
import os, signal, time
out = os.environ["OUT"]
def on_term(signum, frame):
    open(os.path.join(out, "terminated"), "w").close()
    if not os.environ.get("IGNORE"):
        raise SystemExit(1)
signal.signal(signal.SIGTERM, on_term)
print("LITECOORD-PROGRESS docs=7", flush=True)
print("working", flush=True)
open(os.path.join(out, "started"), "w").close()
while True:
    time.sleep(0.05)
"""


@pytest.mark.parametrize(
    ("ignore", "how"), [("", "stopped with SIGTERM"), ("1", "killed with SIGKILL")], ids=["term", "kill"]
)
def test_a_command_that_runs_past_its_timeout_is_stopped_and_the_attempt_counted_as_failed(
    coord: SqliteCoordinator, clock: FakeClock, tmp_path: Path, ignore: str, how: str
) -> None:
    coord.setup(max_attempts=1)
    coord.create_work_item_with_metadata("a", "i", 0, 100, None)
    env = {"OUT": str(tmp_path), "IGNORE": ignore}
    long_lease = timedelta(minutes=10)  # moving the clock by a minute must not lapse it
    bg = Background(coord, options(py(STUBBORN), lease_duration=long_lease, timeout=60, grace=0.2, env=env), clock)
    wait_for(lambda: (tmp_path / "started").exists(), "the command")
    clock.advance(seconds=59)
    wait_for(lambda: coord.get_work_item("a").documents_processed == 7, "a heartbeat")
    assert bg.thread.is_alive() and not (tmp_path / "terminated").exists()  # not yet
    clock.advance(seconds=2)  # the timeout is measured on the runner's clock, like the lease

    result = bg.join()
    assert result.exit_code == EXIT_FAILED_REMAIN and result.failed == ["a"]
    assert (tmp_path / "terminated").exists()  # asked first, with SIGTERM
    item = coord.get_work_item("a")
    assert item.status is WorkItemStatus.FAILED and item.failure_count == 1
    assert item.last_error == f"command timed out after 60s ({how})\nstdout:\nworking"
    assert item.documents_processed == 7
    assert any(f"failed a (epoch 1): command timed out after 60s ({how})" in line for line in bg.logs)


def test_an_urgent_stop_kills_the_command_without_waiting_out_the_grace(
    coord: SqliteCoordinator, clock: FakeClock, tmp_path: Path
) -> None:
    coord.create_work_item_with_metadata("a", "i", 0, 100, None)
    env = {"OUT": str(tmp_path), "IGNORE": "1"}
    bg = Background(coord, options(py(STUBBORN), grace=3600, env=env), clock)
    wait_for(lambda: (tmp_path / "started").exists(), "the command")
    bg.runner.request_stop()
    wait_for(lambda: (tmp_path / "terminated").exists(), "the SIGTERM")
    assert bg.thread.is_alive()  # the command ignores it, and an hour of grace remains
    bg.runner.request_stop(now=True)

    result = bg.join()  # within the join's deadline, not the hour
    assert result.exit_code == EXIT_INTERRUPTED and result.released == ["a"]
    item = coord.get_work_item("a")
    assert (item.status, item.worker_id, item.failure_count, item.documents_processed) == (
        WorkItemStatus.PENDING,
        None,
        0,
        7,
    )
    assert any("released a (epoch 1): stopped, command was killed by SIGKILL" in line for line in bg.logs)


def test_output_prefixes_name_the_worker_and_the_item(coord: SqliteCoordinator, clock: FakeClock) -> None:
    coord.create_unassigned_work_item("a")
    command = py(
        """
        import sys
        sys.stdout.write("one\\nLITECOORD-PROGRESS docs=1\\ntwo")  # the last line has no newline
        sys.stderr.write("oops\\n")
        """
    )
    out, err = io.BytesIO(), io.BytesIO()
    result = Runner(coord, options(command, prefix_output=True), clock=clock, stdout=out, stderr=err).run()
    assert result.completed == ["a"]
    assert out.getvalue() == b"w1 a | one\nw1 a | two\n"
    assert err.getvalue() == b"w1 a | oops\n"

    coord.create_unassigned_work_item("b")  # without prefixes the bytes pass through unchanged
    out = io.BytesIO()
    Runner(coord, options(command), clock=clock, stdout=out, stderr=io.BytesIO()).run()
    assert out.getvalue() == b"one\ntwo"


def test_a_lease_left_by_a_dead_process_with_the_same_worker_id_is_renewed_before_the_command_runs(
    db_path: Path, coord: SqliteCoordinator, clock: FakeClock, tmp_path: Path
) -> None:
    coord.create_work_item_with_metadata("a", "i", 0, 100, None)
    # An earlier process of worker w1 acquired "a" and died; 20 of its 30 seconds have passed.
    predecessor = other(db_path, "w1", clock)
    assert predecessor.acquire_next_work_item(LEASE).lease_epoch == 1
    clock.advance(seconds=20)
    # Heartbeats would renew too; a long one leaves only the renewal before the start.
    env = {"OUT": str(tmp_path), "IGNORE": ""}
    bg = Background(coord, options(py(STUBBORN), heartbeat=3600, env=env), clock)
    wait_for(lambda: (tmp_path / "started").exists(), "the command")
    item = coord.get_work_item("a")
    assert (item.lease_epoch, item.worker_id) == (1, "w1")  # the same lease, taken back at once
    assert item.lease_expiry == clock() + LEASE  # renewed now, not left to lapse 10 s from now

    # Past the predecessor's expiry the lease is still live: nobody else can take the item
    # while this runner's command works on it (its local deadline counts from the renewal).
    clock.advance(seconds=11)
    assert other(db_path, "w2", clock).acquire_next_work_item(LEASE).reason == "all_leased"
    assert bg.thread.is_alive() and not (tmp_path / "terminated").exists()
    bg.runner.request_stop()
    assert bg.join().released == ["a"]
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("heartbeat", float("nan")),
        ("heartbeat", float("inf")),
        ("poll_interval", float("nan")),
        ("poll_interval", float("inf")),
        ("grace", float("nan")),
        ("lease_duration", float("-inf")),
    ],
)
def test_runner_options_refuse_non_finite_seconds(field: str, value: float) -> None:
    # A NaN heartbeat never renewed: the lease was lost every cycle, at 99% CPU.
    with pytest.raises(ValidationError) as err:
        RunnerOptions(command=["true"], **{field: value})
    assert err.value.field == ("lease_duration" if field == "lease_duration" else field)


def test_the_runner_waits_while_its_session_is_paused_and_goes_on_when_resumed(
    db_path: Path, coord: SqliteCoordinator, clock: FakeClock, tmp_path: Path
) -> None:
    coord.create_work_items([{"work_item_id": n} for n in ("a", "b")])
    operator = other(db_path, "operator", clock)
    operator.pause()
    bg = Background(coord, options(py("raise SystemExit(0)")), clock)
    wait_for(lambda: any("paused" in line for line in bg.logs), "the runner to say it waits for the pause")
    assert bg.thread.is_alive()
    said = [line for line in bg.logs if "paused" in line]
    assert len(said) == 1 and said[0].endswith("is paused (2 item(s) remain); waiting until it is resumed")
    assert coord.status().completed_work_items == 0  # nothing was handed out
    operator.resume()
    result = bg.join()
    assert (result.exit_code, sorted(result.completed)) == (EXIT_ALL_DONE, ["a", "b"])
    assert sum("paused" in line for line in bg.logs) == 1


def test_no_wait_exits_4_when_the_session_is_paused(db_path: Path, coord: SqliteCoordinator, clock: FakeClock) -> None:
    coord.create_unassigned_work_item("a")
    other(db_path, "operator", clock).pause()
    result = Runner(coord, options(py("raise SystemExit(0)"), wait=False), clock=clock).run()
    assert result.exit_code == EXIT_ALL_LEASED and "is paused" in result.reason
    assert coord.get_work_item("a").status is WorkItemStatus.PENDING
