"""A pytest plugin and helpers for testing code that uses litecoord.

Installed with litecoord and registered through the ``pytest11`` entry point,
so after ``pip install litecoord`` these fixtures are available in every test
with nothing in ``conftest.py``. Each is function-scoped and costs nothing
unless a test names it:

=============================  ===========================================================
fixture                        what the test gets
=============================  ===========================================================
``litecoord_clock``            a :class:`~litecoord.FakeClock` at 2025-01-19T20:30:00Z
``litecoord_db_path``          a path for a fresh coordination file in ``tmp_path``
``litecoord_coordinator``      a :class:`~litecoord.SqliteCoordinator` on that file and
                               clock: session ``test-session``, worker ``worker-1``
                               (the file and session are created by its first call)
``litecoord_workers``          a :class:`Workers` factory: more workers of the same
                               session, file and clock (``a, b = litecoord_workers(2)``)
``litecoord_server``           a running REST server (waitress on a free loopback port)
                               over the same file and clock, with ``/_test/clock``
``litecoord_base_url``         its base URL, ``http://127.0.0.1:PORT``
``litecoord_http_coordinator`` an :class:`~litecoord.HttpCoordinator` for it: session
                               ``test-session``, worker ``worker-1``
=============================  ===========================================================

Two helpers make the tests read like the scenario:
:func:`advance_past_lease` moves a clock just past an item's current lease,
and :func:`assert_session_state` checks a session's counts and item statuses
in one call, with a message that shows the whole session when it fails.

To drive time with freezegun instead of a fake clock, override
``litecoord_clock`` to return ``None`` (the coordinators then read
``time.time()``, which freezegun controls).

This module is imported by every pytest run in an environment where
litecoord is installed, so its top level imports nothing but pytest; the
coordinator, the server and waitress are imported by the fixtures that use
them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .backends.http import HttpCoordinator
    from .backends.sqlite.coordinator import SqliteCoordinator
    from .protocol import Coordinator
    from .rest.server import Server
    from .types import FakeClock

__all__ = [
    "SESSION",
    "FIRST_WORKER",
    "START",
    "Workers",
    "advance_past_lease",
    "assert_session_state",
]

#: The session every fixture's coordinator is bound to.
SESSION = "test-session"
#: The worker id of ``litecoord_coordinator`` and ``litecoord_http_coordinator``.
FIRST_WORKER = "worker-1"
#: Where ``litecoord_clock`` starts (the time of the seed's examples).
START = datetime(2025, 1, 19, 20, 30, tzinfo=timezone.utc)
#: Fixture files are thrown away after the test: a power loss cannot matter, so skip the fsyncs.
DURABILITY = "normal"


class Workers:
    """Makes coordinators for the workers of one session over one file and one clock.

    ``workers(3)`` returns three new workers (``worker-1``, ``worker-2``, ...,
    skipping ids already made); ``workers.worker("name")`` one with that id.
    Every coordinator made is closed when the test ends.
    """

    def __init__(self, path: Path, clock: Any, session: str = SESSION) -> None:
        self.path = path
        self.clock = clock
        self.session = session
        self._made: dict[str, SqliteCoordinator] = {}
        self._next = 1

    def worker(self, worker_id: str | None = None) -> SqliteCoordinator:
        """The coordinator of ``worker_id`` (the next free ``worker-N`` when None); the same one if asked again."""
        from .backends.sqlite.coordinator import SqliteCoordinator

        if worker_id is None:
            while f"worker-{self._next}" in self._made:
                self._next += 1
            worker_id = f"worker-{self._next}"
        made = self._made.get(worker_id)
        if made is None:
            made = SqliteCoordinator(
                self.path, session=self.session, worker_id=worker_id, clock=self.clock, durability=DURABILITY
            )
            self._made[worker_id] = made
        return made

    def __call__(self, count: int = 1) -> list[SqliteCoordinator]:
        """``count`` new workers, each with its own id."""
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"count must be a positive integer (got {count!r})")
        return [self.worker() for _ in range(count)]

    def close(self) -> None:
        for coordinator in self._made.values():
            coordinator.close()
        self._made.clear()


# -- fixtures --------------------------------------------------------------------------


@pytest.fixture
def litecoord_clock() -> FakeClock:
    """A fake clock at 2025-01-19T20:30:00Z that moves only when the test moves it.

    ``litecoord_clock.advance(minutes=6)``, ``.set(datetime)``, or
    :func:`advance_past_lease`. Every other fixture reads this clock.
    """
    from .types import FakeClock

    return FakeClock(START)


@pytest.fixture
def litecoord_db_path(tmp_path: Path) -> Path:
    """Where the fixtures' coordination file lives (created by the first coordinator)."""
    return tmp_path / "litecoord.db"


@pytest.fixture
def litecoord_workers(litecoord_db_path: Path, litecoord_clock: FakeClock) -> Iterator[Workers]:
    """A :class:`Workers` factory: ``a, b = litecoord_workers(2)``; ``litecoord_workers.worker("w-7")``."""
    workers = Workers(litecoord_db_path, litecoord_clock)
    try:
        yield workers
    finally:
        workers.close()


@pytest.fixture
def litecoord_coordinator(litecoord_workers: Workers) -> SqliteCoordinator:
    """A :class:`~litecoord.SqliteCoordinator` on a fresh file and ``litecoord_clock``.

    Session ``test-session``, worker ``worker-1``; ``litecoord_workers``
    makes the other workers of the same session.
    """
    return litecoord_workers.worker(FIRST_WORKER)


@pytest.fixture
def litecoord_server(litecoord_db_path: Path, litecoord_clock: FakeClock) -> Iterator[Server]:
    """A running REST server (waitress, a free port on 127.0.0.1) over the fixtures' file and clock.

    It serves ``/_test/clock`` too, moving the same ``litecoord_clock``, so a
    client under test can expire leases over HTTP. Needs waitress
    (``pip install 'litecoord[server]'``).
    """
    from .rest.server import make_server

    # Without a fake clock (freezegun's tests override litecoord_clock with None) the server
    # reads time.time() like the coordinators, and there is no clock for /_test/clock to move.
    server = make_server(
        litecoord_db_path,
        "127.0.0.1",
        0,
        clock=litecoord_clock,
        durability=DURABILITY,
        threads=4,
        test_clock=litecoord_clock is not None,
    ).start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def litecoord_base_url(litecoord_server: Server) -> str:
    """The server's base URL, ``http://127.0.0.1:PORT`` (append ``/sessions/test-session/...``)."""
    return litecoord_server.url


@pytest.fixture
def litecoord_http_coordinator(litecoord_base_url: str) -> Iterator[HttpCoordinator]:
    """An :class:`~litecoord.HttpCoordinator` for the server: session ``test-session``, worker ``worker-1``."""
    from .backends.http import HttpCoordinator

    coordinator = HttpCoordinator(litecoord_base_url, session=SESSION, worker_id=FIRST_WORKER, timeout=30)
    try:
        yield coordinator
    finally:
        coordinator.close()


# -- helpers ------------------------------------------------------------------------------


def advance_past_lease(
    clock: Any, coordinator: Coordinator, work_item_id: str, *, by: timedelta = timedelta(seconds=1)
) -> datetime:
    """Move ``clock`` to ``by`` (one second) past the current lease of ``work_item_id``; return the new time.

    ``clock`` is a :class:`~litecoord.FakeClock` or freezegun's frozen-time
    object (what ``freeze_time(...)`` yields). A clock already past the
    lease does not move back. Raises ``AssertionError`` when the item holds
    no lease, and :class:`~litecoord.WorkItemNotFoundError` when it does not
    exist.
    """
    __tracebackhide__ = True
    item = coordinator.get_work_item(work_item_id)
    if item.lease_expiry is None:
        raise AssertionError(f"work item {work_item_id!r} holds no lease (status {item.status.value})")
    target = item.lease_expiry + by
    now = _now(clock)
    if now >= target:
        return now
    if hasattr(clock, "set"):  # litecoord.FakeClock
        clock.set(target)
    elif hasattr(clock, "move_to"):  # freezegun's FrozenDateTimeFactory
        clock.move_to(target)
    else:
        raise TypeError(f"cannot move {clock!r}: pass a litecoord.FakeClock or what freeze_time() yields")
    return target


def _now(clock: Any) -> datetime:
    from .types import from_micros, to_micros

    now = from_micros(to_micros(clock()))
    assert now is not None
    return now


_COUNTS = ("total", "pending", "assigned", "completed", "failed", "expired_lease")


def assert_session_state(
    coordinator: Coordinator,
    *,
    total: int | None = None,
    pending: int | None = None,
    assigned: int | None = None,
    completed: int | None = None,
    failed: int | None = None,
    expired_lease: int | None = None,
    items: Mapping[str, str] | None = None,
) -> None:
    """Assert the counts of the coordinator's session and the status of some items, in one call.

    Only what is given is checked: ``assert_session_state(coord, pending=1,
    completed=2, items={"idx__0__0": "completed"})``. Counts are those of
    ``status()`` (an item whose lease lapsed counts as pending, and also in
    ``expired_lease``); ``items`` maps work item ids to a status (``pending``,
    ``assigned``, ``completed``, ``failed``), or to ``"assigned to W"`` to
    name the holder too. On failure the message lists every difference and
    every item of the session.
    """
    __tracebackhide__ = True
    status = coordinator.status()
    expected = dict(zip(_COUNTS, (total, pending, assigned, completed, failed, expired_lease), strict=True))
    problems = []
    for name, want in expected.items():
        if want is not None:
            got = getattr(status, f"{name}_work_items")
            if got != want:
                problems.append(f"{name}: expected {want}, got {got}")
    listed = {item.work_item_id: item for item in coordinator.list_work_items()}
    for work_item_id, want_text in (items or {}).items():
        item = listed.get(work_item_id)
        want_status, _, want_holder = str(want_text).partition(" to ")
        if (
            item is None
            or item.status.value != want_status
            or (want_holder and (item.status.value != "assigned" or item.worker_id != want_holder))
        ):
            got_text = "absent" if item is None else _state(item)
            problems.append(f"item {work_item_id!r}: expected {want_text}, got {got_text}")
    if problems:
        lines = [f"session {status.session_name!r} is not in the expected state:", *(f"  {p}" for p in problems)]
        counts = ", ".join(f"{name} {getattr(status, f'{name}_work_items')}" for name in _COUNTS)
        lines.append(f"  (counts: {counts})")
        lines += [f"  {work_item_id}: {_state(item)}" for work_item_id, item in listed.items()]
        raise AssertionError("\n".join(lines))


def _state(item: Any) -> str:
    """``pending``, ``completed``, ``assigned to W`` (a live lease) or ``pending (lease of W lapsed)``."""
    status = item.status.value
    if status == "assigned":
        return f"assigned to {item.worker_id}"
    if status == "pending" and item.worker_id and item.lease_expiry is not None:
        return f"pending (lease of {item.worker_id} lapsed)"
    return status
