"""What a litecoord SQLite file holds: its schema, how older ones are upgraded, and the checks that it is ours.

The schema itself is ``schema.sql`` (loaded from the installed package); here
are its version, the steps that bring a file of each older version to the
next, and how a file is recognised as litecoord's (application id, tables).
:class:`FileChecks` is mixed into :class:`~.store.Store`: it checks the path
before SQLite opens it, creates or upgrades the schema, and refuses a file
that lost commits. The connections, the write lock, transactions and
durability are :mod:`.store`'s; kept apart so that each file holds one
concern. :mod:`.store` re-exports every name defined here.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Callable
from importlib import resources
from typing import Any

from ...errors import LitecoordError, LostWritesError, NotALitecoordFileError
from ...ranges import default_range

__all__ = ["SCHEMA_VERSION", "APPLICATION_ID", "load_schema", "schema_statements", "FileChecks"]

SCHEMA_VERSION = "5"

#: How to bring a file of each older schema version to the next one, in one
#: transaction. New columns go last in their table, where schema.sql puts them
#: too, so an upgraded file and a new one have the same tables.
def _ranges_of_existing_items(conn: sqlite3.Connection) -> None:
    """3 -> 4: every item gets the default range of its id and count (see litecoord.ranges.default_range)."""
    rows = conn.execute("SELECT seq, work_item_id, document_count FROM work_items").fetchall()
    for seq, work_item_id, count in rows:
        start, end = default_range(work_item_id, count)
        if start or end is not None:
            conn.execute("UPDATE work_items SET range_start = ?, range_end = ? WHERE seq = ?", (start, end, seq))


_UPGRADES: dict[str, tuple[str | Callable[[sqlite3.Connection], None], ...]] = {
    # 1 -> 2: retry backoff. A failed item waits out a delay before acquire
    # hands it out again; the pending index keeps only items available now.
    "1": (
        "ALTER TABLE sessions ADD COLUMN retry_delay_micros INTEGER NOT NULL DEFAULT 10000000 "
        "CHECK (retry_delay_micros >= 0)",
        "ALTER TABLE sessions ADD COLUMN max_retry_delay_micros INTEGER NOT NULL DEFAULT 600000000 "
        "CHECK (max_retry_delay_micros >= 0)",
        "ALTER TABLE work_items ADD COLUMN next_attempt_at INTEGER",
        "DROP INDEX IF EXISTS work_items_pending",
    ),
    # 2 -> 3: pausing a session; the attempts table and its triggers come from schema.sql.
    "2": ("ALTER TABLE sessions ADD COLUMN paused_at INTEGER",),
    # 3 -> 4: document ranges, live splits and split requests. The counter
    # triggers are recreated (by schema.sql) to count items by counts_in_totals;
    # dropped first, so the updates below do not run them row by row.
    "3": (
        "DROP TRIGGER IF EXISTS work_items_counters_insert",
        "DROP TRIGGER IF EXISTS work_items_counters_update",
        "DROP TRIGGER IF EXISTS work_items_counters_delete",
        "ALTER TABLE sessions ADD COLUMN split_min_documents INTEGER DEFAULT 10000 CHECK (split_min_documents >= 0)",
        "ALTER TABLE work_items ADD COLUMN range_start INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE work_items ADD COLUMN range_end INTEGER",
        "ALTER TABLE work_items ADD COLUMN split_requested_at INTEGER",
        "ALTER TABLE work_items ADD COLUMN counts_in_totals INTEGER NOT NULL DEFAULT 1",
        "UPDATE work_items SET counts_in_totals = (parent_id IS NULL)",
        _ranges_of_existing_items,
    ),
    # 4 -> 5: an attempt's row is written once, when it ends (the running one is
    # the item's lease). The triggers that wrote a row at each lease go; schema.sql
    # creates the new ones. Rows of attempts running across the upgrade stay, and
    # are filled in when their lease ends, like any other.
    "4": (
        "DROP TRIGGER IF EXISTS work_items_attempt_begin",
        "DROP TRIGGER IF EXISTS work_items_attempt_insert",
        "DROP TRIGGER IF EXISTS work_items_attempt_end",
    ),
}

#: Run once the upgraded file has the whole schema: leases held across an
#: upgrade from before version 3 (which had no history) get their running
#: attempt, with the figures they had then (a file of version 3 or 4 has one).
_AFTER_UPGRADE = (
    "INSERT OR IGNORE INTO attempts "
    "(session_id, item_seq, lease_epoch, worker_id, leased_at, documents_processed, bytes_processed) "
    "SELECT session_id, seq, lease_epoch, worker_id, coalesce(leased_at, started_at, updated_at), "
    "documents_processed, bytes_processed FROM work_items WHERE status = 'assigned' AND worker_id IS NOT NULL",
)

#: ``PRAGMA application_id`` of litecoord files ("lcrd"), set when the schema is created.
#: Files made by versions before it have none and are recognised by their litecoord_meta table.
APPLICATION_ID = int.from_bytes(b"lcrd", "big")

#: The commit counter: a row of litecoord_meta, bumped in counted write transactions (Store.COUNT_EVERY).
_COMMITS_KEY = "commits"


def load_schema() -> str:
    """The DDL, read from the installed package (works from a wheel, not only a checkout)."""
    return resources.files(__package__).joinpath("schema.sql").read_text(encoding="utf-8")


def schema_statements() -> list[str]:
    """The schema as single statements, to run one by one inside a transaction."""
    return _split_sql(load_schema())

#: Every schema object of a file but SQLite's own (sqlite_sequence, sqlite_stat1...).
_OBJECT_NAMES = "SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"


def _kind_of(conn: sqlite3.Connection) -> tuple[str, str]:
    """``("litecoord" | "empty" | "foreign", why)``: whose SQLite database this is."""
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    names = [row[0] for row in conn.execute(_OBJECT_NAMES + " ORDER BY type DESC, name")]
    if app_id == APPLICATION_ID or "litecoord_meta" in names:
        return "litecoord", ""
    if app_id:
        return "foreign", f"another application's SQLite database (application_id {app_id:#x})"
    if names:
        shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
        return "foreign", f"an SQLite database holding another application's tables ({shown})"
    return "empty", "an empty SQLite database"


def _has_content(path: str) -> bool:
    """Whether the file has content: an SQLite header at least (a new file is created empty)."""
    try:
        return os.stat(path).st_size > 0
    except OSError:
        return False


def _schema_version(conn: sqlite3.Connection) -> str | None:
    """The file's litecoord schema version; ``None`` before the schema exists."""
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'litecoord_meta'").fetchone():
        return None
    row = conn.execute("SELECT value FROM litecoord_meta WHERE key = 'schema_version'").fetchone()
    return None if row is None else str(row[0])


def litecoord_object_names() -> frozenset[str]:
    """The tables, indexes and triggers litecoord's schema creates (anything else in a file is not ours)."""
    conn = sqlite3.connect(":memory:")
    try:
        for statement in schema_statements():
            conn.execute(statement)
        return frozenset(row[0] for row in conn.execute(_OBJECT_NAMES))
    finally:
        conn.close()

def _split_sql(script: str) -> list[str]:
    """Split a script into complete statements (triggers hold inner semicolons)."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        if not buffer and (not line.strip() or line.lstrip().startswith("--")):
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements


class FileChecks:
    """Whether :class:`~.store.Store`'s file is litecoord's, with this version's schema and every commit."""

    path: str
    _readable: bool
    _writable: bool

    def _open(self, *, create: bool, upgrade: bool = False) -> None:
        raise NotImplementedError

    def _run(self, fn: Callable[[sqlite3.Connection], Any], begin: str, *, lock: bool) -> Any:
        raise NotImplementedError

    def _lock_fd(self) -> int | None:
        raise NotImplementedError

    def read(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        raise NotImplementedError

    def ensure_schema(self, *, upgrade: bool = False) -> None:
        """Check the file and create litecoord's schema in it if missing (what the first write does).

        With ``upgrade``, bring an older schema up to date. Without it a file
        of an older schema version is refused with an error naming the
        command that upgrades it (``setup()`` passes ``upgrade=True``): an
        upgrade is a write the operator asks for once, not a side effect of
        any call. A newer version is always refused.
        """
        if not self._writable:
            self._open(create=True, upgrade=upgrade)

    def check_file(self) -> None:
        """Check the file is a litecoord file that lost no commits, changing nothing (what the first read does)."""
        if not self._readable:
            self._open(create=False)

    def foreign_objects(self) -> list[str]:
        """Tables, indexes, views and triggers in the file that litecoord's schema did not create."""
        ours = litecoord_object_names()
        names = self.read(lambda conn: [row[0] for row in conn.execute(_OBJECT_NAMES)])
        return sorted(set(names) - ours)

    def _check_path(self, *, create: bool) -> None:
        """What the OS says about the path, before SQLite opens (and so may create) anything."""
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            if not create:
                raise NotALitecoordFileError(f"{self.path}: no such litecoord file", path=self.path) from None
            parent = os.path.dirname(self.path)
            if not os.path.isdir(parent):
                raise NotALitecoordFileError(
                    f"cannot create {self.path}: no such directory {parent}", path=self.path
                ) from None
            return
        except OSError as exc:
            raise NotALitecoordFileError(f"{self.path}: {exc.strerror}", path=self.path) from None
        if stat.S_ISDIR(info.st_mode):
            raise NotALitecoordFileError(f"{self.path} is a directory, not a litecoord file", path=self.path)
        if not stat.S_ISREG(info.st_mode):
            raise NotALitecoordFileError(f"{self.path} is not a regular file", path=self.path)
        if info.st_size == 0 and not create:
            raise NotALitecoordFileError(
                f"{self.path} is not a litecoord file: it is empty (litecoord setup makes one)", path=self.path
            )
        # The header is left to SQLite (see _open): opening and closing the file here would
        # drop every POSIX lock this process's connections hold on it (closing any descriptor
        # of a file does), and another process closing its connection could then delete the WAL.

    def _check_schema(self, conn: sqlite3.Connection) -> None:
        version = _schema_version(conn)
        if version is None:
            raise NotALitecoordFileError(
                f"{self.path} is not a litecoord file: it has no litecoord schema", path=self.path
            )
        if version in _UPGRADES:
            raise LitecoordError(
                f"{self.path} has litecoord schema version {version}; this litecoord reads version "
                f"{SCHEMA_VERSION}. Upgrade the file once with `litecoord setup --db {self.path} "
                "--session NAME` (any session; or setup() in Python), then run again",
                path=self.path,
                schema_version=version,
            )
        if not version.isdigit():
            raise LitecoordError(
                f"{self.path} holds an unreadable litecoord schema version {version!r} "
                "(litecoord_meta.schema_version); litecoord leaves it untouched",
                path=self.path,
            )
        if version != SCHEMA_VERSION:
            raise LitecoordError(
                f"{self.path} has litecoord schema version {version}; this litecoord reads version {SCHEMA_VERSION}",
                path=self.path,
            )

    def _create_schema(self, conn: sqlite3.Connection, *, upgrade: bool = False) -> None:
        version = _schema_version(conn)
        if version in _UPGRADES and upgrade:
            while version in _UPGRADES:
                for statement in _UPGRADES[version]:
                    if callable(statement):
                        statement(conn)
                    else:
                        conn.execute(statement)
                version = str(int(version) + 1)
            # The schema's CREATE ... IF NOT EXISTS statements add the new indexes
            # (and leave what exists); then the file says which version it is.
            for statement in schema_statements():
                conn.execute(statement)
            for statement in _AFTER_UPGRADE:
                conn.execute(statement)
            conn.execute("UPDATE litecoord_meta SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION,))
        elif version is not None:
            self._check_schema(conn)  # an older version without upgrade, or a newer one: refused
        else:
            # Again under the write lock: another program may have filled the empty file meanwhile.
            kind, why = _kind_of(conn)
            if kind == "foreign":
                raise NotALitecoordFileError(
                    f"{self.path} is not a litecoord file: it is {why}; litecoord leaves it untouched", path=self.path
                )
            # sqlite3's executescript() would COMMIT our transaction first; run the
            # statements one by one inside it instead.
            for statement in schema_statements():
                conn.execute(statement)
            fd = self._lock_fd()
            if fd is not None:
                # A new file: a count left by a deleted file of the same name is not its history.
                os.ftruncate(fd, 0)
        if conn.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")  # files of older versions have none
        conn.execute("INSERT OR IGNORE INTO litecoord_meta (key, value) VALUES (?, '0')", (_COMMITS_KEY,))

    def _recorded_commits(self) -> int:
        """The commit count the lock file recorded (0 without one)."""
        try:
            with open(self.path + ".lock", "rb") as file:
                text = file.read(64)
        except FileNotFoundError:
            return 0
        except OSError as exc:
            raise LitecoordError(f"could not read {self.path}.lock ({exc.strerror})", path=self.path) from None
        try:
            return int(text.strip() or b"0")
        except ValueError:
            return 0  # not written by this check (an older version leaves it empty)

    def _check_commits(self, held: int | None = None) -> None:
        """Refuse a file that holds fewer commits than its lock file recorded: it lost its latest ones.

        The lock file is read first: it only ever records a count after that
        commit was made (and synced, at FULL), so a snapshot taken after it
        holds at least that count unless commits were lost.
        """
        recorded = self._recorded_commits()
        if not recorded:
            return
        if held is None:
            row = self._run(
                lambda conn: conn.execute("SELECT value FROM litecoord_meta WHERE key = ?", (_COMMITS_KEY,)).fetchone(),
                "BEGIN",
                lock=False,
            )
            held = 0 if row is None else int(row[0])
        if held < recorded:
            raise LostWritesError(
                f"{self.path} lost its latest writes: it holds {held} commits but {self.path}.lock recorded "
                f"{recorded}; its -wal file was deleted or replaced (or the file copied without it), or at "
                "durability normal a power loss undid them. Check the items; to go on anyway, stop every "
                "process using the file and delete the .lock file",
                path=self.path,
                held_commits=held,
                recorded_commits=recorded,
            )
