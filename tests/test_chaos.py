"""Reliability under crashes: real `litecoord work` processes killed with SIGKILL mid-lease,
over a SQLite file and over PostgreSQL.

Leases here are short and real (2 s) because the processes really die and
the survivors must wait for those leases to lapse; nothing asserts how long
anything took.
"""

from __future__ import annotations

import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pytest
from pg_support import fresh_schema

from litecoord import SqliteCoordinator, WorkItemStatus
from litecoord.backends.choose import is_postgres, open_coordinator

pytestmark = pytest.mark.slow

ITEMS = 220
LEASE = "2"

# The simulated work: a little progress, then one O_APPEND line "item worker epoch"
# (a single write(2) of a short line, so concurrent appends never interleave).
COMMAND = textwrap.dedent(
    """
    import os, sys, time
    item, worker, epoch = (os.environ[k] for k in
        ("LITECOORD_WORK_ITEM_ID", "LITECOORD_WORKER_ID", "LITECOORD_LEASE_EPOCH"))
    for n in range(1, 4):
        time.sleep(0.02)
        print(f"LITECOORD-PROGRESS docs={n}", flush=True)
    fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, f"{item} {worker} {epoch}\\n".encode())
    os.close(fd)
    """
)

# A runner's log line, after its timestamp: "2026-12-01T09:50:00.123Z r3: completed idx__7__0 (epoch 2)".
COMPLETED = re.compile(r"^\S+Z (\S+): completed (\S+) \(epoch (\d+)\)$")


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path):
    """``--db`` for the runners: a SQLite path or a PostgreSQL DSN."""
    if request.param == "sqlite":
        yield str(tmp_path / "chaos.db")
    else:
        with fresh_schema() as dsn:
            yield dsn


def start_runner(db: str, worker_id: str, log: Path, logs: Path, *, workers: int = 1) -> subprocess.Popen[bytes]:
    argv = [
        sys.executable, "-m", "litecoord.cli", "work", "--db", str(db), "--session", "chaos",
        "--worker-id", worker_id, "--workers", str(workers), "--lease", LEASE, "--heartbeat", "0.4",
        "--poll", "0.1", "--", sys.executable, "-c", COMMAND, str(log),
    ]  # fmt: skip
    with open(logs / f"{worker_id}.log", "wb") as err:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)


def test_sigkilled_workers_never_lose_or_duplicate_a_completion(target: str, tmp_path: Path) -> None:
    db, log, logs = target, tmp_path / "done.log", tmp_path / "runners"
    logs.mkdir()
    coord = open_coordinator(db, session="chaos", worker_id="observer")
    coord.create_work_items(
        [{"work_item_id": f"idx__{n}__0", "index_name": "idx", "shard_number": n, "document_count": 3}
         for n in range(ITEMS)]
    )  # fmt: skip
    rng = random.Random(1234)
    runners = {f"r{n}": start_runner(db, f"r{n}", log, logs) for n in range(4)}
    # A --workers group that is never killed: its exit code must describe the whole run.
    group = start_runner(db, "group", log, logs, workers=2)
    killed: set[str] = set()
    mid_lease = 0
    next_id = len(runners)
    deadline = time.monotonic() + 90
    try:
        while coord.num_work_items_not_yet_complete() > 0:
            assert time.monotonic() < deadline, "the backfill did not finish"
            time.sleep(rng.uniform(0.1, 0.3))
            if len(killed) >= 12:
                continue
            # Kill a runner that holds a live lease right now: a crash in the middle of its work.
            now = datetime.now(timezone.utc)
            holders = {
                i.worker_id
                for i in coord.list_work_items(WorkItemStatus.ASSIGNED)
                if i.lease_expiry and i.lease_expiry > now
            }
            candidates = sorted(w for w, p in runners.items() if w in holders and p.poll() is None)
            if not candidates:
                continue
            victim = rng.choice(candidates)
            runners[victim].send_signal(signal.SIGKILL)
            runners[victim].wait()
            killed.add(victim)
            mid_lease += 1
            replacement = f"r{next_id}"
            next_id += 1
            runners[replacement] = start_runner(db, replacement, log, logs)
        codes = {w: p.wait(timeout=60) for w, p in runners.items()}
        group_code = group.wait(timeout=60)
    finally:
        for p in [*runners.values(), group]:
            if p.poll() is None:
                p.kill()
                p.wait()

    # Every item is complete, none failed.
    status = coord.status()
    assert (status.completed_work_items, status.failed_work_items, status.not_yet_complete) == (ITEMS, 0, 0)
    assert mid_lease >= 5, "too few kills landed mid-lease to prove anything"
    # Survivors and the group finished the run with "all work done"; the killed died by SIGKILL.
    assert group_code == 0, (logs / "group.log").read_text()
    for worker, code in codes.items():
        assert code == (-signal.SIGKILL if worker in killed else 0), (worker, (logs / f"{worker}.log").read_text())

    final = {i.work_item_id: (i.worker_id, i.lease_epoch) for i in coord.list_work_items()}
    lines = [tuple(line.split()) for line in log.read_text().splitlines()]
    assert all(len(line) == 3 for line in lines), "torn log line"
    runs = Counter((item, int(epoch)) for item, _, epoch in lines)
    # No lease ever ran its command twice, and nothing ran after the final lease.
    assert max(runs.values()) == 1
    for item, _, epoch in lines:
        assert int(epoch) <= final[item][1], (item, epoch)
    # Each item's completion belongs to the holder of its final epoch, whose command finished.
    finished = {(item, worker, int(epoch)) for item, worker, epoch in lines}
    for item, (worker, epoch) in final.items():
        assert (item, worker, epoch) in finished, item
    # The runners' own reports: each item completed at most once, by that same holder; an item
    # without a report was completed by a runner killed right after its completion committed.
    reports: Counter[str] = Counter()
    for path in logs.glob("*.log"):
        for line in path.read_text(errors="replace").splitlines():
            match = COMPLETED.match(line)
            if match:
                worker, item, epoch = match.group(1), match.group(2), int(match.group(3))
                reports[item] += 1
                assert final[item] == (worker, epoch), (item, worker, epoch)
    assert max(reports.values()) == 1
    for item in set(final) - set(reports):
        assert final[item][0] in killed, item
    recovered = [item for item, (_, epoch) in final.items() if epoch > 1]
    assert recovered, "no item was ever taken over from a killed worker"
    coord.close()

    if not is_postgres(db):
        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


def test_the_demo_runs_end_to_end(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    result = subprocess.run(
        [sys.executable, "-m", "litecoord.cli", "demo", "--db", str(db), "--items", "6", "--workers", "3",
         "--lease", "2"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "100"},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "\x1b[" not in result.stdout  # not a terminal: plain output
    assert re.search(r"killed demo-worker-\d \(pid \d+\) with SIGKILL while it held \S+ at \d+%", result.stdout)
    assert re.search(r"recovered: demo-worker-\d took \S+ \(lease epoch 2\)", result.stdout)
    # Six shards and a giant one, which was split while it ran (each split adds an item).
    split = r"split: an idle worker asked, and the holder of \S+ gave away \[[\d,]+, [\d,]+\)"
    splits = re.findall(split, result.stdout)
    assert splits, result.stdout
    assert f"{7 + len(splits)} items: {7 + len(splits)} done" in result.stdout
    assert "the coverage audit is ok" in result.stdout
    coord = SqliteCoordinator(db, session="demo")
    assert coord.status().completed_work_items == 7 + len(splits)
    assert coord.verify_coverage().ok
    coord.close()
