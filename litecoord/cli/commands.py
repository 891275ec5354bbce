"""The ``litecoord`` command line: every coordinator operation, the worker runner, the live view, the demo.

Each command opens a coordinator (a SQLite file with ``--db``, or a server
with ``--url``), calls one method, and prints the result: a readable table,
or JSON with ``--json``. Library errors become one-line messages and an exit
code that names their kind (:data:`EXIT_CODES`); never a traceback.

Options follow the subcommand: ``litecoord batch --db backfill.db --session s1 items.jsonl``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import itertools
import json
import os
import shutil
import signal
import socket
import sqlite3
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import IO, Any, TypeVar

import click
import peewee

from .. import validation as check
from ..backends.choose import is_postgres, open_coordinator
from ..backends.sqlite.coordinator import SqliteCoordinator
from ..errors import (
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
from ..protocol import DEFAULT_LEASE_DURATION, Coordinator, SessionTransfer
from ..transfer import read_jsonl, write_jsonl
from ..types import AlreadyCompleted, NoAvailableWorkToBeDone, WorkItem, WorkItemStatus
from . import runner, supervisor
from .render import DEFAULT_STALL_AFTER, render_item, render_items, render_sessions, render_status

__all__ = ["cli", "main", "EXIT_CODES", "DEFAULT_DB"]

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
    EXIT_ERROR: "any other error (server unreachable, authentication, not a litecoord file...)",
    EXIT_USAGE: "bad input: usage, a missing or malformed file, an invalid field (ValidationError)",
    EXIT_NO_WORK: "acquire: no work left (every item complete, or only failed items remain); "
    "status --watch: it ended with only failed items left",
    EXIT_ALL_LEASED: "acquire: work remains but all of it is leased or waiting out a retry delay",
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
        except Exception as exc:
            # A driver error of the PostgreSQL backend (psycopg is imported only when used).
            if type(exc).__module__.split(".")[0] != "psycopg":
                raise
            error = CliError(f"database error: {_one_line(str(exc))}", code="database_error")
            error.as_json = as_json
            raise error from None
        except OSError as exc:
            error = CliError(_one_line(str(exc)), code="os_error")
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
            from ..config import WorkCoordinationConfig, connect

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
    return url, db


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


# -- creating work ---------------------------------------------------------------------


@cli.command()
@coordinator_options(worker=False)
@click.argument("work_item_id")
@click.option("--index", "index_name", metavar="NAME", help="Index the shard belongs to.")
@click.option("--shard", "shard_number", type=click.IntRange(min=0), help="Shard number.")
@click.option("--documents", "document_count", type=click.IntRange(min=0), help="Documents in the shard.")
@click.option("--bytes", "total_size_bytes", type=click.IntRange(min=0), help="Size of the shard in bytes.")
@_json_option
def create(target: Target, work_item_id: str, as_json: bool, **metadata: Any) -> None:
    """Create one pending work item (exit 6 if the id exists)."""
    coord = target.open(create=True)
    created = coord.create_work_items([{"work_item_id": work_item_id, **metadata}])
    if not created:
        raise WorkItemExistsError(f"work item {work_item_id!r} already exists in session {target.session!r}")
    if as_json:
        _echo_json(created[0].to_dict())
    else:
        click.echo(f"created {work_item_id}")


def _read_items(stream: IO[str], name: str) -> list[Any]:
    """A JSON array of items, or JSON Lines (one object per line; blank lines skipped)."""
    try:
        text = stream.read()
    except UnicodeDecodeError as exc:
        raise CliError(f"{name}: {_not_utf8(exc)}", EXIT_USAGE) from None
    if not text.strip():
        raise CliError(f"{name}: no work items (the file is empty)", EXIT_USAGE)
    if text.lstrip().startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CliError(
                f"{name}: malformed JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}", EXIT_USAGE
            ) from None
        if not isinstance(data, list):
            raise CliError(f"{name}: expected a JSON array of work items", EXIT_USAGE)
        return data
    items = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise CliError(
                f"{name} line {number}: malformed JSON: {exc.msg} at column {exc.colno}", EXIT_USAGE
            ) from None
    return items


def _not_utf8(exc: UnicodeDecodeError) -> str:
    """Why a file is not UTF-8, in one phrase (UTF-16 announces itself with a byte order mark)."""
    head = exc.object[:2] if isinstance(exc.object, bytes) and exc.start < 2 else b""
    if head in (b"\xff\xfe", b"\xfe\xff"):
        return "the file is UTF-16 (it starts with a UTF-16 byte order mark); save it as UTF-8"
    byte = f"byte 0x{exc.object[exc.start]:02x}: " if isinstance(exc.object, bytes) else ""
    return f"the file is not UTF-8 ({byte}{exc.reason}; Latin-1 or another legacy encoding?); save it as UTF-8"


@cli.command()
@coordinator_options(worker=False)
# utf-8-sig: UTF-8 with or without the byte order mark some editors write.
@click.argument("file", type=click.File("r", encoding="utf-8-sig"))
@_json_option
def batch(target: Target, file: IO[str], as_json: bool) -> None:
    """Create many work items from FILE (a JSON array or JSON Lines; `-` reads stdin).

    Each item is an object with `work_item_id` and optionally `index_name`,
    `shard_number`, `document_count`, `total_size_bytes`. Existing ids are
    skipped; if any item is invalid, nothing is created.
    """
    name = getattr(file, "name", "<stdin>")  # a wrapped stdin may have none
    name = "stdin" if name == "<stdin>" else name
    items = _read_items(file, name)
    coord = target.open(create=True)
    created = coord.create_work_items(items)
    if as_json:
        _echo_json([item.to_dict() for item in created])
    else:
        skipped = len(items) - len(created)
        click.echo(f"created {len(created)} work item(s); {skipped} already existed")


@cli.command()
@coordinator_options(worker=False)
@click.option("--lease-mode", type=click.Choice(["fixed", "exponential"]), help="fixed (console) or exponential (RFS).")
@click.option("--acquire-order", type=click.Choice(["largest_first", "fifo"]), help="Which pending item goes first.")
@click.option("--max-attempts", type=click.IntRange(min=1), help="Failures after which an item is parked as failed.")
@click.option(
    "--retry-delay",
    type=click.FloatRange(0, 86400),
    metavar="SECONDS",
    help="Delay before a failed item is handed out again; doubles per failure, jittered [new sessions: 10; 0: none].",
)
@click.option(
    "--max-retry-delay",
    type=click.FloatRange(0, 86400),
    metavar="SECONDS",
    help="Cap on the retry delay [new sessions: 600].",
)
@_json_option
def setup(
    target: Target,
    lease_mode: str | None,
    acquire_order: str | None,
    max_attempts: int | None,
    retry_delay: float | None,
    max_retry_delay: float | None,
    as_json: bool,
) -> None:
    """Create the session if missing and set its lease mode, acquire order, max attempts or retry delays.

    Also upgrades a file written by an older litecoord to this one's schema.
    """
    coord = target.open(create=True)
    coord.setup(
        lease_mode=lease_mode,
        acquire_order=acquire_order,
        max_attempts=max_attempts,
        retry_delay=retry_delay,
        max_retry_delay=max_retry_delay,
    )
    if as_json:
        info = next(s for s in coord.list_sessions() if s.session_name == target.session)
        _echo_json(info.to_dict())  # the body of the REST API's PUT /sessions/{session}
    else:
        click.echo(f"session {target.session} is ready")


# -- leasing -----------------------------------------------------------------------------


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


@cli.command()
@coordinator_options()
@_lease_option(DEFAULT_LEASE_DURATION.total_seconds())
@_json_option
def acquire(target: Target, lease_seconds: float, as_json: bool) -> None:
    """Lease the next available work item to this worker.

    Exit 3 when no work is left (every item complete, or only failed items
    remain), exit 4 when work remains but all of it is leased or waiting out
    a retry delay. If this worker already holds a live lease, that lease is
    returned.
    """
    outcome = target.open().acquire_next_work_item(timedelta(seconds=lease_seconds))
    if isinstance(outcome, NoAvailableWorkToBeDone):
        body = outcome.to_dict()
        code = EXIT_ALL_LEASED if outcome.remaining else EXIT_NO_WORK
        if as_json:
            _echo_json(body)
            # On stderr too, as every error under --json: one JSON object with the exit code.
            click.echo(json.dumps({**body, "exit_code": code}), err=True)
        else:
            click.echo(body["detail"], err=True)
        sys.exit(code)
    if as_json:
        _echo_json(outcome.to_dict())
    else:
        click.echo(
            f"acquired {outcome.work_item_id} (lease epoch {outcome.lease_epoch}) until "
            f"{outcome.to_dict()['lease_expiry']} ({outcome.lease_duration.total_seconds():g}s)"
        )


@cli.command()
@coordinator_options()
@click.argument("work_item_id")
@_lease_option(DEFAULT_LEASE_DURATION.total_seconds())
@_json_option
def lease(target: Target, work_item_id: str, lease_seconds: float, as_json: bool) -> None:
    """Lease the named work item, creating it if absent (RFS createOrUpdateLease).

    Prints `already completed` (exit 0) for a completed item; exit 6 if
    another worker holds a live lease.
    """
    outcome = target.open(create=True).create_or_update_lease_for_work_item(
        work_item_id, timedelta(seconds=lease_seconds)
    )
    if as_json:
        _echo_json(outcome.to_dict())
    elif isinstance(outcome, AlreadyCompleted):
        click.echo(f"{work_item_id} is already completed")
    else:
        click.echo(
            f"leased {work_item_id} (lease epoch {outcome.lease_epoch}) until {outcome.to_dict()['lease_expiry']}"
        )


@cli.command()
@coordinator_options()
@click.argument("work_item_id")
@click.option("--docs", "documents_processed", type=click.IntRange(min=0), help="Documents processed so far (total).")
@click.option("--bytes", "bytes_processed", type=click.IntRange(min=0), help="Bytes processed so far (total).")
@_lease_option(None)
@_epoch_option
@_json_option
def renew(
    target: Target,
    work_item_id: str,
    documents_processed: int | None,
    bytes_processed: int | None,
    lease_seconds: float | None,
    lease_epoch: int | None,
    as_json: bool,
) -> None:
    """Renew this worker's lease on an item, optionally recording progress.

    Progress values are absolute totals. The lease runs from now for
    --lease seconds (default: the length it was acquired with). Exit 6 if
    another worker holds it, 7 if this worker's lease expired.
    """
    item = target.open().update_progress_and_renew_lease(
        work_item_id,
        documents_processed,
        bytes_processed,
        lease_duration=_seconds(lease_seconds),
        lease_epoch=lease_epoch,
    )
    if as_json:
        _echo_json(item.to_dict())
    else:
        click.echo(f"renewed {work_item_id} until {item.to_dict()['lease_expiry']}")


@cli.command()
@coordinator_options()
@click.argument("work_item_id")
@_epoch_option
@_json_option
def complete(target: Target, work_item_id: str, lease_epoch: int | None, as_json: bool) -> None:
    """Mark an item complete (only its lease holder may)."""
    item = target.open().complete_work_item(work_item_id, lease_epoch=lease_epoch)
    if as_json:
        _echo_json(item.to_dict())
    else:
        click.echo(f"completed {work_item_id}")


@cli.command()
@coordinator_options()
@click.argument("work_item_id")
@_epoch_option
@_json_option
def release(target: Target, work_item_id: str, lease_epoch: int | None, as_json: bool) -> None:
    """Give an item back unfinished (exit 6 if this worker did not hold it)."""
    released = target.open().release_work_item(work_item_id, lease_epoch=lease_epoch)
    if as_json:
        _echo_json({"work_item_id": work_item_id, "released": released})
    if not released:
        raise CliError(
            f"work item {work_item_id!r} was not released: it is complete, or not leased by this worker",
            EXIT_CONFLICT,
            code="not_released",
        )
    if not as_json:
        click.echo(f"released {work_item_id}")


@cli.command()
@coordinator_options()
@click.argument("work_item_id")
@click.option("--error", "-e", "error", required=True, help="What went wrong (kept on the item).")
@_epoch_option
@_json_option
def fail(target: Target, work_item_id: str, error: str, lease_epoch: int | None, as_json: bool) -> None:
    """Record a failure and give the item back; after max attempts it is parked as failed."""
    item = target.open().fail_work_item(work_item_id, error, lease_epoch=lease_epoch)
    if as_json:
        _echo_json(item.to_dict())
    else:
        click.echo(f"recorded failure {item.failure_count} of {work_item_id}; it is now {item.status.value}")


@cli.command()
@coordinator_options()
@click.argument("work_item_id")
@click.argument("successors", nargs=-1, required=True)
@_epoch_option
@_json_option
def split(
    target: Target, work_item_id: str, successors: tuple[str, ...], lease_epoch: int | None, as_json: bool
) -> None:
    """Create SUCCESSORS for the rest of an item's work and complete it (the holder only).

    The successors share what is left of the item's documents and bytes.
    Repeating the same split is harmless; a different one exits 6.
    """
    item = target.open().create_successor_work_items_and_mark_complete(
        work_item_id, list(successors), lease_epoch=lease_epoch
    )
    if as_json:
        _echo_json(item.to_dict())
    else:
        click.echo(f"completed {work_item_id} with successors {', '.join(item.successor_ids)}")


@cli.command()
@coordinator_options(worker=False)
@click.argument("work_item_ids", metavar="[ID]...", nargs=-1)
@click.option("--all-failed", is_flag=True, help="Retry every item of the session parked as failed.")
@_json_option
def retry(target: Target, work_item_ids: tuple[str, ...], all_failed: bool, as_json: bool) -> None:
    """Return failed items to pending, failure counts cleared, available at once.

    Give item ids, or --all-failed for every failed item of the session. An
    id that is not failed is left as it is and reported (exit 6), an unknown
    one too (exit 5); the others are still retried.
    """
    if not work_item_ids and not all_failed:
        raise click.UsageError("name the items to retry, or pass --all-failed")
    coord = target.open()
    wanted = list(dict.fromkeys(work_item_ids))
    if all_failed:
        wanted += [i.work_item_id for i in coord.list_work_items(WorkItemStatus.FAILED) if i.work_item_id not in wanted]
    retried: list[WorkItem] = []
    not_failed: list[WorkItem] = []
    not_found: list[str] = []
    for work_item_id in wanted:
        try:
            # Read first: retry_work_item leaves any other item unchanged, and we say so.
            current = coord.get_work_item(work_item_id)
        except WorkItemNotFoundError:
            not_found.append(work_item_id)
            continue
        if current.status is not WorkItemStatus.FAILED:
            not_failed.append(current)
            continue
        item = coord.retry_work_item(work_item_id)
        (retried if item.status is WorkItemStatus.PENDING else not_failed).append(item)
    if as_json:
        _echo_json(
            {
                "retried": [i.to_dict() for i in retried],
                "not_failed": [{"work_item_id": i.work_item_id, "status": i.status.value} for i in not_failed],
                "not_found": not_found,
            }
        )
    else:
        for item in retried:
            click.echo(f"retried {item.work_item_id}: pending again")
        if all_failed and not wanted:
            click.echo(f"no failed items in session {target.session}")
    problems = [f"{i.work_item_id} is not failed (it is {i.status.value}); left as it is" for i in not_failed]
    problems += [f"work item {i!r} not found in session {target.session!r}" for i in not_found]
    if problems:
        raise CliError("; ".join(problems), EXIT_NOT_FOUND if not_found else EXIT_CONFLICT, code=(
            "work_item_not_found" if not_found else "not_failed"
        ))


# -- reading -------------------------------------------------------------------------------


@cli.command(name="list")
@coordinator_options(worker=False)
@click.option(
    "--status", "status_filter", type=click.Choice([s.value for s in WorkItemStatus]), help="Only items in this status."
)
@_json_option
def list_(target: Target, status_filter: str | None, as_json: bool) -> None:
    """List the session's work items in creation order."""
    items = target.open().list_work_items(status_filter)
    if as_json:
        _echo_json([item.to_dict() for item in items])
    else:
        click.echo(render_items(items, _now()))


@cli.command()
@coordinator_options(worker=False)
@click.argument("work_item_id")
@_json_option
def show(target: Target, work_item_id: str, as_json: bool) -> None:
    """Show every field of one work item."""
    item = target.open().get_work_item(work_item_id)
    if as_json:
        _echo_json(item.to_dict())
    else:
        click.echo(render_item(item, _now()))


def _view_items(coord: Coordinator) -> list[WorkItem]:
    """What the status view draws: live and lapsed leases, retrying and failed items (not the whole session)."""
    items = coord.list_work_items(WorkItemStatus.ASSIGNED) + coord.list_work_items(WorkItemStatus.FAILED)
    items += [
        i
        for i in coord.list_work_items(WorkItemStatus.PENDING)
        if (i.worker_id and i.lease_expiry) or i.failure_count  # lapsed, or failed and back in the queue
    ]
    return items


def _terminal() -> tuple[bool, bool, int]:
    """(on a terminal, unicode safe, width) for stdout."""
    stream = sys.stdout
    tty = stream.isatty()
    encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "")
    return tty, tty and encoding == "utf8", shutil.get_terminal_size((80, 24)).columns


def draw_frame(frame: str, *, redraw: bool) -> None:
    """On a terminal, overwrite the previous frame in place; elsewhere print frames one after another."""
    if redraw:
        # Home, then each line followed by erase-to-end-of-line, then erase below: no flicker.
        body = "\x1b[K\n".join(frame.split("\n"))
        click.echo(f"\x1b[H{body}\x1b[K\n\x1b[J", nl=False)
    else:
        click.echo(frame + "\n")


@cli.command()
@coordinator_options(worker=False)
@_json_option
@click.option("--watch", is_flag=True, help="Redraw the view every --interval seconds until all work is done.")
@click.option("--interval", type=Seconds(min=0.1), default=2.0, show_default=True, help="Seconds per frame.")
@_stall_after_option(
    "Flag items whose progress has not moved for this long while heartbeats arrive."
)
@click.option(
    "--prometheus",
    is_flag=True,
    help="Print the metrics of every session in the Prometheus text format, as GET /metrics does "
    "(for node_exporter's textfile collector). Needs prometheus_client: pip install 'litecoord[metrics]'.",
)
def status(target: Target, as_json: bool, watch: bool, interval: float, stall_after: float, prometheus: bool) -> None:
    """Show the session's progress: totals, throughput, ETA, items in progress, stalled and failed items.

    Each item in progress shows how long its lease has run and the age of its
    last heartbeat; it is flagged silent (?) when that is older than a third
    of its lease, stalled (!) when heartbeats arrive but progress stands
    still. Items that failed and wait to be retried show their failures and
    last error. `--json` prints the same object as the REST API's GET /status
    (with --watch: one JSON object per line). On a terminal --watch redraws
    in place, cut to the terminal's width; otherwise it prints plain frames,
    without ANSI codes, and never cuts a line. --watch ends
    when no item is pending or leased (exit 0 when all are complete, 3 when
    only failed items are left), or on Ctrl-C (exit 130).
    """
    coord = target.open()
    if prometheus:
        if watch or as_json:
            raise click.UsageError("--prometheus prints one snapshot: leave out --watch and --json")
        try:
            from ..metrics import prometheus_text
        except ImportError:
            raise CliError(
                "--prometheus needs prometheus_client: pip install 'litecoord[metrics]'", EXIT_USAGE
            ) from None
        click.echo(prometheus_text(coord, stall_after=timedelta(seconds=stall_after)), nl=False)
        return
    tty, unicode, width = _terminal()
    stop = threading.Event()
    if watch and tty and not as_json:
        click.echo("\x1b[2J", nl=False)  # start from a clear screen; frames then redraw in place
    with runner.stop_on_signals(stop):
        while True:
            summary = coord.status()
            if as_json:
                click.echo(json.dumps(summary.to_dict(), indent=None if watch else 2))
            else:
                frame = render_status(
                    summary,
                    _view_items(coord),
                    summary.as_of or _now(),
                    width if tty else None,  # piped or redirected: never cut a line
                    stall_after=timedelta(seconds=stall_after),
                    color=tty,
                    unicode=unicode,
                )
                if watch:
                    draw_frame(frame, redraw=tty)
                else:
                    click.echo(frame)
            if not watch:
                return
            if summary.total_work_items and summary.not_yet_complete == 0:
                # The watch ran to the end: a script waiting on it learns whether all got done.
                sys.exit(EXIT_NO_WORK if summary.failed_work_items else EXIT_OK)
            if stop.wait(interval):
                sys.exit(EXIT_INTERRUPTED)


@cli.command()
@coordinator_options(session=False, worker=False)
@_json_option
def sessions(target: Target, as_json: bool) -> None:
    """List every session in the store with its settings and counts."""
    found = target.open().list_sessions()
    if as_json:
        _echo_json([s.to_dict() for s in found])
    else:
        click.echo(render_sessions(found))


# -- housekeeping ------------------------------------------------------------------------------


@cli.command(name="cleanup-expired")
@coordinator_options(worker=False)
@_json_option
def cleanup_expired(target: Target, as_json: bool) -> None:
    """Mark items whose lease lapsed as pending (only tidies listings; acquire takes them anyway)."""
    count = target.open().cleanup_expired()
    if as_json:
        _echo_json({"session_name": target.session, "cleaned": count})  # the REST API's body
    else:
        click.echo(f"returned {count} item(s) with lapsed leases to pending")


@cli.command(name="delete-session")
@coordinator_options(worker=False)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@_json_option
def delete_session(target: Target, yes: bool, as_json: bool) -> None:
    """Delete every work item of the session."""
    if not yes:
        click.confirm(f"Delete every work item of session {target.session!r}?", abort=True, err=as_json)
    count = target.open().delete_session()
    if as_json:
        _echo_json({"session_name": target.session, "deleted": count})  # the REST API's body
    else:
        click.echo(f"deleted {count} work item(s) of session {target.session}")


# -- moving a session between stores -------------------------------------------------------------


def _transfer_side(coord: Coordinator, verb: str) -> SessionTransfer:
    if not isinstance(coord, SessionTransfer):
        raise CliError(f"{verb} works on a database directly: give --db, not --url", EXIT_USAGE)
    return coord


@cli.command(name="export")
@coordinator_options(worker=False)
@click.option(
    "--output",
    "-o",
    type=click.File("w", encoding="utf-8", atomic=True),
    default="-",
    show_default=True,
    help="File to write (`-`: stdout); written whole or not at all.",
)
def export_(target: Target, output: IO[str]) -> None:
    """Write a session as JSON Lines: items with their leases, progress, failures and history.

    `litecoord import` reads it into any store (a SQLite file, or another
    database), e.g. to move a running backfill off one host. The export is one
    consistent snapshot; stop the workers first (or let them resume after the
    import) so nothing they write afterwards is left behind.
    """
    coord = target.open()
    source = _transfer_side(coord, "export")
    exported = source.export_session()  # an unknown session: SessionNotFoundError, exit 9
    end: dict[str, Any] = {}

    def records() -> Iterable[dict[str, Any]]:
        for record in exported:
            end.update(record)  # the last one, the end record, holds the counts
            yield record

    write_jsonl(records(), output)
    click.echo(
        f"exported session {target.session}: {end['items']} work item(s), {end['samples']} progress sample(s)",
        err=True,
    )


@cli.command(name="import")
@coordinator_options(worker=False)
@click.argument("file", type=click.File("r", encoding="utf-8"))
@click.option("--replace", is_flag=True, help="Replace the items of a session that already has some.")
@_json_option
def import_(target: Target, file: IO[str], replace: bool, as_json: bool) -> None:
    """Read a session exported by `litecoord export` from FILE (`-`: stdin), in one transaction.

    The session keeps the name it was exported with unless --session names
    another. Live leases survive the move (same holder, lease epoch and
    expiry). A session that already holds items is refused (exit 6) unless
    --replace; a bad file is a one-line error naming its line, and nothing is
    written.
    """
    records = read_jsonl(file)
    first = next(records, None)
    if click.get_current_context().get_parameter_source("session") is click.core.ParameterSource.DEFAULT:
        if isinstance(first, dict) and isinstance(first.get("session_name"), str):
            target = dataclasses.replace(target, session=first["session_name"])
    name = "stdin" if file.name == "<stdin>" else file.name
    coord = _transfer_side(target.open(create=True), "import")
    try:
        summary = coord.import_session(itertools.chain([] if first is None else [first], records), replace=replace)
    except ValidationError as exc:
        raise CliError(f"{name} {exc.detail}; nothing was imported", EXIT_USAGE) from None
    if as_json:
        _echo_json(summary.to_dict())
    else:
        click.echo(
            f"imported session {summary.session_name}: {summary.items} work item(s) "
            f"({summary.live_leases} live lease(s) kept), {summary.samples} progress sample(s)"
            + (f"; replaced {summary.replaced_items} item(s)" if summary.replaced_items else "")
        )


# -- serving -----------------------------------------------------------------------------------


@cli.command()
@_db_option
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. The default accepts only this machine; any other address "
    "(0.0.0.0, ::, a LAN address) needs a --token, or --trust-network.",
)
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="TCP port.")
@click.option(
    "--token", envvar="LITECOORD_TOKEN", metavar="TOKEN", help="Require this bearer token [env LITECOORD_TOKEN]."
)
@click.option("--threads", type=click.IntRange(min=1), default=8, show_default=True, help="Request threads.")
@click.option("--quiet", "-q", is_flag=True, help="No access log (one line per request on stderr).")
@click.option(
    "--trust-network",
    is_flag=True,
    help="Serve a non-loopback --host without a token: every host that can reach it may lease, "
    "complete and delete work.",
)
@_stall_after_option(
    "The page and the metrics flag a lease stalled when its progress stands still this long."
)
@click.option(
    "--ephemeral",
    is_flag=True,
    help="For test harnesses: serve a new temporary file (removed at exit) on a free port (unless --port "
    "is given), and print the base URL alone as the first line on stdout.",
)
@click.option(
    "--test-clock",
    is_flag=True,
    help="For tests only: run on a fake clock that POST /_test/clock moves "
    '({"advance_seconds": 360} or {"now": "2025-01-19T20:36:00Z"}) and GET /_test/clock reads. '
    "Loopback hosts only.",
)
@click.option(
    "--port-file",
    type=click.Path(dir_okay=False, writable=True),
    metavar="PATH",
    help="Once listening, write the base URL to PATH (atomically; removed at exit).",
)
@click.pass_context
def serve(
    ctx: click.Context,
    db: str,
    host: str,
    port: int,
    token: str | None,
    threads: int,
    quiet: bool,
    ephemeral: bool,
    test_clock: bool,
    port_file: str | None,
    trust_network: bool,
    stall_after: float,
) -> None:
    """Serve the console REST API for the --db file or database (needs `pip install 'litecoord[server]'`).

    Workers on other hosts then use `--url http://HOST:PORT`. Over PostgreSQL
    (--db postgresql://...) any number of servers serve the same sessions. A browser at
    http://HOST:PORT/ shows the live status page; /metrics serves Prometheus
    metrics. Each request is logged on stderr (time, client, method, path,
    status, duration, worker id) unless --quiet. Ctrl-C stops it with exit
    code 130; SIGTERM (a service manager's stop) with 0. Tests of clients in
    any language start `litecoord serve --ephemeral --test-clock`, read the
    base URL from its first line of output, and stop it with SIGTERM.
    """
    try:
        from ..rest.server import serve as run_server
    except ImportError as exc:
        raise CliError(f"the REST server is not available in this installation ({exc})") from None
    source = click.core.ParameterSource
    if ephemeral and ctx.get_parameter_source("db") is source.COMMANDLINE:
        raise CliError("--ephemeral serves a new temporary file: leave out --db", EXIT_USAGE)
    if ephemeral and ctx.get_parameter_source("port") is not source.COMMANDLINE:
        port = 0

    def announce(server: Any) -> None:
        # The file first: whoever reads the line on stdout may look for the file next.
        if port_file:
            _write_atomically(port_file, server.url + "\n")
        if ephemeral:
            click.echo(server.url)  # alone on the first line: what a harness reads
            sys.stdout.flush()

    try:
        with _ephemeral_file() if ephemeral else contextlib.nullcontext(db) as path:
            try:
                stopped_by = run_server(
                    path,
                    host=host,
                    port=port,
                    token=token,
                    threads=threads,
                    access_log=None if quiet else sys.stderr,
                    stall_after=timedelta(seconds=stall_after),
                    # A file removed at exit cannot need to survive a power loss: skip the syncs.
                    durability="normal" if ephemeral else "full",
                    test_clock=test_clock,
                    on_ready=announce,
                    trust_network=trust_network,
                )
            finally:
                if port_file:
                    with contextlib.suppress(FileNotFoundError):
                        os.remove(port_file)  # a stale URL must not outlive the server
    except KeyboardInterrupt:
        stopped_by = signal.SIGINT
    except (ImportError, RuntimeError) as exc:
        raise CliError(_one_line(str(exc))) from None
    if stopped_by == signal.SIGINT:
        sys.exit(EXIT_INTERRUPTED)


@contextlib.contextmanager
def _ephemeral_file() -> Iterator[str]:
    """A new coordination file in a temporary directory, removed (with its WAL) on the way out."""
    with tempfile.TemporaryDirectory(prefix="litecoord-ephemeral-") as directory:
        yield os.path.join(directory, "litecoord.db")


def _write_atomically(path: str, text: str) -> None:
    # A harness polling the file must never read half a URL: write beside it, then rename over it.
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(temporary, path)


# -- the worker runner ----------------------------------------------------------------------------

_WORK_HELP = (
    f"""Run COMMAND once per work item until no work is left.

For each item the runner acquires a lease, runs COMMAND with the item in
environment variables (LITECOORD_WORK_ITEM_ID, _INDEX_NAME, _SHARD_NUMBER,
_DOCUMENT_COUNT, _TOTAL_SIZE_BYTES, _DOCUMENTS_PROCESSED, _BYTES_PROCESSED,
_LEASE_EXPIRY, _LEASE_SECONDS, _LEASE_EPOCH, _ATTEMPT, _SESSION, _WORKER_ID,
_PROGRESS_FD), renews the lease every heartbeat while it runs, and completes
the item when COMMAND exits 0 or records a failure (exit code and last
output lines) otherwise; a failed item comes back after the session's retry
delay (see `litecoord setup --retry-delay`). If the lease is lost,
COMMAND's process group is killed.

COMMAND reports progress (absolute totals) with lines on stdout, or on the
file descriptor in LITECOORD_PROGRESS_FD:

\b
    {runner.PROGRESS_PREFIX} docs=1200 bytes=480000

\b
Exit codes:
"""
    + "\n".join(f"  {code:>3}  {text}" for code, text in runner.EXIT_CODES.items())
    + """

With --workers N, N runner processes run side by side (worker ids
<ID>-1 .. <ID>-N) and the exit code describes the whole run. A worker that
dies is announced and restarted under its own id (it picks its item up
again); one that dies more than --max-restarts times within a minute is
given up. The first Ctrl-C stops the commands (SIGKILL after --grace) and
releases their items; a second one kills the commands at once.

Example: litecoord work --db backfill.db --workers 4 -- ./reindex-shard.sh
"""
)


@cli.command(help=_WORK_HELP, context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@coordinator_options()
@click.option("--workers", "-n", type=click.IntRange(1, 512), default=1, show_default=True, help="Runner processes.")
@_lease_option(DEFAULT_LEASE_DURATION.total_seconds())
@click.option(
    "--heartbeat",
    type=Seconds(min=0.01),
    metavar="SECONDS",
    help=f"Seconds between renewals [default: a third of the lease, at most {runner.DEFAULT_MAX_HEARTBEAT:g}].",
)
@click.option(
    "--poll", type=Seconds(min=0.01), default=1.0, show_default=True, help="Seconds between acquire attempts."
)
@click.option(
    "--wait/--no-wait",
    default=True,
    show_default=True,
    help="While all remaining work is leased elsewhere, keep polling (a holder may die) or exit 4 at once.",
)
@click.option(
    "--grace", type=Seconds(min=0), default=5.0, show_default=True, help="Seconds from SIGTERM to SIGKILL."
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Stop COMMAND if it runs longer than this on one item (SIGTERM, SIGKILL after --grace) "
    "and count the attempt as failed [default: no limit].",
)
@click.option(
    "--prefix/--no-prefix",
    default=None,
    help="Start each line COMMAND writes with '<worker> <item> | ' [default: on with --workers > 1]. "
    "--no-prefix passes the output through unchanged (binary, JSON).",
)
@click.option(
    "--max-restarts",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    help="With --workers: restart a dead worker at most this often within "
    f"{supervisor.RestartPolicy().window:g}s (with a growing delay), then give it up.",
)
@click.option("--quiet", "-q", is_flag=True, help="Do not echo COMMAND's output or the runner's events.")
# Set by the supervisor of --workers N: EOF on this descriptor means the supervisor is gone.
@click.option("--supervisor-fd", type=click.IntRange(min=0), hidden=True)
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def work(
    target: Target,
    workers: int,
    lease_seconds: float,
    heartbeat: float | None,
    poll: float,
    wait: bool,
    grace: float,
    timeout: float | None,
    prefix: bool | None,
    max_restarts: int,
    quiet: bool,
    supervisor_fd: int | None,
    command: tuple[str, ...],
) -> None:
    if heartbeat is not None and heartbeat >= lease_seconds:
        raise click.BadParameter("must be shorter than the lease", param_hint="--heartbeat")
    if prefix is None:
        prefix = workers > 1
    base = target.worker_id or f"{socket.gethostname()}-{os.getpid()}"
    coord = target.open(worker_id=base)
    if workers > 1:
        coord.status()  # an unknown session: one error line (exit 9), not one per worker process
    stop, urgent = threading.Event(), threading.Event()

    def log(line: str) -> None:
        click.echo(runner.timestamped(line), err=True)

    if workers == 1:
        options = runner.RunnerOptions(
            command=command,
            lease_duration=timedelta(seconds=lease_seconds),
            heartbeat=heartbeat,
            poll_interval=poll,
            wait=wait,
            grace=grace,
            echo_output=not quiet,
            prefix_output=prefix,
            timeout=timeout,
        )
        loop = runner.Runner(
            coord,
            options,
            stop=stop,
            urgent=urgent,
            log=None if quiet else log,
            # The command's output bytes go through unchanged (whatever their encoding).
            stdout=getattr(sys.stdout, "buffer", None),
            stderr=getattr(sys.stderr, "buffer", None),
        )
        if supervisor_fd is not None:
            # A worker of `--workers N`: the supervisor speaks for the run, and says when it stops.
            def supervisor_gone() -> None:
                if not stop.is_set():
                    loop.log("the supervisor is gone; stopping")
                stop.set()

            supervisor.stop_when_closed(supervisor_fd, supervisor_gone)
            on_signal = None
        else:
            on_signal = functools.partial(_announce_stop, base, grace)
        with runner.stop_on_signals(stop, urgent, on_signal):
            result = loop.run()
        if quiet and result.exit_code != runner.EXIT_ALL_DONE:
            click.echo(f"{base}: {result.reason}", err=True)
        sys.exit(result.exit_code)

    argv = [sys.executable, "-m", "litecoord.cli", "work", "--session", target.session]
    if target.url:
        argv += ["--url", target.url]
    elif not is_postgres(target.db):
        argv += ["--db", os.path.abspath(target.db)]
    argv += ["--lease", repr(lease_seconds), "--poll", repr(poll), "--grace", repr(grace)]
    argv += ["--wait" if wait else "--no-wait"] + (["--quiet"] if quiet else [])
    argv += [] if heartbeat is None else ["--heartbeat", repr(heartbeat)]
    argv += [] if timeout is None else ["--timeout", repr(timeout)]
    argv += ["--prefix" if prefix else "--no-prefix"]
    env = dict(os.environ)
    if target.token:
        env["LITECOORD_TOKEN"] = target.token  # not in argv, where `ps` would show it
    env.pop("LITECOORD_DB", None)
    env.pop("LITECOORD_URL", None)
    if not target.url and is_postgres(target.db):
        env["LITECOORD_DB"] = target.db  # a DSN may hold a password: not in argv either
    ids = [f"{base}-{i}" for i in range(1, workers + 1)]
    if not quiet:
        log(f"supervisor: starting {workers} worker processes: {ids[0]} .. {ids[-1]}")
    team = supervisor.Supervisor(
        ids,
        lambda wid, fd: [*argv, "--supervisor-fd", str(fd), "--worker-id", wid, "--", *command],
        stop=stop,
        urgent=urgent,
        env=env,
        grace=grace,
        policy=supervisor.RestartPolicy(max_restarts=max_restarts),
        # Deaths, restarts and stopping are shown even with --quiet: they need the operator's eye.
        log=log,
    )
    with runner.stop_on_signals(stop, urgent):
        results = team.run()
    codes = [r.exit_code for r in results]
    code = runner.combine_exit_codes(codes, coord.status(), interrupted=stop.is_set())
    if code != runner.EXIT_ALL_DONE or not quiet:
        summary = ", ".join(
            f"{r.worker_id}={r.exit_code}"
            + (f" after {r.restarts} restart(s)" if r.restarts else "")
            + (" (given up)" if r.gave_up else "")
            for r in results
        )
        log(f"supervisor: workers exited ({summary}); run exit code {code}: {runner.EXIT_CODES[code]}")
    sys.exit(code)


def _announce_stop(worker_id: str, grace: float, count: int) -> None:
    """What a lone runner says on Ctrl-C (from inside the signal handler, hence ``os.write``)."""
    if count == 1:
        text = (
            f"{worker_id}: stopping: the command gets SIGTERM (SIGKILL after --grace {grace:g}s), "
            "then its item is released; Ctrl-C again to kill it now"
        )
    elif count == 2:
        text = f"{worker_id}: stopping now: killing the command"
    else:
        return
    with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
        os.write(sys.stderr.fileno(), (runner.timestamped(text) + "\n").encode())


# -- the demo -----------------------------------------------------------------------------------


@cli.command()
@click.option(
    "--db",
    default="litecoord-demo.db",
    show_default=True,
    metavar="PATH",
    help="Demo file, recreated on each run (refused if it holds other sessions).",
)
@click.option("--workers", type=click.IntRange(2, 32), default=4, show_default=True, help="Worker processes.")
@click.option("--items", type=click.IntRange(4, 1000), default=24, show_default=True, help="Simulated shards.")
@click.option(
    "--lease",
    type=Seconds(min=1),
    default=4.0,
    show_default=True,
    help="Lease seconds (short: fast recovery).",
)
@click.option("--seed", type=int, default=7, show_default=True, help="Seed for the shard sizes.")
@click.option(
    "--serve",
    is_flag=True,
    help="Also serve the status page (and REST API) on 127.0.0.1:--port to watch in a browser; the shards "
    "then run for about a minute and the page stays up until Ctrl-C. Needs `pip install 'litecoord[server]'`.",
)
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="Port for --serve.")
def demo(db: str, workers: int, items: int, lease: float, seed: int, serve: bool, port: int) -> None:
    """Run a simulated backfill: workers, a live view, a worker killed with SIGKILL and its shard recovered.

    Creates a `demo` session of shards of different sizes in the demo file,
    starts worker processes through `litecoord work`, kills one of them
    mid-lease, and shows the live view until every shard is done; exit 0 when
    the backfill completed and the killed worker's shard was recovered.
    """
    from .demo import run_demo

    tty, unicode, width = _terminal()
    pace = {"full_seconds": 20.0, "timeout": 600.0, "serve_port": port} if serve else {}
    sys.exit(
        run_demo(
            db, workers=workers, items=items, lease=lease, seed=seed, tty=tty, unicode=unicode, width=width, **pace
        )
    )


def commands() -> Iterable[str]:
    """Every command name (the docs test checks each has help and a README mention)."""
    return sorted(cli.commands)


def main(argv: list[str] | None = None) -> Any:
    """The console-script entry point."""
    return cli.main(args=argv, prog_name="litecoord")
