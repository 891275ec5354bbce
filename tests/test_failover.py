"""Interchangeable servers: three ``litecoord serve`` processes over one database, one SIGKILLed mid-run.

Real processes throughout: three servers, four ``litecoord work`` runners
each given all three URLs (each preferring another server first), one shell
command per item that records who ran it under which lease epoch. When a
third of the items are done, the server that two of the runners prefer is
killed with SIGKILL. The runners must fail over without losing a lease:
every item completed exactly once, by the holder that ran it, under the
lease epoch it ran with, and none left behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from proc_support import alive

from litecoord import SqliteCoordinator

pytestmark = pytest.mark.slow

SERVERS = 3
WORKERS = 4
ITEMS = 60
SESSION = "failover"
DEADLINE = 120.0

#: The command each runner runs per item: one line naming the item, the worker and the epoch.
RECORD = 'echo "$LITECOORD_WORK_ITEM_ID $LITECOORD_WORKER_ID $LITECOORD_LEASE_EPOCH" >> "$LOG_DIR/$LITECOORD_WORKER_ID"'


def litecoord(*args: str) -> list[str]:
    return [sys.executable, "-m", "litecoord.cli", *args]


def start_server(db: str, env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        litecoord("serve", "--db", db, "--port", "0", "--threads", "4", "--quiet"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stderr is not None
    line = proc.stderr.readline()  # "litecoord: serving ... on http://127.0.0.1:PORT (auth: none)"
    if " on http://" not in line:
        proc.kill()
        raise AssertionError(f"server did not start: {line}{proc.stderr.read()}")
    return proc, line.split(" on ", 1)[1].split()[0]


@pytest.fixture
def stop_all() -> Iterator[list[subprocess.Popen[Any]]]:
    procs: list[subprocess.Popen[Any]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def sqlite_database(tmp_path: Path) -> tuple[str, Callable[[], Any]]:
    db = str(tmp_path / "shared.db")
    return db, lambda: SqliteCoordinator(db, session=SESSION, worker_id="checker")


def run_failover(
    tmp_path: Path, db: str, open_db: Callable[[], Any], procs: list[subprocess.Popen[Any]]
) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LITECOORD_")}
    env["LOG_DIR"] = str(tmp_path)
    admin = open_db()
    admin.create_work_items([{"work_item_id": f"item-{n:03d}", "document_count": n} for n in range(ITEMS)])

    servers = [start_server(db, env) for _ in range(SERVERS)]
    procs.extend(proc for proc, _ in servers)
    urls = [url for _, url in servers]
    workers = []
    for i in range(WORKERS):
        rotated = urls[i % SERVERS :] + urls[: i % SERVERS]  # worker i prefers server i % 3
        argv = litecoord(
            "work", "--url", ",".join(rotated), "--session", SESSION, "--worker-id", f"w{i}",
            "--lease", "30", "--poll", "0.05", "--quiet", "--", "sh", "-c", RECORD,
        )  # fmt: skip
        workers.append(subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    procs.extend(workers)

    def lines() -> dict[str, list[str]]:
        found = {}
        for i in range(WORKERS):
            log = tmp_path / f"w{i}"
            found[f"w{i}"] = log.read_text().splitlines() if log.exists() else []
        return found

    deadline = time.monotonic() + DEADLINE
    while sum(map(len, lines().values())) < ITEMS // 3:
        assert time.monotonic() < deadline, "the runners made no progress"
        assert all(w.poll() is None for w in workers), [w.stderr.read() for w in workers if w.poll() is not None]
        time.sleep(0.02)
    victim = servers[0][0]
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert not alive(victim.pid)
    at_kill = {w: len(done) for w, done in lines().items()}

    codes = []
    for worker in workers:
        codes.append(worker.wait(timeout=max(1.0, deadline - time.monotonic())))
    errors = [w.stderr.read() for w in workers]
    assert codes == [0] * WORKERS, errors

    ran = [line.split() for done in lines().values() for line in done]
    runs = Counter(item for item, _, _ in ran)
    items = {item.work_item_id: item for item in open_db().list_work_items()}
    return {
        "items": items,
        "ran": ran,
        "runs": runs,
        "at_kill": at_kill,
        "at_end": {w: len(done) for w, done in lines().items()},
        "survivors_alive": [proc.poll() is None for proc, _ in servers[1:]],
    }


def check(result: dict[str, Any]) -> None:
    items, ran, runs = result["items"], result["ran"], result["runs"]
    assert len(items) == ITEMS
    assert [i for i in items.values() if i.status.value != "completed"] == []  # none lost
    assert sorted(runs.values()) == [1] * ITEMS  # each item's command ran exactly once
    for item_id, worker, epoch in ran:  # ... and was completed by the holder that ran it, under its epoch
        assert (items[item_id].worker_id, items[item_id].lease_epoch) == (worker, int(epoch)), item_id
    # The runners that preferred the killed server (w0 and w3) went on completing items elsewhere.
    for worker in ("w0", "w3"):
        assert result["at_end"][worker] > result["at_kill"][worker], (result["at_kill"], result["at_end"])
    assert result["survivors_alive"] == [True, True]


def test_three_servers_over_one_sqlite_file_one_killed(tmp_path: Path, stop_all: list[Any]) -> None:
    db, open_db = sqlite_database(tmp_path)
    result = run_failover(tmp_path, db, open_db, stop_all)
    check(result)
    print(f"\nsqlite, {ITEMS} items; done per worker at the kill, at the end:", result["at_kill"], result["at_end"])


def test_three_servers_over_one_postgresql_one_killed(tmp_path: Path, stop_all: list[Any]) -> None:
    from urllib.parse import quote

    from pg_support import admin_dsn, fresh_schema
    from psycopg.conninfo import conninfo_to_dict

    from litecoord import PostgresCoordinator

    with fresh_schema() as schema_dsn:
        # `serve --db` takes a postgresql:// URI: the test server's, in this test's schema.
        uri = admin_dsn()
        options = conninfo_to_dict(schema_dsn)["options"]
        uri += ("&" if "?" in uri else "?") + "options=" + quote(str(options), safe="")

        try:
            result = run_failover(
                tmp_path, uri, lambda: PostgresCoordinator(uri, session=SESSION, worker_id="checker"), stop_all
            )
        finally:
            for proc in stop_all:  # before the schema is dropped
                proc.kill()
                proc.wait()
    check(result)
    print(f"\npostgres, {ITEMS} items; done per worker at the kill, at the end:", result["at_kill"], result["at_end"])
