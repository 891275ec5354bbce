"""What every ``litecoord`` command shares: exit codes, errors, the click group and the common options.

Each command opens a coordinator (a SQLite file with ``--db``, or a server
with ``--url``), calls one method, and prints the result: a readable table,
or JSON with ``--json``. Library errors become one-line messages and an exit
code that names their kind (:data:`EXIT_CODES`); never a traceback.

Options follow the subcommand: ``litecoord batch --db backfill.db --session s1 items.jsonl``.
"""

from __future__ import annotations

import functools
import json
import os
import socket
import sqlite3
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import IO, Any, TypeVar

import click
import peewee

from ... import validation as check
from ...backends.choose import is_postgres, open_coordinator
from ...backends.sqlite.coordinator import SqliteCoordinator
from ...errors import (
    DatabaseBusyError,
    LeaseConflictError,
    LeaseExpiredError,
    LitecoordError,
    SessionNotEmptyError,
    SessionNotFoundError,
    SuccessorConflictError,
    ValidationError,
    WorkItemExistsError,
    WorkItemNotFoundError,
)
from ...protocol import Coordinator
from .. import runner
from ..render import DEFAULT_STALL_AFTER

__all__ = ["cli", "EXIT_CODES", "DEFAULT_DB"]

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_DB = "litecoord.db"

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NO_WORK = 3
EXIT_ALL_LEASED = 4
EXIT_NOT_FOUND = 5
EXIT_CONFLICT = 6
EXIT_LEASE_EXPIRED = 7
EXIT_BUSY = 8
EXIT_SESSION_NOT_FOUND = runner.EXIT_SESSION_NOT_FOUND  # 9, the same for `work`
EXIT_INTERRUPTED = 130

#: Exit codes of every command except ``work`` (whose codes are :data:`litecoord.cli.runner.EXIT_CODES`).
EXIT_CODES: dict[int, str] = {
    EXIT_OK: "success",
    EXIT_ERROR: "any other error (server unreachable, authentication, not a litecoord file...); "
    "verify: the coverage audit is not ok",
    EXIT_USAGE: "bad input: usage, a missing or malformed file, an invalid field (ValidationError)",
    EXIT_NO_WORK: "acquire: no work left (every item complete, or only failed items remain); "
    "status --watch: it ended with only failed items left",
    EXIT_ALL_LEASED: "acquire: work remains but all of it is leased or waiting out a retry delay, "
    "or the session is paused",
    EXIT_NOT_FOUND: "unknown work item (WorkItemNotFoundError, HTTP 404)",
    EXIT_CONFLICT: "lease or item conflict: another holder, stale epoch, existing id, import into a non-empty session, "
    "retry of an item that is not failed",
    EXIT_LEASE_EXPIRED: "the caller's lease expired (LeaseExpiredError, HTTP 410)",
    EXIT_BUSY: "the database stayed locked (DatabaseBusyError, HTTP 503)",
    EXIT_SESSION_NOT_FOUND: "unknown session: nothing was ever created in it (SessionNotFoundError, HTTP 404)",
    EXIT_INTERRUPTED: "interrupted by Ctrl-C",
}

_EXIT_FOR_ERROR: tuple[tuple[type[LitecoordError], int], ...] = (
    (ValidationError, EXIT_USAGE),
    (WorkItemNotFoundError, EXIT_NOT_FOUND),
    (LeaseConflictError, EXIT_CONFLICT),
    (SuccessorConflictError, EXIT_CONFLICT),
    (WorkItemExistsError, EXIT_CONFLICT),
    (SessionNotEmptyError, EXIT_CONFLICT),
    (LeaseExpiredError, EXIT_LEASE_EXPIRED),
    (DatabaseBusyError, EXIT_BUSY),
    (SessionNotFoundError, EXIT_SESSION_NOT_FOUND),
)


def exit_code_for(exc: LitecoordError) -> int:
    """The exit code a library error maps to."""
    for cls, code in _EXIT_FOR_ERROR:
        if isinstance(exc, cls):
            return code
    return EXIT_ERROR


class CliError(click.ClickException):
    """A one-line ``Error: ...`` on stderr and a chosen exit code.

    With ``as_json`` the error is one JSON object on stderr instead:
    ``{"detail": ..., "code": ..., "exit_code": ...}`` (the REST API's error
    body, plus the exit code), so scripts that asked for JSON parse errors too.
    """

    def __init__(
        self, message: str, exit_code: int = EXIT_ERROR, *, code: str = "error", context: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.code = code
        self.context = context or {}
        self.as_json = False

    def show(self, file: IO[Any] | None = None) -> None:
        if not self.as_json:
            super().show(file)
            return
        body = {"detail": self.format_message(), "code": self.code, **self.context, "exit_code": self.exit_code}
        click.echo(json.dumps(body), file=file or sys.stderr, err=file is None)


class _Group(click.Group):
    """Turns every library, driver and OS error a command lets through into a :class:`CliError`.

    When the command line asked for ``--json``, errors (usage errors too) are
    written as a JSON object (see :class:`CliError`).
    """

    def invoke(self, ctx: click.Context) -> Any:
        as_json = _wants_json(ctx)  # read before click consumes the arguments
        try:
            return super().invoke(ctx)
        except click.ClickException as exc:
            if as_json:
                raise _as_json_error(exc) from None
            raise
        except LitecoordError as exc:
            error = CliError(_one_line(exc.detail), exit_code_for(exc), code=exc.code, context=exc.to_dict())
            error.context.pop("detail", None)
            error.context.pop("code", None)
            error.as_json = as_json
            raise error from None
        except (sqlite3.Error, peewee.PeeweeException) as exc:
            error = CliError(f"database error: {_one_line(str(exc))}", code="database_error")
            error.as_json = as_json
            raise error from None
        except OSError as exc:  # before Exception, which re-raises what is not psycopg's
            error = CliError(_one_line(str(exc)), code="os_error")
            error.as_json = as_json
            raise error from None
        except Exception as exc:
            # A driver error of the PostgreSQL backend (psycopg is imported only when used).
            if type(exc).__module__.split(".")[0] != "psycopg":
                raise
            error = CliError(f"database error: {_one_line(str(exc))}", code="database_error")
            error.as_json = as_json
            raise error from None


def _wants_json(ctx: click.Context) -> bool:
    """Whether the command's own options (before any ``--``) include ``--json``."""
    args = [*getattr(ctx, "_protected_args", ()), *ctx.args]
    if "--" in args:
        args = args[: args.index("--")]
    return "--json" in args


def _as_json_error(exc: click.ClickException) -> CliError:
    if isinstance(exc, CliError):
        exc.as_json = True
        return exc
    code = "usage_error" if isinstance(exc, click.UsageError) else "error"
    error = CliError(exc.format_message(), exc.exit_code, code=code)
    error.as_json = True
    return error


def _one_line(text: str) -> str:
    return " ".join(text.split()) or "unknown error"


# -- connection options ------------------------------------------------------------


@dataclass
class Target:
    """Where a command's coordinator lives, from ``--db``/``--url`` and friends."""

    db: str
    url: str | None
    token: str | None
    session: str
    worker_id: str | None

    def resolved_worker_id(self) -> str:
        # Stable across invocations, so `litecoord acquire` then `litecoord complete`
        # from one shell act as one worker.
        return self.worker_id or socket.gethostname()

    def open(self, *, create: bool = False, worker_id: str | None = None) -> Coordinator:
        """The coordinator. Without ``create``, a missing ``--db`` file is an error, not a new file."""
        worker = worker_id or self.resolved_worker_id()
        if self.url:
            from ...config import WorkCoordinationConfig, connect

            return connect(WorkCoordinationConfig.console(self.url, self.session, worker, token=self.token))
        if is_postgres(self.db):
            return open_coordinator(self.db, session=self.session, worker_id=worker)
        if not create and not os.path.exists(self.db):
            raise CliError(
                f"no litecoord database at {self.db} (create items with `litecoord batch --db {self.db} FILE`, "
                "or point --db / LITECOORD_DB at an existing file)",
                EXIT_USAGE,
                code="no_database",
            )
        return SqliteCoordinator(self.db, session=self.session, worker_id=worker)


def _db_option(f: F) -> F:
    return click.option(
        "--db",
        envvar="LITECOORD_DB",
        default=DEFAULT_DB,
        show_default=True,
        metavar="PATH|URI",
        help="SQLite coordination file, or a PostgreSQL database (postgresql://...) [env LITECOORD_DB].",
    )(f)


def coordinator_options(*, session: bool = True, worker: bool = True) -> Callable[[F], F]:
    """Add ``--db --url --token [--session] [--worker-id]`` and pass the command a ``target``."""

    def decorate(f: F) -> F:
        @functools.wraps(f)
        def wrapper(*args: Any, db: str, url: str | None, token: str | None, **kwargs: Any) -> Any:
            ctx = click.get_current_context()
            url, db = _choose_store(ctx, url, db)
            target = Target(
                db=db,
                url=url,
                token=token,
                session=kwargs.pop("session", "default"),
                worker_id=kwargs.pop("worker_id", None),
            )
            return f(*args, target=target, **kwargs)

        options = [
            _db_option,
            click.option(
                "--url",
                envvar="LITECOORD_URL",
                metavar="URL",
                help="Use a litecoord server (e.g. http://127.0.0.1:8000) instead of a file; several "
                "comma-separated URLs of servers over one database fail over [env LITECOORD_URL].",
            ),
            click.option(
                "--token",
                envvar="LITECOORD_TOKEN",
                metavar="TOKEN",
                help="Bearer token for --url [env LITECOORD_TOKEN].",
            ),
        ]
        if session:
            options.append(
                click.option(
                    "--session",
                    "-s",
                    envvar="LITECOORD_SESSION",
                    default="default",
                    show_default=True,
                    help="Session: the namespace of one backfill's items [env LITECOORD_SESSION].",
                )
            )
        if worker:
            options.append(
                click.option(
                    "--worker-id",
                    "-w",
                    envvar="LITECOORD_WORKER_ID",
                    metavar="ID",
                    help="Who holds leases [env LITECOORD_WORKER_ID; default: the host name; for work: <host>-<pid>].",
                )
            )
        for option in reversed(options):
            wrapper = option(wrapper)
        return wrapper  # type: ignore[return-value]

    return decorate


def _choose_store(ctx: click.Context, url: str | None, db: str) -> tuple[str | None, str]:
    """``--url`` selects a server; a ``--db`` typed on the command line beats LITECOORD_URL."""
    if not url:
        return None, db
    db_source = ctx.get_parameter_source("db")
    url_source = ctx.get_parameter_source("url")
    if db_source is click.core.ParameterSource.COMMANDLINE:
        if url_source is click.core.ParameterSource.COMMANDLINE:
            raise click.UsageError("give --db or --url, not both")
        return None, db
    _check_urls(url)
    return url, db


def _check_urls(url: str) -> None:
    """Each of ``--url``'s URLs: http(s), a host, a port in 1-65535; a usage error (exit 2) naming --url."""
    from urllib.parse import urlsplit

    from ...backends.http import split_urls

    try:
        urls = split_urls(url)
    except ValidationError as exc:
        raise click.BadParameter(exc.detail, param_hint="'--url'") from None
    for one in urls:
        try:
            parts = urlsplit(one)
            port = parts.port  # a port that is not a number, or out of range, raises here
        except ValueError as exc:
            raise click.BadParameter(f"{one!r}: {exc}", param_hint="'--url'") from None
        if not parts.hostname:
            raise click.BadParameter(f"{one!r} names no host", param_hint="'--url'")
        if port == 0:
            raise click.BadParameter(f"{one!r}: port 0 is not a server's port", param_hint="'--url'")


class Seconds(click.FloatRange):
    """A number of seconds in a range, finite: ``nan`` and ``inf`` pass any FloatRange bound."""

    name = "seconds"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        try:
            return check.finite(param.name if param and param.name else "seconds", number)
        except ValidationError:
            self.fail(f"{value!r} is not a finite number of seconds", param, ctx)


def _json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")(f)


def _epoch_option(f: F) -> F:
    return click.option(
        "--lease-epoch",
        type=click.IntRange(min=0),
        metavar="N",
        help="Act only if the lease is still epoch N (from acquire): a stale holder is refused.",
    )(f)


def _stall_after_option(help: str) -> Callable[[F], F]:
    """``--stall-after SECONDS``, as `status` and `serve` take it; ``help`` says what the command does with it."""
    return click.option(
        "--stall-after",
        type=Seconds(min=1),
        default=DEFAULT_STALL_AFTER.total_seconds(),
        show_default=True,
        metavar="SECONDS",
        help=help,
    )


def _lease_option(default: float | None) -> Callable[[F], F]:
    return click.option(
        "--lease",
        "lease_seconds",
        type=Seconds(min=0.001, max=365 * 86400),
        default=default,
        show_default=default is not None,
        metavar="SECONDS",
        help="Lease duration in seconds.",
    )


def _seconds(value: float | None) -> timedelta | None:
    return None if value is None else timedelta(seconds=value)


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2))


def _now() -> datetime:
    return datetime.now(timezone.utc)


# -- the group -----------------------------------------------------------------------


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="litecoord")
def cli() -> None:
    """Coordinate a shard-by-shard backfill through one SQLite file (or a litecoord server).

    Every command takes its options after its name, e.g.
    `litecoord batch --db backfill.db --session s1 items.jsonl`.
    Exit codes: 0 success, 1 error, 2 bad input, 3/4 no work (acquire),
    5 unknown item, 6 conflict, 7 lease expired, 8 database busy, 9 unknown
    session; `work` documents its own.
    """


