"""The console's calls over the REST API, mixed into :class:`~litecoord.backends.http.HttpCoordinator`.

History, workers, failure groups, bulk retry and pause, each one request to
the route the server answers it with (see :mod:`litecoord.rest.routes.console`).
"""

from __future__ import annotations

from typing import Any

from .. import validation as check
from ..console import Attempt, FailureGroup, WorkerInfo

__all__ = ["HttpConsoleCalls"]


class HttpConsoleCalls:
    """The console's part of :class:`HttpCoordinator` (its ``_call`` and paths)."""

    def _call(self, method: str, path: str, ok: int = 200, **kwargs: Any) -> Any:
        raise NotImplementedError

    def _item_path(self, work_item_id: str, action: str | None = None) -> str:
        raise NotImplementedError

    def _backfill_path(self, name: str) -> str:
        raise NotImplementedError

    def work_item_history(self, work_item_id: str) -> list[Attempt]:
        data = self._call("GET", self._item_path(check.work_item_id(work_item_id), "history"))
        return [Attempt.from_dict(a) for a in data["attempts"]]

    def list_workers(self) -> list[WorkerInfo]:
        return [WorkerInfo.from_dict(w) for w in self._call("GET", self._backfill_path("workers"))["workers"]]

    def failure_groups(self) -> list[FailureGroup]:
        return [FailureGroup.from_dict(g) for g in self._call("GET", self._backfill_path("failures"))["groups"]]

    def retry_failed_work_items(self, error_pattern: str | None = None) -> list[str]:
        body = {} if error_pattern is None else {"error_pattern": check.error_text(error_pattern)}
        data = self._call("POST", self._backfill_path("failures/retry"), body=body, idempotent=False)
        return list(data["work_item_ids"])

    def pause(self) -> None:
        self._call("POST", self._backfill_path("pause"))

    def resume(self) -> None:
        self._call("POST", self._backfill_path("resume"))
