"""litecoord: an embedded work coordinator for shard-by-shard backfills over one SQLite file (or PostgreSQL).

It implements the OpenSearch Migration Assistant's Reindex-From-Snapshot work
coordination (leases, expiry, release, successor items) plus the console
extensions (item metadata, progress with each renewal, a status summary).

>>> from litecoord import SqliteCoordinator
>>> coord = SqliteCoordinator("backfill.db", session="migration-session-1", worker_id="worker-001")
"""

from __future__ import annotations

from .backends.http import HttpCoordinator
from .backends.sqlite.coordinator import SqliteCoordinator
from .backends.sqlite.store import Durability
from .config import WorkCoordinationConfig, connect
from .errors import (
    AuthenticationError,
    CoordinatorUnreachableError,
    DatabaseBusyError,
    DatabaseRefusedError,
    DatabaseUnavailableError,
    LeaseConflictError,
    LeaseExpiredError,
    LitecoordError,
    LostWritesError,
    NotALitecoordFileError,
    SchemaVersionError,
    SessionNotFoundError,
    SuccessorConflictError,
    ValidationError,
    WorkItemExistsError,
    WorkItemNotFoundError,
)
from .protocol import DEFAULT_LEASE_DURATION, Coordinator
from .rest.wsgi import create_app
from .types import (
    AcquireOrder,
    AcquisitionOutcome,
    AlreadyCompleted,
    AttentionKind,
    Clock,
    FakeClock,
    IndexProgress,
    LeaseMode,
    LeaseOutcome,
    NoAvailableWorkToBeDone,
    ProgressSample,
    SessionInfo,
    WorkItem,
    WorkItemAndDuration,
    WorkItemPage,
    WorkItemStatus,
    WorkQueueStatus,
)

__version__ = "0.1.0"
"""The package's version (also ``litecoord --version`` and ``GET /health``)."""


def __getattr__(name: str) -> object:
    # The PostgreSQL backend is imported on first use, so SQLite users need no driver.
    if name == "PostgresCoordinator":
        try:
            from .backends.postgres.coordinator import PostgresCoordinator
        except ImportError as exc:
            raise ImportError(
                f"litecoord.PostgresCoordinator needs psycopg 3 ({exc}): pip install 'litecoord[postgres]'"
            ) from exc
        return PostgresCoordinator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AcquireOrder",
    "AcquisitionOutcome",
    "AlreadyCompleted",
    "AttentionKind",
    "AuthenticationError",
    "Clock",
    "Coordinator",
    "CoordinatorUnreachableError",
    "DEFAULT_LEASE_DURATION",
    "DatabaseBusyError",
    "DatabaseUnavailableError",
    "DatabaseRefusedError",
    "Durability",
    "FakeClock",
    "HttpCoordinator",
    "IndexProgress",
    "LeaseConflictError",
    "LeaseExpiredError",
    "LeaseMode",
    "LeaseOutcome",
    "LitecoordError",
    "LostWritesError",
    "NoAvailableWorkToBeDone",
    "NotALitecoordFileError",
    "PostgresCoordinator",
    "ProgressSample",
    "SchemaVersionError",
    "SessionInfo",
    "SessionNotFoundError",
    "SqliteCoordinator",
    "SuccessorConflictError",
    "ValidationError",
    "WorkItem",
    "WorkItemAndDuration",
    "WorkCoordinationConfig",
    "WorkItemExistsError",
    "WorkItemNotFoundError",
    "WorkItemPage",
    "WorkItemStatus",
    "WorkQueueStatus",
    "__version__",
    "connect",
    "create_app",
]
