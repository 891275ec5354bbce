"""The HTTP client backend: :class:`HttpCoordinator`, the coordinator over the console REST API.

It implements :class:`litecoord.protocol.Coordinator` against a server run
with ``litecoord serve`` (or any host of :func:`litecoord.rest.wsgi.create_app`):
the same methods, the same outcome types, and the same error classes,
rebuilt from the server's ``{"detail", "code", ...}`` bodies with
:func:`~litecoord.errors.error_from_dict`.

Inputs are checked locally with the same checks the embedded backend runs,
so a bad argument raises the same :class:`~litecoord.errors.ValidationError`
without a round trip.

Retries. A request that failed on the way (connection refused, reset,
timed out) is retried up to ``retries`` times when repeating it cannot
change its answer: acquire (the server returns the lease the worker already
holds), the named lease, renew (progress figures are absolute), complete
(idempotent for its holder), split, retry, setup and every read. Calls
whose answer would change on a repeat (create, batch create, release,
fail, cleanup, delete) are retried only when the request provably never
reached the server: the connection was refused, or a kept-alive connection
turned out to be closed before the request went out. If the server stays
unreachable, :class:`CoordinatorUnreachableError` is raised.

Several servers. ``base_url`` may name several servers over one database
(``litecoord serve --db postgresql://...`` processes are interchangeable):
a list, or one string of comma-separated URLs. A request that fails on the
way is resent to the next URL under the same rule as above (any call safe
to repeat; any call that provably never left), each URL getting ``retries``
resends, so a dead server costs one failed connection, not an error. The URL
that last answered is remembered (shared by :meth:`bind` copies) and tried
first. Failover never turns an unsafe call into a repeated one: a create
whose request may have reached a server that then died is not resent
anywhere, exactly as with one URL.

Bounds. Every wait (connect, send, each read) times out after ``timeout``
seconds, or sooner when the caller set a bound
(:func:`litecoord.backends.bounds.call_bound`: the runner passes what is left
of the lease a call protects). Failover stops when the bound runs out, and
while other servers remain to be tried one that hangs gets only half of what
is left. A call that runs out raises :class:`CoordinatorUnreachableError`.

Connections are kept alive, one per thread (and re-opened after a fork).
Only the standard library is used.

Layout: the transports are in :mod:`litecoord.backends.http_transport`, the
request layer (failover, retries, bounds, errors) in
:mod:`litecoord.backends.http_client`, the console's calls in
:mod:`litecoord.backends.http_console`; this module holds the coordinator's
methods and stays the public entry point (it re-exports the transports).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from .. import validation as check
from ..coverage import CoverageReport
from ..errors import CoordinatorUnreachableError, ValidationError, WorkItemExistsError
from ..protocol import DEFAULT_LEASE_DURATION
from ..types import (
    KEEP,
    AcquisitionOutcome,
    AlreadyCompleted,
    AttentionKind,
    IndexProgress,
    Keep,
    LeaseOutcome,
    NoAvailableWorkToBeDone,
    ProgressSample,
    SessionInfo,
    WorkItem,
    WorkItemAndDuration,
    WorkItemPage,
    WorkItemStatus,
    WorkQueueStatus,
    json_seconds,
)
from .common import default_worker_id, session_not_found
from .http_client import HttpClient
from .http_console import HttpConsoleCalls
from .http_transport import HttpTransport, RequestNotSentError, Transport, WsgiTransport, split_urls
from .item_search import item_query

__all__ = [
    "HttpCoordinator",
    "CoordinatorUnreachableError",
    "RequestNotSentError",
    "Transport",
    "HttpTransport",
    "WsgiTransport",
    "split_urls",
]

#: Ids that, alone in the path after ``work-items/``, would name a fixed route (see :mod:`litecoord.rest.wsgi`).
_RESERVED = frozenset({"acquire", "batch", "status", "cleanup-expired"})


def _segment(work_item_id: str) -> str:
    """The id as one path segment: every reserved character escaped, ``/`` included."""
    if work_item_id in _RESERVED or work_item_id in (".", ".."):
        # Escape the first character so the server sees data, not a fixed route or a dot segment.
        head = f"%{ord(work_item_id[0]):02X}"
        return head + quote(work_item_id[1:], safe="")
    return quote(work_item_id, safe="")


class HttpCoordinator(HttpClient, HttpConsoleCalls):
    """Work coordination for one session through a litecoord (console API) server.

    ``HttpCoordinator("http://127.0.0.1:8000", session="s1", worker_id="w1")``;
    ``HttpCoordinator("http://a:8000,http://b:8000", ...)`` (or a list) for
    several interchangeable servers over one database, with failover.
    ``token`` is sent as ``Authorization: Bearer``. ``transport`` replaces the
    network (e.g. ``WsgiTransport(create_app(path, clock=clock))``; a list,
    one per URL, with several URLs).
    """

    def __init__(
        self,
        base_url: str | Sequence[str],
        session: str = "default",
        worker_id: str | None = None,
        *,
        token: str | None = None,
        timeout: float = 30.0,
        retries: int = 3,
        transport: Transport | Sequence[Transport] | None = None,
    ) -> None:
        self.session = check.session_name(session)
        self._worker_id = None if worker_id is None else check.worker_id(worker_id)
        # The servers, the token and the retry budget: the request layer's (http_client.HttpClient).
        super().__init__(base_url, token=token, timeout=timeout, retries=retries, transport=transport)

    # -- identity ------------------------------------------------------------------

    @property
    def worker_id(self) -> str:
        return self._worker_id or default_worker_id()

    def bind(self, session: str | None = None, worker_id: str | None = None) -> HttpCoordinator:
        """A coordinator for ``session``/``worker_id`` sharing this one's servers and transports."""
        other = HttpCoordinator(
            self.base_urls,
            session=self.session if session is None else session,
            worker_id=self._worker_id if worker_id is None else worker_id,
            token=self.token,
            timeout=self.timeout,
            retries=self.retries,
            transport=self._servers.transports,
        )
        other._servers = self._servers  # one memory of which server answers
        return other

    def __repr__(self) -> str:
        urls = ",".join(self.base_urls)
        return f"HttpCoordinator({urls!r}, session={self.session!r}, worker_id={self.worker_id!r})"

    def __enter__(self) -> HttpCoordinator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing --------------------------------------------------------------------

    def _items_path(self, *parts: str) -> str:
        path = f"/sessions/{quote(self.session, safe='')}/backfill/work-items/"
        return path + "/".join(parts)

    def _item_path(self, work_item_id: str, action: str | None = None) -> str:
        segment = _segment(check.work_item_id(work_item_id))
        return self._items_path(segment, action) if action else self._items_path(segment)


    @staticmethod
    def _seconds(duration: timedelta | float) -> int | float:
        return json_seconds(check.duration(duration))

    # -- lifecycle -------------------------------------------------------------------

    def setup(
        self,
        *,
        lease_mode: str | None = None,
        acquire_order: str | None = None,
        max_attempts: int | None = None,
        retry_delay: timedelta | float | None = None,
        max_retry_delay: timedelta | float | None = None,
        split_min_documents: int | None | Keep = KEEP,
    ) -> None:
        settings: dict[str, Any] = {
            "lease_mode": lease_mode,
            "acquire_order": acquire_order,
            "max_attempts": max_attempts,
        }
        for name, value in (("retry_delay", retry_delay), ("max_retry_delay", max_retry_delay)):
            if value is not None:  # checked here, so the error names the argument as the SQLite backend does
                settings[f"{name}_seconds"] = json_seconds(check.delay(value, name))
        body = {k: v for k, v in settings.items() if v is not None}
        if split_min_documents is not KEEP:  # sent even as null: that turns split requests off
            body["split_min_documents"] = check.count("split_min_documents", split_min_documents)
        self._call("PUT", f"/sessions/{quote(self.session, safe='')}", body=body)


    # -- creating work -------------------------------------------------------------------

    def create_unassigned_work_item(self, work_item_id: str) -> bool:
        return self._create({"work_item_id": work_item_id})

    def create_work_item_with_metadata(
        self,
        work_item_id: str,
        index_name: str | None,
        shard_number: int | None,
        document_count: int | None,
        total_size_bytes: int | None,
    ) -> bool:
        return self._create(
            {
                "work_item_id": work_item_id,
                "index_name": index_name,
                "shard_number": shard_number,
                "document_count": document_count,
                "total_size_bytes": total_size_bytes,
            }
        )

    def _create(self, spec: dict[str, Any]) -> bool:
        spec = check.item_spec(spec)
        try:
            self._call("POST", self._items_path(), ok=201, body=spec, idempotent=False)
        except WorkItemExistsError:
            return False
        return True

    def create_work_items(self, items: Iterable[Mapping[str, Any]]) -> list[WorkItem]:
        if isinstance(items, (str, bytes, Mapping)):
            raise ValidationError("items", "must be a list of work item objects")
        specs = [check.item_spec(item, f"items[{i}]") for i, item in enumerate(items)]
        if not specs:
            return []
        data = self._call("POST", self._items_path("batch"), ok=201, body=specs, idempotent=False)
        return [WorkItem.from_dict(d) for d in data]

    # -- leasing ---------------------------------------------------------------------------

    def acquire_next_work_item(self, lease_duration: timedelta = DEFAULT_LEASE_DURATION) -> AcquisitionOutcome:
        query = {"worker_id": self.worker_id, "lease_duration_seconds": self._seconds(lease_duration)}
        status, data = self._request("GET", self._items_path("acquire"), query=query)
        if status == 200:
            return WorkItemAndDuration.from_dict(data)
        if status == 404 and isinstance(data, dict) and data.get("code") == "no_available_work":
            return NoAvailableWorkToBeDone.from_dict(data)
        raise self._error(status, data)

    def create_or_update_lease_for_work_item(
        self, work_item_id: str, lease_duration: timedelta = DEFAULT_LEASE_DURATION
    ) -> LeaseOutcome:
        path = self._item_path(work_item_id, "acquire")
        body = {"worker_id": self.worker_id, "lease_duration_seconds": self._seconds(lease_duration)}
        data = self._call("POST", path, body=body)
        if data.get("already_completed"):
            return AlreadyCompleted(WorkItem.from_dict(data["work_item"]))
        return WorkItemAndDuration.from_dict(data)

    def update_progress_and_renew_lease(
        self,
        work_item_id: str,
        documents_processed: int | None = None,
        bytes_processed: int | None = None,
        *,
        lease_duration: timedelta | None = None,
        lease_epoch: int | None = None,
    ) -> WorkItem:
        # Checks run in the embedded backend's order, so the same bad call names the same field.
        path = self._item_path(work_item_id, "lease")
        body = self._holder_body(lease_epoch)
        progress = self._progress_body(documents_processed, bytes_processed)
        if progress:
            body["progress"] = progress
        if lease_duration is not None:
            body["lease_duration_seconds"] = self._seconds(lease_duration)
        return WorkItem.from_dict(self._call("PUT", path, body=body))

    def _holder_body(self, lease_epoch: int | None) -> dict[str, Any]:
        body: dict[str, Any] = {"worker_id": self.worker_id}
        if check.lease_epoch(lease_epoch) is not None:
            body["lease_epoch"] = lease_epoch
        return body

    @staticmethod
    def _progress_body(documents: int | None, size: int | None) -> dict[str, int]:
        """The ``progress`` object of a renewal or completion: only the figures given."""
        progress = {
            "documents_processed": check.count("documents_processed", documents),
            "bytes_processed": check.count("bytes_processed", size),
        }
        return {k: v for k, v in progress.items() if v is not None}

    def complete_work_item(
        self,
        work_item_id: str,
        *,
        lease_epoch: int | None = None,
        documents_processed: int | None = None,
        bytes_processed: int | None = None,
    ) -> WorkItem:
        path = self._item_path(work_item_id, "complete")
        body: Any = self._holder_body(lease_epoch)
        progress = self._progress_body(documents_processed, bytes_processed)
        if progress:
            body["progress"] = progress
        elif lease_epoch is None:
            body = self.worker_id  # what the Java client sends: the bare worker id
        return WorkItem.from_dict(self._call("PUT", path, body=body))

    def complete_and_acquire_next(
        self,
        work_item_id: str,
        lease_duration: timedelta = DEFAULT_LEASE_DURATION,
        *,
        lease_epoch: int | None = None,
        documents_processed: int | None = None,
        bytes_processed: int | None = None,
    ) -> tuple[WorkItem, AcquisitionOutcome]:
        path = self._item_path(work_item_id, "complete-and-acquire")
        body = self._holder_body(lease_epoch)
        progress = self._progress_body(documents_processed, bytes_processed)
        if progress:
            body["progress"] = progress
        body["lease_duration_seconds"] = self._seconds(lease_duration)
        # Safe to resend: completing again is a no-op and acquire returns the held lease.
        data = self._call("POST", path, body=body)
        nxt = data["next"]
        outcome: AcquisitionOutcome
        if "work_item" in nxt:
            outcome = WorkItemAndDuration.from_dict(nxt)
        else:
            outcome = NoAvailableWorkToBeDone.from_dict(nxt)
        return WorkItem.from_dict(data["completed"]), outcome

    def release_work_item(self, work_item_id: str, *, lease_epoch: int | None = None) -> bool:
        path = self._item_path(work_item_id, "release")
        data = self._call("POST", path, body=self._holder_body(lease_epoch), idempotent=False)
        return bool(data["released"])

    def fail_work_item(self, work_item_id: str, error: str, *, lease_epoch: int | None = None) -> WorkItem:
        path = self._item_path(work_item_id, "fail")
        body = self._holder_body(lease_epoch)
        body["error"] = check.error_text(error)
        return WorkItem.from_dict(self._call("POST", path, body=body, idempotent=False))

    def retry_work_item(self, work_item_id: str) -> WorkItem:
        return WorkItem.from_dict(self._call("POST", self._item_path(work_item_id, "retry")))

    def create_successor_work_items_and_mark_complete(
        self,
        work_item_id: str,
        successor_work_item_ids: Sequence[str],
        *,
        lease_epoch: int | None = None,
    ) -> WorkItem:
        path = self._item_path(work_item_id, "successors")
        body = self._holder_body(lease_epoch)
        if isinstance(successor_work_item_ids, (str, bytes)) or not isinstance(successor_work_item_ids, Sequence):
            raise ValidationError("successor_work_item_ids", "must be a list of work item ids")
        for i, name in enumerate(successor_work_item_ids):
            check.text(f"successor_work_item_ids[{i}]", name, check.MAX_WORK_ITEM_ID_LENGTH, allow_comma=False)
        body["successor_work_item_ids"] = list(successor_work_item_ids)
        return WorkItem.from_dict(self._call("POST", path, body=body))

    def split_work_item(
        self, work_item_id: str, at: int, *, lease_epoch: int | None = None
    ) -> tuple[WorkItem, WorkItem]:
        path = self._item_path(work_item_id, "split")
        body = self._holder_body(lease_epoch)
        body["at"] = check.count("at", at, optional=False)
        # Repeating the same split returns the same pair, so a retried request is harmless.
        data = self._call("POST", path, body=body)
        return WorkItem.from_dict(data["kept"]), WorkItem.from_dict(data["new"])

    def verify_coverage(self) -> CoverageReport:
        return CoverageReport.from_dict(self._call("GET", self._backfill_path("coverage")))

    # -- reading -----------------------------------------------------------------------

    def get_work_item(self, work_item_id: str) -> WorkItem:
        return WorkItem.from_dict(self._call("GET", self._item_path(work_item_id)))

    def list_work_items(self, status: WorkItemStatus | str | None = None) -> list[WorkItem]:
        wanted = None if status is None else check.choice("status", status, WorkItemStatus).value
        data = self._call("GET", self._items_path(), query={"status": wanted})
        return [WorkItem.from_dict(d) for d in data]

    def num_work_items_not_yet_complete(self) -> int:
        summary = self.status()
        return summary.pending_work_items + summary.assigned_work_items

    def work_items_not_yet_complete(self) -> bool:
        return self.num_work_items_not_yet_complete() > 0

    def status(self) -> WorkQueueStatus:
        data = self._call("GET", self._items_path("status"))
        # The server answers 200 for a session nothing created yet (the console's Java client
        # needs that) and says so in session_exists: a typo stays an error, as on the databases.
        if data.get("session_exists") is False:
            raise session_not_found(self.session)
        return WorkQueueStatus.from_dict(data)

    def list_sessions(self) -> list[SessionInfo]:
        return [SessionInfo.from_dict(d) for d in self._call("GET", "/sessions/")]

    # -- monitoring --------------------------------------------------------------------

    def _backfill_path(self, name: str) -> str:
        return f"/sessions/{quote(self.session, safe='')}/backfill/{name}"

    def index_progress(self) -> list[IndexProgress]:
        return [IndexProgress.from_dict(d) for d in self._call("GET", self._backfill_path("indexes"))]

    def progress_samples(self) -> list[ProgressSample]:
        return [ProgressSample.from_dict(d) for d in self._call("GET", self._backfill_path("samples"))]

    def list_attention_items(
        self, kind: AttentionKind | str, *, limit: int = 50, after: str | None = None
    ) -> WorkItemPage:
        query = {"kind": check.choice("kind", kind, AttentionKind).value, "limit": str(check.page_limit(limit))}
        if after is not None:
            query["after"] = after
        return WorkItemPage.from_dict(self._call("GET", self._backfill_path("attention"), query=query))

    def list_work_items_page(
        self,
        *,
        status: WorkItemStatus | str | None = None,
        index_name: str | None = None,
        worker_id: str | None = None,
        id_contains: str | None = None,
        sort: str = "created",
        descending: bool = False,
        limit: int = 50,
        after: str | None = None,
    ) -> WorkItemPage:
        q = item_query(
            status=status, index_name=index_name, worker_id=worker_id, id_contains=id_contains,
            sort=sort, descending=descending, limit=limit, after=after,
        )  # fmt: skip
        query = {"sort": q.sort, "limit": str(q.limit)}
        if q.descending:
            query["descending"] = "true"
        if q.status is not None:
            query["status"] = q.status.value
        for name in ("index_name", "worker_id", "id_contains"):
            if getattr(q, name) is not None:
                query[name] = getattr(q, name)
        if after is not None:
            query["after"] = after
        return WorkItemPage.from_dict(self._call("GET", self._backfill_path("items"), query=query))

    # -- housekeeping ------------------------------------------------------------------

    def cleanup_expired(self) -> int:
        data = self._call("POST", self._items_path("cleanup-expired"), idempotent=False)
        if data.get("session_exists") is False:  # 200 for the Java client; an error here, as on the databases
            raise session_not_found(self.session)
        return int(data["cleaned"])

    def delete_session(self) -> int:
        return int(self._call("DELETE", self._items_path(), idempotent=False)["deleted"])
