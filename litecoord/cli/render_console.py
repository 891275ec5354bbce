"""Text for the console's commands: an item's history (``show``), ``workers``, ``failures``.

Kept beside :mod:`.render` (the status view and the item and session tables);
times are written in UTC with the zone, durations as :func:`.render.format_duration` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from ..console import Attempt, FailureGroup, WorkerInfo
from ..types import format_time
from .render import format_count, format_duration, render_table

__all__ = ["render_history", "render_workers", "render_failure_groups"]


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    return ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]]


def _age(now: datetime, then: datetime | None) -> str:
    return "-" if then is None else f"{format_duration((now - then).total_seconds())} ago"


def render_history(attempts: Sequence[Attempt]) -> str:
    """The attempts under ``litecoord show``: one row each, oldest first, each error in full below its row.

    A running attempt's time is left blank: the store's clock (a server's) may not be this machine's.
    """
    if not attempts:
        return "history: no attempt yet"
    lines = [f"history ({len(attempts)} attempt{'s' if len(attempts) != 1 else ''}, oldest first)"]
    rows = []
    for a in attempts:
        took = "-" if a.ended_at is None else format_duration(a.ended_at - a.leased_at)
        rows.append(
            (
                str(a.lease_epoch),
                a.worker_id,
                a.outcome.value,
                format_time(a.leased_at) or "",
                took,
                format_count(a.documents_processed),
            )
        )
    table = _table(("EPOCH", "WORKER", "OUTCOME", "LEASED AT", "TOOK", "DOCS"), rows)
    lines.append("  " + table[0])
    for a, line in zip(attempts, table[1:], strict=True):
        lines.append("  " + line)
        if a.error:
            lines.extend(f"      {text}" for text in a.error.rstrip("\n").split("\n"))
    return "\n".join(lines)


def render_workers(workers: Sequence[WorkerInfo], now: datetime) -> str:
    """The ``litecoord workers`` table: silent workers marked ``?``, lapsed leases ``(lapsed)``."""
    if not workers:
        return "no workers seen yet"
    rows = []
    for w in workers:
        item = w.current_work_item_id or "-"
        if w.current_work_item_id and not w.lease_live:
            item += " (lapsed)"
        rate = "-" if w.documents_per_second is None else f"{format_count(w.documents_per_second)}/s"
        rows.append(
            (
                ("? " if w.silent else "  ") + w.worker_id,
                item,
                _age(now, w.last_heartbeat),
                str(w.completed),
                str(w.failed),
                str(w.attempts),
                rate,
            )
        )
    lines = [render_table(("  WORKER", "ITEM", "LAST HEARTBEAT", "DONE", "FAILED", "ATTEMPTS", "DOCS/S (MEAN)"), rows)]
    if any(w.silent for w in workers):
        lines.append("? silent: holds a live lease but sent no heartbeat for over a third of it")
    return "\n".join(lines)


def render_failure_groups(groups: Sequence[FailureGroup]) -> str:
    """The ``litecoord failures`` listing: each group's pattern, counts, example ids and first error."""
    if not groups:
        return "no failed or retrying items"
    lines = []
    for g in groups:
        more = g.count - len(g.example_work_item_ids)
        ids = ", ".join(g.example_work_item_ids) + (f" and {more} more" if more > 0 else "")
        lines.append(f"{g.count} item{'s' if g.count != 1 else ''} ({g.failed} failed, {g.retrying} retrying): "
                     f"{g.error_pattern or '(no error text)'}")  # fmt: skip
        lines.append(f"  e.g. {ids}")
        if g.example_error and g.example_error != g.error_pattern:
            first = g.example_error.strip().split("\n")[0]
            lines.append(f"  first: {first}")
    lines.append("retry a group with `litecoord retry --group PATTERN`, or all with `--all-failed`")
    return "\n".join(lines)
