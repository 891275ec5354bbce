"""Coordinator calls on a thread of their own, so that a runner's deadlines never wait for one.

A renewal that hangs (a frozen database backend, a stopped server, a
partition) must not keep the runner from killing its command before the
lease could lapse. :class:`CallThread` runs each call on one long-lived
thread (so a backend's per-thread connection is reused from call to call)
under :func:`~litecoord.backends.bounds.call_bound`, and hands back a
:class:`Pending` the runner's loop polls while it keeps watching the command
and the clock. A call the loop stops waiting for is *abandoned*: its thread
is left to finish (the backend's own bound ends it) and never reused, and
the next call starts on a fresh thread with fresh connections, so nothing
waits behind the hung one.

:class:`Outage` paces the retries while the store stays unreachable: pauses
that double up to :data:`OUTAGE_MAX_PAUSE`, one line at first and then one
every :data:`OUTAGE_LOG_EVERY` seconds.
"""

from __future__ import annotations

import queue
import random
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from ..backends.bounds import call_bound
from ..errors import DatabaseBusyError, LeaseConflictError, LeaseExpiredError, LitecoordError, WorkItemNotFoundError

__all__ = ["CallThread", "Pending", "Outage", "OUTAGE_MAX_PAUSE", "OUTAGE_LOG_EVERY"]

T = TypeVar("T")

# How a failed call is read, by the acquire loop (runner.py) and the per-item work
# (item_run.py) alike. Errors that mean the store could not be reached (or stayed
# locked): not the item's fault and not a crash, so the runner waits for the store,
# with backoff.
# The PostgreSQL and HTTP backends' "unreachable" errors are ConnectionErrors.
_UNREACHABLE = (DatabaseBusyError, OSError)
# Errors that mean the caller's lease is gone: another worker may own the item now.
_LEASE_LOST = (LeaseConflictError, LeaseExpiredError, WorkItemNotFoundError)


def _is_unreachable(exc: BaseException) -> bool:
    return isinstance(exc, _UNREACHABLE)


def _is_transient(exc: BaseException) -> bool:
    return _is_unreachable(exc) or type(exc) is LitecoordError


#: While the store is unreachable, pauses double up to this many seconds...
OUTAGE_MAX_PAUSE = 30.0
#: ...and a line says so at most this often.
OUTAGE_LOG_EVERY = 60.0


class Pending(Generic[T]):
    """A call in flight: ``done()`` says whether it returned; ``result()`` returns or raises its outcome."""

    def __init__(self, fn: Callable[[], T], bound: float | None) -> None:
        self._fn = fn
        self._bound = bound
        self._done = threading.Event()
        self._value: Any = None
        self._error: BaseException | None = None

    def _run(self) -> None:
        try:
            with call_bound(self._bound):
                self._value = self._fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller, who decides
            self._error = exc
        finally:
            self._done.set()

    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, seconds: float) -> bool:
        """Wait up to ``seconds`` (real time) for the call to return; whether it has."""
        return self._done.wait(seconds)

    def result(self) -> T:
        """The call's return value, or its exception raised again (only once ``done()``)."""
        assert self._done.is_set(), "result() of a call still in flight"
        if self._error is not None:
            raise self._error
        return self._value


class CallThread:
    """One thread that runs calls one at a time; replaced when a call is abandoned."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._jobs: queue.SimpleQueue[Pending[Any] | None] | None = None
        self._current: Pending[Any] | None = None
        #: How many calls were abandoned in flight (each left a thread behind until its call ends).
        self.abandoned = 0

    def submit(self, fn: Callable[[], T], bound: float | None) -> Pending[T]:
        """Start ``fn()`` with calls bounded to ``bound`` seconds; a call still in flight is abandoned first."""
        if self._current is not None and not self._current.done():
            self.abandon()
        if self._jobs is None:
            jobs: queue.SimpleQueue[Pending[Any] | None] = queue.SimpleQueue()
            threading.Thread(target=self._serve, args=(jobs,), name=self._name, daemon=True).start()
            self._jobs = jobs
        pending = Pending(fn, bound)
        self._current = pending
        self._jobs.put(pending)
        return pending

    def abandon(self) -> None:
        """Stop waiting for the call in flight: its thread ends once the call returns, unused again."""
        if self._jobs is not None:
            self._jobs.put(None)
            self._jobs = None
        if self._current is not None and not self._current.done():
            self.abandoned += 1
        self._current = None

    def close(self) -> None:
        """Let the thread end (after any call in flight)."""
        if self._jobs is not None:
            self._jobs.put(None)
            self._jobs = None
        self._current = None

    @staticmethod
    def _serve(jobs: queue.SimpleQueue[Pending[Any] | None]) -> None:
        while True:
            job = jobs.get()
            if job is None:
                return
            job._run()


class Outage:
    """The store is unreachable: pauses that double (jittered) up to a cap, and a line once in a while."""

    def __init__(self, log: Callable[[str], None], first_pause: float, clock: Callable[[], float]) -> None:
        self._log = log
        self._clock = clock  # how long the outage lasts is told on the runner's clock (tests move it)
        self._first = max(first_pause, 0.001)
        self._pause = self._first
        self.since: float | None = None
        self._logged_at = 0.0
        self._attempts = 0

    def failed(self, what: str, exc: BaseException) -> float:
        """Note one failed attempt at ``what``; the pause before the next."""
        now = self._clock()
        self._attempts += 1
        if self.since is None:
            self.since = self._logged_at = now
            self._log(f"{what} failed ({exc}); waiting for the store, retrying with backoff")
        elif now - self._logged_at >= OUTAGE_LOG_EVERY:
            self._logged_at = now
            self._log(
                f"still waiting for the store: {what} failed for {now - self.since:.0f}s "
                f"({self._attempts} attempts; last: {exc})"
            )
        pause = self._pause * (0.5 + random.random() / 2)
        self._pause = min(self._pause * 2, max(OUTAGE_MAX_PAUSE, self._first))
        return pause

    def over(self, what: str) -> None:
        """The store answered again."""
        if self.since is not None:
            self._log(
                f"{what} works again after {self._clock() - self.since:.0f}s ({self._attempts} failed attempts)"
            )
        self.since = None
        self._pause = self._first
        self._attempts = 0
