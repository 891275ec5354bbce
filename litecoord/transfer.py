"""Moving a session between stores: the backend-neutral JSON Lines format of ``export``/``import``.

A session travels as JSON Lines, one record per line, in this order::

    {"type": "header", "format": "litecoord-session", "version": 1, "session_name": "s1", ...}
    {"type": "session", "lease_mode": "fixed", "acquire_order": "largest_first", "max_attempts": 3, ...}
    {"type": "item", "work_item_id": "logs__0__0", "status": "assigned", "worker_id": "w1", ...}   (one per item)
    {"type": "attempt", "work_item_id": "logs__0__0", "lease_epoch": 1, "outcome": "running", ...} (item history)
    {"type": "sample", "sampled_at": "...", "documents_processed": 120, ...}                       (progress history)
    {"type": "end", "items": 2, "attempts": 1, "samples": 1}

Version 2 added the attempt records and the session's ``paused_at``; files of
version 1 (none of either) are read as they are.

Every stored fact of an item is a field: its lease (holder, epoch, expiry,
length, when granted), progress and when it last changed, failures and the
last error, successors and parent, and every timestamp (RFC 3339, UTC, to
the microsecond). Items come in creation order, which is kept. The
``end`` record counts what came before it, so a truncated file is refused
instead of imported short. Figures a backend derives (session counters, the
pending order) are not in the file: the importing backend derives its own.

This module knows no database. A backend exports by turning its rows into
plain *rows* (dicts keyed like the SQLite columns, times in integer
microseconds) and passing them through :func:`session_records`; it imports
by calling :func:`parse_session`, which checks every record and returns the
rows to write, or raises :class:`~litecoord.errors.ValidationError` naming
the line before anything is written.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any

from . import validation as check
from .errors import ValidationError
from .ranges import default_range
from .types import (
    DEFAULT_SPLIT_MIN_DOCUMENTS,
    AcquireOrder,
    LeaseMode,
    format_time,
    from_micros,
    micros_of,
    parse_time,
    to_micros,
)

__all__ = [
    "FORMAT",
    "VERSION",
    "ITEM_COLUMNS",
    "SESSION_COLUMNS",
    "SAMPLE_COLUMNS",
    "ATTEMPT_COLUMNS",
    "ParsedSession",
    "ImportSummary",
    "session_records",
    "new_session_row",
    "item_row",
    "parse_session",
    "import_rows",
    "read_jsonl",
    "write_jsonl",
]

FORMAT = "litecoord-session"
VERSION = 2
#: Versions this litecoord reads.
_READS = (1, 2)

_MAX_INT = 2**63 - 1

#: The columns of an item row, in the order of an item record. Times are integer microseconds.
ITEM_COLUMNS = (
    "work_item_id", "status", "index_name", "shard_number", "document_count", "total_size_bytes",
    "parent_id", "successor_ids", "worker_id", "lease_epoch", "lease_expiry", "lease_micros", "leased_at",
    "failure_count", "last_error", "documents_processed", "bytes_processed", "last_progress_update",
    "progress_changed_at", "last_heartbeat", "created_at", "started_at", "completed_at", "updated_at",
    "next_attempt_at", "range_start", "range_end", "split_requested_at", "counts_in_totals",
)  # fmt: skip
SESSION_COLUMNS = (
    "lease_mode", "acquire_order", "max_attempts", "created_at", "started_at", "last_update", "last_sample_at",
    "retry_delay_micros", "max_retry_delay_micros", "paused_at", "split_min_documents",
)  # fmt: skip
#: The columns of an attempt row (times in microseconds), in the order of an attempt record.
ATTEMPT_COLUMNS = (
    "work_item_id", "lease_epoch", "worker_id", "leased_at", "ended_at", "outcome",
    "documents_processed", "bytes_processed", "error",
)  # fmt: skip
_OUTCOMES = ("running", "completed", "failed", "released", "lapsed", "split")
#: Retry delays of a session record that has none (a file written before they existed): the defaults.
_DEFAULT_RETRY_DELAYS = {"retry_delay_micros": 10_000_000, "max_retry_delay_micros": 600_000_000}
SAMPLE_COLUMNS = ("sampled_at", "documents_processed", "bytes_processed", "completed_items")

_ITEM_TIMES = frozenset(
    {"lease_expiry", "leased_at", "last_progress_update", "progress_changed_at", "last_heartbeat",
     "created_at", "started_at", "completed_at", "updated_at", "next_attempt_at"}
)  # fmt: skip
_SESSION_TIMES = frozenset({"created_at", "started_at", "last_update", "last_sample_at", "paused_at"})
_ATTEMPT_TIMES = frozenset({"leased_at", "ended_at"})
_STATUSES = ("pending", "assigned", "completed", "failed")


@dataclass
class ParsedSession:
    """A checked session file: the rows an importing backend writes (times in microseconds).

    ``items`` are tuples in :data:`ITEM_COLUMNS` order (``successor_ids`` a
    tuple or None), kept compact since a whole session is held here.
    ``attempts`` are tuples in :data:`ATTEMPT_COLUMNS` order.
    ``samples`` are tuples in :data:`SAMPLE_COLUMNS` order.
    """

    session_name: str
    session: dict[str, Any]
    items: list[tuple[Any, ...]] = field(default_factory=list)
    samples: list[tuple[Any, ...]] = field(default_factory=list)
    attempts: list[tuple[Any, ...]] = field(default_factory=list)


@dataclass(frozen=True)
class ImportSummary:
    """What an import wrote."""

    session_name: str
    items: int
    samples: int
    live_leases: int
    replaced_items: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "session_name": self.session_name,
            "items": self.items,
            "samples": self.samples,
            "live_leases": self.live_leases,
            "replaced_items": self.replaced_items,
        }


# -- export -------------------------------------------------------------------------------


def _time(value: int | None) -> str | None:
    return format_time(from_micros(value))


def new_session_row(now: int) -> dict[str, Any]:
    """The session row a backend exports for a session it has no row for: the defaults, created ``now``."""
    session: dict[str, Any] = {"lease_mode": "fixed", "acquire_order": "largest_first", "max_attempts": 3}
    session.update(created_at=now, started_at=None, last_update=None, last_sample_at=None, paused_at=None)
    session.update(_DEFAULT_RETRY_DELAYS)
    session["split_min_documents"] = DEFAULT_SPLIT_MIN_DOCUMENTS
    return session


def item_row(values: Iterable[Any]) -> dict[str, Any]:
    """An item row as :func:`session_records` takes it, from a ``work_items`` row in :data:`ITEM_COLUMNS` order.

    Both backends store ``successor_ids`` as one comma-separated text (or NULL).
    """
    item = dict(zip(ITEM_COLUMNS, values, strict=True))
    item["successor_ids"] = item["successor_ids"].split(",") if item["successor_ids"] else None
    item["counts_in_totals"] = bool(item["counts_in_totals"])
    return item


def session_records(
    session_name: str,
    session: Mapping[str, Any],
    items: Iterable[Mapping[str, Any]],
    samples: Iterable[Mapping[str, Any]],
    *,
    source: str,
    exported_at: int,
    attempts: Iterable[Sequence[Any]] = (),
) -> Iterator[dict[str, Any]]:
    """The records of one session, from a backend's rows (lazily: items may be a cursor)."""
    yield {
        "type": "header",
        "format": FORMAT,
        "version": VERSION,
        "session_name": session_name,
        "source": source,
        "exported_at": _time(exported_at),
    }
    yield {
        "type": "session",
        **{k: (_time(session[k]) if k in _SESSION_TIMES else session[k]) for k in SESSION_COLUMNS},
    }
    count = 0
    for row in items:
        record: dict[str, Any] = {"type": "item"}
        for key in ITEM_COLUMNS:
            value = row[key]
            if key in _ITEM_TIMES:
                value = _time(value)
            elif key == "successor_ids":
                value = list(value) if value else None
            record["lease_duration_micros" if key == "lease_micros" else key] = value
        count += 1
        yield record
    tried = 0
    for values in attempts:
        tried += 1
        yield {
            "type": "attempt",
            **{k: (_time(v) if k in _ATTEMPT_TIMES else v) for k, v in zip(ATTEMPT_COLUMNS, values, strict=True)},
        }
    sampled = 0
    for row in samples:
        sampled += 1
        yield {"type": "sample", **{k: (_time(row[k]) if k == "sampled_at" else row[k]) for k in SAMPLE_COLUMNS}}
    yield {"type": "end", "items": count, "attempts": tried, "samples": sampled}


def write_jsonl(records: Iterable[Mapping[str, Any]], stream: IO[str]) -> int:
    """Write records one per line; return how many."""
    count = 0
    for record in records:
        stream.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")))
        stream.write("\n")
        count += 1
    return count


# -- import -------------------------------------------------------------------------------


def read_jsonl(stream: IO[str]) -> Iterator[Any]:
    """The objects of a JSON Lines stream, one per line; a malformed line raises, naming it."""
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            raise ValidationError(f"line {number}", "is blank; a session file has one record on every line")
        try:
            yield json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"line {number}", f"malformed JSON: {exc.msg} at column {exc.colno}") from None


class _Line:
    """Checks the fields of the record on one line; errors name the line and the field."""

    def __init__(self, number: int, record: Mapping[str, Any], known: Sequence[str]) -> None:
        self.number = number
        self.record = record
        unknown = sorted(set(record) - set(known) - {"type"})
        if unknown:
            self.fail(unknown[0], f"is not a field of a {record.get('type')} record")

    def fail(self, name: str, detail: str) -> None:
        raise ValidationError(f"line {self.number}", f"{name} {detail}")

    def count(self, name: str, *, nullable: bool = False, minimum: int = 0) -> int | None:
        value = self.record.get(name)
        if value is None and nullable:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= _MAX_INT:
            self.fail(name, f"must be an integer >= {minimum} (got {value!r})")
        return value

    def time(self, name: str, *, nullable: bool = True) -> int | None:
        value = self.record.get(name)
        if value is None:
            if nullable:
                return None
            self.fail(name, "is required")
        if not isinstance(value, str):
            self.fail(name, f"must be an RFC 3339 time (got {value!r})")
        try:
            parsed: datetime | None = parse_time(value)
        except ValueError:
            parsed = None
        if parsed is None:
            self.fail(name, f"must be an RFC 3339 time (got {value!r})")
        return to_micros(parsed)  # type: ignore[arg-type]

    def text(self, name: str, limit: int, *, nullable: bool = True, allow_comma: bool = True) -> str | None:
        value = self.record.get(name)
        if value is None and nullable:
            return None
        try:
            return check.text(name, value, limit, allow_comma=allow_comma)
        except ValidationError as exc:
            self.fail(name, exc.detail.split(": ", 1)[-1])
        raise AssertionError("unreachable")

    def error_text(self, name: str) -> str | None:
        """Any text (an error message has line breaks), within the length a backend keeps."""
        value = self.record.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > check.MAX_ERROR_LENGTH):
            self.fail(name, f"must be a string of at most {check.MAX_ERROR_LENGTH} characters, or null")
        return value

    def choice(self, name: str, allowed: Sequence[str]) -> str:
        value = self.record.get(name)
        if value not in allowed:
            self.fail(name, f"must be one of {', '.join(allowed)} (got {value!r})")
        return value  # type: ignore[return-value]


def _header(number: int, record: Mapping[str, Any]) -> str:
    if record.get("type") != "header" or record.get("format") != FORMAT:
        raise ValidationError(
            f"line {number}", f"is not a litecoord session export (expected a {FORMAT!r} header record)"
        )
    line = _Line(number, record, ("format", "version", "session_name", "source", "exported_at"))
    version = record.get("version")
    if version not in _READS:
        line.fail("version", f"is {version!r}; this litecoord reads versions up to {VERSION}")
    line.time("exported_at")
    return line.text("session_name", check.MAX_SESSION_NAME_LENGTH, nullable=False)  # type: ignore[return-value]


def _session(number: int, record: Mapping[str, Any]) -> dict[str, Any]:
    if record.get("type") != "session":
        raise ValidationError(f"line {number}", f"must be the session record (got type {record.get('type')!r})")
    line = _Line(number, record, SESSION_COLUMNS)
    return {
        "lease_mode": line.choice("lease_mode", [m.value for m in LeaseMode]),
        "acquire_order": line.choice("acquire_order", [o.value for o in AcquireOrder]),
        "max_attempts": line.count("max_attempts", minimum=1),
        "created_at": line.time("created_at", nullable=False),
        "started_at": line.time("started_at"),
        "last_update": line.time("last_update"),
        "last_sample_at": line.time("last_sample_at"),
        **{name: _retry_delay(line, name) for name in _DEFAULT_RETRY_DELAYS},
        "paused_at": line.time("paused_at"),
        # A file written before split requests has none: the default (null in a file: off).
        "split_min_documents": line.count("split_min_documents", nullable=True)
        if "split_min_documents" in record
        else DEFAULT_SPLIT_MIN_DOCUMENTS,
    }


def _retry_delay(line: _Line, name: str) -> int:
    value = line.count(name, nullable=True)
    if value is None:
        return _DEFAULT_RETRY_DELAYS[name]
    if value > micros_of(check.MAX_RETRY_DELAY):
        line.fail(name, f"must be at most {micros_of(check.MAX_RETRY_DELAY)} (a day)")
    return value


_ITEM_FIELDS = tuple("lease_duration_micros" if c == "lease_micros" else c for c in ITEM_COLUMNS)


def _item(number: int, record: Mapping[str, Any]) -> dict[str, Any]:
    line = _Line(number, record, _ITEM_FIELDS)
    row: dict[str, Any] = {
        "work_item_id": line.text("work_item_id", check.MAX_WORK_ITEM_ID_LENGTH, nullable=False),
        "status": line.choice("status", _STATUSES),
        "index_name": line.text("index_name", check.MAX_INDEX_NAME_LENGTH),
        "shard_number": line.count("shard_number", nullable=True),
        "document_count": line.count("document_count", nullable=True),
        "total_size_bytes": line.count("total_size_bytes", nullable=True),
        "parent_id": line.text("parent_id", check.MAX_WORK_ITEM_ID_LENGTH),
        "worker_id": line.text("worker_id", check.MAX_WORKER_ID_LENGTH),
        "lease_epoch": line.count("lease_epoch"),
        "lease_expiry": line.time("lease_expiry"),
        "lease_micros": line.count("lease_duration_micros", nullable=True, minimum=1),
        "leased_at": line.time("leased_at"),
        "failure_count": line.count("failure_count"),
        "last_error": line.error_text("last_error"),
        "documents_processed": line.count("documents_processed"),
        "bytes_processed": line.count("bytes_processed"),
    }
    for name in ("last_progress_update", "progress_changed_at", "last_heartbeat", "started_at", "completed_at"):
        row[name] = line.time(name)
    row["created_at"] = line.time("created_at", nullable=False)
    row["updated_at"] = line.time("updated_at", nullable=False)
    row["next_attempt_at"] = line.time("next_attempt_at")
    if row["next_attempt_at"] is not None and row["status"] != "pending":
        line.fail("next_attempt_at", "is only for a pending item (one waiting out its retry delay)")
    successors = record.get("successor_ids")
    if successors is not None:
        if not isinstance(successors, list) or not successors:
            line.fail("successor_ids", "must be a non-empty list of work item ids, or null")
        for i, name in enumerate(successors):
            try:
                check.text(f"successor_ids[{i}]", name, check.MAX_WORK_ITEM_ID_LENGTH, allow_comma=False)
            except ValidationError as exc:
                line.fail(f"successor_ids[{i}]", exc.detail.split(": ", 1)[-1])
        successors = tuple(successors)
    row["successor_ids"] = successors
    # The states a backend relies on: an assigned item has a holder and a whole lease.
    if row["status"] == "assigned" and (
        row["worker_id"] is None or row["lease_expiry"] is None or row["lease_micros"] is None or not row["lease_epoch"]
    ):
        line.fail(
            "status", "is assigned, so worker_id, lease_expiry, lease_duration_micros and lease_epoch >= 1 are required"
        )
    if row["status"] == "completed" and row["completed_at"] is None:
        line.fail("completed_at", "is required for a completed item")
    _ranges(line, record, row)
    return row


def _ranges(line: _Line, record: Mapping[str, Any], row: dict[str, Any]) -> None:
    """The range fields of an item; a file written before ranges gets the defaults of a new item."""
    start, end = default_range(row["work_item_id"], row["document_count"])
    if "range_start" in record:
        start = line.count("range_start")  # type: ignore[assignment]
    if "range_end" in record:
        end = line.count("range_end", nullable=True)
    if end is not None and end < start:
        line.fail("range_end", f"must not be before range_start ({start})")
    row["range_start"], row["range_end"] = start, end
    row["split_requested_at"] = line.count("split_requested_at", nullable=True)
    counted = record.get("counts_in_totals", row["parent_id"] is None)
    if not isinstance(counted, bool):
        line.fail("counts_in_totals", f"must be true or false (got {counted!r})")
    row["counts_in_totals"] = counted


def _sample(number: int, record: Mapping[str, Any]) -> dict[str, Any]:
    line = _Line(number, record, SAMPLE_COLUMNS)
    return {
        "sampled_at": line.time("sampled_at", nullable=False),
        "documents_processed": line.count("documents_processed"),
        "bytes_processed": line.count("bytes_processed"),
        "completed_items": line.count("completed_items"),
    }


def _attempt(number: int, record: Mapping[str, Any]) -> tuple[Any, ...]:
    line = _Line(number, record, ATTEMPT_COLUMNS)
    return (
        line.text("work_item_id", check.MAX_WORK_ITEM_ID_LENGTH, nullable=False),
        line.count("lease_epoch", minimum=1),
        line.text("worker_id", check.MAX_WORKER_ID_LENGTH, nullable=False),
        line.time("leased_at", nullable=False),
        line.time("ended_at"),
        line.choice("outcome", _OUTCOMES),
        line.count("documents_processed"),
        line.count("bytes_processed"),
        line.error_text("error"),
    )


def parse_session(records: Iterable[Any]) -> ParsedSession:
    """Check a whole session file's records (the n-th record is line n); return the rows to import.

    Raises ``ValidationError`` whose field is ``line N`` for the first
    problem: a record out of place, an unknown or malformed field, a repeated
    id, a successor or parent that is not in the file, a missing or
    miscounted ``end`` record.
    """
    parsed: ParsedSession | None = None
    seen: dict[str, int] = {}
    sample_times: set[int] = set()
    tried: set[tuple[Any, ...]] = set()
    ended = False
    number = 0
    for number, record in enumerate(records, start=1):
        if not isinstance(record, Mapping):
            raise ValidationError(f"line {number}", f"must be a JSON object, not {type(record).__name__}")
        if ended:
            raise ValidationError(f"line {number}", "comes after the end record")
        kind = record.get("type")
        if number == 1:
            name = _header(number, record)
            continue
        if number == 2:
            parsed = ParsedSession(name, _session(number, record))
            continue
        assert parsed is not None
        if kind == "item":
            if parsed.samples or parsed.attempts:
                raise ValidationError(f"line {number}", "items must come before the attempts and samples")
            row = _item(number, record)
            if row["work_item_id"] in seen:
                raise ValidationError(
                    f"line {number}", f"work_item_id {row['work_item_id']!r} repeats line {seen[row['work_item_id']]}"
                )
            seen[row["work_item_id"]] = number
            parsed.items.append(tuple(row[c] for c in ITEM_COLUMNS))
        elif kind == "attempt":
            if parsed.samples:
                raise ValidationError(f"line {number}", "attempts must come before the samples")
            attempt = _attempt(number, record)
            if attempt[0] not in seen:
                raise ValidationError(f"line {number}", f"names work item {attempt[0]!r}, which is not in the file")
            if attempt[:2] in tried:
                raise ValidationError(f"line {number}", f"repeats attempt {attempt[1]} of work item {attempt[0]!r}")
            tried.add(attempt[:2])
            parsed.attempts.append(attempt)
        elif kind == "sample":
            row = _sample(number, record)
            if row["sampled_at"] in sample_times:
                raise ValidationError(f"line {number}", "sampled_at repeats an earlier sample's time")
            sample_times.add(row["sampled_at"])
            parsed.samples.append(tuple(row[c] for c in SAMPLE_COLUMNS))
        elif kind == "end":
            line = _Line(number, record, ("items", "attempts", "samples"))
            said = (line.count("items"), line.count("attempts", nullable=True) or 0, line.count("samples"))
            held = (len(parsed.items), len(parsed.attempts), len(parsed.samples))
            if said != held:
                line.fail(
                    "items",
                    f"attempts and samples say {said[0]}, {said[1]} and {said[2]}, but the file holds "
                    f"{held[0]}, {held[1]} and {held[2]}: it is incomplete",
                )
            ended = True
        else:
            raise ValidationError(f"line {number}", f"has an unknown record type {kind!r}")
    if parsed is None:
        if number == 0:
            raise ValidationError("line 1", "the file is empty")
        raise ValidationError(f"line {number + 1}", "the session record is missing")
    if not ended:
        raise ValidationError(f"line {number + 1}", "the end record is missing: the file is incomplete")
    for row in parsed.items:
        item_id, parent, successors = row[_ID], row[_PARENT], row[_SUCCESSORS]
        for name in (successors or ()) + ((parent,) if parent else ()):
            if name not in seen:
                raise ValidationError(f"line {seen[item_id]}", f"names work item {name!r}, which is not in the file")
    return parsed


_ID, _PARENT, _SUCCESSORS = (ITEM_COLUMNS.index(c) for c in ("work_item_id", "parent_id", "successor_ids"))


def import_rows(parsed: ParsedSession) -> Iterator[tuple[Any, ...]]:
    """The item rows to insert: ``(order_key, *ITEM_COLUMNS)``, successor ids joined with commas.

    ``order_key`` is the pending order both schemas keep: minus the size in a
    largest_first session (unknown sizes last), 0 in a fifo one.
    """
    fifo = parsed.session["acquire_order"] == "fifo"
    size = ITEM_COLUMNS.index("total_size_bytes")
    for row in parsed.items:
        key = 0 if fifo else -(row[size] if row[size] is not None else -1)
        successors = row[_SUCCESSORS]
        yield (key, *row[:_SUCCESSORS], ",".join(successors) if successors else None, *row[_SUCCESSORS + 1 :])
