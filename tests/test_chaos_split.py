"""Live splitting under crashes: real `litecoord work --split` runners whose commands, runners
and supervisor are killed with SIGKILL while idle workers ask for splits (issue 18, section 5).

The command honours the split channel and appends every range of documents it
copied to a log (one O_APPEND write per batch). At the end the coverage audit
must be ok and what the commands really copied must cover every shard. Leases
are short and real (2 s): the processes really die and the survivors wait
for those leases to lapse; nothing asserts how long anything took.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from litecoord import SqliteCoordinator

pytestmark = pytest.mark.slow

MARK = "litecoord-chaos-split-command"
RATE = 40_000  # documents a second per command
SHARDS = [240_000, 60_000, 40_000, 30_000, 20_000, 20_000, 10_000, 10_000]

# Copies its range in batches of 1000 documents, honouring split requests (it accepts
# the proposed position, or a little past its own), and logs "item start end" per batch.
COMMAND = textwrap.dedent(
    f"""
    import os, sys
    import time
    sys.argv[0] = {MARK!r}
    log, pids = sys.argv[1], sys.argv[2]
    item = os.environ["LITECOORD_WORK_ITEM_ID"]
    start, end = int(os.environ["LITECOORD_RANGE_START"]), int(os.environ["LITECOORD_RANGE_END"])
    pos = start + int(os.environ["LITECOORD_DOCUMENTS_PROCESSED"])
    progress = int(os.environ["LITECOORD_PROGRESS_FD"])
    split_fd = int(os.environ["LITECOORD_SPLIT_FD"])
    os.set_blocking(split_fd, False)
    mine = os.path.join(pids, str(os.getpid()))
    open(mine, "w").close()
    pending = b""
    while pos < end:
        nxt = min(pos + 1000, end)
        time.sleep((nxt - pos) / {RATE})
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(fd, f"{{item}} {{pos}} {{nxt}}\\n".encode())
        os.close(fd)
        pos = nxt
        os.write(progress, f"docs={{pos - start}}\\n".encode())
        try:
            pending += os.read(split_fd, 4096)
        except BlockingIOError:
            pass
        while b"\\n" in pending:
            line, pending = pending.split(b"\\n", 1)
            words = line.decode().split()
            at = max(int(words[1].split("=")[1]), pos + 2000)
            if words[0] == "split-request" and at < end:
                os.write(progress, f"split at={{at}}\\n".encode())
                os.set_blocking(split_fd, True)
                answer = b""
                while not answer.endswith(b"\\n"):
                    answer += os.read(split_fd, 1)
                os.set_blocking(split_fd, False)
                if answer.startswith(b"split-done"):
                    end = at
    os.remove(mine)
    """
)


def start(db: Path, worker_id: str, log: Path, pids: Path, logs: Path, workers: int = 1) -> subprocess.Popen[bytes]:
    argv = [
        sys.executable, "-m", "litecoord.cli", "work", "--db", str(db), "--session", "chaos",
        "--worker-id", worker_id, "--workers", str(workers), "--lease", "2", "--heartbeat", "0.3",
        "--poll", "0.1", "--split", "--", sys.executable, "-c", COMMAND, str(log), str(pids),
    ]  # fmt: skip
    with open(logs / f"{worker_id}.log", "ab") as err:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)


def live_commands(pids: Path) -> list[int]:
    """Pids of our commands still running (checked by their marker: a pid may have been reused)."""
    found = []
    for path in pids.iterdir():
        try:
            if MARK.encode() in Path(f"/proc/{path.name}/cmdline").read_bytes():
                found.append(int(path.name))
        except OSError:
            pass
    return found


def test_splits_survive_sigkills_of_commands_runners_and_the_supervisor(tmp_path: Path) -> None:
    db, log, pids, logs = tmp_path / "chaos.db", tmp_path / "copied.log", tmp_path / "pids", tmp_path / "logs"
    pids.mkdir()
    logs.mkdir()
    coord = SqliteCoordinator(db, session="chaos", worker_id="observer")
    # Killed commands fail their attempt: enough attempts, and no delay, that none is parked.
    coord.setup(split_min_documents=2000, max_attempts=100, retry_delay=0)
    coord.create_work_items(
        [{"work_item_id": f"idx__{n}__0", "index_name": "idx", "shard_number": n, "document_count": size}
         for n, size in enumerate(SHARDS)]
    )  # fmt: skip
    rng = random.Random(18)
    runners = {f"r{n}": start(db, f"r{n}", log, pids, logs) for n in range(3)}
    groups = [start(db, "g0", log, pids, logs, workers=2)]
    kills = {"command": 0, "runner": 0, "supervisor": 0}
    next_id = 3
    deadline = time.monotonic() + 120
    try:
        while coord.num_work_items_not_yet_complete() > 0:
            assert time.monotonic() < deadline, "the backfill did not finish"
            time.sleep(rng.uniform(0.2, 0.5))
            if sum(kills.values()) >= 12:
                continue
            # The kind killed least so far (commands first), so that every kind lands.
            kind = min(("command", "runner", "supervisor"), key=lambda k: kills[k] + (k == "supervisor"))
            if kind == "command":
                live = live_commands(pids)
                if live:
                    os.kill(rng.choice(live), signal.SIGKILL)
                    kills["command"] += 1
            elif kind == "runner":
                alive = sorted(w for w, p in runners.items() if p.poll() is None)
                if alive:
                    victim = rng.choice(alive)
                    runners[victim].send_signal(signal.SIGKILL)
                    runners[victim].wait()
                    kills["runner"] += 1
                    runners[f"r{next_id}"] = start(db, f"r{next_id}", log, pids, logs)
                    next_id += 1
            elif groups[-1].poll() is None:
                groups[-1].send_signal(signal.SIGKILL)
                groups[-1].wait()
                kills["supervisor"] += 1
                groups.append(start(db, f"g{len(groups)}", log, pids, logs, workers=2))
        codes = {w: p.wait(timeout=60) for w, p in runners.items()}
        last_group = groups[-1].wait(timeout=60)
    finally:
        for p in [*runners.values(), *groups]:
            if p.poll() is None:
                p.kill()
                p.wait()

    print(f"kills: {kills}")
    assert all(kills.values()), kills
    # The runners never killed, and the last group, finished the run with "all work done".
    assert last_group == 0, (logs / f"g{len(groups) - 1}.log").read_text()
    for worker, code in codes.items():
        assert code in (0, -signal.SIGKILL), (worker, code, (logs / f"{worker}.log").read_text())
    items = coord.list_work_items()
    splits = [i for i in items if i.parent_id is not None]
    assert splits, "no item was ever split"
    report = coord.verify_coverage()
    assert report.ok, report
    # What the commands really copied covers every shard (a killed command's batches may repeat).
    copied: dict[int, list[tuple[int, int]]] = {}
    for line in log.read_text().splitlines():
        item, a, b = line.split()
        copied.setdefault(int(item.split("__")[1]), []).append((int(a), int(b)))
    for shard, size in enumerate(SHARDS):
        reach = 0
        for a, b in sorted(copied[shard]):
            assert a <= reach, f"shard {shard}: documents [{reach}, {a}) were never copied"
            reach = max(reach, b)
        assert reach == size, (shard, reach)
    coord.close()
