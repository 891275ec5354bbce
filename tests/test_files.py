"""litecoord never modifies a file it does not own.

Reads (Python reads, the read-only commands) never create a file or a
schema and never change the journal mode; writes refuse another
application's database; the demo deletes nothing but its own file; `serve`
checks its file before it binds. Each refusal names the file and why, and
leaves every byte of it as it was.
"""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import litecoord
from litecoord import NotALitecoordFileError, SqliteCoordinator
from litecoord.backends.sqlite.store import APPLICATION_ID, Store
from litecoord.cli import cli

READ_ONLY = [["status"], ["list"], ["sessions"], ["show", "x"]]
WRITES = [["setup"], ["create", "x"], ["batch", "-"]]


def invoke(*args: str, input: str | None = None) -> Result:
    result = CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)
    assert "Traceback" not in result.output
    return result


def error_line(result: Result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def fingerprint(path: Path) -> tuple[str, list[str]]:
    """The file's bytes and the files beside it: what a refusal must leave unchanged."""
    return hashlib.sha256(path.read_bytes()).hexdigest(), sorted(p.name for p in path.parent.iterdir())


@pytest.fixture
def foreign(tmp_path: Path) -> Path:
    """Another application's SQLite file, in rollback-journal mode."""
    path = tmp_path / "app.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO users (name) VALUES ('ada')")
    conn.commit()
    conn.close()
    return path


def journal_mode(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        conn.close()


# -- reads -----------------------------------------------------------------------------------


@pytest.mark.parametrize("command", READ_ONLY, ids=lambda c: c[0])
def test_read_only_commands_refuse_another_applications_database_and_leave_it_alone(foreign, command):
    before = fingerprint(foreign)
    result = invoke(*command, "--db", str(foreign))
    assert result.exit_code == 1
    assert error_line(result) == (
        f"Error: {foreign} is not a litecoord file: it is an SQLite database holding another application's "
        "tables (users); litecoord leaves it untouched"
    )
    assert fingerprint(foreign) == before
    assert journal_mode(foreign) == "delete"


def test_python_reads_refuse_a_foreign_file_and_change_nothing(foreign):
    before = fingerprint(foreign)
    coord = SqliteCoordinator(foreign, session="s")
    for read in (coord.status, coord.list_work_items, coord.list_sessions, lambda: coord.get_work_item("x")):
        with pytest.raises(NotALitecoordFileError, match="another application's tables"):
            read()
    coord.close()
    assert fingerprint(foreign) == before


def test_a_file_with_another_application_id_is_not_litecoords(tmp_path):
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA application_id = 42")
    conn.commit()
    conn.close()
    with pytest.raises(NotALitecoordFileError, match=r"another application's SQLite database \(application_id 0x2a\)"):
        SqliteCoordinator(path, session="s").create_unassigned_work_item("x")
    with pytest.raises(NotALitecoordFileError):
        SqliteCoordinator(path, session="s").status()


def test_reads_never_create_a_missing_file(tmp_path):
    missing = tmp_path / "typo.db"
    with pytest.raises(NotALitecoordFileError, match="typo.db: no such litecoord file"):
        SqliteCoordinator(missing, session="s").status()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", READ_ONLY, ids=lambda c: c[0])
def test_read_only_commands_refuse_an_empty_file_without_writing_to_it(tmp_path, command):
    empty = tmp_path / "empty.db"
    empty.touch()
    result = invoke(*command, "--db", str(empty))
    assert result.exit_code == 1
    assert error_line(result) == f"Error: {empty} is not a litecoord file: it is empty (litecoord setup makes one)"
    assert empty.stat().st_size == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.db"]


def test_a_directory_is_not_a_litecoord_file(tmp_path):
    for call in (lambda c: c.status(), lambda c: c.create_unassigned_work_item("x")):
        with pytest.raises(NotALitecoordFileError, match=f"{tmp_path} is a directory, not a litecoord file"):
            call(SqliteCoordinator(tmp_path, session="s"))


# -- writes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("command", WRITES, ids=lambda c: c[0])
def test_writes_refuse_another_applications_database(foreign, command):
    before = fingerprint(foreign)
    result = invoke(*command, "--db", str(foreign), input='{"work_item_id": "x"}\n')
    assert result.exit_code == 1
    assert error_line(result).startswith(f"Error: {foreign} is not a litecoord file: it is an SQLite database")
    assert fingerprint(foreign) == before


def test_python_writes_refuse_another_applications_database(foreign):
    before = fingerprint(foreign)
    coord = SqliteCoordinator(foreign, session="s", worker_id="w")
    for write in (coord.setup, lambda: coord.create_unassigned_work_item("x"), coord.acquire_next_work_item):
        with pytest.raises(NotALitecoordFileError):
            write()
    with pytest.raises(NotALitecoordFileError):
        Store(foreign).ensure_schema()
    assert fingerprint(foreign) == before
    assert journal_mode(foreign) == "delete"


def test_the_first_write_marks_the_file_as_litecoords(tmp_path):
    empty = tmp_path / "new.db"
    empty.touch()  # an empty file (e.g. from mkstemp) becomes a litecoord file on the first write
    SqliteCoordinator(empty, session="s").create_unassigned_work_item("x")
    conn = sqlite3.connect(empty)
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_files_of_older_versions_are_recognised_by_their_tables_and_marked_by_a_write(tmp_path):
    old = tmp_path / "old.db"
    SqliteCoordinator(old, session="s").create_unassigned_work_item("x")
    conn = sqlite3.connect(old)
    conn.execute("PRAGMA application_id = 0")  # as versions before the application id made it
    conn.commit()
    conn.close()
    assert SqliteCoordinator(old, session="s").num_work_items_not_yet_complete() == 1
    conn = sqlite3.connect(old)
    assert conn.execute("PRAGMA application_id").fetchone()[0] == 0  # a read changed nothing
    conn.close()
    SqliteCoordinator(old, session="s").create_unassigned_work_item("y")
    conn = sqlite3.connect(old)
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    conn.close()


# -- the demo --------------------------------------------------------------------------------


def test_demo_refuses_another_applications_database_and_keeps_its_tables(foreign):
    before = fingerprint(foreign)
    result = invoke("demo", "--db", str(foreign))
    assert result.exit_code == 1
    assert error_line(result).startswith(f"Error: refusing to overwrite {foreign}: {foreign} is not a litecoord file")
    assert fingerprint(foreign) == before
    conn = sqlite3.connect(foreign)
    assert conn.execute("SELECT name FROM users").fetchall() == [("ada",)]
    conn.close()


def test_demo_refuses_a_litecoord_file_that_also_holds_other_tables(tmp_path):
    shared = tmp_path / "shared.db"
    SqliteCoordinator(shared, session="demo").create_unassigned_work_item("x")
    conn = sqlite3.connect(shared)
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.commit()
    conn.close()
    result = invoke("demo", "--db", str(shared))
    assert result.exit_code == 1
    assert error_line(result) == (
        f"Error: refusing to overwrite {shared}: it holds tables that are not litecoord's (notes); pass another --db"
    )
    conn = sqlite3.connect(shared)
    assert conn.execute("SELECT count(*) FROM notes").fetchone() == (0,)
    conn.close()


@pytest.mark.parametrize("content", [b"", b"my notes\n" * 50], ids=["empty", "text"])
def test_demo_refuses_a_file_that_is_not_a_litecoord_file(tmp_path, content):
    path = tmp_path / "notes.db"
    path.write_bytes(content)
    result = invoke("demo", "--db", str(path))
    assert result.exit_code == 1
    assert error_line(result).startswith(f"Error: refusing to overwrite {path}: {path} is not a litecoord file")
    assert path.read_bytes() == content


# -- serve checks its file before it binds ---------------------------------------------------


@pytest.fixture
def never_served(monkeypatch):
    server_module = pytest.importorskip("litecoord.rest.server")
    pytest.importorskip("waitress")

    def run(self):
        raise AssertionError("bound and served a file it should have refused")

    monkeypatch.setattr(server_module.Server, "run", run)


@pytest.mark.parametrize("case", ["missing directory", "directory", "not a database", "foreign"])
def test_serve_checks_the_file_before_binding_and_fails_with_one_line(tmp_path, foreign, never_served, case):
    path = {
        "missing directory": tmp_path / "nowhere" / "x.db",
        "directory": tmp_path,
        "not a database": tmp_path / "notes.txt",
        "foreign": foreign,
    }[case]
    if case == "not a database":
        path.write_text("hello\n" * 100)
    result = invoke("serve", "--db", str(path), "--port", "0")
    assert result.exit_code == 1
    line = error_line(result)
    assert str(path) in line and "serving" not in result.output
    expected = {
        "missing directory": f"no such directory {tmp_path / 'nowhere'}",
        "directory": "is a directory, not a litecoord file",
        "not a database": "it is not an SQLite database",
        "foreign": "another application's tables (users)",
    }[case]
    assert expected in line


def test_make_server_refuses_a_bad_file_before_binding(tmp_path, monkeypatch):
    server_module = pytest.importorskip("litecoord.rest.server")
    waitress = pytest.importorskip("waitress")

    def create_server(*args, **kwargs):
        raise AssertionError("bound a socket for a file it should have refused")

    monkeypatch.setattr(waitress.server, "create_server", create_server)
    with pytest.raises(NotALitecoordFileError, match="is a directory"):
        server_module.make_server(tmp_path, port=0)


def test_the_errors_are_exported_and_have_codes():
    assert litecoord.NotALitecoordFileError.code == "not_a_litecoord_file"
    assert litecoord.LostWritesError.code == "lost_writes"
    assert issubclass(litecoord.NotALitecoordFileError, litecoord.LitecoordError)


def test_a_real_process_on_a_foreign_file_exits_1_with_one_line(foreign):
    result = subprocess.run(
        [sys.executable, "-m", "litecoord", "sessions", "--db", str(foreign)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "is not a litecoord file" in result.stderr
