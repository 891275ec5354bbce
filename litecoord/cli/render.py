"""Pure text rendering for the command line: the status view, item tables, sessions.

Nothing here reads a clock, a terminal or a database: every function takes
the data and ``now`` and returns a string, so the output is tested on exact
snapshots. The command line decides the width, whether to use colour
(``color=True`` adds ANSI styles, only on a terminal) and whether block
characters are safe (``unicode=True``).

The status view (:func:`render_status`) shows, within ``width`` columns:

* a header: session, item counts, percent complete;
* a bar each for documents and bytes processed, with totals;
* throughput, elapsed time and ETA (``WorkQueueStatus`` computes them, and
  freezes them once nothing is left to do);
* one row per item in progress: time since its lease began, age of its last
  heartbeat, a documents bar and a bytes bar;
* silent items: a live lease whose last heartbeat is older than the renewal
  interval the lease implies (a third of it; :func:`is_silent`);
* stalled items: a live lease whose heartbeats keep arriving (``last_heartbeat``
  within ``stall_after``) while ``progress_changed_at`` has not moved for
  ``stall_after``: the worker is alive but its work is stuck;
* lapsed leases: items whose holder stopped renewing (a crashed worker), which
  the next acquire hands to another worker;
* retrying items: failed and back in the queue, with their failure count,
  when the retry is due and their last error;
* failed items, with their last error.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone

from ..coverage import CoverageReport
from ..monitor import STALL_AFTER, heartbeat_overdue, last_move, progress_stuck, renewal_interval
from ..types import SessionInfo, WorkItem, WorkItemStatus, WorkQueueStatus, format_time

# The small formatters are cli/formats.py's; every name stays importable from here
# (tests/test_render.py, render_console.py and demo.py import them from this module).
from .formats import (  # noqa: F401
    _ago,
    _bar,
    _cut,
    _fold,
    _percent,
    _style,
    _wrap,
    format_bytes,
    format_count,
    format_duration,
)

__all__ = [
    "DEFAULT_STALL_AFTER",
    "format_bytes",
    "format_count",
    "format_duration",
    "is_stalled",
    "is_silent",
    "is_retrying",
    "has_lapsed_lease",
    "render_status",
    "render_items",
    "render_item",
    "render_sessions",
    "render_table",
]

#: How long progress may stand still under live heartbeats before an item counts as stalled.
DEFAULT_STALL_AFTER = STALL_AFTER

_MIN_BAR = 4


# -- classifying items -----------------------------------------------------------


def _is_live(item: WorkItem, now: datetime) -> bool:
    return item.status is WorkItemStatus.ASSIGNED and item.lease_expiry is not None and item.lease_expiry > now


def is_stalled(item: WorkItem, now: datetime, stall_after: timedelta = DEFAULT_STALL_AFTER) -> bool:
    """A live lease with recent heartbeats but no progress change for ``stall_after``."""
    return _is_live(item, now) and progress_stuck(item, now, stall_after)


def has_lapsed_lease(item: WorkItem, now: datetime) -> bool:
    """The holder stopped renewing: the item reads pending but still names its last holder's lease."""
    return (
        item.status in (WorkItemStatus.PENDING, WorkItemStatus.ASSIGNED)
        and item.worker_id is not None
        and item.lease_expiry is not None
        and item.lease_expiry <= now
    )


# -- the status view ----------------------------------------------------------------


def is_silent(item: WorkItem, now: datetime) -> bool:
    """A live lease whose last heartbeat is older than the renewal interval its lease implies.

    The interval is a third of the lease (:func:`litecoord.monitor.renewal_interval`,
    the rule the web page uses too): ``litecoord work`` renews every third
    of the lease or more often, so a healthy holder never goes that long
    without a heartbeat. A silent holder may be hung or cut off; its lease
    has not lapsed yet, so nobody else will take the item until it does.
    """
    return _is_live(item, now) and heartbeat_overdue(item, now)


def is_retrying(item: WorkItem) -> bool:
    """An item that failed and went back to the queue (not yet parked as failed)."""
    return item.status is WorkItemStatus.PENDING and item.failure_count > 0 and not item.worker_id


#: Layout width of the view when the output is not a terminal (``width=None``): nothing is cut then.
UNLIMITED_LAYOUT = 100


def render_status(
    status: WorkQueueStatus,
    items: Iterable[WorkItem],
    now: datetime,
    width: int | None = 80,
    *,
    stall_after: timedelta = DEFAULT_STALL_AFTER,
    max_rows: int = 20,
    color: bool = False,
    unicode: bool = False,
    notes: Sequence[str] = (),
) -> str:
    """The live status view as text of at most ``width`` columns per line (without styles).

    ``width=None`` (output that is not a terminal: a pipe, a file) lays the
    view out for :data:`UNLIMITED_LAYOUT` columns and never cuts a line.
    ``items`` may be any items of the session; the view picks those in
    progress, stalled, silent, with lapsed leases, retrying and failed. Each
    section lists at most ``max_rows`` items, then says how many more there
    are. ``notes`` are printed last, wrapped to the width (the demo narrates
    with them). The result ends without a newline.
    """
    limit = 1 << 30 if width is None else max(40, width)  # where lines are cut
    width = UNLIMITED_LAYOUT if width is None else limit  # what the layout fits
    items = list(items)
    active = sorted((i for i in items if _is_live(i, now)), key=lambda i: (i.started_at or now, i.work_item_id))
    silent = [i for i in active if is_silent(i, now)]
    stalled = [i for i in active if is_stalled(i, now, stall_after) and i not in silent]
    lapsed = sorted((i for i in items if has_lapsed_lease(i, now)), key=lambda i: (i.lease_expiry, i.work_item_id))
    retrying = sorted(
        (i for i in items if is_retrying(i)), key=lambda i: (i.next_attempt_at or now, i.work_item_id)
    )
    failed = [i for i in items if i.status is WorkItemStatus.FAILED]
    # Live splits: requests the holders have not answered yet, and the items splits made (newest first).
    asked = [i for i in active if i.split_requested_at is not None]
    split_off = sorted(
        (i for i in items if i.parent_id is not None), key=lambda i: (i.created_at or now, i.work_item_id), reverse=True
    )

    lines: list[str] = []
    pending = f"{status.pending_work_items} pending"
    if status.retrying_work_items:
        pending += f" ({status.retrying_work_items} retrying)"
    counts = (
        f"{status.total_work_items} items: {status.completed_work_items} done, "
        f"{status.assigned_work_items} in progress, {pending}, {status.failed_work_items} failed"
    )
    dot = " · " if unicode else " | "  # plain output stays ASCII, whatever the log's encoding
    header = f"session {status.session_name}{dot}{status.percent_complete:.1f}%{dot}{counts}"
    if len(header) <= limit:
        lines.append(header)
    else:  # two lines rather than lose the counts (the failed one last) to the cut
        lines.append(_cut(f"session {status.session_name}{dot}{status.percent_complete:.1f}%", limit))
        lines.append(_cut(counts, limit))
    if status.paused:
        since = f" since {_when(status.paused_at, now)}" if status.paused_at is not None else ""
        banner = f"PAUSED{since}: nothing is handed out; `litecoord resume -s {status.session_name}` goes on"
        lines.append(_style(_cut(banner, limit), color, fg="yellow"))
    if not status.total_work_items:
        lines.append(_cut("no work items yet: create them with `litecoord create` or `litecoord batch`", limit))
        lines.extend(_wrap(note, width) for note in notes)
        return "\n".join(lines)
    label_width = len("documents")
    totals = []
    for label, done, total, fmt in (
        ("documents", status.total_documents_processed, status.total_documents, format_count),
        ("bytes", status.total_bytes_processed, status.total_size_bytes, format_bytes),
    ):
        pct = _percent(done, total)
        suffix = f" {'    ?' if pct is None else f'{pct:5.1f}'}%  {fmt(done)} / {fmt(total) if total else '?'}"
        totals.append((label, pct, suffix))
    # One width for both bars, so they line up; sized to fit, so the lines are never cut
    # (cutting could split an ANSI style).
    bar_width = max(_MIN_BAR, width - label_width - 1 - 2 - max(len(t[2]) for t in totals))
    for label, pct, suffix in totals:
        bar = _bar(None if pct is None else pct / 100, bar_width, unicode=unicode)
        lines.append(f"{label:<{label_width}} {_style(bar, color, fg='green')}{suffix}")

    lines.append(_cut(dot.join(_rate_parts(status, now)), limit))

    if active:
        lines.append("")
        lines.append(f"in progress ({len(active)})")
        marks = {i.work_item_id: "?" for i in silent} | {i.work_item_id: "!" for i in stalled}
        lines.extend(_active_rows(active[:max_rows], width, now, marks, color=color, unicode=unicode))
        if len(active) > max_rows:
            lines.append(f"  ... and {len(active) - max_rows} more")
    for title, fg, section, row in (
        ("silent ({}, marked ?): no heartbeat for longer than a third of the lease", "magenta", silent, _silent_row),
        ("stalled ({}, marked !): heartbeats arrive, progress has not moved", "yellow", stalled, _stalled_row),
        ("lapsed leases ({}): the next acquire hands these to another worker", None, lapsed, _lapsed_row),
        ("split requested ({}): an idle worker asked the holder to give part away", "cyan", asked, _asked_row),
        ("split off ({}): items that splits made, newest first", None, split_off, _split_row),
        ("retrying ({}): failed, back in the queue", None, retrying, _retrying_row),
        ("failed ({}): retry with `litecoord retry ID` or `--all-failed`", "red", failed, _failed_row),
    ):
        if section:
            lines.append("")
            heading = _cut(title.format(len(section)), limit)
            lines.append(_style(heading, color, fg=fg) if fg else heading)
            # A split's row is all facts (range, parent, state): folded onto more lines, never cut.
            fit = _fold if row in (_asked_row, _split_row) else _cut
            lines.extend(fit(row(item, now), limit) for item in section[:max_rows])
            if len(section) > max_rows:
                lines.append(f"  ... and {len(section) - max_rows} more")
    if notes:
        lines.append("")
        lines.extend(_wrap(note, width) for note in notes)
    return "\n".join(lines)


def _silent_row(item: WorkItem, now: datetime) -> str:
    heartbeat = item.last_heartbeat or item.leased_at
    return (
        f"  {item.work_item_id}  {item.worker_id}  no heartbeat for "
        f"{format_duration((now - heartbeat).total_seconds()) if heartbeat else '?'} "
        f"(due every {format_duration(renewal_interval(item))}), lease ends in "
        f"{format_duration((item.lease_expiry - now).total_seconds()) if item.lease_expiry else '?'}"
    )


def _stalled_row(item: WorkItem, now: datetime) -> str:
    moved = last_move(item)
    return (
        f"  {item.work_item_id}  {item.worker_id}  no progress for "
        f"{format_duration((now - moved).total_seconds()) if moved else '?'}, "
        f"last heartbeat {_ago(now, item.last_heartbeat)}"
    )


def _lapsed_row(item: WorkItem, now: datetime) -> str:
    pct = _percent(item.documents_processed, item.document_count)
    at = "" if pct is None else f" at {pct:.0f}%"
    return f"  {item.work_item_id}  {item.worker_id}  lease expired {_ago(now, item.lease_expiry)}{at}"


def _range(item: WorkItem) -> str:
    return f"[{format_count(item.range_start)}, {'end' if item.range_end is None else format_count(item.range_end)})"


def _asked_row(item: WorkItem, now: datetime) -> str:
    assert item.split_requested_at is not None
    return f"  {item.work_item_id}  {item.worker_id}  {_range(item)}  asked to split at {item.split_requested_at:,}"


def _split_row(item: WorkItem, now: datetime) -> str:
    return f"  {item.work_item_id}  {_range(item)}  from {item.parent_id}  {item.status.value}"


def _retrying_row(item: WorkItem, now: datetime) -> str:
    when = _retry_cell(item, now) or "retry due"
    return f"  {item.work_item_id}  {item.failure_count} failure(s), {when}: {_error_summary(item.last_error)}"


def _failed_row(item: WorkItem, now: datetime) -> str:
    return f"  {item.work_item_id}  {item.failure_count} failure(s): {_error_summary(item.last_error)}"


def _rate_parts(status: WorkQueueStatus, now: datetime) -> list[str]:
    """Throughput, time and ETA; once nothing is left to do, the run's mean rate and duration."""
    finished = status.total_work_items > 0 and status.not_yet_complete == 0
    elapsed = status.elapsed_seconds
    if elapsed is None and status.started_at is not None:  # a server from before elapsed_seconds
        end = status.last_update if finished and status.last_update is not None else now
        elapsed = (end - status.started_at).total_seconds()
    parts = []
    if status.documents_per_second is None:
        parts.append("throughput: measuring")
    else:
        rates = f"{format_count(status.documents_per_second)} docs/s, {format_bytes(status.bytes_per_second)}/s"
        parts.append(f"mean {rates}" if finished else f"throughput {rates}")
        if not finished and status.mean_documents_per_second is not None:
            parts.append(f"mean {format_count(status.mean_documents_per_second)} docs/s")
    if elapsed is not None:
        parts.append(f"took {format_duration(elapsed)}" if finished else f"elapsed {format_duration(elapsed)}")
    if finished:
        parts.append("done" if not status.failed_work_items else "stopped: only failed items remain")
    elif status.paused:
        parts.append("no ETA: paused")
    elif status.assigned_work_items == 0:
        parts.append("no ETA: no item is leased")
    elif status.eta_seconds is not None:
        eta = f"ETA {format_duration(status.eta_seconds)}"
        if status.estimated_completion is not None:
            eta += f" at {_when(status.estimated_completion, now)}"
        if status.eta_bound_by is not None:
            eta += f" (waits for {status.eta_bound_by}, the slowest lease)"
        parts.append(eta)
    elif status.eta_reason == "only_stalled_or_silent":
        parts.append("no ETA: only stalled or silent leases remain")
    else:
        parts.append("ETA ?")
    return parts


def _active_rows(
    active: Sequence[WorkItem],
    width: int,
    now: datetime,
    marks: dict[str, str],
    *,
    color: bool,
    unicode: bool,
) -> list[str]:
    """A header, then one row per item: ``M ID  WORKER  ELAPSED  HEARTBEAT  [docs bar] PCT  [bytes bar] PCT``.

    ``M`` is ``!`` for a stalled item, ``?`` for a silent one. ELAPSED runs
    from the start of the current lease (an item shorter than one heartbeat
    still shows it moving); HEARTBEAT is the age of the last renewal. Names
    are cut before the bars shrink below a readable size.
    """
    id_width = max(2, min(28, max(len(i.work_item_id) for i in active)))
    worker_width = max(6, min(20, max(len(i.worker_id or "") for i in active)))
    time_width, beat_width = len("ELAPSED"), len("HEARTBEAT")
    bars = 2  # documents and bytes; a terminal too narrow for both keeps the documents bar, then none

    def fixed() -> int:  # everything but the bars' inner cells
        return 2 + id_width + 2 + worker_width + 2 + time_width + 2 + beat_width + bars * (2 + 2 + 5)

    spare = width - fixed()
    if spare < bars * _MIN_BAR:
        shrink = bars * _MIN_BAR - spare
        cut_id = min(shrink, max(0, id_width - 8))
        id_width -= cut_id
        worker_width = max(4, worker_width - (shrink - cut_id))
        while bars and width - fixed() < bars * _MIN_BAR:
            bars -= 1
        spare = width - fixed()
    bar_width = max(_MIN_BAR, spare // bars) if bars else 0
    column = bar_width + 2 + 5
    header = [
        f"  {_cut('ID', id_width):<{id_width}}",
        f"{_cut('WORKER', worker_width):<{worker_width}}",
        f"{'ELAPSED':<{time_width}}",
        f"{'HEARTBEAT':<{beat_width}}",
    ]
    header += [f"{'DOCUMENTS':<{column}}", "BYTES"][:bars]
    rows = ["  ".join(header).rstrip()]
    for item in active:
        mark = marks.get(item.work_item_id, " ")
        if mark != " ":
            mark = _style(mark, color, fg="magenta" if mark == "?" else "yellow")
        name, worker = _cut(item.work_item_id, id_width), _cut(item.worker_id or "", worker_width)
        began = item.leased_at or item.started_at
        elapsed = format_duration((now - began).total_seconds()) if began else "?"
        beat = format_duration((now - item.last_heartbeat).total_seconds()) if item.last_heartbeat else "?"
        cells = [f"{mark} {name:<{id_width}}  {worker:<{worker_width}}  {elapsed:>{time_width}}  {beat:>{beat_width}}"]
        figures = ((item.documents_processed, item.document_count), (item.bytes_processed, item.total_size_bytes))
        for done, total in figures[:bars]:
            pct = _percent(done, total)
            bar = _bar(None if pct is None else pct / 100, bar_width, unicode=unicode)
            cells.append(f"{_style(bar, color, fg='cyan')} {'   ?' if pct is None else f'{pct:3.0f}%'}")
        rows.append("  ".join(cells))
    return rows


def _error_summary(error: str | None) -> str:
    """The first line of an error and, if there are more, its last (where the cause usually is)."""
    lines = [line.strip() for line in (error or "").splitlines() if line.strip()]
    if not lines:
        return "(no error text)"
    return lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"


def _when(moment: datetime, now: datetime) -> str:
    """A time of day when it is within a day of ``now``, else the full timestamp."""
    if abs((moment - now).total_seconds()) < 86_400:
        return moment.astimezone(timezone.utc).strftime("%H:%M:%SZ")
    return format_time(moment) or ""


# -- tables for list, show and sessions ------------------------------------------------


def render_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Left-aligned columns separated by two spaces, with a header and a rule; no trailing spaces."""
    text_rows = [["" if cell is None else str(cell) for cell in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in text_rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(cells: Sequence[str]) -> str:
        return "  ".join(f"{c:<{w}}" for c, w in zip(cells, widths, strict=False)).rstrip()

    out = [line(headers), line(["-" * w for w in widths])]
    out.extend(line(row) for row in text_rows)
    return "\n".join(out)


def _lease_cell(item: WorkItem, now: datetime) -> str:
    if item.status is WorkItemStatus.ASSIGNED and item.lease_expiry is not None:
        return f"{format_duration((item.lease_expiry - now).total_seconds())} left"
    if has_lapsed_lease(item, now):
        return "lapsed"
    return _retry_cell(item, now)


def _retry_cell(item: WorkItem, now: datetime) -> str:
    """When a failed item waiting out its retry delay comes back: ``retry in 8s`` (or ``retry due``)."""
    if item.status is not WorkItemStatus.PENDING or item.next_attempt_at is None:
        return ""
    if item.next_attempt_at <= now:
        return "retry due"
    return f"retry in {format_duration((item.next_attempt_at - now).total_seconds())}"


def render_items(items: Sequence[WorkItem], now: datetime) -> str:
    """The ``litecoord list`` table, or a sentence when there are no items."""
    if not items:
        return "no work items"
    rows = [
        (
            i.work_item_id,
            i.status.value,
            i.index_name or "",
            "" if i.shard_number is None else i.shard_number,
            f"{format_count(i.documents_processed)}/{format_count(i.document_count)}",
            f"{format_bytes(i.bytes_processed)}/{format_bytes(i.total_size_bytes)}",
            i.worker_id or "",
            i.lease_epoch,
            i.failure_count or "",
            _lease_cell(i, now),
        )
        for i in items
    ]
    headers = ("ID", "STATUS", "INDEX", "SHARD", "DOCUMENTS", "BYTES", "WORKER", "EPOCH", "FAILURES", "LEASE")
    return render_table(headers, rows)


def render_item(item: WorkItem, now: datetime) -> str:
    """``litecoord show``: one ``field  value`` line per field, in the API's field order."""
    data = item.to_dict()
    data["successor_ids"] = ",".join(item.successor_ids)
    lease = _lease_cell(item, now)
    if lease and data["lease_expiry"] is not None:
        data["lease_expiry"] = f"{data['lease_expiry']} ({lease})"
    retry = _retry_cell(item, now)
    if retry:
        data["next_attempt_at"] = f"{data['next_attempt_at']} ({retry})"
    key_width = max(len(k) for k in data)
    lines = []
    for key, value in data.items():
        text = "" if value is None else str(value)
        first, *rest = text.split("\n") or [""]
        lines.append(f"{key:<{key_width}}  {first}".rstrip())
        # Continuation lines of a multi-line value (an error's output) line up under it.
        lines.extend(f"{'':<{key_width}}  {line}".rstrip() for line in rest)
    return "\n".join(lines)


def render_sessions(sessions: Sequence[SessionInfo]) -> str:
    """The ``litecoord sessions`` table."""
    if not sessions:
        return "no sessions"
    rows = [
        (
            s.session_name,
            s.total_work_items,
            s.completed_work_items,
            s.lease_mode.value,
            s.acquire_order.value,
            s.max_attempts,
            # The first retry's delay, then the cap it doubles up to.
            f"{format_duration(s.retry_delay)}..{format_duration(s.max_retry_delay)}" if s.retry_delay else "none",
            format_time(s.created_at) or "",
        )
        for s in sessions
    ]
    headers = ("SESSION", "ITEMS", "COMPLETED", "LEASE MODE", "ORDER", "MAX ATTEMPTS", "RETRY DELAY", "CREATED")
    return render_table(headers, rows)


def _spans(spans: Sequence[tuple[int, int]]) -> str:
    return ", ".join(f"[{a}, {b})" for a, b in spans)


def render_coverage(report: CoverageReport) -> str:
    """``litecoord verify``: one line per shard, then the verdict."""
    lines = []
    for s in report.shards:
        name = f"{s.index_name}/{s.shard_number}" if s.root_id is None else s.root_id
        if s.verdict == "unverifiable":
            detail = s.reason or ""
        else:
            assert s.extent is not None
            detail = f"extent [{s.extent[0]}, {s.extent[1]})"
            for label, spans in (("gaps", s.gaps), ("overlaps", s.overlaps)):
                if spans:
                    detail += f"; {label} {_spans(spans)}"
        if s.short:
            detail += f"; short: {', '.join(s.short)}"
        if s.incomplete:
            shown = ", ".join(s.incomplete[:5]) + (
                f" and {len(s.incomplete) - 5} more" if len(s.incomplete) > 5 else ""
            )
            detail += f"; not complete: {shown}"
        lines.append(f"{s.verdict.upper().replace('_', ' '):<12}  {name}  {s.items} item(s)  {detail}")
    unverifiable = f", {report.unverifiable} unverifiable" if report.unverifiable else ""
    verdict = "ok" if report.ok else "NOT ok"
    lines.append(
        f"coverage of {report.session_name}: {verdict} ({len(report.shards)} shard(s){unverifiable}, "
        f"{report.gap_count} gap(s))"
    )
    return "\n".join(lines)
