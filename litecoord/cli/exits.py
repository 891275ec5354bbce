"""How a worker run ends: exit codes, a :class:`RunResult`, one code for many workers, stop signals."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..types import WorkQueueStatus

__all__ = [
    "EXIT_ALL_DONE",
    "EXIT_ERROR",
    "EXIT_USAGE",
    "EXIT_FAILED_REMAIN",
    "EXIT_ALL_LEASED",
    "EXIT_SESSION_NOT_FOUND",
    "EXIT_INTERRUPTED",
    "EXIT_CODES",
    "RunResult",
    "combine_exit_codes",
    "stop_on_signals",
]

#: Every item of the session is complete.
EXIT_ALL_DONE = 0
#: The runner could not go on: coordinator unreachable, command not runnable...
EXIT_ERROR = 1
#: Bad command line (click's usage errors use 2 as well).
EXIT_USAGE = 2
#: No work left to do, but some items are parked as failed (``litecoord retry``).
EXIT_FAILED_REMAIN = 3
#: Work remains, all of it leased to other workers (only with ``wait=False``).
EXIT_ALL_LEASED = 4
#: The session does not exist (a mistyped name is not "all work done"); same code as the other commands.
EXIT_SESSION_NOT_FOUND = 9
#: Stopped by Ctrl-C or SIGTERM; the running item was released.
EXIT_INTERRUPTED = 130

EXIT_CODES: dict[int, str] = {
    EXIT_ALL_DONE: "all work done: every item of the session is complete",
    EXIT_ERROR: "the runner failed (coordinator unreachable, command not runnable, a worker process died...)",
    EXIT_USAGE: "bad command line",
    EXIT_FAILED_REMAIN: "no work left, but failed items await `litecoord retry`",
    EXIT_ALL_LEASED: "work remains but all of it is leased to other workers or waits out a retry delay, "
    "or the session is paused (--no-wait)",
    EXIT_SESSION_NOT_FOUND: "unknown session: nothing was ever created in it (check --session)",
    EXIT_INTERRUPTED: "stopped by Ctrl-C or SIGTERM; running items were released",
}


@dataclass
class RunResult:
    """What a runner did, and its exit code."""

    exit_code: int
    reason: str
    completed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    #: Items whose lease was lost while their command ran (the command was killed).
    lost: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    #: Items whose outcome (completion or failure) could not be recorded: the store
    #: stayed unreachable until a stop, or the lease passed to another worker meanwhile.
    unrecorded: list[str] = field(default_factory=list)


def combine_exit_codes(codes: Sequence[int], status: WorkQueueStatus, *, interrupted: bool) -> int:
    """One exit code for a run of several worker processes, from the session's final state.

    A worker process that was killed does not fail the run if the others
    finished the work: what counts is whether every item ended complete.
    """
    if interrupted or EXIT_INTERRUPTED in codes:
        return EXIT_INTERRUPTED
    if status.not_yet_complete == 0:
        return EXIT_ALL_DONE if status.failed_work_items == 0 else EXIT_FAILED_REMAIN
    if all(code in (EXIT_ALL_DONE, EXIT_FAILED_REMAIN, EXIT_ALL_LEASED) for code in codes):
        return EXIT_ALL_LEASED  # the rest is leased to workers outside this run
    return EXIT_ERROR


@contextlib.contextmanager
def stop_on_signals(
    stop: threading.Event,
    urgent: threading.Event | None = None,
    on_signal: Callable[[int], None] | None = None,
) -> Iterator[None]:
    """Set ``stop`` on SIGINT and SIGTERM while inside, ``urgent`` on the second; restore the handlers after.

    ``on_signal(n)`` runs inside the handler for the n-th signal (1, 2, ...): it
    must not write through a buffered stream the main thread may be writing
    to (Python raises on such a reentrant write), so write with ``os.write``.
    Only the main thread may install handlers; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    received = 0

    def handler(signum: int, frame: Any) -> None:
        nonlocal received
        received += 1
        if received >= 2 and urgent is not None:
            urgent.set()
        stop.set()
        if on_signal is not None:
            on_signal(received)

    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
