"""How each database stores the attempts of ``work_item_history``, and the schema step that made it cheaper.

An attempt's row is written once, when the attempt ends (SQLite schema version 5,
PostgreSQL 4): the running attempt is read from its item's lease, with the figures
the previous attempt ended with. So a lease cycle writes one row and nothing at
acquire (what ``python -m benchmarks.history`` measures). The history reads the
same as before on every backend (tests/test_conformance_console.py); these tests
look at the rows, and upgrade a store of the previous version with history in it.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from pg_support import fresh_schema

from litecoord import FakeClock, SqliteCoordinator
from litecoord.errors import LitecoordError, SchemaVersionError

DATA = Path(__file__).parent / "data"
FIVE_MIN = timedelta(minutes=5)


def shape(attempts) -> list[tuple]:
    return [
        (a.lease_epoch, a.worker_id, a.outcome.value, a.ended_at is None, a.documents_processed, a.error)
        for a in attempts
    ]


def _cycle_writes_one_row_per_attempt(make, clock: FakeClock, rows) -> None:
    """``make(worker)``: coordinators over one store and ``clock``; ``rows()``: the attempts rows stored."""
    a, b = make("a"), make("b")
    a.create_work_items([{"work_item_id": "x", "document_count": 1000}])
    a.acquire_next_work_item(timedelta(seconds=30))
    a.update_progress_and_renew_lease("x", 300)
    assert rows() == []  # acquire and renewal write no history
    assert shape(a.work_item_history("x")) == [(1, "a", "running", True, 0, None)]
    clock.advance(seconds=60)  # a's lease lapsed; b takes the item over
    b.acquire_next_work_item(FIVE_MIN)
    assert [r[:2] for r in rows()] == [(1, "lapsed")]
    # b's running attempt reads the figures it began with: what a's ended with.
    assert shape(b.work_item_history("x")) == [
        (1, "a", "lapsed", False, 300, None), (2, "b", "running", True, 300, None),
    ]  # fmt: skip
    assert {w.worker_id: (w.attempts, w.lapsed) for w in b.list_workers()} == {"a": (1, 1), "b": (1, 0)}
    b.update_progress_and_renew_lease("x", 600)
    b.fail_work_item("x", "shard 1 failed: 429")
    assert [r[:2] for r in rows()] == [(1, "lapsed"), (2, "failed")]
    clock.advance(minutes=1)  # past the retry delay
    a.acquire_next_work_item(FIVE_MIN)
    assert shape(a.work_item_history("x"))[-1] == (3, "a", "running", True, 600, None)
    a.complete_work_item("x")
    assert [r[:2] for r in rows()] == [(1, "lapsed"), (2, "failed"), (3, "completed")]
    assert shape(a.work_item_history("x")) == [
        (1, "a", "lapsed", False, 300, None), (2, "b", "failed", False, 600, "shard 1 failed: 429"),
        (3, "a", "completed", False, 1000, None),
    ]  # fmt: skip


# -- SQLite ---------------------------------------------------------------------------------


def _sqlite_rows(path: Path) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute("SELECT lease_epoch, outcome FROM attempts ORDER BY item_seq, lease_epoch").fetchall()


def test_sqlite_a_lease_cycle_writes_one_history_row_when_the_attempt_ends(tmp_path):
    path = tmp_path / "c.db"
    clock = FakeClock()

    def make(worker: str) -> SqliteCoordinator:
        return SqliteCoordinator(path, session="s", worker_id=worker, clock=clock)

    _cycle_writes_one_row_per_attempt(make, clock, lambda: _sqlite_rows(path))


def _schema_shape(path: Path) -> dict[str, object]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        shape: dict[str, object] = {name: conn.execute(f"PRAGMA table_info({name})").fetchall() for name in names}
        for kind in ("index", "trigger"):
            shape[kind] = sorted(
                " ".join(sql.split())
                for (sql,) in conn.execute("SELECT sql FROM sqlite_master WHERE type = ? AND sql IS NOT NULL", (kind,))
            )
        shape["version"] = conn.execute("SELECT value FROM litecoord_meta WHERE key = 'schema_version'").fetchone()
        return shape


# A store mid-run under the previous schema: a completed item, and one whose first attempt
# failed and whose second (w2's, begun with 30 documents done, now at 70) runs. Its rows as
# that schema's triggers left them: the running attempt has its row, with its first figures.
_ITEMS = (
    "INSERT INTO work_items (session_id, work_item_id, status, worker_id, lease_epoch, lease_micros, lease_expiry, "
    "leased_at, documents_processed, bytes_processed, document_count, failure_count, last_error, created_at, "
    "updated_at) VALUES "
    "(1, 'done', 'completed', 'w1', 1, 60000000, 61000000, 1000000, 50, 500, 50, 0, NULL, 0, 3000000), "
    "(1, 'held', 'assigned', 'w2', 2, 600000000, 605000000, 5000000, 70, 700, 100, 1, 'boom', 0, 6000000)"
)
_ATTEMPTS = (
    "(1, (SELECT seq FROM work_items WHERE work_item_id = 'done'), 1, 'w1', 1000000, 3000000, 'completed', 50, 500, "
    "NULL), "
    "(1, (SELECT seq FROM work_items WHERE work_item_id = 'held'), 1, 'w1', 2000000, 4000000, 'failed', 30, 300, "
    "'boom'), "
    "(1, (SELECT seq FROM work_items WHERE work_item_id = 'held'), 2, 'w2', 5000000, NULL, 'running', 30, 300, NULL)"
)

def _check_upgraded_history(coord) -> None:
    """What the previous schema's history reads as after the upgrade, and that it goes on."""
    assert shape(coord.work_item_history("done")) == [(1, "w1", "completed", False, 50, None)]
    assert shape(coord.work_item_history("held")) == [
        (1, "w1", "failed", False, 30, "boom"), (2, "w2", "running", True, 30, None),
    ]  # fmt: skip
    assert {w.worker_id: (w.attempts, w.completed, w.failed) for w in coord.list_workers()} == {
        "w1": (2, 1, 1), "w2": (1, 0, 0),
    }  # fmt: skip
    coord.bind(worker_id="w2").complete_work_item("held", lease_epoch=2)  # its row is filled in: no second row
    assert shape(coord.work_item_history("held")) == [
        (1, "w1", "failed", False, 30, "boom"), (2, "w2", "completed", False, 100, None),
    ]  # fmt: skip
    coord.create_work_items([{"work_item_id": "new", "document_count": 5}])
    coord.bind(worker_id="w3").acquire_next_work_item(FIVE_MIN)
    assert shape(coord.work_item_history("new")) == [(1, "w3", "running", True, 0, None)]
    coord.bind(worker_id="w3").release_work_item("new")
    assert shape(coord.work_item_history("new")) == [(1, "w3", "released", False, 0, None)]


def test_a_version_4_file_upgrades_to_history_written_at_each_end_with_its_history_kept(tmp_path):
    from litecoord.backends.sqlite.store import SCHEMA_VERSION

    old, new = tmp_path / "old.db", tmp_path / "new.db"
    with contextlib.closing(sqlite3.connect(old)) as conn:
        conn.executescript((DATA / "schema_v4.sql").read_text(encoding="utf-8"))
        conn.execute("INSERT INTO sessions (name, created_at) VALUES ('s', 0)")
        conn.execute(_ITEMS)
        conn.execute(f"INSERT OR REPLACE INTO attempts VALUES {_ATTEMPTS}")
        conn.commit()
    clock = FakeClock(datetime(1970, 1, 1, 0, 0, 10, tzinfo=timezone.utc))
    coord = SqliteCoordinator(old, session="s", worker_id="w1", clock=clock)
    with pytest.raises(LitecoordError, match=r"schema version 4.*litecoord setup --db"):
        coord.work_item_history("held")
    coord.setup()
    SqliteCoordinator(new, session="s").setup()
    assert _schema_shape(old) == _schema_shape(new)  # an upgraded file is a new one, triggers and all
    assert _schema_shape(old)["version"] == (SCHEMA_VERSION,) == ("5",)
    _check_upgraded_history(coord)
    coord.close()


# -- PostgreSQL -----------------------------------------------------------------------------


@pytest.fixture
def dsn() -> Iterator[str]:
    with fresh_schema() as dsn:
        yield dsn


def _sql(dsn: str, statement: str) -> list[tuple]:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(statement)
        return cur.fetchall() if cur.description else []


def test_postgres_a_lease_cycle_writes_one_history_row_when_the_attempt_ends(dsn):
    from litecoord import PostgresCoordinator

    clock = FakeClock()

    def make(worker: str) -> PostgresCoordinator:
        return PostgresCoordinator(dsn, session="s", worker_id=worker, clock=clock)

    rows = "SELECT lease_epoch::int, outcome FROM attempts ORDER BY item_seq, lease_epoch"
    _cycle_writes_one_row_per_attempt(make, clock, lambda: _sql(dsn, rows))


def _pg_columns_and_triggers(dsn: str) -> list[tuple]:
    return _sql(
        dsn,
        "SELECT table_name, column_name, data_type, is_nullable, column_default FROM information_schema.columns "
        "WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position",
    ) + _sql(
        dsn,
        "SELECT tgname, replace(pg_get_triggerdef(t.oid), current_schema() || '.', '') "
        "FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "WHERE c.relnamespace = current_schema()::regnamespace AND NOT t.tgisinternal ORDER BY tgname",
    ) + _sql(
        dsn,
        "SELECT proname FROM pg_proc WHERE pronamespace = current_schema()::regnamespace ORDER BY proname",
    )


def test_a_version_3_database_migrates_to_history_written_at_each_end_with_its_history_kept(dsn):
    from litecoord import PostgresCoordinator
    from litecoord.backends.postgres.store import SCHEMA_VERSION

    _sql(dsn, (DATA / "pg_schema_v3.sql").read_text(encoding="utf-8"))
    _sql(dsn, "INSERT INTO sessions (name, created_at) VALUES ('s', 0)")
    _sql(dsn, "INSERT INTO session_counters (session_id, shard) SELECT id, g FROM sessions, generate_series(0, 31) g")
    _sql(dsn, _ITEMS.replace("(1, '", "((SELECT id FROM sessions), '"))
    _sql(
        dsn,
        f"INSERT INTO attempts VALUES {_ATTEMPTS.replace('(1, (', '((SELECT id FROM sessions), (')} "
        "ON CONFLICT (session_id, item_seq, lease_epoch) DO UPDATE SET documents_processed = 30, "
        "bytes_processed = 300",
    )
    clock = FakeClock(datetime(1970, 1, 1, 0, 0, 10, tzinfo=timezone.utc))
    coord = PostgresCoordinator(dsn, session="s", worker_id="w1", clock=clock)
    with pytest.raises(SchemaVersionError, match=r"version 3, older than"):
        coord.work_item_history("held")
    coord.setup()
    assert _sql(dsn, "SELECT value FROM litecoord_meta WHERE key = 'schema_version'") == [(str(SCHEMA_VERSION),)]
    assert SCHEMA_VERSION == 4
    migrated = _pg_columns_and_triggers(dsn)
    with fresh_schema() as other:
        PostgresCoordinator(other, session="s").setup()
        assert migrated == _pg_columns_and_triggers(other)  # a migrated database is a new one
    _check_upgraded_history(coord)
    coord.close()
