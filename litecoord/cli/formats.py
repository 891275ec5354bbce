"""The small formatters of the command line's text: counts, bytes, durations, bars, cut and folded lines.

Pure functions of their arguments, like the rest of :mod:`.render` (which
re-exports every name here and builds the status view and the tables from
them); kept apart from those views so that each file holds one concern.
"""

from __future__ import annotations

import textwrap
from datetime import datetime, timedelta

import click

__all__ = ["format_bytes", "format_count", "format_duration"]


def format_count(value: int | float | None) -> str:
    """``1234567`` -> ``1,234,567``; ``None`` -> ``?``."""
    if value is None:
        return "?"
    return f"{int(round(value)):,}"


def format_bytes(value: int | float | None) -> str:
    """Binary units with one decimal: ``1536`` -> ``1.5 KiB``; ``None`` -> ``?``."""
    if value is None:
        return "?"
    size = float(value)
    if abs(size) < 1024:
        return f"{int(size)} B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        size /= 1024
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.1f} {unit}"
    raise AssertionError("unreachable")


def format_duration(seconds: float | timedelta | None) -> str:
    """``45`` -> ``45s``, ``65`` -> ``1m 05s``, ``7380`` -> ``2h 03m``, ``None`` -> ``?``."""
    if seconds is None:
        return "?"
    if isinstance(seconds, timedelta):
        seconds = seconds.total_seconds()
    total = max(0, int(round(seconds)))
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def _percent(done: int, total: int | None) -> float | None:
    if not total:
        return None
    return min(100.0, 100.0 * done / total)


def _bar(fraction: float | None, width: int, *, unicode: bool) -> str:
    """``[####....]`` of ``width`` inner cells; an unknown fraction draws an empty bar of ``?``."""
    width = max(1, width)
    if fraction is None:
        return "[" + "?" * width + "]"
    fraction = min(1.0, max(0.0, fraction))
    full = int(fraction * width)
    filled, empty = ("█", "░") if unicode else ("#", ".")
    return "[" + filled * full + empty * (width - full) + "]"


def _cut(text: str, width: int) -> str:
    """Fit ``text`` into ``width`` columns, marking a cut with ``~`` at the end."""
    if len(text) <= width:
        return text
    if width <= 1:
        return text[:width]
    return text[: width - 1] + "~"


def _wrap(text: str, width: int) -> str:
    """Wrap prose to ``width``, continuation lines indented by four spaces."""
    return "\n".join(textwrap.wrap(text, width, subsequent_indent="    ", break_on_hyphens=False)) or text


def _fold(row: str, width: int) -> str:
    """``row`` in ``width`` columns: fields (two spaces apart) that do not fit go on indented
    continuation lines; only a field wider than a line is cut."""
    lines = [""]
    for field in row.strip().split("  ") if len(row) > width else ():
        joined = f"{lines[-1]}  {field}" if lines[-1] else f"{'      ' if len(lines) > 1 else '  '}{field}"
        if lines[-1] and len(joined) > width:
            lines.append(f"      {field}")
        else:
            lines[-1] = joined
    return "\n".join(_cut(line, width) for line in lines) if lines[0] else row


def _style(text: str, color: bool, **kwargs: object) -> str:
    return click.style(text, **kwargs) if color else text  # type: ignore[arg-type]


def _ago(now: datetime, then: datetime | None) -> str:
    if then is None:
        return "never"
    return format_duration((now - then).total_seconds()) + " ago"
