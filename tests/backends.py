"""The backends the conformance suite runs against.

Each factory is a context manager taking ``(db_path, clock)`` and yielding
``make(worker_id=..., session=...) -> Coordinator``. Every coordinator a
``make`` returns shares one SQLite file and one clock, so tests can play
several workers against one store and move time for all of them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from litecoord import SqliteCoordinator

Make = Callable[..., Any]


@contextlib.contextmanager
def sqlite_backend(db_path: Path, clock: Any) -> Iterator[Make]:
    made: list[SqliteCoordinator] = []

    def make(worker_id: str = "worker-1", session: str = "session-1") -> SqliteCoordinator:
        coordinator = SqliteCoordinator(db_path, session=session, worker_id=worker_id, clock=clock)
        made.append(coordinator)
        return coordinator

    yield make
    for coordinator in made:
        coordinator.close()


FACTORIES: dict[str, Callable[[Path, Any], contextlib.AbstractContextManager[Make]]] = {
    "sqlite": sqlite_backend,
}
