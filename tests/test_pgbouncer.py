"""PostgreSQL behind a transaction-mode pooler: a real PgBouncer (`.ci/pgbouncer`), a plain DSN.

A transaction-mode pooler hands every transaction whichever server
connection is free, so a client's prepared statements (psycopg prepares a
statement from its 5th run on a connection) are missing, or name another
client's SQL, on the connection the next transaction gets. The conformance
suite runs over PgBouncer too (the ``postgres-pgbouncer`` backend); these
tests put several clients on the pool at once, which is where sharing shows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from pg_support import fresh_pooled_database

from litecoord import WorkItemAndDuration, WorkItemStatus


@pytest.fixture
def pooled() -> Iterator[str]:
    with fresh_pooled_database() as dsn:
        yield dsn


def coordinator(dsn: str, **kwargs):
    from litecoord import PostgresCoordinator

    return PostgresCoordinator(dsn, **kwargs)


def test_clients_taking_turns_on_the_pool_never_meet_each_others_prepared_statements(pooled: str) -> None:
    # Three workers in turn: PgBouncer gives each transaction the one idle server
    # connection, on which every client would prepare (and look for) its own _pg3_N.
    workers = [coordinator(pooled, session="s", worker_id=f"w{n}") for n in range(3)]
    workers[0].create_work_items([{"work_item_id": f"i{n:02d}", "document_count": 10} for n in range(45)])
    done = []
    for _ in range(15):
        for worker in workers:
            lease = worker.acquire_next_work_item()
            assert isinstance(lease, WorkItemAndDuration), lease
            item = lease.work_item.work_item_id
            worker.update_progress_and_renew_lease(item, 5, 50)
            worker.complete_work_item(item)
            done.append(item)
    assert sorted(done) == [f"i{n:02d}" for n in range(45)]
    status = workers[1].status()
    assert (status.completed_work_items, status.total_documents_processed) == (45, 450)
    for worker in workers:
        worker.close()


def test_a_server_pool_and_an_export_work_through_the_pooler(pooled: str) -> None:
    # A server's threads share a pool of client connections; export reads a snapshot
    # through a server-side cursor, which must live inside its one transaction.
    from concurrent.futures import ThreadPoolExecutor

    server = coordinator(pooled, session="s", worker_id="server", pool_size=3)
    server.create_work_items([{"work_item_id": f"i{n:03d}"} for n in range(2100)])

    def status(_: int) -> int:
        return server.status().total_work_items

    with ThreadPoolExecutor(6) as pool:
        assert set(pool.map(status, range(60))) == {2100}
    records = list(server.export_session())
    items = [r for r in records if r.get("type") == "item"]
    assert len(items) == 2100
    copy = coordinator(pooled, session="copy", worker_id="w")
    assert copy.import_session(records).items == 2100
    server.close()
    copy.close()


@pytest.mark.slow
def test_litecoord_work_with_three_processes_through_the_pooler(pooled: str, tmp_path) -> None:
    items = 24
    setup = coordinator(pooled, session="s", worker_id="setup")
    setup.create_work_items([{"work_item_id": f"i{n:02d}", "document_count": 4} for n in range(items)])
    # Each run appends its item to one log, so a second run of any item would show.
    script = (
        "import os, sys\n"
        "print('LITECOORD-PROGRESS docs=2', flush=True)\n"
        "with open(sys.argv[1], 'a') as f: f.write(os.environ['LITECOORD_WORK_ITEM_ID'] + '\\n')\n"
    )
    log = tmp_path / "runs.log"
    result = subprocess.run(
        [sys.executable, "-m", "litecoord.cli", "work", "--db", pooled, "-s", "s", "-w", "pool",
         "--workers", "3", "--poll", "0.05", "--heartbeat", "0.05", "-q", "--", sys.executable, "-c", script, str(log)],
        capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONFAULTHANDLER": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "prepared statement" not in result.stderr, result.stderr
    runs = log.read_text().split()
    assert sorted(runs) == [f"i{n:02d}" for n in range(items)]  # each item ran once
    done = setup.list_work_items()
    assert {i.status for i in done} == {WorkItemStatus.COMPLETED}
    assert len({i.worker_id for i in done} - {None}) >= 1
    status = json.loads(
        subprocess.run(
            [sys.executable, "-m", "litecoord.cli", "status", "--db", pooled, "-s", "s", "--json"],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout
    )  # fmt: skip
    assert status["completed_work_items"] == items
    setup.close()
