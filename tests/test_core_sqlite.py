"""What only the embedded backend promises: the file, its schema, plans, time, fork, locks."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sqlite3
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from freezegun import freeze_time

import litecoord
from litecoord import (
    DatabaseBusyError,
    FakeClock,
    LeaseExpiredError,
    NoAvailableWorkToBeDone,
    SqliteCoordinator,
    ValidationError,
    WorkItem,
    WorkItemAndDuration,
)
from litecoord.backends.sqlite import coordinator as backend
from litecoord.backends.sqlite.models import create_models
from litecoord.backends.sqlite.store import SCHEMA_VERSION, Store, load_schema, schema_statements

REPO = Path(__file__).resolve().parent.parent


def test_repo_schema_is_the_one_the_package_loads():
    assert (REPO / "schema.sql").read_text(encoding="utf-8") == load_schema()


def test_models_mirror_the_schema(db_path):
    coord = SqliteCoordinator(db_path, session="s", worker_id="w")
    coord.setup()
    models = create_models(coord.store.db)
    conn = sqlite3.connect(db_path)
    for model in models:
        table = model._meta.table_name
        columns = [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
        assert columns == [f.column_name for f in model._meta.sorted_fields], table
    conn.close()


def test_all_is_complete():
    public = {name for name in dir(litecoord) if not name.startswith("_") and name[0].isupper()}
    missing = public - set(litecoord.__all__)
    assert not missing, f"public names missing from __all__: {sorted(missing)}"
    for name in litecoord.__all__:
        assert hasattr(litecoord, name), name


def test_pragmas_default_to_full_durability(db_path):
    coord = SqliteCoordinator(db_path, session="s", worker_id="w")
    coord.setup()
    conn = coord.store.connection()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # SQLite commits at NORMAL either way; at FULL the store syncs the WAL itself (test_durability.py).
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert coord.store.durability == "full"
    fast = SqliteCoordinator(db_path, session="s", worker_id="w", durability="normal")
    assert fast.store.connection().execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    with pytest.raises(ValidationError) as err:
        SqliteCoordinator(db_path, durability="off")
    assert err.value.field == "durability"


def test_new_files_get_small_pages_and_old_files_keep_theirs(tmp_path):
    fresh = SqliteCoordinator(tmp_path / "new.db", session="s", worker_id="w")
    fresh.create_unassigned_work_item("a")
    assert fresh.store.connection().execute("PRAGMA page_size").fetchone()[0] == Store.PAGE_SIZE == 1024
    # A file made elsewhere (an older litecoord, SQLite's default 4 KiB) opens and works unchanged.
    old_path = tmp_path / "old.db"
    with sqlite3.connect(old_path) as conn:
        conn.execute("PRAGMA page_size=4096")
        conn.execute("PRAGMA journal_mode=wal")
        for statement in schema_statements():
            conn.execute(statement)
    old = SqliteCoordinator(old_path, session="s", worker_id="w")
    old.create_unassigned_work_item("a")
    assert isinstance(old.acquire_next_work_item(), WorkItemAndDuration)
    assert old.store.connection().execute("PRAGMA page_size").fetchone()[0] == 4096
    assert old.store.connection().execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_in_memory_and_bad_names_are_refused(tmp_path):
    with pytest.raises(ValidationError) as err:
        SqliteCoordinator(":memory:")
    assert err.value.field == "path"
    for bad in ("", "x" * 129, "tab\there"):
        with pytest.raises(ValidationError) as err:
            SqliteCoordinator(tmp_path / "a.db", session=bad)
        assert err.value.field == "session"
    with pytest.raises(ValidationError) as err:
        SqliteCoordinator(tmp_path / "a.db", worker_id="")
    assert err.value.field == "worker_id"
    assert not (tmp_path / "a.db").exists()


def _plan(conn: sqlite3.Connection, sql: str, params: object) -> str:
    rows = conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
    return "\n".join(row[-1] for row in rows)


def test_acquire_reads_indexes_never_scans(db_path):
    coord = SqliteCoordinator(db_path, session="s", worker_id="w")
    coord.create_work_items([{"work_item_id": f"i{n}", "total_size_bytes": n} for n in range(50)])
    conn = coord.store.connection()
    conn.execute("ANALYZE")
    params = {"session": 1, "worker": "w", "now": 0, "duration": 1}
    plan = _plan(conn, backend._ACQUIRE, params)
    assert "work_items_assigned_expiry" in plan
    assert "work_items_pending" in plan
    assert "work_items_retry_wait" in plan  # failed items waiting out a retry delay
    assert "SCAN work_items" not in plan and "TEMP B-TREE" not in plan, plan
    nothing = _plan(conn, backend._NOTHING_TO_ACQUIRE, {"session": 1})
    assert "work_items_retry_wait" in nothing and "SCAN work_items" not in nothing, nothing
    held = _plan(conn, backend._HELD_BY_WORKER, (1, "w", 0))
    # The holder index: the expiry one would walk every live lease of the session.
    assert "USING INDEX work_items_assigned_holder" in held and "SCAN" not in held, held
    for sql in (backend._RENEW, backend._COMPLETE, backend._RELEASE):
        plan = _plan(conn, sql, {"session": 1, "id": "x", "worker": "w", "epoch": None, "now": 0, "docs": None,
                                 "bytes": None, "duration": None})  # fmt: skip
        assert "SCAN work_items" not in plan, plan
    waiting = _plan(conn, backend._RETRY_WAITING, (1,))
    assert "work_items_retry_wait" in waiting and "SCAN work_items" not in waiting, waiting
    live = _plan(conn, backend._LIVE_LEASES, (1, 0))
    assert "work_items_assigned_expiry" in live and "SCAN" not in live, live


def test_freezegun_controls_leases(db_path):
    start = datetime(2025, 1, 19, 20, 30, tzinfo=timezone.utc)
    with freeze_time(start) as frozen:
        a = SqliteCoordinator(db_path, session="s", worker_id="a")
        b = a.bind(worker_id="b")
        a.create_unassigned_work_item("x")
        lease = a.acquire_next_work_item(timedelta(minutes=5))
        assert isinstance(lease, WorkItemAndDuration)
        assert lease.lease_expiration_time == start + timedelta(minutes=5)
        frozen.tick(timedelta(minutes=4, seconds=59))
        assert isinstance(b.acquire_next_work_item(), NoAvailableWorkToBeDone)
        frozen.tick(timedelta(seconds=1))
        with pytest.raises(LeaseExpiredError):
            a.update_progress_and_renew_lease("x", 1, 1)
        taken = b.acquire_next_work_item()
        assert isinstance(taken, WorkItemAndDuration) and taken.work_item.worker_id == "b"


def test_bind_shares_the_store_and_clock(db_path):
    clock = FakeClock()
    a = SqliteCoordinator(db_path, session="s", worker_id="a", clock=clock)
    other = a.bind(session="t", worker_id="b")
    assert other.store is a.store and (other.session, other.worker_id) == ("t", "b")
    other.create_unassigned_work_item("x")
    assert other.get_work_item("x").created_at == clock()


def test_default_worker_id_is_per_process(db_path):
    coord = SqliteCoordinator(db_path, session="s")
    assert coord.worker_id.endswith(f"-{os.getpid()}")


def test_a_coordinator_made_before_fork_works_in_the_child(db_path):
    coord = SqliteCoordinator(db_path, session="s", worker_id="parent")
    coord.create_work_items([{"work_item_id": "p"}, {"work_item_id": "c"}])
    parent_lease = coord.acquire_next_work_item()
    assert isinstance(parent_lease, WorkItemAndDuration)
    pid = os.fork()
    if pid == 0:  # the child: must not touch the parent's connection
        code = 1
        try:
            child = coord.bind(worker_id="child")
            lease = child.acquire_next_work_item()
            if isinstance(lease, WorkItemAndDuration) and lease.work_item_id != parent_lease.work_item_id:
                child.complete_work_item(lease.work_item_id)
                code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # The parent's connection still works after the child used and left the file.
    coord.complete_work_item(parent_lease.work_item_id)
    assert coord.status().completed_work_items == 2


def test_a_long_held_external_lock_surfaces_as_database_busy(db_path):
    coord = SqliteCoordinator(db_path, session="s", worker_id="w", busy_timeout=0.5)
    coord.create_unassigned_work_item("x")
    blocker = sqlite3.connect(db_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(DatabaseBusyError) as err:
            coord.acquire_next_work_item()
        assert err.value.http_status == 503
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert isinstance(coord.acquire_next_work_item(), WorkItemAndDuration)


def test_a_briefly_held_lock_is_waited_out_inside_the_library(db_path):
    coord = SqliteCoordinator(db_path, session="s", worker_id="w")
    coord.create_unassigned_work_item("x")
    blocker = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")
    released = threading.Timer(1.5, lambda: blocker.execute("ROLLBACK"))
    released.start()
    try:
        # Longer than one SQLite busy wait (1 s): the library retries rather than raising.
        assert isinstance(coord.acquire_next_work_item(), WorkItemAndDuration)
    finally:
        released.join()
        blocker.close()


def test_items_built_from_rows_are_whole_frozen_dataclasses(db_path):
    # Rows become WorkItems without __init__ (a hot path): a field added to the
    # dataclass but not to the row reader must fail here, not reach a client.
    coord = SqliteCoordinator(db_path, session="s", worker_id="w", clock=FakeClock())
    coord.create_work_item_with_metadata("logs__0__0", "logs", 0, 100, 10)
    lease = coord.acquire_next_work_item()
    assert isinstance(lease, WorkItemAndDuration)
    renewed = coord.update_progress_and_renew_lease("logs__0__0", 5, 6)
    for item in (lease.work_item, renewed, coord.complete_work_item("logs__0__0")):
        names = [f.name for f in dataclasses.fields(WorkItem)]
        assert sorted(vars(item)) == sorted(names)
        rebuilt = WorkItem(**{name: getattr(item, name) for name in names})
        assert rebuilt == item and hash(rebuilt) == hash(item) and repr(rebuilt) == repr(item)
        with pytest.raises(dataclasses.FrozenInstanceError):
            item.status = "pending"  # type: ignore[misc]
    assert renewed.documents_processed == 5 and renewed.last_heartbeat == renewed.leased_at


def test_newer_schema_version_is_refused(db_path):
    Store(db_path).ensure_schema()
    conn = sqlite3.connect(db_path)
    conn.execute("UPDATE litecoord_meta SET value = '99' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(litecoord.LitecoordError, match="version 99"):
        SqliteCoordinator(db_path, session="s").create_unassigned_work_item("x")


def test_counters_match_a_full_recount(db_path):
    clock = FakeClock()
    coord = SqliteCoordinator(db_path, session="s", worker_id="w", clock=clock)
    coord.create_work_items(
        [{"work_item_id": f"i{n}", "document_count": 10 * n, "total_size_bytes": n} for n in range(30)]
    )
    for n in range(12):
        worker = coord.bind(worker_id=f"w{n}")
        lease = worker.acquire_next_work_item(timedelta(minutes=1 + n % 3))
        worker.update_progress_and_renew_lease(lease.work_item_id, n, n)
        if n % 4 == 0:
            worker.complete_work_item(lease.work_item_id)
        elif n % 4 == 1:
            worker.create_successor_work_items_and_mark_complete(lease.work_item_id, [f"{lease.work_item_id}-a"])
        elif n % 4 == 2:
            worker.fail_work_item(lease.work_item_id, "x")
    clock.advance(minutes=2)
    coord.cleanup_expired()
    status = coord.status()
    conn = sqlite3.connect(db_path)
    (total, completed, failed, docs_done, roots_docs, live) = conn.execute(
        "SELECT count(*), sum(status = 'completed'), sum(status = 'failed'), sum(documents_processed), "
        "sum(CASE WHEN parent_id IS NULL THEN coalesce(document_count, 0) END), "
        "sum(status = 'assigned' AND lease_expiry > ?) FROM work_items",
        (backend.to_micros(clock()),),
    ).fetchone()
    conn.close()
    assert (status.total_work_items, status.completed_work_items, status.failed_work_items) == (
        total,
        completed,
        failed,
    )
    assert status.total_documents_processed == docs_done
    assert status.total_documents == roots_docs
    assert status.assigned_work_items == live


def test_sqlite_backend_satisfies_the_protocol(db_path):
    from litecoord import Coordinator
    from litecoord.protocol import Coordinator as Proto

    coord = SqliteCoordinator(db_path, session="s", worker_id="w")
    assert isinstance(coord, Coordinator)
    wanted = {name for name in vars(Proto) if not name.startswith("_") and callable(getattr(Proto, name))}
    assert wanted <= set(dir(coord))


@pytest.mark.skipif(not os.environ.get("CI"), reason="CI installs a wheel; a dev checkout may be editable")
def test_ci_tests_the_installed_package_not_the_checkout():
    # The schema must load from the installed wheel, not from the repository.
    assert "site-packages" in litecoord.__file__
    assert load_schema() == (REPO / "schema.sql").read_text(encoding="utf-8")


def test_a_file_that_is_not_sqlite_gives_a_litecoord_error(tmp_path):
    bogus = tmp_path / "notes.db"
    bogus.write_text("this is not a database\n" * 100)
    with pytest.raises(litecoord.NotALitecoordFileError, match="notes.db is not a litecoord file: it is not an SQLite"):
        SqliteCoordinator(bogus, session="s", worker_id="w").create_unassigned_work_item("x")


def _version_1_file(path: Path) -> None:
    """A file as litecoord with schema version 1 left it: a session, a pending, a leased and a done item."""
    conn = sqlite3.connect(path)
    conn.executescript((Path(__file__).parent / "data" / "schema_v1.sql").read_text(encoding="utf-8"))
    conn.execute("INSERT INTO sessions (name, created_at, max_attempts) VALUES ('s', 0, 5)")
    for n, status in enumerate(("pending", "assigned", "completed")):
        conn.execute(
            "INSERT INTO work_items (session_id, work_item_id, status, worker_id, lease_expiry, document_count, "
            "created_at, updated_at) VALUES (1, ?, ?, ?, ?, 10, 0, 0)",
            (f"i{n}", status, "w" if status != "pending" else None, 1 if status == "assigned" else None),
        )
    conn.commit()
    conn.close()


def _tables_and_indexes(path: Path) -> dict[str, object]:
    conn = sqlite3.connect(path)
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        shape: dict[str, object] = {name: conn.execute(f"PRAGMA table_info({name})").fetchall() for name in names}
        shape["indexes"] = sorted(
            " ".join(sql.split())
            for (sql,) in conn.execute("SELECT sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
        )
        shape["triggers"] = sorted(r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'"))
        shape["version"] = conn.execute("SELECT value FROM litecoord_meta WHERE key = 'schema_version'").fetchone()
        return shape
    finally:
        conn.close()


def test_a_version_1_file_is_refused_with_the_way_out_until_setup_upgrades_it(tmp_path):
    old, new = tmp_path / "old.db", tmp_path / "new.db"
    _version_1_file(old)
    clock = FakeClock(datetime(1970, 1, 1, 0, 0, 10, tzinfo=timezone.utc))
    coord = SqliteCoordinator(old, session="s", worker_id="w2", clock=clock)
    with pytest.raises(litecoord.LitecoordError, match=r"schema version 1.*litecoord setup --db"):
        coord.acquire_next_work_item()
    assert _tables_and_indexes(old)["version"] == ("1",)  # the refusal wrote nothing
    coord.setup()
    SqliteCoordinator(new, session="s").setup()
    assert _tables_and_indexes(old) == _tables_and_indexes(new)  # an upgraded file is a new one
    # The items and the session's settings survived; the new options have their defaults.
    assert [(i.work_item_id, i.status.value) for i in coord.list_work_items()] == [
        ("i0", "pending"), ("i1", "pending"), ("i2", "completed"),
    ]  # fmt: skip
    info = coord.list_sessions()[0]
    assert (info.max_attempts, info.retry_delay) == (5, timedelta(seconds=10))
    # The lapsed lease comes back first, then the pending item: the upgraded indexes serve acquire.
    assert [coord.bind(worker_id=w).acquire_next_work_item().work_item_id for w in ("a", "b")] == ["i1", "i0"]
    coord.bind(worker_id="a").fail_work_item("i1", "boom")
    assert isinstance(coord.bind(worker_id="c").acquire_next_work_item(), NoAvailableWorkToBeDone)
    coord.close()
def test_a_version_3_file_is_upgraded_by_setup_to_ranges_with_its_totals_kept(tmp_path):
    old, new = tmp_path / "old.db", tmp_path / "new.db"
    conn = sqlite3.connect(old)
    conn.executescript((Path(__file__).parent / "data" / "schema_v3.sql").read_text(encoding="utf-8"))
    conn.execute("INSERT INTO sessions (name, created_at) VALUES ('s', 0)")
    for item, status, count, parent in (
        ("logs__0__0", "completed", 100, None),
        ("logs__0__40", "pending", 60, "logs__0__0"),
        ("plain", "pending", 7, None),
    ):
        conn.execute(
            "INSERT INTO work_items (session_id, work_item_id, status, document_count, parent_id, created_at, "
            "updated_at, completed_at) VALUES (1, ?, ?, ?, ?, 0, 0, 0)",
            (item, status, count, parent),
        )
    conn.commit()
    before = conn.execute("SELECT total_documents FROM sessions").fetchone()[0]
    conn.close()
    coord = SqliteCoordinator(old, session="s", worker_id="w")
    with pytest.raises(litecoord.LitecoordError, match=r"schema version 3.*litecoord setup --db"):
        coord.acquire_next_work_item()
    coord.setup()
    SqliteCoordinator(new, session="s").setup()
    assert _tables_and_indexes(old) == _tables_and_indexes(new)  # an upgraded file is a new one
    assert _tables_and_indexes(old)["version"] == (SCHEMA_VERSION,)
    items = {i.work_item_id: i for i in coord.list_work_items()}
    assert {k: (i.range_start, i.range_end) for k, i in items.items()} == {
        "logs__0__0": (0, 100), "logs__0__40": (40, 100), "plain": (0, 7),
    }  # fmt: skip
    assert coord.status().total_documents == before == 107  # the successor still re-counts its parent's share
    assert coord.list_sessions()[0].split_min_documents == 10_000
    # The recreated counter triggers count by counts_in_totals: deleting gives back exactly what was counted.
    coord.delete_session()
    coord.create_work_items([{"work_item_id": "x", "document_count": 5}])
    assert coord.status().total_documents == 5
    coord.close()


def test_triggers_are_compared_by_text_after_an_upgrade(tmp_path):
    old, new = tmp_path / "old.db", tmp_path / "new.db"
    conn = sqlite3.connect(old)
    conn.executescript((Path(__file__).parent / "data" / "schema_v3.sql").read_text(encoding="utf-8"))
    conn.close()
    SqliteCoordinator(old, session="s").setup()
    SqliteCoordinator(new, session="s").setup()

    def triggers(path: Path) -> list[str]:
        with contextlib.closing(sqlite3.connect(path)) as c:
            return sorted(r[0] for r in c.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger'"))

    assert triggers(old) == triggers(new)


@pytest.mark.parametrize("reading", ["noon", None, float("nan"), float("inf"), object()])
def test_a_clock_that_returns_no_time_is_a_litecoord_error_naming_the_clock(db_path, reading):
    def broken_clock():
        return reading

    SqliteCoordinator(db_path, session="s").create_unassigned_work_item("a")
    coord = SqliteCoordinator(db_path, session="s", worker_id="w", clock=broken_clock)
    for call in (coord.acquire_next_work_item, coord.status, lambda: coord.create_unassigned_work_item("b")):
        with pytest.raises(litecoord.LitecoordError, match="broken_clock") as err:
            call()
        assert "clock" in err.value.context
    assert [i.work_item_id for i in SqliteCoordinator(db_path, session="s").list_work_items()] == ["a"]


def test_a_version_2_file_upgrades_with_a_running_attempt_for_each_live_lease(tmp_path):
    """Version 3 added the attempts and pausing: leases held across the upgrade get their history too."""
    old, new = tmp_path / "old.db", tmp_path / "new.db"
    conn = sqlite3.connect(old)
    conn.executescript((Path(__file__).parent / "data" / "schema_v2.sql").read_text(encoding="utf-8"))
    conn.execute("INSERT INTO sessions (name, created_at) VALUES ('s', 0)")
    conn.execute(
        "INSERT INTO work_items (session_id, work_item_id, status, worker_id, lease_epoch, lease_micros, "
        "lease_expiry, leased_at, documents_processed, created_at, updated_at) "
        "VALUES (1, 'held', 'assigned', 'w1', 2, 600000000, 600000000, 5000000, 40, 0, 5000000)"
    )
    conn.execute("INSERT INTO work_items (session_id, work_item_id, created_at, updated_at) VALUES (1, 'p', 0, 0)")
    conn.commit()
    conn.close()
    clock = FakeClock(datetime(1970, 1, 1, 0, 0, 10, tzinfo=timezone.utc))
    coord = SqliteCoordinator(old, session="s", worker_id="w1", clock=clock)
    with pytest.raises(litecoord.LitecoordError, match=r"schema version 2.*litecoord setup --db"):
        coord.work_item_history("held")
    coord.setup()
    SqliteCoordinator(new, session="s").setup()
    assert _tables_and_indexes(old) == _tables_and_indexes(new)
    [running] = coord.work_item_history("held")
    assert (running.lease_epoch, running.worker_id, running.outcome.value, running.documents_processed) == (
        2, "w1", "running", 40,
    )  # fmt: skip
    coord.complete_work_item("held", lease_epoch=2)
    assert [a.outcome.value for a in coord.work_item_history("held")] == ["completed"]
    coord.pause()
    assert coord.acquire_next_work_item().paused
    coord.close()


def test_the_split_hook_ends_the_running_attempt_as_split(db_path):
    """SPLIT_ATTEMPT: what a live split_work_item runs in its transaction when the split ends the lease."""
    from litecoord.backends.sqlite.console import SPLIT_ATTEMPT

    coord = SqliteCoordinator(db_path, session="s", worker_id="w", clock=FakeClock())
    coord.create_unassigned_work_item("a")
    lease = coord.acquire_next_work_item()
    coord.update_progress_and_renew_lease("a", 30)
    query = "SELECT seq FROM work_items WHERE work_item_id = 'a'"
    [seq] = coord.store.read(lambda conn: conn.execute(query).fetchone())
    params = {"session": coord._sid(), "seq": seq, "epoch": lease.lease_epoch, "now": 123}
    coord.store.write(lambda conn: conn.execute(SPLIT_ATTEMPT, params))
    [attempt] = coord.work_item_history("a")
    assert (attempt.outcome.value, attempt.documents_processed, attempt.ended_at.timestamp()) == ("split", 30, 0.000123)
