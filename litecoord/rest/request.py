"""A REST request as handlers see it.

The parsed path parameters, query and JSON body, the fields every route
reads, and :class:`HttpError`, the REST layer's own errors.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs

from .. import validation as check
from ..errors import (
    LitecoordError,
    ValidationError,
)
from ..protocol import DEFAULT_LEASE_DURATION

StartResponse = Callable[..., Any]
Response = tuple[int, Any]


class HttpError(LitecoordError):
    """A protocol-level error of the REST layer (malformed JSON, unknown route,
    wrong method, body too large): same JSON shape, per-instance status."""

    def __init__(self, http_status: int, code: str, detail: str, **context: Any) -> None:
        super().__init__(detail, **context)
        self.http_status = http_status
        self.code = code


@dataclass(frozen=True)
class RawBody:
    """A response body sent as it is (the page, its assets, the metrics), not as JSON."""

    data: bytes
    content_type: str
    headers: tuple[tuple[str, str], ...] = ()


# -- requests ---------------------------------------------------------------------

_NO_BODY = object()


@dataclass
class Request:
    """What a handler sees: the bound path parameters, the query and a lazily parsed body."""

    method: str
    params: dict[str, str]
    query: dict[str, str]
    environ: dict[str, Any]
    max_body_bytes: int
    _body: Any = field(default=_NO_BODY, repr=False)

    def body(self) -> Any:
        """The JSON body, or ``None`` when there is none (GET with a JSON content type, empty POST)."""
        if self._body is _NO_BODY:
            self._body = _parse_json(_read_body(self.environ, self.max_body_bytes))
        return self._body

    def obj(self, allowed: Iterable[str], *, required: bool = True) -> dict[str, Any]:
        """The body as an object with only ``allowed`` keys (``{}`` when absent and not required)."""
        data = self.body()
        if data is None:
            if required:
                raise ValidationError("body", "a JSON object is required")
            return {}
        if not isinstance(data, dict):
            raise ValidationError("body", f"must be a JSON object, not {_json_type(data)}")
        allowed = tuple(allowed)
        unknown = sorted(set(data) - set(allowed))
        if unknown:
            raise ValidationError(unknown[0], f"is not a known field here (expected one of {', '.join(allowed)})")
        return data


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "array", dict: "object"}.get(
        type(value), type(value).__name__
    )


def _read_body(environ: Mapping[str, Any], limit: int) -> bytes:
    length_text = (environ.get("CONTENT_LENGTH") or "").strip()
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    if length_text:
        try:
            length = int(length_text)
        except ValueError:
            raise HttpError(400, "bad_request", f"Content-Length is not a number: {length_text!r}") from None
        if length < 0:
            raise HttpError(400, "bad_request", "Content-Length is negative")
        if length > limit:
            raise too_large(limit)
        return stream.read(length) if length else b""
    if environ.get("wsgi.input_terminated"):
        # Chunked upload: the server delivers EOF, so read one byte past the limit to detect excess.
        data = stream.read(limit + 1)
        if len(data) > limit:
            raise too_large(limit)
        return data
    return b""  # no length and no EOF guarantee: WSGI says there is no body


def too_large(limit: int) -> HttpError:
    return HttpError(413, "payload_too_large", f"request body exceeds {limit} bytes", max_body_bytes=limit)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# Built once: json.loads() with any keyword builds a new decoder per call (about
# half the cost of parsing a small body).
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _parse_json(raw: bytes) -> Any:
    if not raw.strip():
        return None
    try:
        return _DECODER.decode(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise HttpError(400, "malformed_json", f"request body is not UTF-8: {exc.reason}") from None
    except (ValueError, RecursionError) as exc:
        raise HttpError(400, "malformed_json", f"request body is not valid JSON: {exc}") from None


# -- body fields ------------------------------------------------------------------


def _worker(value: Any) -> str:
    if value is None:
        raise ValidationError("worker_id", "is required")
    return check.worker_id(value)


def _seconds(value: Any, field: str = "lease_duration_seconds") -> timedelta | None:
    """A lease duration from a JSON number of seconds (``None`` when absent)."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return check.duration(value, field)
    raise ValidationError(field, f"must be a number of seconds, not {_json_type(value)}")


def _query_seconds(text: str, field: str = "lease_duration_seconds") -> timedelta:
    """A lease duration from query-string text such as ``300`` or ``90.5``."""
    try:
        if not text.isascii():  # int() and float() read other scripts' digits: JSON numbers are ASCII
            raise ValueError(text)
        value: float = float(text) if any(c in text for c in ".eEnN") else int(text)
    except ValueError:
        raise ValidationError(field, f"must be a number of seconds (got {text!r})") from None
    return check.duration(value, field)


def _lease_fields(req: Request, body: Mapping[str, Any]) -> tuple[str, timedelta]:
    """worker_id and lease_duration_seconds from the query (Java client) or else the JSON body."""
    worker = _worker(req.query.get("worker_id", body.get("worker_id")))
    if "lease_duration_seconds" in req.query:
        return worker, _query_seconds(req.query["lease_duration_seconds"])
    return worker, _seconds(body.get("lease_duration_seconds")) or DEFAULT_LEASE_DURATION




def _query(environ: Mapping[str, Any]) -> dict[str, str]:
    text = environ.get("QUERY_STRING") or ""
    if not text:
        return {}
    if text.isascii() and "%" not in text and "+" not in text:
        # Nothing escaped (the Java client's ?worker_id=W): what parse_qs below gives, the
        # last value of each name, without its cost (a fifth of a request's own routing).
        query: dict[str, str] = {}
        for pair in text.split("&"):
            if pair:
                name, _, value = pair.partition("=")
                query[name] = value
        return query
    try:
        raw = text.encode("latin-1").decode("utf-8")
        pairs = parse_qs(raw, keep_blank_values=True, encoding="utf-8", errors="strict")
    except (UnicodeDecodeError, UnicodeEncodeError):
        raise HttpError(400, "bad_request", "the query string is not UTF-8") from None
    except ValueError as exc:
        raise HttpError(400, "bad_request", f"malformed query string: {exc}") from None
    return {key: values[-1] for key, values in pairs.items()}

