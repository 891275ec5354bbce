"""The one exception tree of litecoord.

Every error a coordinator raises is a :class:`LitecoordError`. Each class
carries a stable machine-readable ``code`` and the HTTP ``http_status`` it
maps to, so that the WSGI layer turns errors into responses in one place and
the HTTP client backend turns responses back into the very same classes:
both backends raise identical errors.

=========================  ======  =====================  ==============================
class                      status  code                   raised when
=========================  ======  =====================  ==============================
LitecoordError             500     ``error``              base class; never raised bare
ValidationError            422     ``validation_error``   bad input; nothing was written
AuthenticationError        401     ``unauthorized``       missing or wrong bearer token
WorkItemNotFoundError      404     ``work_item_not_found`` the item id is unknown
SessionNotFoundError       404     ``session_not_found``  the session does not exist (a read,
                                                          or an operation on existing items,
                                                          named a session nothing created)
WorkItemExistsError        409     ``work_item_exists``   creating an id that exists (REST)
LeaseConflictError         409     ``lease_conflict``     another worker holds the lease,
                                                          the caller is not the holder, or
                                                          the lease epoch is stale
SuccessorConflictError     409     ``successor_conflict`` the item already lists another
                                                          set of successors
LeaseExpiredError          410     ``lease_expired``      the caller's lease has lapsed
DatabaseBusyError          503     ``database_busy``      the file stayed locked past the
                                                          busy deadline
SessionNotEmptyError       409     ``session_not_empty``  an import would overwrite a
                                                          session that holds items
CoordinatorUnreachableError 503    ``coordinator_unreachable`` (HTTP client only) the server
                                                          could not be reached or did not
                                                          answer as the API does
DatabaseUnavailableError   503     ``database_unavailable`` (PostgreSQL) the database stayed
                                                          unreachable, or the connection was
                                                          lost while a call that is not safe
                                                          to repeat was committing
DatabaseRefusedError       503     ``database_refused``   (PostgreSQL) the database refused
                                                          for a reason waiting will not fix:
                                                          authentication failed, no such
                                                          database or role, or a statement
                                                          the role may not run (read-only)
SchemaVersionError         500     ``schema_version``     (PostgreSQL) the database holds a
                                                          newer schema, or an older one that
                                                          setup() has not migrated yet, or
                                                          an unreadable version
NotALitecoordFileError     500     ``not_a_litecoord_file`` the path is no litecoord file:
                                                          missing (on a read), a directory,
                                                          not SQLite, empty (on a read), or
                                                          another application's database;
                                                          or (PostgreSQL) a database without
                                                          litecoord's schema on a read, or
                                                          with another application's tables;
                                                          nothing was written to it
LostWritesError            500     ``lost_writes``        the file holds fewer commits than
                                                          its lock file recorded: its WAL
                                                          was deleted or replaced
=========================  ======  =====================  ==============================

Driver errors (``sqlite3``/``peewee``/``psycopg`` ``OperationalError``) are
translated at the edge of each database backend; callers never see them.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "LitecoordError",
    "ValidationError",
    "AuthenticationError",
    "WorkItemNotFoundError",
    "SessionNotFoundError",
    "WorkItemExistsError",
    "LeaseConflictError",
    "SuccessorConflictError",
    "LeaseExpiredError",
    "DatabaseBusyError",
    "SessionNotEmptyError",
    "CoordinatorUnreachableError",
    "DatabaseUnavailableError",
    "DatabaseRefusedError",
    "SchemaVersionError",
    "NotALitecoordFileError",
    "LostWritesError",
    "error_class_for_code",
    "error_from_dict",
]


class LitecoordError(Exception):
    """Base class of every litecoord error."""

    code: str = "error"
    http_status: int = 500

    def __init__(self, detail: str, **context: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        #: Extra machine-readable facts (work_item_id, field, holder...).
        self.context = context

    def to_dict(self) -> dict[str, Any]:
        """The JSON error body: ``{"detail": ..., "code": ..., **context}``."""
        body: dict[str, Any] = {"detail": self.detail, "code": self.code}
        for key, value in self.context.items():
            if value is not None:
                body.setdefault(key, value)
        return body


class ValidationError(LitecoordError, ValueError):
    """Bad input. ``field`` names what was wrong; nothing was written."""

    code = "validation_error"
    http_status = 422

    def __init__(self, field: str, detail: str, **context: Any) -> None:
        super().__init__(f"{field}: {detail}", field=field, **context)
        self.field = field


class AuthenticationError(LitecoordError):
    """The server requires a bearer token and the request had a wrong one or none."""

    code = "unauthorized"
    http_status = 401


class WorkItemNotFoundError(LitecoordError, LookupError):
    """No work item with that id exists in the session."""

    code = "work_item_not_found"
    http_status = 404


class SessionNotFoundError(LitecoordError, LookupError):
    """The session does not exist: nothing ever created an item in it or set it up.

    Raised by every operation that only reads or works on existing items, so
    that a mistyped session name is an error rather than an empty queue that
    reads like a finished backfill. Operations that create items (create,
    batch, the named lease, setup) create the session instead.
    """

    code = "session_not_found"
    http_status = 404


class WorkItemExistsError(LitecoordError):
    """A single-item create named an id that already exists."""

    code = "work_item_exists"
    http_status = 409


class LeaseConflictError(LitecoordError):
    """The caller does not hold the lease it acts on.

    Another worker holds the item, the item is not leased at all, or the
    lease epoch the caller presented is not the item's current one.
    """

    code = "lease_conflict"
    http_status = 409


class SuccessorConflictError(LitecoordError):
    """The item already records a different set of successor items."""

    code = "successor_conflict"
    http_status = 409


class LeaseExpiredError(LitecoordError):
    """The caller held the lease, but it lapsed before this call."""

    code = "lease_expired"
    http_status = 410


class DatabaseBusyError(LitecoordError):
    """The SQLite file stayed locked longer than the coordinator's busy deadline."""

    code = "database_busy"
    http_status = 503


class SessionNotEmptyError(LitecoordError):
    """An import would overwrite a session that already holds items (and was not told to replace them)."""

    code = "session_not_empty"
    http_status = 409


class CoordinatorUnreachableError(LitecoordError, ConnectionError):
    """The server could not be reached, or answered with something that is not the API.

    A client-side error: no server sends it. It is a ``ConnectionError`` too,
    so ``except OSError`` handlers keep working.
    """

    code = "coordinator_unreachable"
    http_status = 503


class DatabaseUnavailableError(LitecoordError, ConnectionError):
    """The PostgreSQL database could not be reached (for as long as the
    coordinator's ``connect_timeout``), or the connection broke while a call
    that is not safe to repeat was committing, so whether it took effect is
    unknown. A ``ConnectionError`` too, so ``except OSError`` handlers keep working.
    """

    code = "database_unavailable"
    http_status = 503


class DatabaseRefusedError(LitecoordError):
    """The PostgreSQL database refused litecoord for a reason waiting will not fix.

    At connection: authentication failed, or the database or role does not
    exist (or may not log in). On a statement: the role may not run it
    (``permission denied``, a read-only role or transaction). Unlike
    :class:`DatabaseUnavailableError` it is not retried and not a
    ``ConnectionError``: a worker stops at once with the reason.
    """

    code = "database_refused"
    http_status = 503


class SchemaVersionError(LitecoordError):
    """The database's litecoord schema is not this version's: newer (upgrade
    litecoord) or older and not yet migrated (run ``setup()``)."""

    code = "schema_version"
    http_status = 500


class NotALitecoordFileError(LitecoordError):
    """The path does not hold a litecoord file, and litecoord will not make it one.

    Missing (for anything that only reads), a directory, not an SQLite
    database, an empty file (for a read), or another application's SQLite
    database. ``path`` names the file; nothing was written to it. On
    PostgreSQL: a database (its first ``search_path`` schema) without
    litecoord's schema, for anything that does not create items, or holding
    another application's tables of litecoord's names.
    """

    code = "not_a_litecoord_file"
    http_status = 500


class LostWritesError(LitecoordError):
    """The file no longer holds commits that were made to it.

    Every commit counts itself in the database and in ``<db>.lock``; a file
    whose own count is behind the lock file's lost its latest commits: its
    ``-wal`` file was deleted or replaced (or copied without it). Nothing is
    read or written until an operator looks (see the README's durability notes).
    """

    code = "lost_writes"
    http_status = 500


_BY_CODE: dict[str, type[LitecoordError]] = {
    cls.code: cls
    for cls in (
        LitecoordError,
        ValidationError,
        AuthenticationError,
        WorkItemNotFoundError,
        SessionNotFoundError,
        WorkItemExistsError,
        LeaseConflictError,
        SuccessorConflictError,
        LeaseExpiredError,
        DatabaseBusyError,
        SessionNotEmptyError,
        DatabaseUnavailableError,
        DatabaseRefusedError,
        SchemaVersionError,
        NotALitecoordFileError,
        LostWritesError,
    )
}


def error_class_for_code(code: str | None) -> type[LitecoordError]:
    """The error class for a wire ``code``; unknown codes map to the base class."""
    return _BY_CODE.get(code or "", LitecoordError)


def error_from_dict(body: dict[str, Any], status: int | None = None) -> LitecoordError:
    """Rebuild the error a server described with :meth:`LitecoordError.to_dict`.

    The HTTP client uses this so that it raises the same class, with the same
    ``detail``, ``code`` and context, as the embedded backend would have.
    """
    cls = error_class_for_code(body.get("code"))
    context = {k: v for k, v in body.items() if k not in ("detail", "code")}
    err = cls.__new__(cls)
    LitecoordError.__init__(err, str(body.get("detail", "")), **context)
    if isinstance(err, ValidationError):
        err.field = str(context.get("field", ""))
    if cls is LitecoordError:
        # A code this version does not know (a newer server): keep what it said.
        err.code = str(body.get("code") or LitecoordError.code)
        if isinstance(status, int):
            err.http_status = status
    return err
