"""A PostgreSQL for the tests, from ONE environment variable: LITECOORD_TEST_POSTGRES (a DSN).

`.ci/run` starts a private server and sets it; locally, start one with
``export LITECOORD_TEST_POSTGRES=$(.ci/postgres start /tmp/lcpg)``. Without
it the PostgreSQL tests skip with that reason, except under CI (``CI`` set),
where they fail: CI can never pass by skipping them.

Each test gets a schema of its own (``fresh_schema``): the DSN it yields
sets ``search_path`` to it, so tests never see each other's tables.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import pytest

ENV = "LITECOORD_TEST_POSTGRES"
#: A PgBouncer in transaction mode in front of that server (`.ci/pgbouncer start DIR $LITECOORD_TEST_POSTGRES`).
BOUNCER_ENV = "LITECOORD_TEST_PGBOUNCER"


def admin_dsn() -> str:
    """The test server's DSN; skips (or fails under CI) without one."""
    dsn = os.environ.get(ENV)
    if not dsn:
        reason = f"{ENV} is not set (start a server: export {ENV}=$(.ci/postgres start /tmp/lcpg))"
        if os.environ.get("CI"):
            pytest.fail(f"CI must test PostgreSQL: {reason}")
        pytest.skip(reason)
    try:
        import psycopg  # noqa: F401
    except ImportError:
        reason = "psycopg is not installed (pip install 'litecoord[postgres]')"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return dsn


def pgbouncer_dsn() -> str:
    """The DSN of the test PgBouncer (the ``postgres`` database through it); skips (or fails under CI) without one."""
    admin_dsn()
    dsn = os.environ.get(BOUNCER_ENV)
    if not dsn:
        reason = (
            f"{BOUNCER_ENV} is not set (start one: export {BOUNCER_ENV}=$(.ci/pgbouncer start /tmp/lcpgb "
            f"${ENV}))"
        )
        if os.environ.get("CI"):
            pytest.fail(f"CI must test PostgreSQL behind PgBouncer: {reason}")
        pytest.skip(reason)
    return dsn


def with_dbname(dsn: str, dbname: str) -> str:
    """``dsn`` as a ``postgresql://`` URI naming the database ``dbname``."""
    from urllib.parse import urlencode

    from psycopg.conninfo import conninfo_to_dict

    return "postgresql://?" + urlencode({**conninfo_to_dict(dsn), "dbname": dbname})


@contextlib.contextmanager
def fresh_pooled_database() -> Iterator[str]:
    """A DSN, through the test PgBouncer, of a new database (dropped afterwards).

    A database rather than a schema: PgBouncer (1.18) refuses the ``options``
    startup parameter that sets ``search_path`` (as managed poolers often do).
    """
    import psycopg

    pooled = pgbouncer_dsn()
    dsn = admin_dsn()
    name = f"lc_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield with_dbname(pooled, name)
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            # FORCE: PgBouncer keeps idle server connections to it open.
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


def with_search_path(dsn: str, schema: str) -> str:
    """``dsn`` as a ``postgresql://`` URI (what --db and LITECOORD_DB take) using ``schema``."""
    from urllib.parse import urlencode

    from psycopg.conninfo import conninfo_to_dict

    params = {**conninfo_to_dict(dsn), "options": f"-csearch_path={schema}"}
    return "postgresql://?" + urlencode(params)


@contextlib.contextmanager
def fresh_schema() -> Iterator[str]:
    """A DSN whose tables live in a new schema, dropped afterwards."""
    import psycopg

    dsn = admin_dsn()
    schema = f"lc_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield with_search_path(dsn, schema)
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            # Sessions of the test that are still open would block the drop; end them.
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE pid <> pg_backend_pid() AND query ILIKE %s",
                (f"%{schema}%",),
            )
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
