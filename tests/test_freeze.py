"""A store that hangs must never let two workers run one item: real processes, real databases, SIGSTOP.

Two ``litecoord work`` runners share a few items whose command runs longer
than the lease (so the lease lives only by its renewals) and proves it runs
alone: it takes a per-item ``flock -n`` for as long as it works, and a
second run of the same item that finds the lock held records itself in
``overlaps`` and fails loudly. While runner A's command works on an item,
what A talks to is frozen with SIGSTOP for longer than the lease:

* A's own PostgreSQL backend processes (found by ``application_name`` in
  ``pg_stat_activity``): A's renewal hangs on a server that neither answers
  nor refuses, over a Unix socket where TCP gives no signal;
* the ``litecoord serve`` A talks to, while B talks to a second one over the
  same database (PostgreSQL, and an SQLite file).

B starts once A is frozen, so it is idle and takes A's item over as soon
as A's lease lapses. A must have killed its command by then: zero overlaps,
and every item completed once the freeze ends. The leases are a few seconds
long, so each test takes ~20-30 s of real time: the lease lapses on the real
clock of several processes, which no fake clock can move.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

pytestmark = pytest.mark.slow

SESSION = "freeze"
#: One item while A is frozen (so B, idle, goes for A's item), two more once it thaws (work goes on).
ITEMS = 1
LATER = 2
LEASE = 3.0
#: Each item's command works this long: longer than the lease, so it needs renewals,
#: and long enough that an A that did not stop would still be running when B takes over.
WORK_SECONDS = 7.0
#: How long what A talks to stays frozen: well past the lease.
FREEZE = 8.0
DEADLINE = 90.0

#: Run alone or say so: the lock is held (on fd 9, inherited by sleep) until the whole group dies.
COMMAND = r"""
line="$LITECOORD_WORK_ITEM_ID $LITECOORD_WORKER_ID $LITECOORD_LEASE_EPOCH"
exec 9>"$OUT/lock-$LITECOORD_WORK_ITEM_ID"
if ! flock -n 9; then
    echo "$line" >> "$OUT/overlaps"
    echo "SECOND CONCURRENT RUN of $LITECOORD_WORK_ITEM_ID" >&2
    exit 1
fi
echo "$line" >> "$OUT/starts"
sleep "$WORK_SECONDS"
echo "$line" >> "$OUT/done"
"""


def litecoord(*args: str) -> list[str]:
    return [sys.executable, "-m", "litecoord.cli", *args]


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def wait_until(predicate: Callable[[], Any], what: str, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[Any]]]:
    started: list[subprocess.Popen[Any]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            with_continued(proc.pid)
            proc.kill()
        proc.wait()


def with_continued(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGCONT)
    except ProcessLookupError:
        pass


def environment(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LITECOORD_")}
    env.update(OUT=str(tmp_path), WORK_SECONDS=str(WORK_SECONDS))
    return env


def start_worker(where: list[str], worker: str, env: dict[str, str]) -> subprocess.Popen[str]:
    argv = litecoord(
        "work", *where, "--session", SESSION, "--worker-id", worker, "--lease", str(LEASE),
        "--poll", "0.1", "--quiet", "--", "sh", "-c", COMMAND,
    )  # fmt: skip
    return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


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


def freeze_while_a_works(
    tmp_path: Path,
    workers: dict[str, subprocess.Popen[str]],
    frozen_pids: Callable[[], list[int]],
    start_b: Callable[[], subprocess.Popen[str]],
    coordinator: Any,
) -> dict[str, Any]:
    """SIGSTOP ``frozen_pids()`` once A runs its item, start B, thaw after FREEZE seconds, let all finish."""
    starts = tmp_path / "starts"
    wait_until(lambda: any(line.split()[1] == "A" for line in lines(starts)), "A to start an item", 30)
    time.sleep(0.5)  # past A's first renewal: the lease now lives only by the ones to come
    pids = frozen_pids()
    assert pids, "nothing to freeze"
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    workers["B"] = start_b()
    try:
        time.sleep(FREEZE)  # the real clock must pass the lease: this is what the test is about
        overlaps_during = len(lines(tmp_path / "overlaps"))
    finally:
        for pid in pids:
            with_continued(pid)
    coordinator.create_work_items([{"work_item_id": f"later-{n}"} for n in range(LATER)])
    codes = {name: proc.wait(timeout=DEADLINE) for name, proc in workers.items()}
    errors = {name: proc.stderr.read() for name, proc in workers.items() if proc.stderr is not None}
    return {
        "codes": codes,
        "errors": errors,
        "overlaps": lines(tmp_path / "overlaps"),
        "overlaps_during": overlaps_during,
        "starts": lines(starts),
        "done": lines(tmp_path / "done"),
        "frozen": len(pids),
    }


def check(result: dict[str, Any], items: dict[str, Any]) -> None:
    print(
        f"\nfroze {result['frozen']} process(es) for {FREEZE:g}s (lease {LEASE:g}s): "
        f"{len(result['overlaps'])} concurrent run(s), {len(result['starts'])} run(s) started, "
        f"{len(result['done'])} finished"
    )
    assert result["overlaps"] == [], result  # never two runs of one item at once
    assert [i for i, status in items.items() if status != "completed"] == []  # nothing lost
    assert len(items) == ITEMS + LATER
    assert result["codes"] == {"A": 0, "B": 0}, result["errors"]
    assert {line.split()[0] for line in result["done"]} == set(items)


def create_items(coordinator: Any) -> None:
    coordinator.create_work_items([{"work_item_id": f"item-{n}"} for n in range(ITEMS)])


def statuses(coordinator: Any) -> dict[str, str]:
    return {item.work_item_id: item.status.value for item in coordinator.list_work_items()}


@pytest.fixture
def pg_uri() -> Iterator[str]:
    """A ``postgresql://`` URI of the test server, in a schema of this test's own."""
    from pg_support import admin_dsn, fresh_schema
    from psycopg.conninfo import conninfo_to_dict

    with fresh_schema() as schema_dsn:
        uri = admin_dsn()
        options = conninfo_to_dict(schema_dsn)["options"]
        yield uri + ("&" if "?" in uri else "?") + "options=" + quote(str(options), safe="")


def backends_of(admin_dsn: str, application_name: str) -> list[int]:
    import psycopg

    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (application_name,)
        ).fetchall()
    return [pid for (pid,) in rows]


def test_a_frozen_postgresql_backend_never_lets_two_workers_run_one_item(
    tmp_path: Path, pg_uri: str, procs: list[subprocess.Popen[Any]]
) -> None:
    from pg_support import admin_dsn

    from litecoord import PostgresCoordinator

    checker = PostgresCoordinator(pg_uri, session=SESSION, worker_id="checker")
    create_items(checker)
    env = environment(tmp_path)

    def start(name: str) -> subprocess.Popen[str]:
        proc = start_worker(["--db", f"{pg_uri}&application_name=freeze-{name}"], name, env)
        procs.append(proc)
        return proc

    try:
        result = freeze_while_a_works(
            tmp_path, {"A": start("A")}, lambda: backends_of(admin_dsn(), "freeze-A"), lambda: start("B"), checker
        )
        items = statuses(checker)
    finally:
        checker.close()
        for proc in procs:  # before the schema is dropped
            with_continued(proc.pid)
            proc.kill()
            proc.wait()
    check(result, items)


@pytest.mark.parametrize("database", ["postgres", "sqlite"])
def test_a_frozen_server_never_lets_two_workers_run_one_item(
    tmp_path: Path, database: str, procs: list[subprocess.Popen[Any]], request: pytest.FixtureRequest
) -> None:
    from litecoord import PostgresCoordinator, SqliteCoordinator

    if database == "postgres":
        db = request.getfixturevalue("pg_uri")
        checker: Any = PostgresCoordinator(db, session=SESSION, worker_id="checker")
    else:
        db = str(tmp_path / "shared.db")
        checker = SqliteCoordinator(db, session=SESSION, worker_id="checker")
    create_items(checker)
    env = environment(tmp_path)
    servers = [start_server(db, env) for _ in range(2)]
    procs.extend(proc for proc, _ in servers)

    def start(name: str, url: str) -> subprocess.Popen[str]:
        proc = start_worker(["--url", url], name, env)
        procs.append(proc)
        return proc

    try:
        result = freeze_while_a_works(
            tmp_path,
            {"A": start("A", servers[0][1])},
            lambda: [servers[0][0].pid],
            lambda: start("B", servers[1][1]),
            checker,
        )
        items = statuses(checker)
    finally:
        checker.close()
        for proc in procs:  # before the schema is dropped
            with_continued(proc.pid)
            proc.kill()
            proc.wait()
    check(result, items)
