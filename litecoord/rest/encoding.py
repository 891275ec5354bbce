"""Answers as bytes: JSON bodies, and conditional and compressed answers to reads (``ETag``/``If-None-Match``, gzip).

Every JSON body goes through :func:`json_bytes`: compact UTF-8 JSON, written
by orjson when it is installed (the ``server`` extra brings it) and by the
standard library otherwise, or when orjson refuses a body (an integer past
64 bits, a key that is not a string). A lease's answer took 7 us to encode
with the standard library and 0.6 us with orjson, a twentieth of what the
server spends on a request of its own. Both write the same text, but for
floats below 1e-4, which orjson writes without an exponent (``0.000025``
where the standard library writes ``2.5e-05``): the same number.

The status page asks for the same few reads every two seconds, often for
hours. Two things cut what that moves:

* Every ``GET`` answered 200 (but the Java client's ``GET …/acquire``, which
  writes) carries a weak ``ETag``; a request whose ``If-None-Match`` names it
  gets ``304 Not Modified`` with no body. The tag covers the whole body but
  its ``as_of`` (the server's time of the read, at the top and in a
  ``status``; another top-level time equal to it counts as "current"): a 304
  says nothing changed but the clock. Every figure that
  depends on the time (ages, flags, rates, the ETA) is in the tag.
* A body of :data:`MIN_GZIP_BYTES` or more is gzipped when the request
  accepts gzip (browsers always do; the Java client and ``HttpCoordinator``
  do not ask, so the workers' hot path is unchanged).
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Mapping
from typing import Any

try:
    import orjson
except ImportError:  # the standard library writes the same JSON, at ten times the cost
    orjson = None

__all__ = ["MIN_GZIP_BYTES", "etag", "finish", "json_bytes"]

# Built once: json.dumps() with any keyword builds a new encoder per call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def json_bytes(body: Any) -> bytes:
    """``body`` as compact UTF-8 JSON (non-ASCII text written as it is, not escaped)."""
    if orjson is not None:
        try:
            return orjson.dumps(body)
        except TypeError:  # orjson.JSONEncodeError: what only the standard library writes
            pass
    return _ENCODER.encode(body).encode("utf-8")

#: Below this a gzip header and the CPU cost more than they save.
MIN_GZIP_BYTES = 1024

def _without_clock(body: Any) -> Any:
    """``body`` without the reading time (``as_of``) at its top and in its ``status``."""
    if not isinstance(body, dict):
        return body
    if "as_of" not in body and not (isinstance(body.get("status"), dict) and "as_of" in body["status"]):
        return body
    now = body.get("as_of")
    # Another time equal to as_of ("indexes_as_of": current) only says it is current: so does the tag.
    rest = {k: "=as_of" if now is not None and v == now else v for k, v in body.items() if k != "as_of"}
    status = rest.get("status")
    if isinstance(status, dict):
        rest["status"] = {key: value for key, value in status.items() if key != "as_of"}
    return rest


def etag(body: Any, data: bytes) -> str:
    """The weak tag of a response: of ``body`` without its ``as_of`` (JSON), else of the bytes sent."""
    basis = _without_clock(body)
    raw = data if basis is body else json_bytes(basis)
    return f'W/"{hashlib.blake2b(raw, digest_size=12).hexdigest()}"'


def _matches(header: str, tag: str) -> bool:
    """Weak comparison (RFC 9110 13.1.2): ``W/"x"`` and ``"x"`` name the same thing; ``*`` matches any."""
    wanted = tag.removeprefix("W/")
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == wanted:
            return True
    return False


def _accepts_gzip(header: str) -> bool:
    for part in header.split(","):
        name, _, params = part.strip().partition(";")
        if name.strip().lower() in ("gzip", "*"):
            q = params.strip().lower().removeprefix("q=")
            try:
                return not params.strip() or float(q) > 0
            except ValueError:
                return False
    return False


def finish(
    environ: Mapping[str, Any], status: int, body: Any, data: bytes, headers: list[tuple[str, str]]
) -> tuple[int, bytes]:
    """The status and bytes to send for a read (``headers`` gains ``ETag``, ``Vary``, ``Content-Encoding``).

    Anything but a ``GET`` (or ``HEAD``) of a route that writes nothing, answered 200, is returned as it is.
    """
    if status != 200 or (environ.get("REQUEST_METHOD") or "GET").upper() not in ("GET", "HEAD"):
        return status, data
    if environ.get("litecoord.writes", True):  # the Java client's GET …/acquire leases: never a 304
        return status, data
    tag = etag(body, data)
    headers.append(("ETag", tag))
    big = len(data) >= MIN_GZIP_BYTES
    if big:
        headers.append(("Vary", "Accept-Encoding"))
    if _matches(environ.get("HTTP_IF_NONE_MATCH") or "", tag):
        return 304, b""
    if big and _accepts_gzip(environ.get("HTTP_ACCEPT_ENCODING") or ""):
        # mtime=0: the same body always compresses to the same bytes.
        headers.append(("Content-Encoding", "gzip"))
        return status, gzip.compress(data, compresslevel=6, mtime=0)
    return status, data
