"""The runner's split channel: how a command without Python takes part in live splits.

Opt-in (``litecoord work --split``, :attr:`RunnerOptions.split`): a command
that does not ask for it sees nothing new and is never split. With it, the
command gets a pipe to read, its number in ``LITECOORD_SPLIT_FD``, and:

1. when a renewal returns the item with ``split_requested_at`` set (an idle
   worker asked), the runner writes once per request::

       split-request at=N end=E

   (``end=`` is empty for an open range). Nothing is split yet.
2. The command, if it agrees, picks a new end ``M`` (``N`` or any later
   position not behind its own) and writes on its progress channel (the
   ``LITECOORD_PROGRESS_FD`` descriptor, or stdout with the ``LITECOORD-PROGRESS``
   prefix)::

       split at=M

   From then on it must not go past ``M`` until it hears back.
3. The runner calls ``split_work_item(at=M)`` under the lease's bound and
   answers on the split pipe with the end the command now has::

       split-done at=M end=M new=<id of the new item>
       split-refused at=M end=E reason=<one word>

   After ``split-refused`` the command carries on to its old end ``E``.

The rule that protects the data: the runner splits only at a position the
command itself accepted, after it accepted it. A command that never reads
the pipe loses nothing: it completes its whole range as before (a request
line it never reads stays in the pipe; the write end never blocks).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import LeaseConflictError, LeaseExpiredError, LitecoordError, ValidationError, WorkItemNotFoundError
from ..protocol import Coordinator
from .calls import CallThread, Pending

__all__ = ["SPLIT_ENV", "SplitCalls", "SplitChannel", "parse_split_accept"]

T = TypeVar("T")
_REFUSED = (LeaseConflictError, LeaseExpiredError, WorkItemNotFoundError, ValidationError)

#: The environment variable naming the descriptor the command reads split lines from.
SPLIT_ENV = "LITECOORD_SPLIT_FD"


def parse_split_accept(text: str) -> int | None:
    """``"[LITECOORD-PROGRESS] split at=N"`` -> ``N``; ``None`` if the line is not a split acceptance."""
    words = text.split()
    if words and words[0] == "LITECOORD-PROGRESS":
        words = words[1:]
    if len(words) != 2 or words[0] != "split":
        return None
    key, sep, value = words[1].partition("=")
    if key != "at" or not sep or not value.isdigit():
        return None
    return int(value)


def is_split_line(text: str) -> bool:
    """Whether a progress-channel line is meant for the split channel (well-formed or not)."""
    words = text.split()
    if words and words[0] == "LITECOORD-PROGRESS":
        words = words[1:]
    return bool(words) and words[0] == "split"


class SplitChannel:
    """Both directions of one command's split channel.

    The runner keeps the write end of a pipe (non-blocking: a command that
    never reads must never stall the loop) and hands the read end to the
    command; acceptances arrive from the progress reader threads via
    :meth:`accepted`, and the loop takes them with :meth:`take`.
    """

    def __init__(self) -> None:
        self.read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._write_fd, False)
        self._lock = threading.Lock()
        self._accepts: list[int] = []
        self._told: int | None = None  # the request last written, so each is written once
        self.broken = False  # the command closed its end (or never kept it)

    def child_env(self) -> dict[str, str]:
        return {SPLIT_ENV: str(self.read_fd)}

    def after_spawn(self) -> None:
        """Close the runner's copy of the command's end (the child has its own)."""
        with contextlib.suppress(OSError):
            os.close(self.read_fd)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._write_fd)

    def accepted(self, at: int) -> None:
        with self._lock:
            self._accepts.append(at)

    def take(self) -> int | None:
        """The oldest acceptance not yet acted on, if any."""
        with self._lock:
            return self._accepts.pop(0) if self._accepts else None

    def request(self, at: int, end: int | None) -> bool:
        """Tell the command of a split request (once per proposed position); whether a line was written."""
        if at == self._told:
            return False
        self._told = at
        return self._write(f"split-request at={at} end={'' if end is None else end}")

    def done(self, at: int, new_id: str) -> None:
        self._told = None
        self._write(f"split-done at={at} end={at} new={new_id}")

    def refused(self, at: int, end: int | None, reason: str) -> None:
        self._write(f"split-refused at={at} end={'' if end is None else end} reason={reason}")

    def _write(self, line: str) -> bool:
        if self.broken:
            return False
        try:
            os.write(self._write_fd, (line + "\n").encode())
            return True
        except BlockingIOError:
            return False  # a command that reads nothing: its pipe is full, and that is its choice
        except OSError as exc:
            if exc.errno in (errno.EPIPE, errno.EBADF):
                self.broken = True
                return False
            raise


class SplitCalls:
    """The runner's side of a split: the call the command accepted, and the answer it gets.

    Mixed into :class:`~.runner.Runner`, whose loop starts :meth:`_split` on
    its call thread and, once that lands, calls :meth:`_answer_split`.
    """

    coordinator: Coordinator
    _calls: CallThread
    _ends: dict[str, int | None]
    split_count: int

    def log(self, message: str) -> None:  # pragma: no cover - the Runner's
        raise NotImplementedError

    def _seconds_until(self, tick: int) -> float:  # pragma: no cover - the Runner's
        raise NotImplementedError

    def _tick(self) -> int:  # pragma: no cover - the Runner's
        raise NotImplementedError

    def _call(self, fn: Callable[[], T], *, until: int | None = None, interruptible: bool = False) -> T:
        raise NotImplementedError  # pragma: no cover - the Runner's

    def _split(self, item_id: str, epoch: int, at: int, until: int) -> Pending[Any]:
        """Start the split the command accepted on the call thread, bounded by what is left of the lease."""
        self.log(f"{item_id}: the command accepted a new end at {at}; splitting")
        return self._calls.submit(
            functools.partial(self.coordinator.split_work_item, item_id, at, lease_epoch=epoch),
            self._seconds_until(until),
        )

    def _answer_split(
        self, channel: SplitChannel | None, item_id: str, epoch: int, pending: Pending[Any], at: int, until: int
    ) -> None:
        """Tell the command how the split it accepted went: its end is ``at`` now, or unchanged.

        An answer lost to the store (unreachable, the call's bound) is asked
        again once: the same call returns the same pair if the split was made.
        Still unknown, the command is told "refused" and keeps its old end: at
        worst a few documents are processed twice, never a gap.
        """
        assert channel is not None
        try:
            kept, new = pending.result()
        except (LitecoordError, OSError) as exc:
            error: BaseException = exc
            if not isinstance(exc, _REFUSED) and self._tick() < until:
                try:
                    kept, new = self._call(
                        lambda: self.coordinator.split_work_item(item_id, at, lease_epoch=epoch), until=until
                    )
                except (LitecoordError, OSError) as again:
                    error = again
                else:
                    error = None  # type: ignore[assignment]
            if error is not None:
                reason = getattr(error, "code", None) or type(error).__name__
                channel.refused(at, self._ends.get(item_id), str(reason).replace(" ", "_"))
                self.log(f"{item_id}: split at {at} refused: {error}")
                return
        self._ends[item_id] = kept.range_end
        self.split_count += 1
        channel.done(at, new.work_item_id)
        self.log(f"{item_id}: split at {at}; {new.work_item_id} takes [{new.range_start}, {new.range_end})")

