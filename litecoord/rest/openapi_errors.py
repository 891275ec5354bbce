"""The error answers of the OpenAPI document: every error code, and the shared error responses.

Part of :mod:`litecoord.rest.openapi` (which re-exports ``ERROR_CODES``): one
table of codes serves the ``Error`` schema, the document's ``x-error-codes``
and the docs site's REST reference, so the three cannot disagree.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ERROR_CODES"]

#: Every code an error answer can carry, with its status and when it is sent: the
#: Error schema lists the codes, the document carries the table (``x-error-codes``),
#: and the documentation's REST reference renders it from there.
ERROR_CODES: tuple[tuple[int, str, str], ...] = (
    (400, "malformed_json", "the body is not JSON (or not UTF-8)"),
    (400, "bad_request", "a malformed path, query or `Content-Length`"),
    (401, "unauthorized", "the server has a token and the request did not bring it"),
    (403, "forbidden_host", "a tokenless loopback server got a non-loopback `Host`"),
    (403, "forbidden_origin", "a tokenless loopback server got a non-loopback `Origin`"),
    (
        403,
        "forbidden_cross_site",
        "a tokenless server (loopback, or `--trust-network`) got a request that writes (every method but `GET`, "
        "and `GET …/acquire`) which a browser marked cross-site: `Sec-Fetch-Site` other than `same-origin` or "
        "`none`, or an `Origin` other than the server's own scheme, host and port (`http://localhost:3000` is not "
        "`http://localhost:8000`). Clients that send neither header (curl, the Java client, `HttpCoordinator`) "
        "are never refused",
    ),
    (404, "work_item_not_found", "unknown work item"),
    (
        404,
        "session_not_found",
        "unknown session (every route under a session but those that create items, `GET …/status` and "
        "`POST …/cleanup-expired`)",
    ),
    (404, "no_available_work", "acquire found no work (`reason` says why; see NoAvailableWork)"),
    (404, "not_found", "no such route"),
    (405, "method_not_allowed", "wrong method for the path; the `Allow` header lists the right ones"),
    (409, "work_item_exists", "the id exists"),
    (409, "lease_conflict", "another worker holds the lease, or the lease epoch is stale"),
    (409, "successor_conflict", "other successors are recorded for the item"),
    (410, "lease_expired", "the caller's lease lapsed"),
    (413, "payload_too_large", "body over the size limit (1 MiB by default: `create_app(..., max_body_bytes=)`)"),
    (415, "unsupported_media_type", "a body sent without `Content-Type: application/json`"),
    (422, "validation_error", "an invalid field, named in `field` (`items[3].shard_number`)"),
    (500, "error", "the database failed (`SQLite error on <database>: ...`)"),
    (500, "schema_version", "the PostgreSQL schema is newer than this litecoord, or older and not migrated"),
    (500, "lost_writes", "the WAL vanished after a commit (deleted while in use): what the call did may be lost"),
    (500, "internal_error", "a bug: logged on the server, no details in the answer"),
    (501, "not_implemented", "`/metrics` on a server without prometheus_client"),
    (503, "database_busy", "the file stayed locked past the busy deadline"),
    (503, "database_unavailable", "the database cannot be read (`/health`) or reached"),
    (
        503,
        "database_refused",
        "PostgreSQL refused the server's login or a statement its role may not run (a read-only role: acquire "
        "and every write), which waiting will not fix",
    ),
)

# The description of each error response (components/responses/E<status>).
_ERROR_TEXT = {
    "400": "malformed JSON, path or query",
    "401": "missing or wrong bearer token (when the server has one)",
    "404": "unknown work item (`work_item_not_found`) or unknown session (`session_not_found`)",
    "409": "conflict",
    "410": "the caller's lease expired",
    "403": "a tokenless loopback server got a non-loopback Host or Origin (`forbidden_host`, `forbidden_origin`), "
    "or a tokenless server got a write a browser marked cross-site (`forbidden_cross_site`: Sec-Fetch-Site "
    "other than same-origin or none, or an Origin other than the server's scheme, host and port)",
    "413": "request body over the size limit",
    "415": "a request body that is not sent as Content-Type: application/json",
    "422": "an invalid field; `field` names it",
    "501": "the server lacks an optional dependency (prometheus_client for /metrics)",
    "503": "the database stayed locked past its deadline (`database_busy`), cannot be reached "
    "(`database_unavailable`), or refused litecoord for a reason waiting will not fix: authentication, "
    "a missing database or role, a read-only role (`database_refused`)",
}


def _errors(*codes: str) -> dict[str, Any]:
    return {c: {"$ref": f"#/components/responses/E{c}"} for c in codes}


# What any operation but the public ones (health, the page) may answer: _op adds these itself.
_COMMON = ("400", "401", "403", "413", "415", "422", "503")
# What the calls only a lease's holder may make answer besides.
_HOLDER = ("404", "409", "410")
