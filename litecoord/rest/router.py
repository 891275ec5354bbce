"""The hand-written route table's machinery: :class:`Route`, matching a raw path to one (404, or 405 with ``Allow``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes, urlsplit

from .request import HttpError, Request, Response

if TYPE_CHECKING:
    from .wsgi import App

Handler = Callable[["App", Request], Response]


@dataclass(frozen=True)
class Route:
    """One (method, path template) pair. ``{name}`` segments capture one decoded path segment.

    ``writes``: whether the route changes anything (every method but GET does; a GET that
    writes, such as the Java client's acquire, says ``writes=True``). A tokenless server
    refuses such requests when a browser marks them cross-site (wsgi._check_cross_site).
    """

    method: str
    template: str
    handler: Handler
    writes: bool | None = None

    def __post_init__(self) -> None:
        if self.writes is None:
            object.__setattr__(self, "writes", self.method != "GET")

    @property
    def segments(self) -> tuple[str, ...]:
        return _template_segments(self.template)


def _template_segments(template: str) -> tuple[str, ...]:
    return tuple(s for s in template.strip("/").split("/") if s)




#: Candidate routes by (segment count, the last segment's raw spelling, or None for any other).
RouteIndex = dict[tuple[int, str | None], list[tuple[Route, tuple[tuple[str | None, str], ...]]]]


def index_routes(routes: Iterable[Route]) -> RouteIndex:
    """The routes that can match a path, by its segment count and its last segment.

    Only routes of the request's length can match it (and a 405 names the
    methods of exactly those). Of these, a route ending in a literal matches
    only that spelling, so a path ending in ``lease`` is tried against the
    routes ending in ``lease`` or in a parameter, and nothing else: one
    dictionary lookup instead of comparing every route of that length, on
    every request. Each pattern is (parameter name, or None for a literal;
    the literal) per segment.

    Within a count, routes with more literal segments come first: a path that
    a literal route matches (``…/batch``) is that route's alone, never also
    ``…/{work_item_id}``'s (an item named ``batch`` is spelled ``%62atch``).
    """
    by_length: dict[int, list[tuple[Route, tuple[tuple[str | None, str], ...]]]] = {}
    for route in routes:
        pattern = tuple((s[1:-1], s) if s.startswith("{") else (None, s) for s in route.segments)
        by_length.setdefault(len(pattern), []).append((route, pattern))
    index: RouteIndex = {}
    for length, entries in by_length.items():
        entries.sort(key=lambda entry: -_literals(entry[1]))  # stable: table order kept
        ends = {pattern[-1][1] for _, pattern in entries if pattern and pattern[-1][0] is None}
        for end in (*ends, None):
            # Leaving out the routes that cannot match changes no answer: only matching
            # routes decide the route, the 405's methods and where matching stops.
            index[length, end] = [(r, p) for r, p in entries if not p or p[-1][0] is not None or p[-1][1] == end]
    return index


#: Segments as (raw spelling, decoded text).
Segments = list[tuple[str, str]]


def _path_segments(environ: Mapping[str, Any]) -> Segments:
    """The request path split into segments, from the raw URI when it agrees with PATH_INFO."""
    path_info: str = environ.get("PATH_INFO") or ""
    raw_uri = environ.get("REQUEST_URI") or environ.get("RAW_URI")
    if raw_uri:
        raw_path = urlsplit(raw_uri).path if "://" in raw_uri[:10] else raw_uri.split("?", 1)[0]
        script = environ.get("SCRIPT_NAME") or ""
        if script and raw_path.startswith(script):
            raw_path = raw_path[len(script) :]
        # Trust the raw URI only if it decodes to what the server put in PATH_INFO
        # (a rewriting proxy or middleware may have changed one but not the other).
        if raw_path == path_info and "%" not in raw_path and raw_path.isascii():
            # Nothing escaped: every segment is its own text (the common case, skipped cheaply).
            return [(s, s) for s in _split(raw_path)]
        if unquote_to_bytes(raw_path) == path_info.encode("latin-1", "replace"):
            try:
                return [(s, unquote_to_bytes(s).decode("utf-8")) for s in _split(raw_path)]
            except UnicodeDecodeError:
                raise HttpError(400, "bad_request", "the request path is not UTF-8 once percent-decoded") from None
    try:
        # PEP 3333: PATH_INFO holds the decoded bytes as latin-1 text.
        return [(text, text) for text in (s.encode("latin-1").decode("utf-8") for s in _split(path_info))]
    except (UnicodeDecodeError, UnicodeEncodeError):
        raise HttpError(400, "bad_request", "the request path is not UTF-8") from None


def _split(path: str) -> list[str]:
    parts = path.split("/")
    if parts and parts[0] == "":
        parts = parts[1:]
    if parts and parts[-1] == "" and len(parts) > 1:
        parts = parts[:-1]  # one trailing slash is optional: ".../work-items/" == ".../work-items"
    return [] if parts == [""] else parts


def match(method: str, segments: Segments, index: RouteIndex) -> tuple[Route, dict[str, str]]:
    """The route for ``method`` and the path; ``HttpError`` 404 or 405 (with ``allow``) otherwise.

    ``index`` is the table to search (:func:`index_routes`).
    """
    allowed: list[str] = []
    matched: tuple[tuple[str | None, str], ...] | None = None  # the first (most literal) pattern matched
    length = len(segments)
    candidates = index.get((length, segments[-1][0] if segments else None))
    if candidates is None:
        candidates = index.get((length, None), ())
    for route, pattern in candidates:
        if matched is not None and pattern != matched and _literals(pattern) < _literals(matched):
            break  # a less specific template: the path is the literal routes' (sorted first)
        params: dict[str, str] = {}
        for (name, literal), (raw, text) in zip(pattern, segments, strict=True):
            if name is None:
                if raw != literal:
                    break
            elif not text:
                break
            else:
                params[name] = text
        else:
            if route.method == method:
                return route, params
            if matched is None:
                matched = pattern
            if route.method not in allowed:
                allowed.append(route.method)
    if allowed:
        detail = f"{method} is not allowed here; use {', '.join(allowed)}"
        raise HttpError(405, "method_not_allowed", detail, allow=allowed)
    raise HttpError(404, "not_found", "no such route; see /openapi.json")


def _literals(pattern: Any) -> int:
    return sum(name is None for name, _ in pattern)

