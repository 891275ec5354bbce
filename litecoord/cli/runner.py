"""The worker runner behind ``litecoord work``: lease an item, run a command on it, repeat.

:class:`Runner` drives one worker loop against any :class:`~litecoord.protocol.Coordinator`:

1. acquire the next item (``acquire_next_work_item``);
2. run the command with the item in environment variables (:func:`item_environment`),
   in its own process group, stdin closed;
3. while it runs, renew the lease every heartbeat (a third of the lease, at
   most :data:`DEFAULT_MAX_HEARTBEAT` seconds), passing ``lease_epoch`` and the
   latest progress the command reported;
4. exit 0: complete the item; any other exit: ``fail_work_item`` with the exit
   code and the last output lines; lease lost (a renewal refused with 409/410,
   or no renewal succeeded within the lease, measured locally): SIGKILL the
   command's process group at once, since another worker may now own the item
   (a command that had already exited 0 is completed all the same: completing
   checks the holder, not the expiry);
5. stop when no work remains, with an exit code that says why (:data:`EXIT_CODES`).

Coordinator calls never hold the loop up: each runs on a thread of its own
(:mod:`.calls`) under a bound (:mod:`litecoord.backends.bounds`) no longer
than what is left of the lease it protects, and the loop keeps the deadline
on its own clock from the start of the call that last confirmed the lease,
whatever the call in flight is doing. A call that runs out counts as an
unreachable store. While the store is unreachable (acquire, complete or fail
meet :class:`~litecoord.errors.CoordinatorUnreachableError`,
:class:`~litecoord.errors.DatabaseUnavailableError`, a busy file), the runner
waits for it with backoff, saying so once in a while, instead of exiting:
an outage is not a crash. A completion or failure it could not record before
a stop is listed in :attr:`RunResult.unrecorded` and logged, never dropped silently.

With ``timeout`` set, a command still running that many seconds after it
started is stopped like on a stop request (SIGTERM, SIGKILL after ``grace``)
and the attempt recorded as failed ("command timed out after ...").

Progress line protocol (values are absolute totals for the item, not increments)::

    LITECOORD-PROGRESS docs=1200 bytes=480000

either on the command's stdout (such lines are consumed, not echoed), or
written to the file descriptor named by ``LITECOORD_PROGRESS_FD`` (there the
``LITECOORD-PROGRESS`` prefix is optional). Either key may be left out.

A stop request (:meth:`Runner.request_stop`, wired to SIGINT/SIGTERM by
:func:`stop_on_signals`) sends SIGTERM to the running command's group, SIGKILL
after ``grace`` seconds, records its last progress, releases the item and
returns :data:`EXIT_INTERRUPTED`. An urgent stop (``request_stop(now=True)``,
the second signal) sends the SIGKILL at once instead of waiting out the grace.

The loop's collaborators are injectable (the coordinator, its clock, the
output streams, the stop event), so tests drive it with real commands and a
:class:`~litecoord.types.FakeClock` instead of waiting for leases to lapse.

Layout: this module holds the acquire loop, its options and the public names
(exit codes, progress protocol); the work on one leased item (steps 2 to 4)
is :mod:`.item_run`, the calls' thread and outage pacing :mod:`.calls`, the
command's process :mod:`.command`, exit codes and results :mod:`.exits`.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import IO, TypeVar

from .. import validation as check
from ..errors import (
    CoordinatorUnreachableError,
    LitecoordError,
    SessionNotFoundError,
    ValidationError,
)
from ..protocol import Coordinator
from ..types import (
    AcquisitionOutcome,
    Clock,
    NoAvailableWorkToBeDone,
    WorkItemAndDuration,
    format_time,
    to_micros,
)
from .calls import CallThread, Outage, _is_transient, _is_unreachable
from .command import PROGRESS_PREFIX, item_environment, parse_progress
from .exits import (
    EXIT_ALL_DONE,
    EXIT_ALL_LEASED,
    EXIT_CODES,
    EXIT_ERROR,
    EXIT_FAILED_REMAIN,
    EXIT_INTERRUPTED,
    EXIT_SESSION_NOT_FOUND,
    EXIT_USAGE,
    RunResult,
    combine_exit_codes,
    stop_on_signals,
)
from .item_run import ItemRun

__all__ = [
    "EXIT_ALL_DONE",
    "EXIT_ERROR",
    "EXIT_USAGE",
    "EXIT_FAILED_REMAIN",
    "EXIT_ALL_LEASED",
    "EXIT_SESSION_NOT_FOUND",
    "EXIT_INTERRUPTED",
    "EXIT_CODES",
    "PROGRESS_PREFIX",
    "DEFAULT_MAX_HEARTBEAT",
    "RunnerOptions",
    "RunResult",
    "Runner",
    "item_environment",
    "parse_progress",
    "stop_on_signals",
    "combine_exit_codes",
    "timestamped",
]

T = TypeVar("T")

#: Heartbeats come at a third of the lease, but at least this often, so that
#: progress (and ``status --watch``) stays fresh even with long leases.
DEFAULT_MAX_HEARTBEAT = 5.0

#: How long acquire retries other server errors (an HTTP 500 without a known code)
#: before the runner gives up: those may be a bug, not an outage.
_TRANSIENT_BUDGET = 60.0
#: The bound on a call made while no running command depends on it (acquire, complete, fail,
#: release): long enough for a slow store, short enough that a hung one is noticed.
_CALL_BOUND = 30.0




@dataclass(frozen=True)
class RunnerOptions:
    """How a :class:`Runner` works. ``command`` is the argv run for each item."""

    command: Sequence[str]
    lease_duration: timedelta = timedelta(minutes=5)
    #: Seconds between renewals; ``None``: a third of the lease, at most DEFAULT_MAX_HEARTBEAT.
    heartbeat: float | None = None
    #: Seconds between acquire attempts while all remaining work is leased elsewhere.
    poll_interval: float = 1.0
    #: Keep polling while other workers hold every remaining item (one of them
    #: may die and its lease lapse). ``False`` returns EXIT_ALL_LEASED at once, as RFS does.
    wait: bool = True
    #: Seconds between SIGTERM and SIGKILL when stopping a command.
    grace: float = 5.0
    #: How many last output lines go into the failure message.
    tail_lines: int = 20
    #: Forward the command's output (progress lines excepted) to our streams.
    echo_output: bool = True
    #: Start each forwarded line with ``<worker id> <item id> | `` (for several
    #: workers sharing one terminal); off, the bytes pass through unchanged.
    prefix_output: bool = False
    #: Seconds a command may run on one item before it is stopped and the attempt
    #: counted as failed; ``None``: no limit. Measured on the runner's clock.
    timeout: float | None = None
    #: Extra environment variables for the command.
    env: Mapping[str, str] = field(default_factory=dict)
    #: Open the split channel (:mod:`.splitting`): tell the command of split requests and
    #: split its item where it accepts. Off, a command is never split on its behalf.
    split: bool = False

    def __post_init__(self) -> None:
        # A NaN heartbeat never fires and an infinite poll never returns: both slip past range checks.
        check.duration(self.lease_duration)
        if self.heartbeat is not None:
            check.seconds("heartbeat", self.heartbeat)
        check.seconds("poll_interval", self.poll_interval)
        if check.finite("grace", self.grace) < 0:
            raise ValidationError("grace", "must not be negative")


def timestamped(line: str) -> str:
    """``line`` after the current UTC time, as the CLI writes its log lines (millisecond precision)."""
    now = datetime.now(timezone.utc)
    return f"{now:%Y-%m-%dT%H:%M:%S}.{now.microsecond // 1000:03d}Z {line}"


# -- the loop ------------------------------------------------------------------------


class Runner(ItemRun):
    """One worker loop. ``run()`` returns when no work is left, on a stop request, or on an error.

    ``clock`` measures the lease locally: a lease acquired or renewed by a
    call that started at ``t`` is taken as lost at ``t + lease duration``
    unless renewed again, whatever the coordinator's own clock says (so clock
    skew between this host and a server does not matter). It defaults to
    ``time.monotonic``; tests pass the FakeClock they move. ``log`` receives one line per event, such as
    ``w-1: completed index__0__0 (epoch 3)``; ``stdout``/``stderr`` receive the
    command's output when ``options.echo_output`` is set. ``urgent`` (set by
    ``request_stop(now=True)``) turns a stop's grace period into an immediate SIGKILL.

    Every coordinator call runs on a thread of its own (:class:`~.calls.CallThread`)
    under a bound (:mod:`litecoord.backends.bounds`): while a command runs, the
    loop keeps its deadline on ``clock`` whatever the call in flight is doing,
    and kills the command before the lease could lapse even if a renewal never
    returns. While the store is unreachable the loop waits for it, with
    backoff, instead of giving up.

    A new runner cannot tell a lease it just took from one that an earlier
    process with the same worker id left behind (a restarted worker: acquire
    hands back that live lease unchanged, with its old expiry). So it renews
    the first lease it gets before starting the command, and counts the
    lease's length from that renewal.
    """

    def __init__(
        self,
        coordinator: Coordinator,
        options: RunnerOptions,
        *,
        clock: Clock | None = None,
        stop: threading.Event | None = None,
        log: Callable[[str], None] | None = None,
        stdout: IO[bytes] | None = None,
        stderr: IO[bytes] | None = None,
        urgent: threading.Event | None = None,
    ) -> None:
        if not options.command:
            raise ValueError("a command to run is required")
        self.coordinator = coordinator
        self.options = options
        self.clock: Clock = clock or time.monotonic
        self.stop = stop or threading.Event()
        self.urgent = urgent or threading.Event()
        self._log = log or (lambda line: None)
        self._stdout = stdout
        self._stderr = stderr
        # Leases given up because no renewal succeeded: acquire hands a worker its
        # own live lease back, and a command must never run again on one of these.
        self._abandoned: set[tuple[str, int]] = set()
        # What complete_and_acquire_next leased along with a completion (and the tick
        # its call began at): the loop's next acquisition, already made.
        self._prefetched: tuple[AcquisitionOutcome, int] | None = None
        # Until a renewal succeeds, a lease may be one inherited from a dead process (see above).
        self._lease_confirmed = False
        self._calls = CallThread(f"litecoord-calls-{coordinator.worker_id}")
        # The end each item has now, as far as this runner split it (a refused split keeps it).
        self._ends: dict[str, int | None] = {}
        #: Splits made at a command's request during this run.
        self.split_count = 0

    def request_stop(self, now: bool = False) -> None:
        """Ask the loop to stop: the running command is ended and its item released.

        ``now``: SIGKILL the command at once instead of giving it ``grace`` seconds.
        """
        if now:
            self.urgent.set()
        self.stop.set()

    def log(self, message: str) -> None:
        self._log(f"{self.coordinator.worker_id}: {message}")

    def _tick(self) -> int:
        """The local clock in microseconds (only differences matter)."""
        return to_micros(self.clock())

    def _seconds(self) -> float:
        """The local clock in seconds (only differences matter)."""
        return self._tick() / 1_000_000

    def _seconds_until(self, tick: int) -> float:
        return max(0.0, (tick - self._tick()) / 1_000_000)

    def _call(self, fn: Callable[[], T], *, until: int | None = None, interruptible: bool = False) -> T:
        """Run one coordinator call on the call thread and wait for it, at most until tick ``until``.

        ``until`` defaults to :data:`_CALL_BOUND` seconds from now. The call
        itself is bounded to the same time (the backend gives up then); if it
        still has not returned when ``until`` comes (on this runner's clock), it
        is abandoned and :class:`CoordinatorUnreachableError` raised: a call
        that runs out is an unreachable store, never a success.
        ``interruptible``: a stop request abandons the call too.
        """
        if until is None:
            until = self._tick() + to_micros(_CALL_BOUND)
        pending = self._calls.submit(fn, self._seconds_until(until))
        while not pending.wait(0.05):
            stopped = interruptible and self.stop.is_set()
            if stopped or self._tick() >= until:
                self._abandon_call()
                why = "a stop request" if stopped else "its bound"
                raise CoordinatorUnreachableError(
                    f"the coordinator did not answer before {why}; the call was abandoned"
                )
        return pending.result()

    def _abandon_call(self) -> None:
        self._calls.abandon()
        # An answer we never saw may have leased us an item (acquire) or renewed one:
        # the next lease is renewed before its command starts, its length counted from then.
        self._lease_confirmed = False

    def _heartbeat(self, lease: WorkItemAndDuration) -> float:
        if self.options.heartbeat is not None:
            return self.options.heartbeat
        return min(lease.lease_duration.total_seconds() / 3, DEFAULT_MAX_HEARTBEAT)

    def run(self) -> RunResult:
        try:
            return self._run()
        finally:
            self._calls.close()

    def _run(self) -> RunResult:
        result = RunResult(EXIT_ALL_DONE, "")
        failing_since: float | None = None
        outage = Outage(self.log, self.options.poll_interval, self._seconds)
        waiting: str | None = None  # what the runner waits for: logged once, not at every poll
        while True:
            if self.stop.is_set():
                self._give_back_prefetched()
                return self._finish(result, EXIT_INTERRUPTED, "stopped")
            started = self._tick()
            try:
                if self._prefetched is not None:
                    (outcome, started), self._prefetched = self._prefetched, None
                else:
                    acquire = functools.partial(self.coordinator.acquire_next_work_item, self.options.lease_duration)
                    outcome = self._call(acquire, interruptible=True)
            except SessionNotFoundError as exc:
                return self._finish(result, EXIT_SESSION_NOT_FOUND, str(exc))
            except (LitecoordError, OSError) as exc:
                if self.stop.is_set():
                    continue
                if _is_unreachable(exc):
                    # An outage is not a crash: wait for the store however long it takes.
                    self._lease_confirmed = False  # a lost answer may have leased us an item
                    self.stop.wait(outage.failed("acquire", exc))
                    continue
                failing_since = self._seconds() if failing_since is None else failing_since
                if not _is_transient(exc) or self._seconds() - failing_since > _TRANSIENT_BUDGET:
                    return self._finish(result, EXIT_ERROR, f"cannot acquire work: {exc}")
                self.log(f"acquire failed ({exc}); retrying")
                self.stop.wait(self.options.poll_interval)
                continue
            failing_since = None
            outage.over("acquire")
            if isinstance(outcome, NoAvailableWorkToBeDone):
                if outcome.reason == "none_remain":
                    return self._finish(result, EXIT_ALL_DONE, "all work done")
                if outcome.reason == "failed_remain":
                    return self._finish(
                        result, EXIT_FAILED_REMAIN, f"no work left; {outcome.failed} failed item(s) await a retry"
                    )
                if outcome.reason == "paused":
                    why = f"session {self.coordinator.session} is paused ({outcome.remaining} item(s) remain)"
                elif outcome.next_attempt_at is not None:
                    why = (
                        f"{outcome.remaining} item(s) remain, leased or waiting out a retry delay "
                        f"(next due at {format_time(outcome.next_attempt_at)})"
                    )
                else:
                    why = f"{outcome.remaining} item(s) remain, all leased to other workers"
                if not self.options.wait:
                    return self._finish(result, EXIT_ALL_LEASED, why)
                if waiting != outcome.reason:  # said once per kind of wait (a pause is said even mid-wait)
                    waiting = outcome.reason
                    self.log(f"{why}; waiting" + (" until it is resumed" if waiting == "paused" else ""))
                self.stop.wait(self.options.poll_interval)
                continue
            waiting = None
            if (outcome.work_item_id, outcome.lease_epoch) in self._abandoned:
                # Our own lease that we gave up (its expiry is not extended, so our
                # deadline arithmetic would not hold): give it back, or let it lapse.
                self._release(outcome.work_item_id, outcome.lease_epoch, progress=None)
                self.stop.wait(self.options.poll_interval)
                continue
            code = self._work_on(outcome, started, result)
            if code is not None:
                return self._finish(result, code, result.reason)

    def _finish(self, result: RunResult, code: int, reason: str) -> RunResult:
        result.exit_code = code
        result.reason = reason
        self.log(f"exiting with code {code}: {reason}")
        return result

    def _give_back_prefetched(self) -> None:
        if self._prefetched is not None:
            outcome, _ = self._prefetched
            self._prefetched = None
            if isinstance(outcome, WorkItemAndDuration):
                self._release(outcome.work_item_id, outcome.lease_epoch, progress=None)
