"""Commands that create and work on items.

create, batch, setup, acquire, lease, renew, complete, release, fail, split, successors, retry.
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from typing import IO, Any

import click

from ...errors import (
    WorkItemExistsError,
    WorkItemNotFoundError,
)
from ...protocol import DEFAULT_LEASE_DURATION
from ...types import AlreadyCompleted, NoAvailableWorkToBeDone, WorkItem, WorkItemStatus
from .base import (
    EXIT_ALL_LEASED,
    EXIT_CONFLICT,
    EXIT_NO_WORK,
    EXIT_NOT_FOUND,
    EXIT_USAGE,
    CliError,
    Target,
    _echo_json,
    _epoch_option,
    _json_option,
    _lease_option,
    _seconds,
    cli,
    coordinator_options,
)

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
@click.option(
    "--split-min-documents",
    type=click.IntRange(min=0),
    metavar="N",
    help="Idle workers ask a holder to split only items with at least 2 x N documents left [new sessions: 10000].",
)
@click.option("--no-split-requests", is_flag=True, help="Turn split requests off for the session.")
@_json_option
def setup(
    target: Target,
    lease_mode: str | None,
    acquire_order: str | None,
    max_attempts: int | None,
    retry_delay: float | None,
    max_retry_delay: float | None,
    split_min_documents: int | None,
    no_split_requests: bool,
    as_json: bool,
) -> None:
    """Create the session if missing and set its lease mode, acquire order, max attempts, retries or split requests.

    Also upgrades a file written by an older litecoord to this one's schema.
    """
    if no_split_requests and split_min_documents is not None:
        raise click.UsageError("--no-split-requests and --split-min-documents contradict each other: give one")
    splits: dict[str, Any] = {}
    if no_split_requests or split_min_documents is not None:
        splits["split_min_documents"] = None if no_split_requests else split_min_documents
    coord = target.open(create=True)
    coord.setup(
        lease_mode=lease_mode,
        acquire_order=acquire_order,
        max_attempts=max_attempts,
        retry_delay=retry_delay,
        max_retry_delay=max_retry_delay,
        **splits,
    )
    if as_json:
        info = next(s for s in coord.list_sessions() if s.session_name == target.session)
        _echo_json(info.to_dict())  # the body of the REST API's PUT /sessions/{session}
    else:
        click.echo(f"session {target.session} is ready")


# -- leasing -----------------------------------------------------------------------------


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
@click.option("--docs", "documents_processed", type=click.IntRange(min=0), help="Final documents processed (total).")
@click.option("--bytes", "bytes_processed", type=click.IntRange(min=0), help="Final bytes processed (total).")
@_epoch_option
@_json_option
def complete(
    target: Target,
    work_item_id: str,
    documents_processed: int | None,
    bytes_processed: int | None,
    lease_epoch: int | None,
    as_json: bool,
) -> None:
    """Mark an item complete (only its lease holder may).

    With --docs (and --bytes) the item records those final figures: fewer
    documents than its range is a short completion that `verify` reports.
    Without them the item counts in full.
    """
    item = target.open().complete_work_item(
        work_item_id,
        lease_epoch=lease_epoch,
        documents_processed=documents_processed,
        bytes_processed=bytes_processed,
    )
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
@click.argument("old_successors", metavar="", nargs=-1)
@click.option(
    "--at", type=click.IntRange(min=0), metavar="N", help="The document position the item ends at from now on."
)
@_epoch_option
@_json_option
def split(
    target: Target,
    work_item_id: str,
    old_successors: tuple[str, ...],
    at: int | None,
    lease_epoch: int | None,
    as_json: bool,
) -> None:
    """Live split: give away the rest of your leased item from document position --at N (the holder only).

    The item keeps [range_start, N) and its lease; a new pending item takes
    [N, range_end) (id index__shard__N for an RFS id), with the documents and
    bytes estimates moved to it. Exit 2 if N is behind your recorded position
    or not before the range's end, 6 if another worker holds the item, 7 if
    your lease expired. Repeating the same split is harmless. (To create RFS
    successors and complete the item, use `litecoord successors`; the old
    spelling `split ID SUCCESSOR...` still does that, with a notice.)
    """
    if old_successors:
        if at is not None:
            raise click.UsageError("give either --at N (a live split) or successor ids (`litecoord successors`)")
        _successors(target, work_item_id, old_successors, lease_epoch, as_json)
        # After the work, so that an error stays the one line every error is.
        click.echo("notice: `litecoord split ID SUCCESSOR...` is now `litecoord successors ID SUCCESSOR...`", err=True)
        return
    if at is None:
        raise click.UsageError("--at N is required: the document position the item ends at from now on")
    kept, new = target.open().split_work_item(work_item_id, at, lease_epoch=lease_epoch)
    if as_json:
        _echo_json({"kept": kept.to_dict(), "new": new.to_dict()})
    else:
        click.echo(
            f"split {work_item_id}: it keeps [{kept.range_start}, {at}); "
            f"{new.work_item_id} takes [{at}, {_end(new.range_end)})"
        )


def _end(value: int | None) -> str:
    return "end" if value is None else str(value)


@cli.command()
@coordinator_options()
@click.argument("work_item_id")
@click.argument("successor_ids", metavar="SUCCESSOR...", nargs=-1, required=True)
@_epoch_option
@_json_option
def successors(
    target: Target, work_item_id: str, successor_ids: tuple[str, ...], lease_epoch: int | None, as_json: bool
) -> None:
    """Create RFS successors for the rest of an item's work and complete it (the holder only).

    Successors index__shard__N partition what is left of the item's range
    (the item keeps [range_start, first N)); other ids share what is left of
    its documents and bytes. Repeating the same call is harmless; different
    successors exit 6.
    """
    _successors(target, work_item_id, successor_ids, lease_epoch, as_json)


def _successors(
    target: Target, work_item_id: str, successor_ids: tuple[str, ...], lease_epoch: int | None, as_json: bool
) -> None:
    item = target.open().create_successor_work_items_and_mark_complete(
        work_item_id, list(successor_ids), lease_epoch=lease_epoch
    )
    if as_json:
        _echo_json(item.to_dict())
    else:
        click.echo(f"completed {work_item_id} with successors {', '.join(item.successor_ids)}")


@cli.command()
@coordinator_options(worker=False)
@click.argument("work_item_ids", metavar="[ID]...", nargs=-1)
@click.option("--all-failed", is_flag=True, help="Retry every item of the session parked as failed.")
@click.option(
    "--group",
    "error_pattern",
    metavar="PATTERN",
    help="Retry the failed items of one failure group (its pattern from `litecoord failures`, or any error of it).",
)
@_json_option
def retry(
    target: Target, work_item_ids: tuple[str, ...], all_failed: bool, error_pattern: str | None, as_json: bool
) -> None:
    """Return failed items to pending, failure counts cleared, available at once.

    Give item ids, --group PATTERN for the failed items of one failure group
    (see `litecoord failures`), or --all-failed for every failed item of the
    session. An id that is not failed is left as it is and reported (exit 6),
    an unknown one too (exit 5); the others are still retried.
    """
    if not work_item_ids and not all_failed and error_pattern is None:
        raise click.UsageError("name the items to retry, or pass --group PATTERN or --all-failed")
    coord = target.open()
    if error_pattern is not None:
        if work_item_ids or all_failed:
            raise click.UsageError("--group retries one failure group: leave out item ids and --all-failed")
        ids = coord.retry_failed_work_items(error_pattern)  # one transaction
        if as_json:
            _echo_json({"retried": [coord.get_work_item(i).to_dict() for i in ids], "not_failed": [], "not_found": []})
        else:
            for work_item_id in ids:
                click.echo(f"retried {work_item_id}: pending again")
            if not ids:
                click.echo(f"no failed items of that group in session {target.session}")
        return
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
        raise CliError(
            "; ".join(problems),
            EXIT_NOT_FOUND if not_found else EXIT_CONFLICT,
            code=("work_item_not_found" if not_found else "not_failed"),
        )
