"""Document ranges of work items: the decisions every backend shares, written once.

Every item covers the half-open range ``[range_start, range_end)`` of document
positions within its shard (``range_end`` ``None``: up to the shard's end).
Three operations change ranges, and each keeps the shard tiled exactly:

* RFS successors (:func:`successor_ranges`) partition what the parent had
  left: sorted by the start in their ids, they tile ``[first start, parent
  end)``, and the parent keeps ``[parent start, first start)``;
* a live split (:func:`split_plan`) cuts the holder's item at ``at``: the item
  keeps ``[range_start, at)`` and a new item takes ``[at, range_end)``, with
  the documents and bytes estimates moved so the session's totals stay;
* an idle acquire proposes where to split (:func:`pick_split_request`).

Nothing here knows a database: backends pass plain values and write the result.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from . import validation as check
from .errors import ValidationError

__all__ = [
    "parse_rfs_id",
    "default_range",
    "split_item_id",
    "SuccessorRanges",
    "successor_ranges",
    "SplitPlan",
    "split_plan",
    "SplitCandidate",
    "pick_split_request",
]

# RFS names an item ``<index>__<shard>__<first document>``; index names may hold "__".
_RFS_ID = re.compile(r"^(?P<index>.+)__(?P<shard>\d{1,9})__(?P<start>\d{1,19})$")


def parse_rfs_id(work_item_id: str) -> tuple[str, int, int] | None:
    """``(index, shard, start)`` of an RFS id ``index__shard__start``; ``None`` for any other id."""
    match = _RFS_ID.match(work_item_id)
    if match is None:
        return None
    start = int(match["start"])
    if start > check.MAX_COUNT:
        return None
    return match["index"], int(match["shard"]), start


def default_range(work_item_id: str, document_count: int | None) -> tuple[int, int | None]:
    """A new item's range: from the start its RFS id names (else 0), ``document_count`` long when known."""
    parsed = parse_rfs_id(work_item_id)
    start = 0 if parsed is None else parsed[2]
    return start, None if document_count is None else start + document_count


def split_item_id(work_item_id: str, at: int) -> str:
    """The id of the item a live split at ``at`` creates: RFS successor form ``index__shard__at``
    for an RFS id, else ``<id>@at`` (the split position makes it unique among the item's splits,
    and the ``@`` keeps it from reading as an RFS id of some other shard)."""
    parsed = parse_rfs_id(work_item_id)
    if parsed is not None:
        return f"{parsed[0]}__{parsed[1]}__{at}"
    return f"{work_item_id}@{at}"


@dataclass(frozen=True)
class SuccessorRanges:
    """What RFS successors of an item cover: the parent's new end and each successor's range.

    ``verifiable`` is False when a successor id is not in RFS form for the
    parent's index and shard: then ranges are not partitioned (the parent
    keeps its range, each successor gets what the parent had left) and the
    audit reports the shard as unverifiable.
    """

    parent_end: int | None
    ranges: dict[str, tuple[int, int | None]]
    verifiable: bool


def successor_ranges(
    work_item_id: str,
    range_start: int,
    range_end: int | None,
    documents_processed: int,
    successors: Sequence[str],
) -> SuccessorRanges:
    """The ranges of RFS successors of an item; ``ValidationError`` (nothing to write) when a
    successor's RFS start lies outside the item's range or behind its recorded position."""
    position = range_start + documents_processed
    parent = parse_rfs_id(work_item_id)
    starts: dict[str, int] = {}
    for i, name in enumerate(successors):
        parsed = parse_rfs_id(name)
        if parsed is None or (parent is not None and parsed[:2] != parent[:2]):
            # Not an RFS successor of this shard: kept working as before, unverifiable.
            return SuccessorRanges(range_end, {s: (position, range_end) for s in successors}, verifiable=False)
        start = parsed[2]
        field = f"successor_work_item_ids[{i}]"
        if start < range_start or (range_end is not None and start >= range_end):
            end = "the shard's end" if range_end is None else str(range_end)
            raise ValidationError(
                field, f"starts at document {start}, outside the range [{range_start}, {end}) of {work_item_id!r}"
            )
        if start < position:
            raise ValidationError(
                field, f"starts at document {start}, behind the recorded position {position} of {work_item_id!r}"
            )
        starts[name] = start
    ordered = sorted(starts.items(), key=lambda pair: pair[1])
    ranges: dict[str, tuple[int, int | None]] = {}
    for k, (name, start) in enumerate(ordered):
        end = ordered[k + 1][1] if k + 1 < len(ordered) else range_end
        ranges[name] = (start, end)
    return SuccessorRanges(ordered[0][1], ranges, verifiable=True)


@dataclass(frozen=True)
class SplitPlan:
    """A live split: the kept item's new end and estimates, the new item's id, range and estimates."""

    new_id: str
    at: int
    kept_documents: int | None
    kept_bytes: int | None
    new_end: int | None
    new_documents: int | None
    new_bytes: int | None


def split_plan(
    work_item_id: str,
    at: int,
    range_start: int,
    range_end: int | None,
    documents_processed: int,
    document_count: int | None,
    total_size_bytes: int | None,
) -> SplitPlan:
    """How a live split of an item at ``at`` divides it; ``ValidationError`` when ``at`` is
    behind the recorded position, not before ``range_end``, or the item's start (it would keep nothing).

    The documents estimate moves by the length given away; the bytes estimate
    moves in proportion to it (all of it stays when the count is unknown), so
    kept plus new equals what the item had and the session's totals stay.
    """
    position = range_start + documents_processed
    if at < position:
        raise ValidationError("at", f"is behind the recorded position {position} of {work_item_id!r}")
    if at == range_start:
        # The item would keep nothing (and the new item would be the item again): give it back instead.
        raise ValidationError("at", f"must be after the start {range_start} of {work_item_id!r} (release it instead)")
    if range_end is not None and at >= range_end:
        raise ValidationError("at", f"must be before the end of the range of {work_item_id!r} ({range_end})")
    new_id = split_item_id(work_item_id, at)
    if len(new_id) > check.MAX_WORK_ITEM_ID_LENGTH:
        raise ValidationError("at", f"makes the new item's id longer than {check.MAX_WORK_ITEM_ID_LENGTH} characters")
    moved = None if range_end is None else range_end - at
    kept_docs = new_docs = None
    if document_count is not None and moved is not None:
        new_docs = min(document_count, moved)
        kept_docs = document_count - new_docs
    kept_bytes, new_bytes = total_size_bytes, None
    if total_size_bytes is not None and new_docs is not None:
        new_bytes = total_size_bytes * new_docs // document_count if document_count else 0
        kept_bytes = total_size_bytes - new_bytes
    return SplitPlan(new_id, at, kept_docs, kept_bytes, range_end, new_docs, new_bytes)


@dataclass(frozen=True)
class SplitCandidate:
    """A live lease an idle acquire may ask to split (times in microseconds)."""

    key: object  # the backend's handle on the row
    range_start: int
    range_end: int | None
    documents_processed: int
    split_requested_at: int | None
    started_at: int | None
    last_progress_update: int | None


def pick_split_request(candidates: Sequence[SplitCandidate], min_documents: int | None) -> tuple[object, int] | None:
    """The lease to ask, and the position to propose, or ``None`` to write nothing.

    The lease with the most work left is chosen: the longest estimated time
    left at its own rate where it has one (documents since its start over the
    time to its last progress report), else the most documents left; a lease
    without a rate is ranked at the mean rate of those that have one. Only
    items with at least twice ``min_documents`` left are asked, and when the
    chosen one already has a request outstanding nothing is written (one
    request per item; idle polls do not rewrite it). The proposal is halfway
    through what is left.
    """
    if min_documents is None:
        return None
    rows = []
    rates = []
    for c in candidates:
        if c.range_end is None:
            continue  # no known end: no idea how much is left
        left = c.range_end - (c.range_start + c.documents_processed)
        if left < 2 * max(min_documents, 1):
            continue
        rate = None
        if c.documents_processed > 0 and c.started_at is not None and c.last_progress_update is not None:
            elapsed = c.last_progress_update - c.started_at
            if elapsed > 0:
                rate = c.documents_processed / elapsed
                rates.append(rate)
        rows.append((c, left, rate))
    mean = sum(rates) / len(rates) if rates else None
    best = None
    best_rank: tuple[float, int] | None = None
    for c, left, rate in rows:
        rate = rate or mean
        rank = (left / rate if rate else float(left), left)
        if best_rank is None or rank > best_rank:
            best, best_rank = (c, left), rank
    if best is None:
        return None
    c, left = best
    if c.split_requested_at is not None:
        return None
    return c.key, c.range_start + c.documents_processed + left // 2
