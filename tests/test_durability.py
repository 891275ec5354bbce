"""FULL durability: no call returns before what it committed or read is on disk.

SQLite commits without syncing and the store syncs the WAL file after the
commit, outside the write lock (Store._sync_wal). A power loss cannot be
staged in a test, so these tests pin down the order of events instead, with
the sync replaced by a recorder: the commit, then the release of the write
lock, then the sync of the file SQLite wrote, then the return to the caller.
"""

from __future__ import annotations

import errno
import fcntl
import os
import sqlite3
import subprocess
import sys
from datetime import timedelta

import pytest

from litecoord import (
    LeaseConflictError,
    LitecoordError,
    LostWritesError,
    SqliteCoordinator,
    WorkItemAndDuration,
    WorkItemNotFoundError,
)
from litecoord.backends.sqlite import store as store_module


class SyncRecorder:
    """Stands in for fdatasync: checks the state of the file at each sync."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.syncs: list[dict] = []
        self.fail: OSError | None = None

    def __call__(self, fd: int) -> None:
        if self.fail is not None:
            raise self.fail
        lock = os.open(self.path + ".lock", os.O_RDWR)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises if the writer still held it
            fcntl.flock(lock, fcntl.LOCK_UN)
            lock_free = True
        except BlockingIOError:
            lock_free = False
        finally:
            os.close(lock)
        reader = sqlite3.connect(self.path)
        items = {row[0]: row[1] for row in reader.execute("SELECT work_item_id, status FROM work_items")}
        reader.close()
        self.syncs.append(
            {
                "wal": os.fstat(fd).st_ino == os.stat(self.path + "-wal").st_ino,
                "lock_free": lock_free,
                "items": items,  # what other connections see: committed already
            }
        )


@pytest.fixture
def recorder(db_path, monkeypatch) -> SyncRecorder:
    recorder = SyncRecorder(str(db_path))
    monkeypatch.setattr(store_module, "_datasync", recorder)
    return recorder


class Placement:
    """How a test names the file: directly, through a symlink, or relatively and then chdir() away."""

    def __init__(self, kind: str, tmp_path, monkeypatch) -> None:
        self.kind = kind
        self.real = tmp_path / "data" / "coord.db"  # the file SQLite writes, with <real>-wal beside it
        self.real.parent.mkdir()
        self._away = tmp_path
        self._monkeypatch = monkeypatch
        if kind == "symlink":
            self.given: str | os.PathLike[str] = tmp_path / "link.db"
            (tmp_path / "link.db").symlink_to(self.real)
        elif kind == "relative":
            monkeypatch.chdir(self.real.parent)
            self.given = "coord.db"
        else:
            self.given = self.real

    def move_away(self) -> None:
        """After the file is open: a relative name now means another (missing) file."""
        if self.kind == "relative":
            self._monkeypatch.chdir(self._away)


@pytest.fixture(params=["plain", "symlink", "relative"])
def placement(request, tmp_path, monkeypatch) -> Placement:
    return Placement(request.param, tmp_path, monkeypatch)


def test_every_write_is_committed_then_unlocked_then_synced_before_it_returns(placement, monkeypatch):
    # SQLite follows a symlink and writes <target>-wal; a relative name resolves against the
    # working directory of the moment. Syncing <link>-wal, or coord.db-wal in another
    # directory, found no file and synced nothing (every acknowledgement unsynced).
    recorder = SyncRecorder(str(placement.real))
    monkeypatch.setattr(store_module, "_datasync", recorder)
    coord = SqliteCoordinator(placement.given, session="s", worker_id="w")
    coord.create_unassigned_work_item("a")
    placement.move_away()
    recorder.syncs.clear()  # creating the schema and session synced too

    lease = coord.acquire_next_work_item(timedelta(minutes=5))
    assert isinstance(lease, WorkItemAndDuration)
    assert len(recorder.syncs) == 1
    coord.update_progress_and_renew_lease("a", 10, 100)
    assert len(recorder.syncs) == 2
    coord.complete_work_item("a")
    assert len(recorder.syncs) == 3
    for sync in recorder.syncs:
        assert sync["wal"], "synced another file than the WAL SQLite wrote"
        assert sync["lock_free"], "synced while holding the write lock"
    # At each sync the call's change was already committed (another connection saw it).
    assert [sync["items"]["a"] for sync in recorder.syncs] == ["assigned", "assigned", "completed"]


def test_a_read_syncs_too_so_it_never_reports_what_a_power_loss_could_undo(db_path, recorder):
    coord = SqliteCoordinator(db_path, session="s", worker_id="w")
    coord.create_unassigned_work_item("a")
    recorder.syncs.clear()
    assert coord.status().pending_work_items == 1
    assert coord.get_work_item("a").work_item_id == "a"
    assert len(recorder.syncs) == 2


def test_normal_durability_never_syncs(db_path, recorder):
    coord = SqliteCoordinator(db_path, session="s", worker_id="w", durability="normal")
    coord.create_unassigned_work_item("a")
    coord.acquire_next_work_item()
    coord.complete_work_item("a")
    coord.status()
    assert recorder.syncs == []


def test_a_failed_sync_is_an_error_not_an_acknowledgement(db_path, recorder):
    coord = SqliteCoordinator(db_path, session="s", worker_id="w")
    coord.create_unassigned_work_item("a")
    recorder.fail = OSError(errno.EIO, "Input/output error")
    with pytest.raises(LitecoordError) as err:
        coord.acquire_next_work_item()
    assert "could not sync" in str(err.value) and "-wal" in str(err.value)
    assert err.value.http_status == 500


def test_a_connection_left_in_rollback_journal_mode_lets_sqlite_sync_each_commit(db_path):
    # A file system that refuses WAL leaves SQLite's rollback journal, where
    # synchronous=NORMAL is not safe against power loss and there is no WAL to sync.
    conn = sqlite3.connect(db_path, isolation_level=None)
    assert conn.execute("PRAGMA journal_mode = DELETE").fetchone()[0] == "delete"
    conn.execute("PRAGMA synchronous = NORMAL")
    store_module._Database(str(db_path))._initialize_connection(conn)
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    wal = sqlite3.connect(db_path, isolation_level=None)
    wal.execute("PRAGMA journal_mode = WAL")
    wal.execute("PRAGMA synchronous = NORMAL")
    store_module._Database(str(db_path))._initialize_connection(wal)
    assert wal.execute("PRAGMA synchronous").fetchone()[0] == 1  # WAL: the store syncs itself
    conn.close()
    wal.close()


@pytest.mark.parametrize("code", [errno.EROFS, errno.EINVAL])
def test_a_file_system_that_cannot_sync_is_not_an_error(db_path, recorder, code):
    # Read-only mounts (EROFS) and file systems without sync (EINVAL) hold nothing waiting for a sync.
    coord = SqliteCoordinator(db_path, session="s", worker_id="w")
    coord.create_unassigned_work_item("a")
    recorder.fail = OSError(code, os.strerror(code))
    assert coord.status().pending_work_items == 1


def test_a_wal_that_cannot_be_opened_is_a_clear_error(db_path, monkeypatch):
    coord = SqliteCoordinator(db_path, session="s", worker_id="w")
    coord.create_unassigned_work_item("a")
    real_open = os.open

    def refuse_wal(path, *args, **kwargs):
        if str(path).endswith("-wal"):
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(store_module.os, "open", refuse_wal)
    with pytest.raises(LitecoordError) as err:
        coord.status()
    assert "-wal" in str(err.value) and "Permission denied" in str(err.value)


def test_errors_that_report_state_are_synced_before_they_are_raised(db_path, recorder):
    # A 404/409/410 may report another process's commit whose sync is still running.
    coord = SqliteCoordinator(db_path, session="s", worker_id="w")
    other = SqliteCoordinator(db_path, session="s", worker_id="other")
    coord.create_unassigned_work_item("a")
    other.acquire_next_work_item()
    recorder.syncs.clear()
    with pytest.raises(WorkItemNotFoundError):
        coord.get_work_item("missing")
    assert len(recorder.syncs) == 1
    with pytest.raises(LeaseConflictError):
        coord.complete_work_item("a")  # refused inside a write transaction
    assert len(recorder.syncs) == 2
    assert all(sync["lock_free"] for sync in recorder.syncs)
    assert [sync["items"]["a"] for sync in recorder.syncs] == ["assigned", "assigned"]


def test_a_wal_deleted_while_in_use_is_an_error_not_nothing_to_sync(db_path):
    coord = SqliteCoordinator(db_path, session="s", worker_id="w")
    coord.create_unassigned_work_item("a")
    os.remove(f"{db_path}-wal")  # SQLite keeps writing to the unlinked file: nothing durable
    with pytest.raises(LostWritesError) as err:
        coord.create_unassigned_work_item("b")
    assert f"{db_path}-wal is missing after a commit in WAL mode" in str(err.value)


# -- a file that lost commits ----------------------------------------------------------------

WRITE_THEN_CRASH = """
import os, sys
from litecoord import SqliteCoordinator
coord = SqliteCoordinator(sys.argv[1], session="s", worker_id="w", durability=sys.argv[2])
for i in range(50):
    coord.create_unassigned_work_item(f"item-{i}")
os._exit(0)  # no close: nothing is checkpointed, the 50 commits live in the WAL only
"""


def crash_after_50_writes(path, durability: str = "full") -> None:
    subprocess.run([sys.executable, "-c", WRITE_THEN_CRASH, str(path), durability], check=True, timeout=60)


@pytest.mark.parametrize("durability", ["full", "normal"])
def test_a_file_whose_wal_was_deleted_after_a_crash_is_refused_loudly(db_path, durability):
    crash_after_50_writes(db_path, durability)
    assert SqliteCoordinator(db_path, session="s").num_work_items_not_yet_complete() == 50
    SqliteCoordinator(db_path).close()
    crash_after_50_writes(db_path.with_name("other.db"), durability)
    os.remove(f"{db_path.with_name('other.db')}-wal")
    for attempt in ("status", "create"):
        coord = SqliteCoordinator(db_path.with_name("other.db"), session="s")
        with pytest.raises(LostWritesError) as err:
            coord.status() if attempt == "status" else coord.create_unassigned_work_item("x")
        assert "other.db lost its latest writes" in str(err.value)
        assert err.value.context["recorded_commits"] > err.value.context["held_commits"]


def test_status_on_a_file_that_lost_its_wal_fails_instead_of_reporting_nothing(tmp_path):
    db = tmp_path / "b.db"
    crash_after_50_writes(db)
    os.remove(f"{db}-wal")
    result = subprocess.run(
        [sys.executable, "-m", "litecoord", "status", "--db", str(db), "-s", "s"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and f"Error: {db} lost its latest writes" in result.stderr


def test_a_file_recreated_beside_an_old_lock_file_is_not_taken_for_a_loss(db_path):
    crash_after_50_writes(db_path)
    for suffix in ("", "-wal", "-shm"):  # deleted to start over; <db>.lock stays behind
        os.remove(f"{db_path}{suffix}")
    coord = SqliteCoordinator(db_path, session="s", worker_id="w")
    coord.create_unassigned_work_item("a")
    assert SqliteCoordinator(db_path, session="s").num_work_items_not_yet_complete() == 1


def test_losing_the_commits_since_the_last_checkpoint_of_an_existing_file_is_noticed(db_path):
    with SqliteCoordinator(db_path, session="s") as coord:
        coord.create_unassigned_work_item("kept")
    conn = sqlite3.connect(db_path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # "kept" is in the database file itself
    conn.close()
    crash_after_50_writes(db_path)  # another process: 50 commits in the WAL, then a crash
    os.remove(f"{db_path}-wal")
    with pytest.raises(LostWritesError, match="lost its latest writes"):
        SqliteCoordinator(db_path, session="s").get_work_item("kept")


def test_checking_a_file_keeps_the_locks_other_connections_of_this_process_hold(db_path):
    # Closing any descriptor of a file drops every POSIX lock the process holds on it: a
    # check that opened the file itself let another process's closing connection take it
    # for the last one and delete the WAL under this process (found by demo --serve).
    first = SqliteCoordinator(db_path, session="s", worker_id="w")
    first.create_unassigned_work_item("a")
    SqliteCoordinator(db_path, session="s").get_work_item("a")  # a second store checks the file
    other = f"import sqlite3; c = sqlite3.connect({str(db_path)!r}); c.execute('SELECT * FROM work_items'); c.close()"
    subprocess.run([sys.executable, "-c", other], check=True, timeout=60)
    assert os.path.exists(f"{db_path}-wal")
    assert first.get_work_item("a").work_item_id == "a"
