"""Input checks shared by every backend and the REST layer.

Each check raises :class:`~litecoord.errors.ValidationError` naming the
field, before anything is written.
"""

from __future__ import annotations

import functools
import ipaddress
import math
import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from .errors import LitecoordError, ValidationError
from .types import to_micros

__all__ = [
    "MAX_WORK_ITEM_ID_LENGTH",
    "MAX_SESSION_NAME_LENGTH",
    "MAX_WORKER_ID_LENGTH",
    "MAX_INDEX_NAME_LENGTH",
    "MAX_ERROR_LENGTH",
    "MAX_LEASE_DURATION",
    "MAX_COUNT",
    "MAX_TOKEN_LENGTH",
    "ITEM_FIELDS",
]

MAX_WORK_ITEM_ID_LENGTH = 512
MAX_SESSION_NAME_LENGTH = 128
MAX_WORKER_ID_LENGTH = 256
MAX_INDEX_NAME_LENGTH = 1024
#: Error text beyond this is cut, keeping the end (where the cause usually is).
MAX_ERROR_LENGTH = 8192
MAX_LEASE_DURATION = timedelta(days=365)
#: The longest retry delay a session may set (base or cap).
MAX_RETRY_DELAY = timedelta(days=1)
#: The largest count (documents, bytes, shard number, epoch...) accepted: 2**53 - 1,
#: the largest integer every JSON parser reads exactly (JavaScript's and
#: Jackson's doubles included). It also keeps session totals exact: they pass
#: SQLite's 64 bits only beyond 1024 items at this bound, and the status then
#: adds them up again exactly (see SqliteCoordinator.status).
MAX_COUNT = 2**53 - 1
MAX_TOKEN_LENGTH = 4096
#: MAX_LEASE_DURATION in microseconds (exponential lease growth stops there too).
MAX_LEASE_MICROS = MAX_LEASE_DURATION // timedelta(microseconds=1)
#: Clock readings run from the Unix epoch to this bound, so that a lease of any
#: allowed length still ends at a time Python's datetime can hold (year 9999).
CLOCK_MAX_MICROS = to_micros(datetime(9999, 1, 1, tzinfo=timezone.utc)) - MAX_LEASE_MICROS

#: What a name (session, work item id, worker id, index name) must not contain, as a
#: regular-expression character class that Python, JSON Schema (ECMA-262) and Rust read
#: alike: C0 and C1 controls and DEL, the separators but the space (U+00A0, U+2028...),
#: the format characters (soft hyphen, bidirectional controls, zero-width ones, BOM) and
#: the private-use area of the Basic Multilingual Plane (Unicode 14's Cc, Cf, Zs, Zl, Zp, Co).
#: Written out rather than str.isprintable(), so that the OpenAPI document states the very
#: rule the server applies (its pattern is built from this) and a new Python's Unicode
#: tables never refuse an id an older one stored. Lone surrogates are refused too (they
#: are not text; a JSON Schema pattern cannot name them).
NON_PRINTABLE = (
    r"\x00-\x1f\x7f-\xa0\xad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u1680\u180e"
    r"\u2000-\u200f\u2028-\u202f\u205f-\u2064\u2066-\u206f\u3000\ue000-\uf8ff\ufeff\ufff9-\ufffb"
)
_NON_PRINTABLE = re.compile(f"[{NON_PRINTABLE}\\ud800-\\udfff]")

#: The keys a work-item description may carry.
ITEM_FIELDS = ("work_item_id", "index_name", "shard_number", "document_count", "total_size_bytes")


def text(field: str, value: Any, max_length: int, *, allow_comma: bool = True) -> str:
    """A non-empty printable string of at most ``max_length`` characters."""
    if not isinstance(value, str):
        raise ValidationError(field, f"must be a string, not {type(value).__name__}")
    if not value:
        raise ValidationError(field, "must not be empty")
    if len(value) > max_length:
        raise ValidationError(field, f"is {len(value)} characters long; the limit is {max_length}")
    if not (value.isascii() and value.isprintable()):  # printable ASCII, the common case, needs no search
        bad = _NON_PRINTABLE.search(value)
        if bad is not None:
            raise ValidationError(field, f"contains the non-printable character U+{ord(bad.group()):04X}")
    if not allow_comma and "," in value:
        raise ValidationError(field, "must not contain a comma")
    return value


def work_item_id(value: Any, field: str = "work_item_id") -> str:
    return text(field, value, MAX_WORK_ITEM_ID_LENGTH)


def session_name(value: Any) -> str:
    return text("session", value, MAX_SESSION_NAME_LENGTH)


def worker_id(value: Any) -> str:
    return text("worker_id", value, MAX_WORKER_ID_LENGTH)


def optional_text(field: str, value: Any, max_length: int) -> str | None:
    return None if value is None else text(field, value, max_length)


def count(field: str, value: Any, *, optional: bool = True) -> int | None:
    """A non-negative integer (``bool`` is not an integer here)."""
    if value is None:
        if optional:
            return None
        raise ValidationError(field, "is required")
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 5.0 is the integer 5 in JSON (and in JSON Schema), as sent by some clients
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(field, f"must be an integer, not {type(value).__name__}")
    if value < 0:
        raise ValidationError(field, f"must not be negative (got {value})")
    if value > MAX_COUNT:
        raise ValidationError(field, f"must be at most {MAX_COUNT} (2**53 - 1)")
    return value


def lease_epoch(value: Any) -> int | None:
    return count("lease_epoch", value)


# Built once: every acquire checks its duration against them.
_NO_TIME = timedelta(0)
_MILLISECOND = timedelta(milliseconds=1)


def duration(value: Any, field: str = "lease_duration") -> timedelta:
    """A positive duration up to a year, as a timedelta or a number of seconds."""
    if isinstance(value, bool):
        raise ValidationError(field, "must be a duration, not bool")
    if isinstance(value, (int, float)):
        # Checked as a number first: timedelta() overflows on -inf or -1e300.
        if not math.isfinite(value):
            raise ValidationError(field, f"must be a finite number of seconds (got {value})")
        if value <= 0:
            raise ValidationError(field, "must be positive")
        if value < 0.001:  # checked as the number: 5e-324 seconds would round to a zero timedelta
            raise ValidationError(field, "must be at least a millisecond")
        if value > MAX_LEASE_DURATION.total_seconds():
            raise ValidationError(field, f"must be at most {MAX_LEASE_DURATION.days} days")
        value = timedelta(seconds=value)
    if not isinstance(value, timedelta):
        raise ValidationError(field, f"must be a timedelta or seconds, not {type(value).__name__}")
    if value <= _NO_TIME:
        raise ValidationError(field, "must be positive")
    if value > MAX_LEASE_DURATION:
        raise ValidationError(field, f"must be at most {MAX_LEASE_DURATION.days} days")
    if value < _MILLISECOND:
        raise ValidationError(field, "must be at least a millisecond")
    return value


def delay(value: Any, field: str) -> timedelta:
    """A duration from zero up to a day (a retry delay), as a timedelta or a number of seconds."""
    if isinstance(value, bool) or not isinstance(value, (int, float, timedelta)):
        raise ValidationError(field, f"must be a timedelta or seconds, not {type(value).__name__}")
    if isinstance(value, (int, float)):
        if value != value or value in (float("inf"), float("-inf")):  # NaN, infinities
            raise ValidationError(field, "must be a number of seconds")
        if value < 0 or value > MAX_RETRY_DELAY.total_seconds():
            raise ValidationError(field, f"must be from 0 to {MAX_RETRY_DELAY.total_seconds():g} seconds")
        value = timedelta(seconds=value)
    if value < timedelta(0) or value > MAX_RETRY_DELAY:
        raise ValidationError(field, f"must be from 0 to {MAX_RETRY_DELAY.total_seconds():g} seconds")
    return value


def finite(field: str, value: Any) -> float:
    """A finite real number: NaN and the infinities compare false (or true) with every bound, so they
    slip past range checks (a NaN heartbeat never fires; an infinite one never renews)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(field, f"must be a number, not {type(value).__name__}")
    if not math.isfinite(value):
        raise ValidationError(field, f"must be a finite number (got {value})")
    return value


def seconds(field: str, value: Any, *, minimum: float = 0.0, maximum: float | None = None) -> float:
    """A finite number of seconds above ``minimum`` (and at most ``maximum``): timeouts, intervals."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(field, f"must be a number of seconds, not {type(value).__name__}")
    if not math.isfinite(value):
        raise ValidationError(field, f"must be a finite number of seconds (got {value})")
    if not value > minimum:
        raise ValidationError(field, f"must be more than {minimum:g} seconds (got {value:g})")
    if maximum is not None and value > maximum:
        raise ValidationError(field, f"must be at most {maximum:g} seconds (got {value:g})")
    return float(value)


def token(value: Any) -> str:
    """A bearer token: printable ASCII without spaces, the one rule of server, client and CLI.

    HTTP header values are bytes; a token outside ASCII would be encoded
    differently by each side (or not at all: http.client refuses it).
    """
    if not isinstance(value, str):
        raise ValidationError("token", f"must be a string, not {type(value).__name__}")
    if not value:
        raise ValidationError("token", "must not be empty")
    if len(value) > MAX_TOKEN_LENGTH:
        raise ValidationError("token", f"is {len(value)} characters long; the limit is {MAX_TOKEN_LENGTH}")
    bad = next((ch for ch in value if not "!" <= ch <= "~"), None)
    if bad is not None:
        raise ValidationError(
            "token", f"must be printable ASCII without spaces; it contains U+{ord(bad):04X} ({bad!r})"
        )
    return value


@functools.lru_cache(maxsize=256)
def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (an address or name, IPv6 optionally in brackets) names this machine only."""
    # Cached: a tokenless server asks this of every request's Host header, whose few
    # values repeat, and parsing an address costs more than the rest of the check.
    # Bounded, so a client sending ever new values only evicts older verdicts.
    name = host.strip().lower().rstrip(".")
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any address


def host_header_name(value: str) -> str:
    """The host part of a ``Host`` header value: ``localhost:8000`` -> ``localhost``, ``[::1]:80`` -> ``[::1]``."""
    value = value.strip()
    if value.startswith("["):
        return value[: value.find("]") + 1] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def clock_micros(clock: Any, value: Any) -> int:
    """A clock reading (seconds since the epoch, or a datetime) in microseconds, checked.

    A clock is code the caller supplied: one that returns something else, or a
    time outside 1970-9998 (where every lease still ends at a time a datetime
    can hold), is refused before anything is written.
    """
    try:
        if isinstance(value, bool) or not isinstance(value, (int, float, datetime)):
            raise TypeError(type(value).__name__)
        micros = to_micros(value)
    except (TypeError, ValueError, OverflowError):
        raise LitecoordError(
            f"the clock {clock!r} returned {value!r}; a clock must return seconds since the epoch or a datetime",
            clock=repr(clock),
        ) from None
    if not 0 <= micros <= CLOCK_MAX_MICROS:
        raise LitecoordError(
            f"the clock {clock!r} reads {value!r}, outside 1970-01-01..9998-01-01 (leases must end before year 9999)",
            clock=repr(clock),
        )
    return micros


def error_text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValidationError("error", f"must be a string, not {type(value).__name__}")
    if len(value) > MAX_ERROR_LENGTH:
        value = "..." + value[-(MAX_ERROR_LENGTH - 3) :]
    return value


def item_spec(data: Any, where: str = "") -> dict[str, Any]:
    """Check one work-item description; return it normalised to :data:`ITEM_FIELDS`."""
    prefix = f"{where}." if where else ""
    if not isinstance(data, Mapping):
        raise ValidationError(where or "item", f"must be an object, not {type(data).__name__}")
    unknown = sorted(set(data) - set(ITEM_FIELDS))
    if unknown:
        expected = ", ".join(ITEM_FIELDS)
        raise ValidationError(f"{prefix}{unknown[0]}", f"is not a work item field (expected one of {expected})")
    if "work_item_id" not in data:
        raise ValidationError(f"{prefix}work_item_id", "is required")
    return {
        "work_item_id": work_item_id(data["work_item_id"], f"{prefix}work_item_id"),
        "index_name": optional_text(f"{prefix}index_name", data.get("index_name"), MAX_INDEX_NAME_LENGTH),
        "shard_number": count(f"{prefix}shard_number", data.get("shard_number")),
        "document_count": count(f"{prefix}document_count", data.get("document_count")),
        "total_size_bytes": count(f"{prefix}total_size_bytes", data.get("total_size_bytes")),
    }


#: The largest page ``list_attention_items`` hands out.
MAX_PAGE_SIZE = 1000


def page_limit(value: Any, field: str = "limit") -> int:
    """A page size from 1 to :data:`MAX_PAGE_SIZE`."""
    number = count(field, value, optional=False)
    assert number is not None
    if not 1 <= number <= MAX_PAGE_SIZE:
        raise ValidationError(field, f"must be from 1 to {MAX_PAGE_SIZE} (got {number})")
    return number


def choice(field: str, value: Any, allowed: type) -> Any:
    """A member of the ``str`` enum ``allowed``, by value."""
    try:
        return allowed(value)
    except ValueError:
        names = ", ".join(m.value for m in allowed)
        raise ValidationError(field, f"must be one of {names} (got {value!r})") from None
