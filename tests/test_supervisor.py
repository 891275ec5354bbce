"""``litecoord work --workers N`` under real signals: deaths, restarts, crash loops, a killed supervisor, Ctrl-C twice.

Everything here runs real processes. Leases are long (60 s) and never
waited out: a restarted worker takes its own live lease back at once, and a
stopped worker releases its item. The only waits are polls for a process
state, each with a deadline against hangs; nothing asserts how long anything took.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from proc_support import alive

from litecoord import SqliteCoordinator, WorkItemStatus
from litecoord.cli.supervisor import RestartPolicy, Supervisor

pytestmark = pytest.mark.slow

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"

# The command: reports progress, notes "<runner pid> <own pid>" in OUT/<worker>.<n>, then
# works until OUT/go exists. On SIGTERM it notes it; with IGNORE set it keeps working.
HOLD = """
import os, signal, sys, time
out, worker = sys.argv[1], os.environ["LITECOORD_WORKER_ID"]
def on_term(signum, frame):
    open(os.path.join(out, worker + ".terminated"), "w").close()
    if not os.environ.get("IGNORE"):
        raise SystemExit(1)
signal.signal(signal.SIGTERM, on_term)
print("LITECOORD-PROGRESS docs=5", flush=True)
n = len([f for f in os.listdir(out) if f.startswith(worker + ".run")])
with open(os.path.join(out, "tmp." + worker), "w") as f:
    f.write(f"{os.getppid()} {os.getpid()} {os.environ['LITECOORD_LEASE_EPOCH']}")
os.rename(os.path.join(out, "tmp." + worker), os.path.join(out, f"{worker}.run{n}"))
while not os.path.exists(os.path.join(out, "go")):
    time.sleep(0.02)
"""


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


class Run:
    """A `litecoord work` process started like a user would, its stderr in a file."""

    def __init__(self, tmp_path: Path, *args: str, items: int = 2, env: dict[str, str] | None = None) -> None:
        self.db, self.out = tmp_path / "sup.db", tmp_path / "out"
        self.out.mkdir()
        self.coord = SqliteCoordinator(self.db, session="s1", worker_id="observer")
        self.coord.create_work_items([{"work_item_id": f"i{n}", "document_count": 10} for n in range(items)])
        argv = [sys.executable, "-m", "litecoord.cli", "work", "--db", str(self.db), "-s", "s1", "-w", "team",
                "--lease", "60", "--heartbeat", "0.1", "--poll", "0.05", *args,
                "--", sys.executable, "-c", HOLD, str(self.out)]  # fmt: skip
        self.err_path = tmp_path / "stderr"
        with open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, env={**os.environ, **(env or {})}
            )

    @property
    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def runs(self, worker: str) -> list[tuple[int, int, int]]:
        """(runner pid, command pid, epoch) of each command started by ``worker``, in order."""
        found = sorted(self.out.glob(f"{worker}.run*"), key=lambda p: int(p.name.rsplit("run", 1)[1]))
        return [tuple(map(int, p.read_text().split())) for p in found]  # type: ignore[misc]

    def all_working(self) -> bool:
        return all(i.documents_processed == 5 and i.status is WorkItemStatus.ASSIGNED for i in self.items())

    def items(self) -> list[Any]:
        return self.coord.list_work_items()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        # After a failure, leave no runner or command of this test behind.
        for path in self.out.glob("*.run*"):
            for pid in map(int, path.read_text().split()[:2]):
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)
        self.coord.close()


@pytest.fixture
def runs() -> Iterator[list[Run]]:
    started: list[Run] = []
    yield started
    for run in started:
        run.close()


def test_a_dead_worker_is_announced_and_restarted_under_its_id_and_takes_its_item_back(
    tmp_path: Path, runs: list[Run]
) -> None:
    run = Run(tmp_path, "--workers", "2")
    runs.append(run)
    wait_for(run.all_working, "both workers to start their items")
    [(runner_pid, command_pid, epoch)] = run.runs("team-1")
    held = next(i for i in run.items() if i.worker_id == "team-1")

    os.kill(runner_pid, signal.SIGKILL)
    line = wait_for(
        lambda: re.search(rf"^{STAMP} supervisor: team-1 \(pid {runner_pid}\) was killed by SIGKILL; "
                          r"restarting it in [\d.]+s.*$", run.stderr, re.M),
        "the death to be announced",
    )  # fmt: skip
    assert line
    # The restarted worker has the same id, so it gets its own live lease back at once
    # (same epoch, no lease waited out) and runs the command on it again.
    wait_for(lambda: len(run.runs("team-1")) == 2, "the restarted worker's command")
    new_runner, _, new_epoch = run.runs("team-1")[1]
    assert new_runner != runner_pid and new_epoch == epoch
    assert re.search(rf"^{STAMP} supervisor: restarted team-1 \(pid {new_runner}\)$", run.stderr, re.M)
    assert not alive(command_pid)  # the dead worker's command died with it
    again = run.coord.get_work_item(held.work_item_id)
    assert (again.worker_id, again.lease_epoch) == ("team-1", epoch)

    (run.out / "go").touch()
    assert run.proc.wait(timeout=60) == 0, run.stderr
    assert all(i.status is WorkItemStatus.COMPLETED for i in run.items())
    assert run.coord.get_work_item(held.work_item_id).lease_epoch == epoch  # never passed to anyone else
    assert re.search(r"workers exited \(team-1=0 after 1 restart\(s\), team-2=0\); run exit code 0", run.stderr)


def test_a_worker_in_a_crash_loop_is_given_up_after_max_restarts(tmp_path: Path, runs: list[Run]) -> None:
    missing = str(tmp_path / "no-such-command")
    db = tmp_path / "loop.db"
    coord = SqliteCoordinator(db, session="s1", worker_id="observer")
    coord.create_work_items([{"work_item_id": "a"}, {"work_item_id": "b"}])
    result = subprocess.run(
        [sys.executable, "-m", "litecoord.cli", "work", "--db", str(db), "-s", "s1", "-w", "team", "--workers", "2",
         "--max-restarts", "1", "--poll", "0.05", "--", missing],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    coord.close()
    assert result.returncode == 1, result.stderr
    for worker in ("team-1", "team-2"):
        restarts = re.findall(rf"supervisor: {worker} \(pid \d+\) exited with code 1; restarting it", result.stderr)
        assert len(restarts) == 1
        assert re.search(rf"supervisor: {worker} \(pid \d+\) exited with code 1; it died 2 times within 60s, more "
                         r"than --max-restarts 1: not restarting it", result.stderr)  # fmt: skip
    assert "team-1=1 after 1 restart(s) (given up)" in result.stderr
    coord = SqliteCoordinator(db, session="s1", worker_id="observer")
    # Not the items' fault: given back without spending attempts.
    assert [(i.status, i.failure_count) for i in coord.list_work_items()] == [(WorkItemStatus.PENDING, 0)] * 2
    coord.close()


def test_restart_backoff_doubles_and_the_window_bounds_the_restarts(tmp_path: Path) -> None:
    policy = RestartPolicy(max_restarts=3, window=60, backoff=0.5, max_backoff=1.5)
    assert [policy.delay(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 1.5, 1.5]

    starts = tmp_path / "starts"
    starts.mkdir()
    crash = "import os, sys; open(os.path.join(sys.argv[1], str(os.getpid())), 'w').close(); sys.exit(9)"
    lines: list[str] = []

    team = Supervisor(
        ["w-1"],
        lambda wid, fd: [sys.executable, "-c", crash, str(starts)],
        stop=threading.Event(),
        policy=RestartPolicy(max_restarts=3, backoff=0.01),
        log=lines.append,
    )
    [result] = team.run()
    assert (result.worker_id, result.exit_code, result.restarts, result.gave_up) == ("w-1", 9, 3, True)
    assert len(list(starts.iterdir())) == 4  # the first start and three restarts, no more
    assert sum("restarting it in" in line for line in lines) == 3
    assert "not restarting it" in lines[-1]


def test_workers_release_their_items_when_the_supervisor_is_sigkilled(tmp_path: Path, runs: list[Run]) -> None:
    run = Run(tmp_path, "--workers", "2")
    runs.append(run)
    wait_for(run.all_working, "both workers to start their items")
    pids = [pid for worker in ("team-1", "team-2") for pid in run.runs(worker)[0][:2]]

    run.proc.send_signal(signal.SIGKILL)
    run.proc.wait()
    # Each worker sees the supervisor's pipe close, stops its command, records its
    # progress and releases its item: nothing waits for a lease to lapse.
    wait_for(
        lambda: all(i.status is WorkItemStatus.PENDING and i.worker_id is None for i in run.items()),
        "the items to be released",
    )
    assert [i.documents_processed for i in run.items()] == [5, 5]
    wait_for(lambda: not any(alive(pid) for pid in pids), "the workers and their commands to exit")


@pytest.mark.parametrize("workers", [1, 2])
def test_a_second_ctrl_c_kills_the_commands_without_waiting_out_the_grace(
    tmp_path: Path, runs: list[Run], workers: int
) -> None:
    # The commands ignore SIGTERM and the grace is an hour: only the escalation ends this run.
    run = Run(tmp_path, "--workers", str(workers), "--grace", "3600", items=workers, env={"IGNORE": "1"})
    runs.append(run)
    wait_for(run.all_working, "the workers to start their items")
    ids = ["team"] if workers == 1 else [f"team-{n}" for n in range(1, workers + 1)]
    commands = [run.runs(worker)[0][1] for worker in ids]

    run.proc.send_signal(signal.SIGINT)
    wait_for(lambda: all((run.out / f"{w}.terminated").exists() for w in ids), "the commands to get SIGTERM")
    assert re.search(rf"^{STAMP} \S+: stopping: .*Ctrl-C again to kill .* now$", run.stderr, re.M), run.stderr
    assert run.proc.poll() is None and all(alive(pid) for pid in commands)  # still within the grace

    run.proc.send_signal(signal.SIGINT)
    assert run.proc.wait(timeout=60) == 130, run.stderr
    assert re.search(rf"^{STAMP} \S+: stopping now: .*kill", run.stderr, re.M), run.stderr
    assert not any(alive(pid) for pid in commands)
    for item in run.items():
        assert (item.status, item.worker_id, item.documents_processed) == (WorkItemStatus.PENDING, None, 5)


def test_output_is_prefixed_with_worker_and_item_and_log_lines_are_stamped(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    for session in ("s1", "s2"):
        c = SqliteCoordinator(db, session=session, worker_id="observer")
        c.create_work_items([{"work_item_id": f"i{n}"} for n in range(4)])
        c.close()
    record = "import os; print('item', os.environ['LITECOORD_WORK_ITEM_ID'])"

    def work(session: str, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "litecoord.cli", "work", "--db", str(db), "-s", session, "-w", "team",
                "--poll", "0.05", "--workers", "2", *args, "--", sys.executable, "-c", record]  # fmt: skip
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done

    done = work("s1")
    lines = done.stdout.splitlines()
    assert len(lines) == 4
    for line in lines:
        match = re.fullmatch(r"(team-[12]) (i\d) \| item (i\d)", line)
        assert match and match.group(2) == match.group(3), line
    assert re.search(rf"^{STAMP} team-[12]: completed i\d \(epoch 1\)$", done.stderr, re.M)
    assert re.search(rf"^{STAMP} supervisor: workers exited", done.stderr, re.M)

    # --no-prefix: the command's bytes pass through unchanged (binary, JSON).
    assert sorted(work("s2", "--no-prefix").stdout.splitlines()) == [f"item i{n}" for n in range(4)]
