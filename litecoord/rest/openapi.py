"""The OpenAPI 3.1 document of the console REST API served by :mod:`litecoord.rest.wsgi`.

Written by hand next to the route table; a test checks that every route is
described here (and nothing else), that the document is valid OpenAPI, and
that generated requests only ever get the statuses documented for them.

Split by concern: the schema components (:mod:`.openapi_schemas`), the
parameters (:mod:`.openapi_params`), the error codes and responses
(:mod:`.openapi_errors`), the paths (:mod:`.openapi_paths`, with the console
routes in :mod:`.openapi_console`); this module puts them together and stays
the public entry point.
"""

from __future__ import annotations

import copy
from typing import Any

from .openapi_console import CONSOLE_SCHEMAS
from .openapi_errors import _ERROR_TEXT, ERROR_CODES
from .openapi_params import _PARAMS

# BASE and JSON lived here before the split and are imported from here (docs hooks, tests):
# "as" marks them re-exported.
from .openapi_paths import BASE as BASE
from .openapi_paths import JSON as JSON
from .openapi_paths import _json, _paths
from .openapi_schemas import _SCHEMAS, _ref

__all__ = ["ERROR_CODES", "openapi_document"]


_DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "litecoord console work-coordination API",
        "version": "1",
        "description": "Lease, renew and complete shard work items of a backfill (the OpenSearch Migration "
        "Assistant console API), served over one SQLite file or PostgreSQL. Errors are JSON {detail, code}.",
    },
    "security": [{}, {"bearer": []}],
    "x-error-codes": [{"status": status, "code": code, "when": when} for status, code, when in ERROR_CODES],
    "paths": _paths(),
    "components": {
        "schemas": {**_SCHEMAS, **CONSOLE_SCHEMAS},
        "parameters": _PARAMS,
        "responses": {f"E{c}": _json(_ref("Error"), text) for c, text in _ERROR_TEXT.items()},
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
    },
}


def openapi_document() -> dict[str, Any]:
    """A fresh copy of the document (callers may modify it)."""
    return copy.deepcopy(_DOCUMENT)
