"""Commands that read: list, show, status (and its live view), sessions, verify."""

from __future__ import annotations

import json
import shutil
import sys
import threading
from datetime import timedelta

import click

from ...protocol import Coordinator
from ...types import WorkItem, WorkItemStatus
from .. import runner
from ..render import render_coverage, render_item, render_items, render_sessions, render_status
from ..render_console import render_history
from .base import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_NO_WORK,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    Seconds,
    Target,
    _echo_json,
    _json_option,
    _now,
    _stall_after_option,
    cli,
    coordinator_options,
)

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
    """Show every field of one work item, then its history: every attempt, oldest first, each error in full.

    --json prints the item's fields with its history under "history" (the
    attempts of the REST API's GET …/work-items/ID/history).
    """
    coord = target.open()
    item = coord.get_work_item(work_item_id)
    history = coord.work_item_history(work_item_id)
    if as_json:
        _echo_json({**item.to_dict(), "history": [a.to_dict() for a in history]})
    else:
        click.echo(render_item(item, _now()) + "\n\n" + render_history(history))


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
            from ...metrics import prometheus_text
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
                # GET /status's body: the session exists (else SessionNotFoundError, exit 9).
                click.echo(json.dumps({**summary.to_dict(), "session_exists": True}, indent=None if watch else 2))
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


@cli.command()
@coordinator_options(worker=False)
@_json_option
def verify(target: Target, as_json: bool) -> None:
    """Audit the session's coverage: did completed items cover every document of every shard, once?

    Prints one line per shard: its extent, gaps (documents no completed item
    covered), overlaps (documents processed twice), items completed short of
    their range and items not complete; shards without document counts or
    split into non-RFS successors are unverifiable. Exit 0 when the audit is
    ok, 1 when it is not, 9 for an unknown session. --json prints the whole
    report (the REST API's GET /sessions/{s}/backfill/coverage).
    """
    report = target.open().verify_coverage()
    if as_json:
        _echo_json(report.to_dict())
    else:
        click.echo(render_coverage(report))
    if not report.ok:
        sys.exit(EXIT_ERROR)
