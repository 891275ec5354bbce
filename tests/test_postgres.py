"""What only the PostgreSQL backend has: its schema version, its connections, the database's clock.

The contract itself (the same results and errors as SQLite) is proven by the
conformance suite, which runs against ``postgres`` and ``http-postgres``.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
import rest_support
from pg_support import fresh_schema

from litecoord import (
    DatabaseUnavailableError,
    FakeClock,
    LitecoordError,
    NoAvailableWorkToBeDone,
    SchemaVersionError,
    WorkCoordinationConfig,
    WorkItemAndDuration,
    connect,
)

CTX = multiprocessing.get_context("spawn")


@pytest.fixture
def dsn() -> Iterator[str]:
    with fresh_schema() as dsn:
        yield dsn


def coordinator(dsn: str, **kwargs):
    from litecoord import PostgresCoordinator

    return PostgresCoordinator(dsn, **kwargs)


def sql(dsn: str, statement: str, *params) -> list[tuple]:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(statement, params or None)
        return cur.fetchall() if cur.description else []


# -- schema ----------------------------------------------------------------------------


def test_a_newer_schema_is_refused_and_nothing_is_written(dsn: str) -> None:
    from litecoord.backends.postgres.store import SCHEMA_VERSION

    coord = coordinator(dsn, session="s", worker_id="w")
    coord.create_unassigned_work_item("a")
    sql(dsn, "UPDATE litecoord_meta SET value = '99' WHERE key = 'schema_version'")
    for call in (lambda c: c.create_unassigned_work_item("b"), lambda c: c.setup(), lambda c: c.status()):
        fresh = coordinator(dsn, session="s", worker_id="w")
        with pytest.raises(SchemaVersionError, match=f"version 99, newer than this litecoord's {SCHEMA_VERSION};"):
            call(fresh)
    assert sql(dsn, "SELECT work_item_id FROM work_items") == [("a",)]


def test_an_older_schema_is_refused_until_setup_migrates_it(dsn: str) -> None:
    from litecoord.backends.postgres.store import SCHEMA_VERSION

    coordinator(dsn, session="s", worker_id="w").create_unassigned_work_item("a")
    sql(dsn, "UPDATE litecoord_meta SET value = '0' WHERE key = 'schema_version'")
    old = coordinator(dsn, session="s", worker_id="w")
    with pytest.raises(SchemaVersionError, match=rf"older than {SCHEMA_VERSION}; run setup\(\)"):
        old.acquire_next_work_item()
    old.setup()
    assert sql(dsn, "SELECT value FROM litecoord_meta WHERE key = 'schema_version'") == [(str(SCHEMA_VERSION),)]
    assert isinstance(old.acquire_next_work_item(), WorkItemAndDuration)


def _columns(dsn: str) -> list[tuple]:
    return sql(
        dsn,
        "SELECT table_name, column_name, data_type, is_nullable, column_default FROM information_schema.columns "
        "WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position",
    )


def test_a_version_2_database_is_migrated_by_setup_to_ranges_with_its_totals_kept(dsn: str) -> None:
    from pathlib import Path

    from litecoord.backends.postgres.store import SCHEMA_VERSION

    # A database as litecoord with schema version 2 left it: an RFS item with a successor, a plain item.
    sql(dsn, (Path(__file__).parent / "data" / "pg_schema_v2.sql").read_text(encoding="utf-8"))
    sql(dsn, "INSERT INTO sessions (name, created_at) VALUES ('s', 0)")
    sql(dsn, "INSERT INTO session_counters (session_id, shard) SELECT id, g FROM sessions, generate_series(0, 31) g")
    for item, status, count, parent in (
        ("logs__0__0", "completed", 100, None),
        ("logs__0__40", "pending", 60, "logs__0__0"),
        ("plain", "pending", 7, None),
    ):
        sql(
            dsn,
            "INSERT INTO work_items (session_id, work_item_id, status, document_count, parent_id, created_at, "
            "updated_at, completed_at) SELECT id, %s, %s, %s, %s, 0, 0, 0 FROM sessions",
            item, status, count, parent,
        )  # fmt: skip
    old = coordinator(dsn, session="s", worker_id="w")
    before = sql(dsn, "SELECT sum(total_documents)::bigint FROM session_counters")[0][0]
    with pytest.raises(SchemaVersionError, match=rf"version 2, older than {SCHEMA_VERSION}"):
        old.acquire_next_work_item()
    old.setup()
    migrated = _columns(dsn)
    with fresh_schema() as other:
        coordinator(other, session="s").setup()
        assert migrated == _columns(other)  # a migrated database is a new one
    assert sql(dsn, "SELECT value FROM litecoord_meta WHERE key = 'schema_version'") == [(str(SCHEMA_VERSION),)]
    items = {i.work_item_id: i for i in old.list_work_items()}
    assert {k: (i.range_start, i.range_end) for k, i in items.items()} == {
        "logs__0__0": (0, 100), "logs__0__40": (40, 100), "plain": (0, 7),
    }  # fmt: skip
    assert old.status().total_documents == before == 107  # the successor still re-counts its parent's share
    assert old.list_sessions()[0].split_min_documents == 10_000


def test_the_schema_lives_in_the_dsns_search_path(dsn: str) -> None:
    coordinator(dsn, session="s").create_unassigned_work_item("a")
    schema = sql(dsn, "SELECT current_schema()")[0][0]
    tables = {r[0] for r in sql(dsn, "SELECT tablename FROM pg_tables WHERE schemaname = %s", schema)}
    assert {"work_items", "sessions", "session_counters", "progress_samples", "litecoord_meta"} <= tables
    options = sql(
        dsn, "SELECT reloptions FROM pg_class WHERE relname = 'work_items' AND relnamespace = %s::regnamespace", schema
    )
    assert "fillfactor=80" in options[0][0]


# -- connections ---------------------------------------------------------------------


def test_an_unreachable_database_is_one_clear_error_without_the_password(tmp_path) -> None:
    dsn = f"postgresql://someone:s3cret@/backfill?host={tmp_path}&connect_timeout=1"
    coord = coordinator(dsn, session="s", worker_id="w")
    with pytest.raises(DatabaseUnavailableError) as err:
        coord.status()
    message = str(err.value)
    assert "cannot reach the PostgreSQL database" in message and str(tmp_path) in message
    assert "s3cret" not in message and "\n" not in message
    assert err.value.http_status == 503 and err.value.code == "database_unavailable"


def test_an_unreachable_database_over_http_answers_503_without_the_dsn(tmp_path) -> None:
    from litecoord import create_app

    dsn = f"postgresql://someone:s3cret@/backfill?host={tmp_path}&connect_timeout=1"
    app = create_app(dsn)
    reply = rest_support.call(app, "GET", f"{rest_support.BASE}/status")
    text = reply.raw.decode()
    assert reply.status == 503 and reply.json["code"] == "database_unavailable", text
    assert "cannot reach the PostgreSQL database" in reply.json["detail"]
    assert str(tmp_path) not in text and "someone" not in text and "s3cret" not in text


def test_the_cli_reports_an_unreachable_database_in_one_line(tmp_path) -> None:
    dsn = f"postgresql://someone:s3cret@/backfill?host={tmp_path}&connect_timeout=1"
    result = subprocess.run(
        [sys.executable, "-m", "litecoord.cli", "status", "--db", dsn],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: cannot reach the PostgreSQL database"), result.stderr
    assert "s3cret" not in result.stderr and "Traceback" not in result.stderr


def _terminate_others(dsn: str) -> int:
    return len(
        sql(
            dsn,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE pid <> pg_backend_pid() AND datname = current_database() AND backend_type = 'client backend' "
            "AND application_name = 'lc-test-victim'",
        )
    )


def test_a_connection_lost_between_calls_is_reopened_for_every_call(dsn: str) -> None:
    victim = dsn + "&application_name=lc-test-victim"
    coord = coordinator(victim, session="s", worker_id="w")
    coord.create_work_items([{"work_item_id": "a"}, {"work_item_id": "b"}])
    assert _terminate_others(dsn) == 1
    # Not safe to repeat after a commit, but this connection died before the
    # transaction began: nothing was sent, so it runs again on a new connection.
    assert coord.create_unassigned_work_item("c") is True
    assert _terminate_others(dsn) == 1
    lease = coord.acquire_next_work_item()
    assert isinstance(lease, WorkItemAndDuration)
    assert _terminate_others(dsn) == 1
    assert coord.release_work_item(lease.work_item_id) is True
    assert coord.status().total_work_items == 3


def _use_in_child(dsn: str, results) -> None:
    coord = _INHERITED_COORD
    try:
        results.put(coord.create_unassigned_work_item(f"child-{os.getpid()}"))
    except BaseException as exc:  # noqa: BLE001
        results.put(repr(exc))


_INHERITED_COORD = None


def test_a_coordinator_keeps_working_across_fork_and_never_shares_the_parents_connection(dsn: str) -> None:
    global _INHERITED_COORD
    coord = coordinator(dsn, session="s", worker_id="w")
    coord.create_unassigned_work_item("parent-1")
    _INHERITED_COORD = coord
    fork = multiprocessing.get_context("fork")
    results = fork.Queue()
    child = fork.Process(target=_use_in_child, args=(dsn, results))
    child.start()
    assert results.get(timeout=60) is True
    child.join(timeout=30)
    assert child.exitcode == 0
    # The parent's connection survived the child (which would have ended it by closing it).
    assert coord.create_unassigned_work_item("parent-2") is True
    assert {i.work_item_id for i in coord.list_work_items()} == {"parent-1", "parent-2", f"child-{child.pid}"}


def test_a_pool_serves_more_threads_than_it_has_connections(dsn: str) -> None:
    import threading

    coord = coordinator(dsn, session="s", worker_id="w", pool_size=2)
    coord.create_work_items([{"work_item_id": f"i{n}"} for n in range(40)])
    got: list[str] = []
    lock = threading.Lock()

    def take(k: int) -> None:
        worker = coord.bind(worker_id=f"t{k}")
        for _ in range(5):
            lease = worker.acquire_next_work_item()
            assert isinstance(lease, WorkItemAndDuration)
            worker.complete_work_item(lease.work_item_id)
            with lock:
                got.append(lease.work_item_id)

    threads = [threading.Thread(target=take, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == sorted(f"i{n}" for n in range(40))
    assert len(coord.store._opened) <= 2


# -- durability and configuration --------------------------------------------------------


def test_normal_durability_turns_synchronous_commit_off_for_its_own_transactions_only(dsn: str) -> None:
    seen = {}
    for durability in ("full", "normal"):
        coord = coordinator(dsn, session="s", durability=durability)
        seen[durability] = coord.store.run(
            lambda cur, now: cur.execute("SELECT current_setting('synchronous_commit')").fetchone()[0],
            now=None,
            idempotent=True,
            create=True,
        )
        # Outside litecoord's transaction the connection keeps the server's setting.
        conn = coord.store._local.conn
        assert conn.execute("SELECT current_setting('synchronous_commit')").fetchone()[0] == "on"
    assert seen == {"full": "on", "normal": "off"}


def test_bad_arguments_are_refused_before_connecting() -> None:
    with pytest.raises(LitecoordError, match="durability"):
        coordinator("postgresql://nowhere/x", durability="fast")
    with pytest.raises(LitecoordError, match="pool_size"):
        coordinator("postgresql://nowhere/x", pool_size=0)


def test_config_and_properties_select_postgres_with_the_password_from_the_environment(dsn, monkeypatch) -> None:
    props = {
        "workcoordination.backend": "postgres",
        "workcoordination.postgres.url": "postgresql://backfill@db.internal/backfill",
        "workcoordination.postgres.password_env": "BACKFILL_PW",
        "workcoordination.sessionName": "s1",
        "workcoordination.workerId": "w1",
    }
    config = WorkCoordinationConfig.from_mapping(props)
    assert config == WorkCoordinationConfig.postgres(
        "postgresql://backfill@db.internal/backfill", "s1", "w1", password_env="BACKFILL_PW"
    )
    with pytest.raises(LitecoordError, match="BACKFILL_PW, which is not set"):
        connect(config)
    monkeypatch.setenv("BACKFILL_PW", "pw")
    made = connect(config)
    assert "password=pw" in made.dsn and "pw" not in repr(made)
    # Against the test server: a working coordinator.
    live = connect(WorkCoordinationConfig.postgres(dsn, "s1", "w1"))
    assert live.create_unassigned_work_item("x") is True
    with pytest.raises(LitecoordError, match="workcoordination.postgres.url"):
        WorkCoordinationConfig.from_mapping({**props, "workcoordination.postgres.url": "backfill.db"})


# -- time -----------------------------------------------------------------------------------


def _acquire_with_skewed_clock(dsn: str, worker: str, skew_seconds: float, results) -> None:
    """Acquire with this process's wall clock running ``skew_seconds`` off (time.time patched, no clock=)."""
    import time

    from litecoord import PostgresCoordinator

    real = time.time
    time.time = lambda: real() + skew_seconds  # this host's clock is wrong, by a lot
    try:
        coord = PostgresCoordinator(dsn, session="skew", worker_id=worker)
        outcome = coord.acquire_next_work_item(timedelta(minutes=1))
        local_now = time.time()
        if isinstance(outcome, WorkItemAndDuration):
            expiry = outcome.lease_expiration_time.timestamp()
            results.put((worker, outcome.work_item_id, expiry, local_now))
        else:
            results.put((worker, None, outcome.remaining, local_now))
    except BaseException as exc:  # noqa: BLE001 - report, never hang the parent
        results.put((worker, "error", repr(exc), 0))


def _in_process(dsn: str, worker: str, skew: float) -> tuple:
    results = CTX.Queue()
    proc = CTX.Process(target=_acquire_with_skewed_clock, args=(dsn, worker, skew, results))
    proc.start()
    out = results.get(timeout=120)
    proc.join(timeout=30)
    assert proc.exitcode == 0
    assert out[1] != "error", out
    return out


def test_leases_follow_the_database_clock_whatever_each_hosts_clock_says(dsn: str) -> None:
    coordinator(dsn, session="skew", worker_id="creator").create_unassigned_work_item("only")
    db_now = sql(dsn, "SELECT extract(epoch FROM now())::float8")[0][0]
    # A host whose clock is an hour slow takes the item with a 1-minute lease...
    slow = _in_process(dsn, "slow-host", -3600)
    assert slow[1] == "only"
    assert slow[3] < db_now - 3000  # its own clock really was an hour behind
    # ...and the lease runs one minute of the database's time, not of the slow host's.
    assert abs(slow[2] - (db_now + 60)) < 30
    # A host whose clock is two hours fast would, by its own clock, see that lease
    # as long lapsed and take the item; by the database's it is live, so it cannot.
    fast = _in_process(dsn, "fast-host", +7200)
    assert fast[3] > db_now + 7000
    assert fast[1] is None and fast[2] == 1  # no work for it: the one item is leased
    assert [i.worker_id for i in coordinator(dsn, session="skew").list_work_items()] == ["slow-host"]


def test_an_injected_clock_wins_over_the_database_clock(dsn: str) -> None:
    clock = FakeClock(datetime(2001, 1, 1, tzinfo=timezone.utc))
    coord = coordinator(dsn, session="s", worker_id="w", clock=clock)
    coord.create_unassigned_work_item("a")
    lease = coord.acquire_next_work_item(timedelta(minutes=1))
    assert isinstance(lease, WorkItemAndDuration)
    assert lease.lease_expiration_time == datetime(2001, 1, 1, 0, 1, tzinfo=timezone.utc)
    clock.advance(minutes=2)
    other = coordinator(dsn, session="s", worker_id="other", clock=clock)
    assert isinstance(other.acquire_next_work_item(), WorkItemAndDuration)
    assert isinstance(coord.acquire_next_work_item(), NoAvailableWorkToBeDone)


# -- counts ------------------------------------------------------------------------------------


def test_progress_samples_and_exports_stay_exact_past_2_63(dsn: str) -> None:
    """The counters' sums feed the progress samples: they too must hold totals past BIGINT (2**63 - 1)."""
    from litecoord.validation import MAX_COUNT

    clock = FakeClock(datetime(2001, 1, 1, tzinfo=timezone.utc))
    coord = coordinator(dsn, session="s", worker_id="w", clock=clock)
    coord.create_work_items([{"work_item_id": f"i{n}", "document_count": MAX_COUNT} for n in range(1100)])
    # The same items, finished at their full counts, go in through one import (1100 leases would be slow).
    finished = []
    for record in coord.export_session():
        if record["type"] == "item":
            record.update(status="completed", documents_processed=MAX_COUNT, bytes_processed=MAX_COUNT,
                          completed_at=record["created_at"])  # fmt: skip
        finished.append(record)
    coord.import_session(finished, replace=True)
    clock.advance(seconds=20)
    coord.create_unassigned_work_item("later")  # a change 10 s after the last sample writes the next one
    total = 1100 * MAX_COUNT
    assert total > 2**63
    assert coord.status().total_documents_processed == total
    sample = coord.progress_samples()[-1]
    assert (sample.documents_processed, sample.bytes_processed) == (total, total)
    assert type(sample.documents_processed) is int
    exported = [r for r in coord.export_session() if r["type"] == "sample"]
    assert exported[-1]["documents_processed"] == total and type(exported[-1]["bytes_processed"]) is int


# -- serve -------------------------------------------------------------------------------


def test_two_servers_over_one_database_serve_the_same_session_from_a_pool(dsn: str) -> None:
    from litecoord import HttpCoordinator
    from litecoord.rest.server import make_server

    first = make_server(dsn, port=0, threads=3).start()
    second = make_server(dsn, port=0, threads=3).start()
    try:
        assert first.app.root.store.pool_size == 3  # a pool as large as the request threads
        a = HttpCoordinator(first.url, session="s", worker_id="a")
        b = HttpCoordinator(second.url, session="s", worker_id="b")
        assert a.create_work_items([{"work_item_id": f"i{n}"} for n in range(4)])
        taken = {a.acquire_next_work_item().work_item_id, b.acquire_next_work_item().work_item_id}
        assert len(taken) == 2  # two servers, two different items
        assert b.status().assigned_work_items == 2
    finally:
        first.close()
        second.close()


def test_serve_refuses_to_start_on_an_unreachable_database_with_one_line(tmp_path) -> None:
    dsn = f"postgresql://someone:s3cret@/backfill?host={tmp_path}&connect_timeout=1"
    result = subprocess.run(
        [sys.executable, "-m", "litecoord.cli", "serve", "--db", dsn, "--port", "0"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: cannot reach the PostgreSQL database"), result.stderr
    assert "s3cret" not in result.stderr


# -- a connection lost during the commit ----------------------------------------------------


def _cut_next_commit(dsn: str) -> None:
    """Make the next commit that writes an item lose its connection, once.

    A deferred constraint trigger runs inside COMMIT; ending its own server
    process there breaks the connection during the commit: the one moment
    when a client cannot know whether its transaction took effect. A
    sequence counts the commits (nextval is not undone by the rollback), so
    only the first one is cut.
    """
    sql(dsn, "CREATE SEQUENCE IF NOT EXISTS cut_count")
    sql(dsn, "SELECT setval('cut_count', 1, false)")
    sql(
        dsn,
        """CREATE OR REPLACE FUNCTION cut_commit() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF nextval('cut_count') = 1 THEN
                PERFORM pg_terminate_backend(pg_backend_pid());
            END IF;
            RETURN NULL;
        END $$""",
    )
    sql(dsn, "DROP TRIGGER IF EXISTS cut_commit ON work_items")
    sql(
        dsn,
        "CREATE CONSTRAINT TRIGGER cut_commit AFTER INSERT OR UPDATE ON work_items "
        "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION cut_commit()",
    )


def test_a_commit_cut_off_is_repeated_for_a_call_that_is_safe_to_repeat(dsn: str) -> None:
    coord = coordinator(dsn, session="s", worker_id="w")
    coord.create_unassigned_work_item("a")
    lease = coord.acquire_next_work_item()
    assert isinstance(lease, WorkItemAndDuration)
    _cut_next_commit(dsn)
    done = coord.complete_work_item("a", lease_epoch=lease.lease_epoch)  # cut once, then run again
    assert done.status.value == "completed"
    assert sql(dsn, "SELECT last_value FROM cut_count")[0][0] >= 2  # the first commit really was cut


def test_a_commit_cut_off_is_an_error_for_a_call_that_is_not_safe_to_repeat(dsn: str) -> None:
    coord = coordinator(dsn, session="s", worker_id="w")
    coord.create_unassigned_work_item("a")
    _cut_next_commit(dsn)
    with pytest.raises(DatabaseUnavailableError, match="while committing; the call may or may not have taken effect"):
        coord.create_unassigned_work_item("b")
    # Here it had not (the server died before its commit record): the caller checks and decides.
    assert [i.work_item_id for i in coord.list_work_items()] == ["a"]


def test_a_version_1_database_migrates_with_a_running_attempt_for_each_live_lease(dsn: str) -> None:
    """Version 2 added the attempts and pausing: leases held across the migration get their history too."""
    from pathlib import Path

    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute((Path(__file__).parent / "data" / "pg_schema_v1.sql").read_text(encoding="utf-8"))
    clock = FakeClock(datetime(1970, 1, 1, 0, 0, 10, tzinfo=timezone.utc))
    old = coordinator(dsn, session="s", worker_id="w1", clock=clock)
    # A version-1 store mid-run: written by the version-1 schema's own rows (counter shards included).
    sql(dsn, "INSERT INTO sessions (name, created_at) VALUES ('s', 0)")
    sql(dsn, "INSERT INTO session_counters (session_id, shard) SELECT id, g FROM sessions, generate_series(0, 31) g")
    sql(
        dsn,
        "INSERT INTO work_items (session_id, work_item_id, status, worker_id, lease_epoch, lease_micros, "
        "lease_expiry, leased_at, documents_processed, created_at, updated_at) "
        "SELECT id, 'held', 'assigned', 'w1', 2, 600000000, 600000000, 5000000, 40, 0, 5000000 FROM sessions",
    )
    from litecoord.backends.postgres.store import SCHEMA_VERSION

    with pytest.raises(SchemaVersionError, match=rf"older than {SCHEMA_VERSION}; run setup\(\)"):
        old.work_item_history("held")
    old.setup()
    assert sql(dsn, "SELECT value FROM litecoord_meta WHERE key = 'schema_version'") == [(str(SCHEMA_VERSION),)]
    [running] = old.work_item_history("held")
    assert (running.lease_epoch, running.worker_id, running.outcome.value, running.documents_processed) == (
        2, "w1", "running", 40,
    )  # fmt: skip
    old.complete_work_item("held", lease_epoch=2)
    assert [a.outcome.value for a in old.work_item_history("held")] == ["completed"]
    old.pause()
    nothing = old.acquire_next_work_item()
    assert (nothing.paused, nothing.reason) == (True, "none_remain")  # paused, but nothing remains anyway
    assert old.status().paused is True


def test_the_split_hook_ends_the_running_attempt_as_split(dsn: str) -> None:
    """SPLIT_ATTEMPT: what a live split_work_item runs in its transaction when the split ends the lease."""
    from litecoord.backends.postgres.console import SPLIT_ATTEMPT

    coord = coordinator(dsn, session="s", worker_id="w", clock=FakeClock())
    coord.create_unassigned_work_item("a")
    lease = coord.acquire_next_work_item()
    coord.update_progress_and_renew_lease("a", 30)
    [(seq, sid)] = sql(dsn, "SELECT seq, session_id FROM work_items WHERE work_item_id = 'a'")
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(SPLIT_ATTEMPT, {"session": sid, "seq": seq, "epoch": lease.lease_epoch, "now": 123})
    [attempt] = coord.work_item_history("a")
    assert (attempt.outcome.value, attempt.documents_processed, attempt.ended_at.timestamp()) == ("split", 30, 0.000123)
