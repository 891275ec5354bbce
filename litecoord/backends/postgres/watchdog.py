"""Bounds on PostgreSQL calls: TCP keepalives, server-side timeouts, and a watchdog for the client side.

A database that hangs rather than refuses (a frozen backend, a partition)
would leave a call waiting forever: nothing in libpq times out a query. Three
layers bound it:

* :func:`keepalive_options`: TCP keepalives and ``tcp_user_timeout`` for every
  connection whose DSN does not set its own, so a dead peer over TCP is
  noticed in seconds rather than the kernel's two hours;
* :data:`SERVER_BOUNDS`: ``lock_timeout`` and ``idle_in_transaction_session_timeout``,
  set inside each transaction (``SET LOCAL``, so a transaction-mode pooler
  carries them too), so a call never waits long on a row another session
  holds, and a client frozen mid-transaction cannot keep rows locked;
* :class:`Watchdog`: the client-side bound, which needs nothing from the
  server. It shuts the socket of a call down when the call outlives its
  bound: libpq sees the connection end and the call fails at once. This is
  what ends a call to a frozen server over a Unix socket, where TCP gives no
  signal and the server's own timeouts never run.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import socket
import threading
import time
from typing import Any

__all__ = ["keepalive_options", "SERVER_BOUNDS", "SERVER_BOUND_SECONDS", "Watchdog"]

#: The server-side bounds, in seconds (see the module docstring).
SERVER_BOUND_SECONDS = 10

#: Run at the start of every transaction, in the same round trip as BEGIN.
SERVER_BOUNDS = (
    f"SET LOCAL lock_timeout TO '{SERVER_BOUND_SECONDS}s'; "
    f"SET LOCAL idle_in_transaction_session_timeout TO '{SERVER_BOUND_SECONDS}s'"
)

_KEEPALIVES = {
    "keepalives": "1",
    "keepalives_idle": "5",
    "keepalives_interval": "2",
    "keepalives_count": "3",
    "tcp_user_timeout": "10000",  # milliseconds: unacknowledged data for this long ends the connection
}


def keepalive_options(dsn_params: dict[str, Any]) -> dict[str, str]:
    """The keepalive settings a connection gets, minus those its DSN already sets (the DSN wins)."""
    return {key: value for key, value in _KEEPALIVES.items() if key not in dsn_params}


class _Armed:
    __slots__ = ("at", "seq", "conn", "state")

    def __init__(self, at: float, seq: int, conn: Any) -> None:
        self.at, self.seq, self.conn = at, seq, conn
        self.state = "armed"  # then "disarmed" or "fired"

    def __lt__(self, other: _Armed) -> bool:
        return (self.at, self.seq) < (other.at, other.seq)


class Watchdog:
    """One thread per process that shuts down the socket of every call still running at its bound.

    ``arm(conn, at)`` before the call, ``disarm(token)`` right after it (it
    says whether the watchdog fired). Both take one lock, and the watchdog
    shuts a socket down only while holding it, so a connection the call
    already handed back is never touched.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[_Armed] = []
        self._seq = itertools.count()
        self._pid: int | None = None
        # When the watchdog thread wakes next by itself: an arm due later needs no wake-up
        # (calls with the default bound arm ever later times, so most calls wake nobody).
        self._wakes_at = float("inf")
        # A fork copies the lock as it is, perhaps held by the watchdog thread, which the
        # child does not have: the child starts over with a fresh lock (and, on first use, a thread).
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._cond = threading.Condition()
        self._heap = []
        self._pid = None
        self._wakes_at = float("inf")

    def arm(self, conn: Any, at: float) -> _Armed:
        entry = _Armed(at, next(self._seq), conn)
        with self._cond:
            if self._pid != os.getpid():  # first use, or a forked child: the thread did not come along
                self._heap = []
                self._wakes_at = float("inf")
                self._pid = os.getpid()
                threading.Thread(target=self._watch, name="litecoord-pg-watchdog", daemon=True).start()
            heapq.heappush(self._heap, entry)
            if at < self._wakes_at:
                self._wakes_at = at
                self._cond.notify()
        return entry

    def disarm(self, entry: _Armed) -> bool:
        """The call is over; whether the watchdog had cut it off."""
        with self._cond:
            fired = entry.state == "fired"
            entry.state = "disarmed"
            while self._heap and self._heap[0].state != "armed":  # keep the heap as small as the calls in flight
                heapq.heappop(self._heap)
        return fired

    def _watch(self) -> None:
        with self._cond:
            while True:
                while self._heap and self._heap[0].state != "armed":
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._wakes_at = float("inf")
                    self._cond.wait()
                    continue
                self._wakes_at = self._heap[0].at
                left = self._wakes_at - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                entry = heapq.heappop(self._heap)
                entry.state = "fired"
                _shut_down(entry.conn)


def _shut_down(conn: Any) -> None:
    """End the connection's socket under libpq's feet; the call in flight fails as a lost connection."""
    with contextlib.suppress(Exception):
        fd = conn.fileno()
        # A duplicate descriptor shares the socket: shutting it down wakes the waiting call,
        # and closing the duplicate leaves libpq's own descriptor for it to close.
        sock = socket.socket(fileno=os.dup(fd))
        try:
            sock.shutdown(socket.SHUT_RDWR)
        finally:
            sock.close()
