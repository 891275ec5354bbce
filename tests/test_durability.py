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
from datetime import timedelta

import pytest

from litecoord import LitecoordError, SqliteCoordinator, WorkItemAndDuration
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


def test_every_write_is_committed_then_unlocked_then_synced_before_it_returns(db_path, recorder):
    coord = SqliteCoordinator(db_path, session="s", worker_id="w")
    coord.create_unassigned_work_item("a")
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
