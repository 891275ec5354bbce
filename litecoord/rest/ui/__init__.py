"""The status page's files, shipped in the package: hand-written HTML, CSS and JavaScript.

No build step and nothing fetched from elsewhere (migration hosts often have
no internet): ``GET /`` serves ``index.html``, which loads ``app.css`` and
``app.js`` (an ES module, which imports the others) from ``/ui/``.
"""

from __future__ import annotations

import functools
from importlib import resources

__all__ = ["ASSETS", "PAGE_HEADERS", "ASSET_HEADERS", "asset"]

#: The files under ``/ui/`` and their content types.
ASSETS = {
    "app.js": "text/javascript; charset=utf-8",
    "core.js": "text/javascript; charset=utf-8",
    "session.js": "text/javascript; charset=utf-8",
    "find.js": "text/javascript; charset=utf-8",
    "item.js": "text/javascript; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}

# Only our own files may run or load; the page talks to its own origin only.
_SECURITY = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
)
PAGE_HEADERS = _SECURITY + (
    (
        "Content-Security-Policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    ),
    ("Cache-Control", "no-cache"),
)
ASSET_HEADERS = _SECURITY + (("Cache-Control", "no-cache"),)


@functools.cache
def asset(name: str) -> bytes:
    """The bytes of one shipped file (read once)."""
    return resources.files(__package__).joinpath(name).read_bytes()
