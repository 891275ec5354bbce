"""Group commit: the writes that queue up behind a running one share its successor's transaction.

At FULL durability, in a process with several threads (a server), a write
that arrives while another thread's is running waits for it; then the oldest
waiting write leads the next group and runs every queued write in one
transaction, each in its own savepoint, with one commit and one sync for
all. :meth:`~.store.Store.write` queues the writes; this mixin runs a group
and hands on the lead (the store keeps what needs its driver: the
savepoints). Kept apart from the store's connections and locks so
that each file holds one concern.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from typing import Any

__all__: list[str] = []


class _Write:
    """One thread's write, queued for the process's group commit (see Store.write)."""

    __slots__ = ("fn", "done", "result", "error", "wake", "leads")

    def __init__(self, fn: Callable[[sqlite3.Connection], Any]) -> None:
        self.fn = fn
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None
        # Held until the write is done or its thread is to lead the next group.
        self.wake = threading.Lock()
        self.wake.acquire()
        self.leads = False  # handed the lead of the next group (set under the queue lock)

    def outcome(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.result


class GroupCommit:
    """The group-commit half of :class:`~.store.Store`: running a group and handing on the lead.

    The store provides the queue and its lock, ``_run`` (a transaction under
    the write lock) and ``_each_in_savepoints`` (the group's writes, each in
    its own savepoint).
    """

    _queue: list[_Write]
    _queue_lock: threading.Lock
    _leader: bool
    _run: Callable[..., Any]
    _each_in_savepoints: Callable[..., Any]

    def _hand_on_the_lead(self) -> None:
        """The oldest waiting write leads the next group; with none, nobody leads. Under the queue lock."""
        self._leader = bool(self._queue)
        if self._leader:
            self._queue[0].leads = True
            self._queue[0].wake.release()

    def _withdraw(self, write: _Write) -> None:
        """A caller stopped waiting (KeyboardInterrupt): drop its write if it has not run, pass on its lead."""
        with self._queue_lock:
            if write in self._queue:
                self._queue.remove(write)  # it never ran and never will
            # else a group is running it or ran it: committed, but its caller will not hear of it.
            if write.leads and not write.done:
                self._hand_on_the_lead()  # handed the lead as it was interrupted: without this all would wait

    def _commit_group(self, group: list[_Write]) -> None:
        """Run the queued writes in one transaction and hand each its own outcome."""
        try:
            outcomes = self._run(self._each_in_savepoints(group), "BEGIN IMMEDIATE", lock=True)
        except Exception as exc:  # nothing of the group was committed
            outcomes = [(None, exc)] * len(group)
        for write, (value, error) in zip(group, outcomes, strict=True):
            write.result, write.error, write.done = value, error, True
