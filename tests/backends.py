"""The backends the conformance suite runs against.

Each factory is a context manager taking ``(db_path, clock)`` and yielding
``make(worker_id=..., session=...) -> Coordinator``. Every coordinator a
``make`` returns shares one database (the SQLite file, or a PostgreSQL
schema of the test's own) and one clock, so tests can play several workers
against one store and move time for all of them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pg_support import fresh_pooled_database, fresh_schema

from litecoord import HttpCoordinator, SqliteCoordinator, create_app
from litecoord.backends.http import WsgiTransport

Make = Callable[..., Any]


@contextlib.contextmanager
def _closing(open_one: Callable[[str, str], Any], made: list[Any] | None = None) -> Iterator[Make]:
    """``make`` over ``open_one(worker_id, session)``; every coordinator it made (and ``made``) is closed at the end."""
    made = [] if made is None else made

    def make(worker_id: str = "worker-1", session: str = "session-1") -> Any:
        coordinator = open_one(worker_id, session)
        made.append(coordinator)
        return coordinator

    try:
        yield make
    finally:
        for coordinator in made:
            coordinator.close()


@contextlib.contextmanager
def sqlite_backend(db_path: Path, clock: Any) -> Iterator[Make]:
    # The file exists from the start, as a server's does (a read of a missing file is an error).
    first = SqliteCoordinator(db_path, clock=clock)
    first.store.ensure_schema()
    with _closing(
        lambda worker_id, session: SqliteCoordinator(db_path, session=session, worker_id=worker_id, clock=clock),
        [first],
    ) as make:
        yield make


@contextlib.contextmanager
def http_wsgi_backend(db_path: Path, clock: Any) -> Iterator[Make]:
    """HttpCoordinator through the whole REST layer, in-process (no sockets): the WSGI app is called directly."""
    app = create_app(db_path, clock=clock)
    transport = WsgiTransport(app)

    def make(worker_id: str = "worker-1", session: str = "session-1") -> HttpCoordinator:
        return HttpCoordinator("http://testserver", session=session, worker_id=worker_id, transport=transport)

    yield make
    app.root.close()


@contextlib.contextmanager
def http_server_backend(db_path: Path, clock: Any) -> Iterator[Make]:
    """HttpCoordinator against a real waitress server on a loopback port, sharing the test's clock."""
    from litecoord.rest.server import make_server

    server = make_server(db_path, host="127.0.0.1", port=0, clock=clock, threads=4).start()
    try:
        with _closing(
            lambda worker_id, session: HttpCoordinator(server.url, session=session, worker_id=worker_id, timeout=30)
        ) as make:
            yield make
    finally:
        server.close()


@contextlib.contextmanager
def postgres_backend(db_path: Path, clock: Any) -> Iterator[Make]:
    """PostgresCoordinator over a schema of the test's own (see pg_support.py)."""
    from litecoord import PostgresCoordinator

    with fresh_schema() as dsn, _closing(
        lambda worker_id, session: PostgresCoordinator(dsn, session=session, worker_id=worker_id, clock=clock)
    ) as make:
        make().store.ensure_schema()  # as a server's database is (reads never create the schema)
        yield make


@contextlib.contextmanager
def pgbouncer_backend(db_path: Path, clock: Any) -> Iterator[Make]:
    """PostgresCoordinator through a PgBouncer in transaction mode (.ci/pgbouncer), with a plain DSN.

    Each coordinator has a connection of its own to PgBouncer, which hands
    every transaction whichever server connection is free: nothing may rely
    on state kept in a server session between transactions.
    """
    from litecoord import PostgresCoordinator

    with fresh_pooled_database() as dsn, _closing(
        lambda worker_id, session: PostgresCoordinator(dsn, session=session, worker_id=worker_id, clock=clock)
    ) as make:
        make().store.ensure_schema()  # as a server's database is (reads never create the schema)
        yield make


@contextlib.contextmanager
def http_postgres_backend(db_path: Path, clock: Any) -> Iterator[Make]:
    """HttpCoordinator through the whole REST layer (in-process WSGI) over PostgreSQL."""
    from litecoord import PostgresCoordinator

    with fresh_schema() as dsn:
        root = PostgresCoordinator(dsn, clock=clock, pool_size=4)
        root.store.ensure_schema()
        app = create_app(root)
        transport = WsgiTransport(app)

        def make(worker_id: str = "worker-1", session: str = "session-1") -> HttpCoordinator:
            return HttpCoordinator("http://testserver", session=session, worker_id=worker_id, transport=transport)

        try:
            yield make
        finally:
            app.root.close()


FACTORIES: dict[str, Callable[[Path, Any], contextlib.AbstractContextManager[Make]]] = {
    "sqlite": sqlite_backend,
    "http-wsgi": http_wsgi_backend,
    "http-server": http_server_backend,
    "postgres": postgres_backend,
    "postgres-pgbouncer": pgbouncer_backend,
    "http-postgres": http_postgres_backend,
}
