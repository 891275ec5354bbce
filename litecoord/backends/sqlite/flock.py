"""The write lock's side file ``<db>.lock``: one descriptor per thread, and a flock that polls before it sleeps.

:class:`~.store.Store` queues its writers on this lock instead of SQLite's
busy handler (see :mod:`.store` for why, and for the commit count the file
also records). Kept apart from the store's transactions so that each file
holds one concern; :mod:`.store` re-exports ``fcntl``, ``_LockFile`` and
``_flock_exclusive`` and calls them by those names.
"""

from __future__ import annotations

import os
import time
import weakref

try:  # flock is POSIX-only; without it writers fall back to SQLite's busy handler.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__: list[str] = []


class _LockFile:
    """One thread's descriptor of ``<db>.lock``.

    flock() locks belong to the open file description, so every thread needs
    its own descriptor or threads of one process would not exclude each
    other. The finalizer closes it when the thread's local state goes away,
    so short-lived threads (a server's) do not leak descriptors.
    """

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        self._finalizer = weakref.finalize(self, os.close, self.fd)

    def close(self) -> None:
        self._finalizer()


def _flock_exclusive(fd: int, spin: float) -> None:
    """Take the flock, polling for up to ``spin`` seconds before sleeping on it.

    Why poll: a process asleep in flock() is woken by the kernel when the lock
    is released, and on these small VMs that wake-up of an idle vCPU costs
    50-80 us, more than a whole NORMAL transaction holds the lock. A waiter
    that polls takes the lock within a microsecond of its release: at NORMAL
    durability with 2-8 processes the cycle rate went from about 0.6x to
    about 0.7x of the unfair baseline, the smallest worker share staying
    above 0.8 of the average. Stores poll only at NORMAL durability: at FULL
    polling lowered 4 processes from 0.78-0.81x to 0.72x of the baseline
    while the lock was held through the fsync, and since the sync moved out
    of the lock (Store._sync_wal) it changed nothing measurable (2,500 and
    2,580 cycles/s at 4 processes, 2,600 and 2,560 at 8).
    """
    if spin > 0:
        clock = time.perf_counter
        deadline = clock() + spin
        for _ in range(1000):  # bounded even when a test freezes the clock
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if clock() >= deadline:
                    break
    fcntl.flock(fd, fcntl.LOCK_EX)
