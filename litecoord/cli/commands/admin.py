"""Housekeeping and moving a session between stores: cleanup-expired, delete-session, export, import."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable
from typing import IO, Any

import click

from ...errors import (
    ValidationError,
)
from ...protocol import Coordinator, SessionTransfer
from ...transfer import read_jsonl, write_jsonl
from .base import (
    EXIT_USAGE,
    CliError,
    Target,
    _echo_json,
    _json_option,
    cli,
    coordinator_options,
)

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


