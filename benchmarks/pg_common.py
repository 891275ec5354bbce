"""What the PostgreSQL benchmark groups share: a server, a schema per run, the durability settings.

The server is ``LITECOORD_BENCH_POSTGRES`` (a DSN) when set; otherwise the
suite starts a private one for the run (``initdb`` + ``pg_ctl`` on a unix
socket in the work directory, as the ``postgres`` user when run as root),
with ``fsync=on``: at ``synchronous_commit=on`` every commit waits for its
WAL flush to reach the disk, as it would in production. (The test suite's
server runs with ``fsync=off``; its figures would flatter every side.)

Every run gets a fresh schema (``search_path`` in the DSN), so the runs
never see each other's rows or bloat. Both durabilities are set the same way
for every side: ``synchronous_commit`` in the connection's options.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator

ENV = "LITECOORD_BENCH_POSTGRES"

#: litecoord's durability -> PostgreSQL's synchronous_commit, for the sides that are not litecoord.
SYNCHRONOUS_COMMIT = {"full": "on", "normal": "off"}

_server: dict[str, str] = {}


def available() -> str | None:
    """Why the PostgreSQL groups cannot run, or None when they can."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install 'litecoord[postgres,bench]')"
    try:
        from litecoord.backends.postgres import PostgresCoordinator  # noqa: F401
    except ImportError as exc:
        return f"litecoord has no PostgreSQL backend here ({exc})"
    if os.environ.get(ENV) or _find("initdb"):
        return None
    return f"no PostgreSQL: set {ENV} or install the server (initdb not found)"


def _find(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for root in sorted(os.listdir("/usr/lib/postgresql"), reverse=True) if os.path.isdir("/usr/lib/postgresql") else []:
        candidate = os.path.join("/usr/lib/postgresql", root, "bin", name)
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def _as_owner(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@contextlib.contextmanager
def server(workdir: str) -> Iterator[str]:
    """The DSN of the server the groups use; a private one is started here and stopped after."""
    if os.environ.get(ENV):
        yield os.environ[ENV]
        return
    # Its own directory under /tmp, not under the work directory: the server runs as
    # `postgres` when we are root, and must be able to reach it.
    directory = tempfile.mkdtemp(prefix="litecoord-bench-pg-", dir="/tmp")
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres")
    initdb, pg_ctl = _find("initdb"), _find("pg_ctl")
    assert initdb and pg_ctl
    _run(_as_owner([initdb, "--auth=trust", "--username=postgres", "--encoding=UTF8", "-D", f"{directory}/data"]))
    options = (
        f"-c listen_addresses='' -c unix_socket_directories='{directory}' -c fsync=on "
        "-c max_connections=300 -c shared_buffers=256MB"
    )
    _run(_as_owner([pg_ctl, "-D", f"{directory}/data", "-l", f"{directory}/server.log", "-w", "start", "-o", options]))
    try:
        yield f"postgresql://postgres@/postgres?host={directory}"
    finally:
        subprocess.run(_as_owner([pg_ctl, "-D", f"{directory}/data", "-m", "fast", "-w", "stop"]), capture_output=True)
        shutil.rmtree(directory, ignore_errors=True)


def _run(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")


def with_options(dsn: str, *, schema: str | None = None, synchronous_commit: str | None = None) -> str:
    """``dsn`` with ``search_path`` and/or ``synchronous_commit`` set for each connection made with it.

    A ``postgresql://`` URI stays a URI (what ``litecoord serve --db`` takes); a key=value DSN stays one.
    """
    from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

    extra = []
    if schema:
        extra.append(f"-csearch_path={schema}")
    if synchronous_commit:
        extra.append(f"-csynchronous_commit={synchronous_commit}")
    if not extra:
        return dsn
    if dsn.startswith(("postgresql://", "postgres://")):
        parts = urlsplit(dsn)
        query = parse_qsl(parts.query)
        options = " ".join([v for k, v in query if k == "options"] + extra)
        query = [(k, v) for k, v in query if k != "options"] + [("options", options)]
        return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))  # libpq: %20, never +
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(dsn)
    params["options"] = " ".join(([params["options"]] if params.get("options") else []) + extra)
    return make_conninfo("", **params)


def fresh_schema(dsn: str, schema: str) -> str:
    """Drop and create ``schema``; return ``dsn`` with its ``search_path`` set to it."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.execute(f"CREATE SCHEMA {schema}")
    return with_options(dsn, schema=schema)


def server_version(dsn: str) -> str:
    import psycopg

    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT current_setting('server_version'), current_setting('fsync')").fetchone()
    assert row is not None
    return f"PostgreSQL {row[0]} (fsync={row[1]})"


def build_pg(dsn: str, n_items: int, *, completed_share: float = 0.0) -> int:
    """A fresh session ``bench`` of ``n_items`` items in the schema ``dsn`` points at; returns how many are pending.

    litecoord creates its schema and the session (with its counter shards);
    the rows go in with ``COPY`` while the counting trigger is off, then the
    counters are set from one aggregate, as the trigger would have left them
    (the SQLite suite's ``build_db`` likewise writes rows directly). The
    first ``completed_share`` of the items are completed history, the rest
    pending with varied sizes.
    """
    import psycopg

    from litecoord.backends.postgres import PostgresCoordinator

    from .common import SESSION, _size, item_id

    coordinator = PostgresCoordinator(dsn, session=SESSION, worker_id="builder")
    coordinator.setup()
    coordinator.close()
    now = int(time.time() * 1e6)
    done = int(n_items * completed_share)
    with psycopg.connect(dsn) as conn:
        sid = conn.execute("SELECT id FROM sessions WHERE name = %s", (SESSION,)).fetchone()[0]  # type: ignore[index]
        conn.execute("ALTER TABLE work_items DISABLE TRIGGER work_items_count")
        columns = (
            "session_id, work_item_id, status, index_name, shard_number, document_count, total_size_bytes, order_key,"
            " worker_id, lease_epoch, lease_micros, lease_expiry, documents_processed, bytes_processed,"
            " created_at, started_at, completed_at, updated_at"
        )
        with conn.cursor().copy(f"COPY work_items ({columns}) FROM STDIN") as copy:
            for i in range(n_items):
                size = _size(i)
                if i < done:
                    copy.write_row(
                        (sid, item_id(i), "completed", "bench", i, 1000, size, -size, "history", 1, 300_000_000,
                         now - 3000, 1000, size, now - 10_000, now - 5000, now - 2000, now - 2000)
                    )  # fmt: skip
                else:
                    copy.write_row(
                        (sid, item_id(i), "pending", "bench", i, 1000, size, -size, None, 0, None, None, 0, 0,
                         now - 10_000, None, None, now - 10_000)
                    )  # fmt: skip
        conn.execute("ALTER TABLE work_items ENABLE TRIGGER work_items_count")
        conn.execute(
            "UPDATE session_counters c SET total_items = a.total, completed_items = a.completed,"
            " total_documents = a.docs, total_size_bytes = a.size, documents_processed = a.docs_done,"
            " bytes_processed = a.bytes_done, started_at = a.started, last_update = a.updated"
            " FROM (SELECT count(*) AS total, count(*) FILTER (WHERE status = 'completed') AS completed,"
            "  coalesce(sum(document_count), 0) AS docs, coalesce(sum(total_size_bytes), 0) AS size,"
            "  sum(documents_processed) AS docs_done, sum(bytes_processed) AS bytes_done,"
            "  min(started_at) AS started, max(updated_at) AS updated"
            "  FROM work_items WHERE session_id = %(sid)s) a"
            " WHERE c.session_id = %(sid)s AND c.shard = 0",
            {"sid": sid},
        )
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE work_items")
    return n_items - done


def unfinished_pg(dsn: str) -> list[str]:
    """Ids of the benchmark session's items that are not completed (after a drain: the lost ones)."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        return [r[0] for r in conn.execute("SELECT work_item_id FROM work_items WHERE status != 'completed'")]
