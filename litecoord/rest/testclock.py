"""The test clock of ``litecoord serve --test-clock``: ``GET`` and ``POST /_test/clock``.

Tests of clients written in any language (the RFS workers are Java) make a
lease lapse by moving the server's clock instead of sleeping through the
lease:

- ``GET /_test/clock`` answers ``{"now": "<RFC 3339>"}``;
- ``POST /_test/clock`` with ``{"advance_seconds": 360}`` moves it forward,
  with ``{"now": "2025-01-19T20:36:00Z"}`` sets it (either way, it answers
  like ``GET``).

These routes exist only in an app built with a test clock
(``create_app(..., test_clock=True)``, ``make_server(..., test_clock=True)``):
everywhere else ``/_test/clock`` is an unknown path (404), and the OpenAPI
document describes it only then. A server with a test clock binds loopback
only (:func:`require_loopback`): a clock anyone on the network can move
would let anyone expire every lease.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .. import validation as check
from ..errors import ValidationError
from ..types import Clock, FakeClock, format_time, from_micros, parse_time, to_micros

if TYPE_CHECKING:
    from .request import Request, Response
    from .router import Route
    from .wsgi import App

__all__ = ["PATH", "routes", "add_to_document", "require_loopback", "is_loopback", "new_test_clock"]

PATH = "/_test/clock"

#: The longest single move (about a century): beyond it the clock's datetime would overflow.
MAX_ADVANCE_SECONDS = 100 * 365 * 86400

#: The times a coordinator reads from its clock (validation.clock_micros): the Unix epoch up
#: to where a lease of any allowed length still ends before year 9999. The routes never set
#: the clock outside them: every route that reads the clock would answer 500 afterwards.
EARLIEST = from_micros(0)
LATEST = from_micros(check.CLOCK_MAX_MICROS)
#: The years a "now" may name, as written: with any UTC offset (up to a day) the time stays
#: within EARLIEST..LATEST, and the OpenAPI document can say so with a pattern (_YEARS).
FIRST_YEAR, LAST_YEAR = 1971, 9996
_YEARS = "^(197[1-9]|19[89][0-9]|[2-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-6])-"


def new_test_clock(clock: Clock | None = None) -> FakeClock:
    """The clock a test-clock server runs on: ``clock`` if it is a :class:`FakeClock`, else a new one.

    A new one starts at the current wall-clock time (whole seconds), so the
    times a client sees look like real ones until a test moves them.
    """
    if clock is None:
        return FakeClock(datetime.now(timezone.utc).replace(microsecond=0))
    if not isinstance(clock, FakeClock):
        raise ValidationError("clock", "a test clock must be a litecoord.FakeClock (the routes move it)")
    return clock


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (``127.0.0.0/8``, ``::1``); never for ``0.0.0.0``."""
    return check.is_loopback_host(host)  # the one rule, shared with serve's exposure check


def require_loopback(host: str) -> None:
    """Refuse a test clock on any address other machines can reach."""
    if not is_loopback(host):
        raise ValidationError(
            "host",
            f"a server with --test-clock binds loopback only (127.0.0.1, ::1 or localhost), not {host!r}: "
            "anyone who can reach /_test/clock can expire every lease",
        )


# -- the handlers ---------------------------------------------------------------------


def _answer(clock: FakeClock) -> dict[str, Any]:
    return {"now": format_time(clock())}


def get_clock(app: App, req: Request) -> Response:
    assert app.test_clock is not None  # the route exists only then
    return 200, _answer(app.test_clock)


def set_clock(app: App, req: Request) -> Response:
    clock = app.test_clock
    assert clock is not None
    body = req.obj(("advance_seconds", "now"))
    if len(body) != 1:
        raise ValidationError("body", 'give exactly one of "advance_seconds" and "now"')
    if "advance_seconds" in body:
        seconds = body["advance_seconds"]
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not math.isfinite(seconds):
            raise ValidationError("advance_seconds", f"must be a number of seconds (got {seconds!r})")
        if seconds < 0:
            # Almost always a sign error; a test that means to go back sets "now".
            raise ValidationError("advance_seconds", f'must not be negative (got {seconds!r}); set "now" instead')
        if seconds > MAX_ADVANCE_SECONDS:
            raise ValidationError("advance_seconds", f"must be at most {MAX_ADVANCE_SECONDS} (got {seconds!r})")
        target = to_micros(clock()) + to_micros(seconds)
        if target > check.CLOCK_MAX_MICROS:
            # Checked before the clock moves: a refused call changes nothing.
            raise ValidationError(
                "advance_seconds",
                f"moves the clock past {format_time(LATEST)}, the latest time a coordinator reads (got {seconds!r})",
            )
        clock.set(from_micros(target))  # type: ignore[arg-type]
    else:
        text = body["now"]
        if not isinstance(text, str):
            raise ValidationError("now", f"must be an RFC 3339 time such as 2025-01-19T20:36:00Z (got {text!r})")
        try:
            when = parse_time(text)
        except ValueError:
            raise ValidationError(
                "now", f"is not an RFC 3339 time such as 2025-01-19T20:36:00Z (got {text!r})"
            ) from None
        assert when is not None
        year = text.strip()[:4]
        if not (year.isascii() and year.isdigit() and FIRST_YEAR <= int(year) <= LAST_YEAR):
            # Coordinators read 1970-01-01..9998-01-01 (UTC); whole years inside it, as written, are
            # what the OpenAPI document can state exactly (a pattern), whatever the offset.
            raise ValidationError(
                "now", f"must be a time in the years {FIRST_YEAR} to {LAST_YEAR}, as coordinators read (got {text!r})"
            )
        assert EARLIEST <= when <= LATEST  # type: ignore[operator]  # any offset keeps such a year inside
        clock.set(when)
    return 200, _answer(clock)


def routes() -> tuple[Route, ...]:
    from .router import Route

    return (Route("GET", PATH, get_clock), Route("POST", PATH, set_clock))


# -- the OpenAPI fragment ---------------------------------------------------------------

_CLOCK = {
    "type": "object",
    "required": ["now"],
    "properties": {"now": {"type": "string", "format": "date-time", "description": "RFC 3339, UTC, trailing Z"}},
}

_MOVE = {
    "type": "object",
    "description": 'Exactly one of "advance_seconds" and "now".',
    "properties": {
        "advance_seconds": {
            "type": "number",
            "minimum": 0,
            "maximum": MAX_ADVANCE_SECONDS,
            "description": "move the clock forward this much",
        },
        "now": {
            "type": "string",
            "format": "date-time",
            "pattern": _YEARS,
            "description": f"set the clock to this time (years {FIRST_YEAR} to {LAST_YEAR})",
        },
    },
    "minProperties": 1,
    "maxProperties": 1,
    "additionalProperties": False,
}


def add_to_document(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` (an OpenAPI document) with the two test-clock operations added."""
    ok = {"description": "the clock's time", "content": {"application/json": {"schema": _CLOCK}}}
    note = "Only on a server started with --test-clock (loopback only)."
    doc["paths"][PATH] = {
        "get": {
            "operationId": "getTestClock",
            "summary": "Read the test clock",
            "description": note,
            "responses": {"200": ok, "401": {"$ref": "#/components/responses/E401"}},
        },
        "post": {
            "operationId": "moveTestClock",
            "summary": "Move the test clock: advance it, or set it",
            "description": note + " Leases lapse by this clock, so a test expires one without sleeping.",
            "requestBody": {"required": True, "content": {"application/json": {"schema": _MOVE}}},
            "responses": {
                "200": ok,
                **{c: {"$ref": f"#/components/responses/E{c}"} for c in ("400", "401", "403", "413", "422")},
            },
        },
    }
    return doc
