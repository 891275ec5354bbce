"""The coverage audit: did the completed items cover every document of every shard, once?

:func:`coverage_of` computes a :class:`CoverageReport` from a session's items
(what ``Coordinator.verify_coverage()`` returns on every backend). Items are
grouped by shard: ``(index_name, shard_number)`` when the item has both, else
the index and shard its RFS id names, else the item its split tree started
from. A shard's extent is ``[lowest range_start, highest range_end)`` of its
items: splits only partition ranges, so every piece of the shard is an item.

A completed item covers ``[range_start, range_start + documents_processed)``
cut to its range: fewer documents than its range is *short*, and what it did
not cover is a gap. Items not complete cover nothing. ``gaps`` are ranges of
the extent no completed item covered; ``overlaps`` ranges two or more
covered (documents processed twice). A shard is *unverifiable* when an item
has no known end (no document count) or it was split into successors whose
ids are not RFS ids of the shard (then ranges were not partitioned).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .ranges import parse_rfs_id
from .types import WorkItem, WorkItemStatus

__all__ = ["CoverageReport", "ShardCoverage", "coverage_of"]

Span = tuple[int, int]


def _spans(data: Any) -> tuple[Span, ...]:
    return tuple((int(a), int(b)) for a, b in data or ())


@dataclass(frozen=True)
class ShardCoverage:
    """The audit of one shard. Ranges are half-open ``(start, end)`` pairs of document positions."""

    index_name: str | None
    shard_number: int | None
    #: For a shard known by neither (no metadata, no RFS id): the id its first item had.
    root_id: str | None
    #: ``"ok"``, ``"not_ok"`` or ``"unverifiable"``.
    verdict: str
    #: Why the shard is unverifiable (``None`` otherwise).
    reason: str | None
    extent: Span | None
    covered: tuple[Span, ...]
    gaps: tuple[Span, ...]
    overlaps: tuple[Span, ...]
    #: Completed items with fewer documents processed than their range.
    short: tuple[str, ...]
    #: Items not complete (pending, leased or failed).
    incomplete: tuple[str, ...]
    items: int

    @property
    def ok(self) -> bool:
        return self.verdict == "ok"

    def to_dict(self) -> dict[str, Any]:
        return {
            "index_name": self.index_name,
            "shard_number": self.shard_number,
            "root_id": self.root_id,
            "verdict": self.verdict,
            "reason": self.reason,
            "extent": None if self.extent is None else list(self.extent),
            "covered": [list(s) for s in self.covered],
            "gaps": [list(s) for s in self.gaps],
            "overlaps": [list(s) for s in self.overlaps],
            "short": list(self.short),
            "incomplete": list(self.incomplete),
            "items": self.items,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ShardCoverage:
        extent = data.get("extent")
        return cls(
            index_name=data.get("index_name"),
            shard_number=None if data.get("shard_number") is None else int(data["shard_number"]),
            root_id=data.get("root_id"),
            verdict=data["verdict"],
            reason=data.get("reason"),
            extent=None if extent is None else (int(extent[0]), int(extent[1])),
            covered=_spans(data.get("covered")),
            gaps=_spans(data.get("gaps")),
            overlaps=_spans(data.get("overlaps")),
            short=tuple(data.get("short") or ()),
            incomplete=tuple(data.get("incomplete") or ()),
            items=int(data.get("items") or 0),
        )


@dataclass(frozen=True)
class CoverageReport:
    """The session's audit: ``ok`` when every shard with a known extent is covered
    exactly (no gap, no overlap, nothing short) and no item anywhere is left incomplete.
    Unverifiable shards are listed, and do not make ``ok`` false by themselves."""

    session_name: str
    ok: bool
    shards: tuple[ShardCoverage, ...]

    @property
    def gap_count(self) -> int:
        """Gap ranges over every shard (what the metrics export)."""
        return sum(len(s.gaps) for s in self.shards)

    @property
    def unverifiable(self) -> int:
        return sum(1 for s in self.shards if s.verdict == "unverifiable")

    def to_dict(self) -> dict[str, Any]:
        return {
            "session_name": self.session_name,
            "ok": self.ok,
            "gap_count": self.gap_count,
            "overlap_count": sum(len(s.overlaps) for s in self.shards),
            "short_items": sum(len(s.short) for s in self.shards),
            "incomplete_items": sum(len(s.incomplete) for s in self.shards),
            "unverifiable_shards": self.unverifiable,
            "shards": [s.to_dict() for s in self.shards],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CoverageReport:
        return cls(
            session_name=data["session_name"],
            ok=bool(data["ok"]),
            shards=tuple(ShardCoverage.from_dict(s) for s in data.get("shards") or ()),
        )


def _merge(spans: Iterable[Span]) -> list[Span]:
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(a, b) for a, b in merged]


def _overlaps(spans: Sequence[Span]) -> list[Span]:
    """Ranges covered by two or more of ``spans`` (a sweep over their ends)."""
    events: dict[int, int] = {}
    for start, end in spans:
        events[start] = events.get(start, 0) + 1
        events[end] = events.get(end, 0) - 1
    found: list[Span] = []
    depth = 0
    open_at = 0
    for point in sorted(events):
        before = depth
        depth += events[point]
        if before < 2 <= depth:
            open_at = point
        elif before >= 2 > depth:
            found.append((open_at, point))
    return _merge(found)


def _gaps(extent: Span, covered: Sequence[Span]) -> list[Span]:
    gaps: list[Span] = []
    cursor = extent[0]
    for start, end in covered:
        if start > cursor:
            gaps.append((cursor, min(start, extent[1])))
        cursor = max(cursor, end)
    if cursor < extent[1]:
        gaps.append((cursor, extent[1]))
    return [g for g in gaps if g[0] < g[1]]


def _shard_key(item: WorkItem, by_id: dict[str, WorkItem]) -> tuple[str | None, int | None, str | None]:
    if item.index_name is not None and item.shard_number is not None:
        return item.index_name, item.shard_number, None
    parsed = parse_rfs_id(item.work_item_id)
    if parsed is not None:
        return parsed[0], parsed[1], None
    root = item
    seen = {root.work_item_id}
    while root.parent_id is not None and root.parent_id in by_id and root.parent_id not in seen:
        root = by_id[root.parent_id]
        seen.add(root.work_item_id)
        parsed = parse_rfs_id(root.work_item_id)
        if root.shard_number is not None or parsed is not None:
            return _shard_key(root, by_id)
    return None, None, root.work_item_id


def _not_rfs_successors(item: WorkItem) -> bool:
    """Whether ``item`` was split into successors that are not RFS ids of its shard."""
    parent = parse_rfs_id(item.work_item_id)
    for name in item.successor_ids:
        parsed = parse_rfs_id(name)
        if parsed is None or (parent is not None and parsed[:2] != parent[:2]):
            return True
    return False


def _audit(key: tuple[str | None, int | None, str | None], items: list[WorkItem]) -> ShardCoverage:
    incomplete = tuple(i.work_item_id for i in items if i.status is not WorkItemStatus.COMPLETED)
    reason = None
    if any(i.range_end is None for i in items):
        reason = "an item has no known end (no document count)"
    elif any(_not_rfs_successors(i) for i in items):
        reason = "split into successors whose ids are not RFS ids of the shard"
    spans: list[Span] = []
    short: list[str] = []
    for item in items:
        if item.status is not WorkItemStatus.COMPLETED:
            continue
        end = item.range_start + item.documents_processed
        if item.range_end is not None:
            if end < item.range_end:
                short.append(item.work_item_id)
            end = min(end, item.range_end)
        if end > item.range_start:
            spans.append((item.range_start, end))
    covered = _merge(spans)
    if reason is not None:
        return ShardCoverage(
            *key, "unverifiable", reason, None, tuple(covered), (), (), tuple(short), incomplete, len(items)
        )
    extent = (min(i.range_start for i in items), max(i.range_end for i in items))  # type: ignore[type-var]
    gaps = _gaps(extent, covered)
    overlaps = _overlaps(spans)
    verdict = "ok" if not (gaps or overlaps or short or incomplete) else "not_ok"
    return ShardCoverage(
        *key, verdict, None, extent, tuple(covered), tuple(gaps), tuple(overlaps), tuple(short), incomplete, len(items)
    )


def coverage_of(session_name: str, items: Iterable[WorkItem]) -> CoverageReport:
    """The coverage audit of a session whose items are ``items`` (one consistent read)."""
    items = list(items)
    by_id = {i.work_item_id: i for i in items}
    shards: dict[tuple[str | None, int | None, str | None], list[WorkItem]] = {}
    for item in items:
        shards.setdefault(_shard_key(item, by_id), []).append(item)
    audits = [_audit(key, group) for key, group in shards.items()]
    audits.sort(key=lambda s: (s.index_name is None, s.index_name or "", s.shard_number or 0, s.root_id or ""))
    ok = all(s.verdict != "not_ok" for s in audits) and not any(s.incomplete for s in audits)
    return CoverageReport(session_name, ok, tuple(audits))
