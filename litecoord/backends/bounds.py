"""How long a coordinator call may take: a bound the caller sets, which every backend honours.

A worker that holds a lease must never wait on a call longer than what is
left of that lease: a renewal that hangs (a frozen database backend, a
stopped ``serve``, a network partition) would otherwise outlive the lease,
and another worker would get the item while the first still runs it. The
runner therefore makes each call under :func:`call_bound`, and each backend
reads :func:`time_left` to cut its own waits short: the PostgreSQL backend
arms a watchdog that shuts the connection's socket down at the bound, the
HTTP client sets its per-request timeouts from it and stops failing over
once it runs out, the SQLite backend stops waiting for a locked file. A
call that runs out raises the backend's "unreachable" error
(:class:`~litecoord.errors.DatabaseUnavailableError`,
:class:`~litecoord.errors.CoordinatorUnreachableError`,
:class:`~litecoord.errors.DatabaseBusyError`), never a success.

The bound is per thread (a :mod:`contextvars` variable), measured on
``time.monotonic``, and only ever tightens: a nested :func:`call_bound`
cannot extend an outer one.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Iterator

__all__ = ["call_bound", "time_left", "deadline"]

_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("litecoord_call_deadline", default=None)


@contextlib.contextmanager
def call_bound(seconds: float | None) -> Iterator[None]:
    """Calls made inside give up after ``seconds`` (``None``: keep any outer bound, add none)."""
    if seconds is None:
        yield
        return
    new = time.monotonic() + max(0.0, seconds)
    outer = _DEADLINE.get()
    token = _DEADLINE.set(new if outer is None else min(outer, new))
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def deadline() -> float | None:
    """The ``time.monotonic()`` value at which calls of this thread give up, or ``None``."""
    return _DEADLINE.get()


def time_left(default: float | None = None) -> float | None:
    """Seconds left before the current bound (at least 0), the smaller of it and ``default``.

    ``None`` only when neither a bound nor a default exists.
    """
    end = _DEADLINE.get()
    if end is None:
        return default
    left = max(0.0, end - time.monotonic())
    return left if default is None else min(left, default)
