"""What a user meets on the way to a working PostgreSQL store: a key=value DSN, a wrong login,
an empty or foreign database, a read-only role, a damaged schema version, a port in use.

Each is one line naming the cause (never a traceback, never the password), and
nothing is written where litecoord was not asked to write.
"""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import rest_support
from pg_support import admin_dsn, fresh_schema

from litecoord import (
    DatabaseRefusedError,
    NotALitecoordFileError,
    SchemaVersionError,
    SqliteCoordinator,
)

SECRET = "Sup3rSecret"


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


def tables(dsn: str) -> list[str]:
    return [r[0] for r in sql(dsn, "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1")]


def key_value(dsn: str, **changes: str) -> str:
    """``dsn`` as a libpq key=value string, with ``changes`` (a password, another database...)."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    return make_conninfo("", **{**conninfo_to_dict(dsn), **changes})


def cli(*args: str, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "litecoord.cli", *args], capture_output=True, text=True, timeout=timeout, cwd=cwd
    )


def one_line(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


# -- a key=value DSN on the command line ---------------------------------------------------


def test_a_key_value_dsn_on_the_command_line_is_a_postgres_database_and_no_file(dsn: str, tmp_path: Path) -> None:
    # The trust-authenticated test server ignores the password: it only has to stay out of sight.
    given = key_value(dsn, password=SECRET)
    assert given.startswith(("user=", "host=", "dbname="))
    result = cli("setup", "--db", given, "-s", "kv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout + result.stderr
    assert list(tmp_path.iterdir()) == []  # no SQLite file named after the DSN
    assert "work_items" in tables(dsn)
    assert cli("create", "--db", given, "-s", "kv", "i1", cwd=tmp_path).returncode == 0
    assert [i.work_item_id for i in coordinator(dsn, session="kv").list_work_items()] == ["i1"]

    wrong = key_value(dsn, password=SECRET, dbname=f"nosuch_{uuid.uuid4().hex[:8]}")
    result = cli("status", "--db", wrong, "-s", "kv", cwd=tmp_path)
    line = one_line(result)
    assert result.returncode == 1 and "does not exist" in line, line
    assert SECRET not in result.stdout + result.stderr
    assert list(tmp_path.iterdir()) == []


# -- a refused login is permanent -------------------------------------------------------------


@pytest.fixture
def nologin_role() -> Iterator[str]:
    role = f"lc_nologin_{uuid.uuid4().hex[:8]}"
    sql(admin_dsn(), f"CREATE ROLE {role} NOLOGIN")
    try:
        yield role
    finally:
        sql(admin_dsn(), f"DROP ROLE {role}")


def test_a_refused_login_is_one_error_naming_the_cause_without_retrying(
    dsn: str, nologin_role: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg

    attempts = []
    real_connect = psycopg.connect

    def counting(*args, **kwargs):
        attempts.append(1)
        return real_connect(*args, **kwargs)

    monkeypatch.setattr(psycopg, "connect", counting)
    missing = f"nosuch_{uuid.uuid4().hex[:8]}"
    cases = {
        key_value(dsn, dbname=missing, password=SECRET): f'database "{missing}" does not exist',
        key_value(dsn, user="lc_nobody_here", password=SECRET): 'role "lc_nobody_here" does not exist',
        key_value(dsn, user=nologin_role, password=SECRET): "is not permitted to log in",
    }
    for wrong, cause in cases.items():
        attempts.clear()
        # connect_timeout bounds the retries of an unreachable database: a refusal must not use it.
        coord = coordinator(wrong, session="s", worker_id="w", connect_timeout=3)
        with pytest.raises(DatabaseRefusedError) as err:
            coord.status()
        message = str(err.value)
        assert cause in message and "refused the connection" in message, message
        assert SECRET not in message and "\n" not in message
        assert "cannot reach" not in message
        assert len(attempts) == 1  # not retried
        assert (err.value.code, err.value.http_status) == ("database_refused", 503)


def test_the_commands_and_work_stop_at_a_refused_login_in_one_line(dsn: str) -> None:
    wrong = key_value(dsn, dbname=f"nosuch_{uuid.uuid4().hex[:8]}", password=SECRET)
    status = cli("status", "--db", wrong, "-s", "s")
    assert status.returncode == 1 and "does not exist" in one_line(status)
    # Not 60 s of "acquire failed; retrying" (nor waiting for the database to come back):
    # the subprocess bound is far below the runner's patience with an unreachable store.
    for workers in ("1", "2"):
        work = cli("work", "--db", wrong, "-s", "s", "--workers", workers, "-q", "--", sys.executable, "-c", "0",
                   timeout=40)  # fmt: skip
        assert work.returncode == 1, work.stderr
        assert "does not exist" in work.stderr and SECRET not in work.stderr
        assert "retrying" not in work.stderr and "Traceback" not in work.stderr


# -- reads never create the schema; another application's tables are left alone ------------------


def test_reads_of_an_empty_database_create_nothing(dsn: str) -> None:
    coord = coordinator(dsn, session="s", worker_id="w")
    for read in (
        lambda c: c.status(),
        lambda c: c.list_sessions(),
        lambda c: c.list_work_items(),
        lambda c: c.acquire_next_work_item(),
        lambda c: c.get_work_item("a"),
    ):
        with pytest.raises(NotALitecoordFileError, match="holds no litecoord schema"):
            read(coord)
    result = cli("status", "--db", dsn, "-s", "s")
    assert result.returncode == 1 and "holds no litecoord schema" in one_line(result)
    assert tables(dsn) == []
    coord.create_unassigned_work_item("a")  # a write that creates items creates the schema
    assert coord.status().total_work_items == 1


def test_another_applications_work_items_table_is_refused_and_left_untouched(dsn: str) -> None:
    sql(dsn, "CREATE TABLE work_items (id SERIAL PRIMARY KEY, payload TEXT)")
    sql(dsn, "INSERT INTO work_items (payload) VALUES ('theirs')")
    for call in (
        lambda c: c.create_unassigned_work_item("a"),
        lambda c: c.setup(),
        lambda c: c.status(),
        lambda c: c.create_or_update_lease_for_work_item("a"),
    ):
        with pytest.raises(NotALitecoordFileError, match="is not a litecoord database.*work_items"):
            call(coordinator(dsn, session="s", worker_id="w"))
    result = cli("create", "--db", dsn, "-s", "s", "a")
    assert result.returncode == 1 and "is not a litecoord database" in one_line(result)
    assert tables(dsn) == ["work_items"]
    assert sql(dsn, "SELECT id, payload FROM work_items") == [(1, "theirs")]


# -- a read-only role --------------------------------------------------------------------------


@pytest.fixture
def read_only(dsn: str) -> Iterator[str]:
    """A DSN of a role that may read litecoord's tables and write none, over a schema with items."""
    from psycopg.conninfo import conninfo_to_dict

    coordinator(dsn, session="s1", worker_id="setup").create_work_items([{"work_item_id": "a"}])  # rest_support.BASE
    schema = sql(dsn, "SELECT current_schema()")[0][0]
    role = f"lc_ro_{uuid.uuid4().hex[:8]}"
    sql(dsn, f"CREATE ROLE {role} LOGIN")
    sql(dsn, f"GRANT USAGE ON SCHEMA {schema} TO {role}")
    sql(dsn, f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {role}")
    try:
        yield with_user(dsn, role, conninfo_to_dict)
    finally:
        sql(dsn, f"DROP OWNED BY {role}")
        sql(dsn, f"DROP ROLE {role}")


def with_user(dsn: str, role: str, conninfo_to_dict) -> str:
    from urllib.parse import urlencode

    return "postgresql://?" + urlencode({**conninfo_to_dict(dsn), "user": role})


def test_a_read_only_role_through_serve_answers_503_database_refused_without_a_traceback(
    read_only: str, caplog: pytest.LogCaptureFixture
) -> None:
    from litecoord import create_app

    app = create_app(read_only)
    status = rest_support.call(app, "GET", f"{rest_support.BASE}/status")
    assert status.status == 200 and status.json["total_work_items"] == 1, status.raw
    caplog.clear()
    reply = rest_support.call(app, "GET", f"{rest_support.BASE}/acquire?worker_id=w1")
    assert reply.status == 503, reply.raw
    assert reply.json["code"] == "database_refused"
    assert "permission denied" in reply.json["detail"]
    assert "internal" not in reply.raw.decode()
    assert not any(record.exc_info for record in caplog.records)
    assert "Traceback" not in caplog.text
    result = cli("acquire", "--db", read_only, "-s", "s1")
    assert result.returncode == 1 and "refused a statement: permission denied" in one_line(result)


# -- an unreadable schema version ----------------------------------------------------------------


def test_a_non_numeric_schema_version_is_one_line_naming_the_database(dsn: str) -> None:
    coordinator(dsn, session="s").create_unassigned_work_item("a")
    sql(dsn, "UPDATE litecoord_meta SET value = 'abc' WHERE key = 'schema_version'")
    with pytest.raises(SchemaVersionError, match="unreadable litecoord schema version 'abc'") as err:
        coordinator(dsn, session="s").status()
    assert "search_path" in str(err.value)  # the DSN names the database
    result = cli("status", "--db", dsn, "-s", "s")
    line = one_line(result)
    assert result.returncode == 1 and "unreadable litecoord schema version 'abc'" in line, line


def test_a_non_numeric_schema_version_of_a_sqlite_file_is_one_line_naming_the_file(tmp_path: Path) -> None:
    db = tmp_path / "odd.db"
    SqliteCoordinator(db, session="s").create_unassigned_work_item("a")
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE litecoord_meta SET value = 'abc' WHERE key = 'schema_version'")
    for command in (("status",), ("create", "b")):
        result = cli(*command[:1], "--db", str(db), "-s", "s", *command[1:])
        line = one_line(result)
        assert result.returncode == 1 and str(db) in line and "'abc'" in line, line


# -- serve on a port in use ----------------------------------------------------------------------


@pytest.fixture
def taken_port() -> Iterator[int]:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    try:
        yield holder.getsockname()[1]
    finally:
        holder.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_serve_on_a_port_in_use_is_one_line_and_exit_1(backend: str, taken_port: int, tmp_path: Path) -> None:
    pytest.importorskip("waitress")
    if backend == "sqlite":
        db = str(tmp_path / "served.db")
        result = cli("serve", "--db", db, "--port", str(taken_port))
    else:
        with fresh_schema() as db:
            result = cli("serve", "--db", db, "--port", str(taken_port))
    line = one_line(result)
    assert result.returncode == 1, result.stderr
    assert f"cannot listen on 127.0.0.1:{taken_port}" in line and "in use" in line, line
