"""The route index (litecoord.rest.router) answers exactly as a scan of the whole table does."""

from __future__ import annotations

import pytest

from litecoord.rest import testclock
from litecoord.rest.request import HttpError
from litecoord.rest.router import Route, index_routes, match
from litecoord.rest.routes import ROUTES

METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")


def scan(method: str, segments: list[tuple[str, str]], routes: tuple[Route, ...]) -> tuple[Route | None, list[str]]:
    """The rule the index must keep, over the whole table: of the routes whose literal segments
    equal the raw ones and whose parameters are not empty, those with the most literal segments
    own the path; the first of them (in table order) with the method, else their methods."""
    fitting = []
    for route in routes:
        parts = route.segments
        if len(parts) != len(segments):
            continue
        pairs = zip(parts, segments, strict=True)
        if all((raw == part) if not part.startswith("{") else bool(text) for part, (raw, text) in pairs):
            fitting.append(route)
    most = max((sum(not p.startswith("{") for p in r.segments) for r in fitting), default=0)
    owners = [r for r in fitting if sum(not p.startswith("{") for p in r.segments) == most]
    for route in owners:
        if route.method == method:
            return route, []
    return None, list(dict.fromkeys(r.method for r in owners))


def paths(routes: tuple[Route, ...]) -> list[list[tuple[str, str]]]:
    """Each route's shape with its last segment any literal of the table, a stranger, an
    escaped literal or empty (what the index keys on); or one earlier segment changed or emptied."""
    lasts = [("x", "x"), ("", ""), ("%73tatus", "status")]
    lasts += [(p, p) for p in sorted({r.segments[-1] for r in routes if r.segments})]
    out: list[list[tuple[str, str]]] = [[]]
    for route in routes:
        shape = [("x", "x") if part.startswith("{") else (part, part) for part in route.segments]
        out += [[*shape[:-1], last] for last in lasts]
        for i in range(len(shape) - 1):
            out += [[*shape[:i], other, *shape[i + 1 :]] for other in (("other", "other"), ("", ""))]
    return out


@pytest.mark.parametrize("routes", [ROUTES, ROUTES + testclock.routes()], ids=["routes", "with-test-clock"])
def test_the_index_matches_as_a_scan_of_the_table_does(routes: tuple[Route, ...]) -> None:
    index = index_routes(routes)
    checked = 0
    for segments in paths(routes):
        for method in METHODS:
            want, allowed = scan(method, segments, routes)
            try:
                got, params = match(method, segments, index)
            except HttpError as exc:
                assert want is None, (method, segments)
                assert exc.http_status == (405 if allowed else 404)
                assert exc.context.get("allow", []) == allowed
            else:
                assert got is want, (method, segments, got.template, want and want.template)
                names = [p[1:-1] for p in got.segments if p.startswith("{")]
                values = [text for p, (_, text) in zip(got.segments, segments, strict=True) if p.startswith("{")]
                assert params == dict(zip(names, values, strict=True))
            checked += 1
    assert checked > 3000
