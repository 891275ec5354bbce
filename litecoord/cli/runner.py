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
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import IO, Any, TypeVar

from .. import validation as check
from ..errors import (
    CoordinatorUnreachableError,
    DatabaseBusyError,
    LeaseConflictError,
    LeaseExpiredError,
    LitecoordError,
    SessionNotFoundError,
    ValidationError,
    WorkItemNotFoundError,
)
from ..protocol import Coordinator
from ..types import (
    AcquisitionOutcome,
    Clock,
    NoAvailableWorkToBeDone,
    WorkItem,
    WorkItemAndDuration,
    WorkItemStatus,
    format_time,
    micros_of,
    to_micros,
)
from .calls import CallThread, Outage, Pending
from .command import PROGRESS_PREFIX, Command, Progress, describe_exit, item_environment, parse_progress
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
from .splitting import SplitCalls, SplitChannel

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

# Errors that mean the store could not be reached (or stayed locked): not the
# item's fault and not a crash, so the runner waits for the store, with backoff.
# The PostgreSQL and HTTP backends' "unreachable" errors are ConnectionErrors.
_UNREACHABLE = (DatabaseBusyError, OSError)
_LEASE_LOST = (LeaseConflictError, LeaseExpiredError, WorkItemNotFoundError)
#: How long acquire retries other server errors (an HTTP 500 without a known code)
#: before the runner gives up: those may be a bug, not an outage.
_TRANSIENT_BUDGET = 60.0
#: The bound on a call made while no running command depends on it (acquire, complete, fail,
#: release): long enough for a slow store, short enough that a hung one is noticed.
_CALL_BOUND = 30.0


def _is_unreachable(exc: BaseException) -> bool:
    return isinstance(exc, _UNREACHABLE)


def _is_transient(exc: BaseException) -> bool:
    return _is_unreachable(exc) or type(exc) is LitecoordError


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


class Runner(SplitCalls):
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

    def _work_on(self, lease: WorkItemAndDuration, started: int, result: RunResult) -> int | None:
        """Run the command on one leased item (acquired by a call begun at ``started``).

        Returns an exit code to stop the loop, else None.
        """
        item = lease.work_item
        item_id, epoch = item.work_item_id, lease.lease_epoch
        self.log(f"acquired {item_id} (epoch {epoch}, lease {lease.lease_duration.total_seconds():g}s)")
        if not self._lease_confirmed:
            renewed = self._confirm(item_id, epoch, started + micros_of(lease.lease_duration))
            if renewed is False:
                return None
            if renewed is not None:
                started = renewed
        env = {**os.environ, **self.options.env}
        env.update(item_environment(lease, self.coordinator.session, self.coordinator.worker_id))
        progress = Progress(item.documents_processed, item.bytes_processed)
        echo = self.options.echo_output
        prefix = f"{self.coordinator.worker_id} {item_id} | ".encode() if self.options.prefix_output else None
        # The timeout runs from here, read before the command exists: a clock
        # moved once the command is seen running must count against it.
        spawned = self._tick()
        channel = SplitChannel() if self.options.split else None
        self._ends[item_id] = item.range_end
        try:
            command = Command(
                self.options.command,
                env,
                progress,
                tail_lines=self.options.tail_lines,
                stdout=self._stdout if echo else None,
                stderr=self._stderr if echo else None,
                warn=self.log,
                prefix=prefix,
                split=channel,
            )
        except OSError as exc:
            if channel is not None:
                channel.close()
            # Not the item's fault: give it back without spending one of its attempts.
            self._release(item_id, epoch, progress=None)
            result.reason = f"cannot run {self.options.command[0]!r}: {exc.strerror or exc}"
            return EXIT_ERROR

        try:
            return self._supervise(command, lease, started, spawned, progress, result, channel)
        except BaseException:
            # Never leave a command running on an item we stopped looking after.
            command.kill()
            raise
        finally:
            if channel is not None:
                channel.close()

    def _confirm(self, item_id: str, epoch: int, expiry: int) -> int | bool | None:
        """Renew a runner's first lease before its command starts (it may be a dead process's).

        Returns the tick the renewal began at (the lease's length counts from
        there), ``False`` if the lease is gone (the loop acquires again), or
        ``None`` if the store could not be reached (the lease is taken as fresh).
        ``expiry`` (a tick) is when the lease as acquired could lapse: the call gets no longer.
        """
        call_started = self._tick()
        try:
            self._call(
                lambda: self.coordinator.update_progress_and_renew_lease(item_id, lease_epoch=epoch),
                until=expiry - self._margin(expiry - call_started),
            )
        except _LEASE_LOST as exc:
            self.log(f"{item_id} (epoch {epoch}) lapsed before its command started: {exc}")
            return False
        except (LitecoordError, OSError) as exc:
            if self._tick() >= expiry - self._margin(expiry - call_started):
                # Not even the lease as acquired is left: starting the command would outlive it.
                self.log(f"renewing {item_id} before starting failed ({exc}); giving the lease up")
                self._abandoned.add((item_id, epoch))
                return False
            self.log(f"renewing {item_id} before starting failed ({exc}); going on")
            return None
        self._lease_confirmed = True
        return call_started

    @staticmethod
    def _margin(length: int) -> int:
        # Stop this long before the deadline (a tenth of the lease, at most a second):
        # the kill and the loop's slice take time, and the lease must not lapse first.
        return min(max(length, 0) // 10, 1_000_000)

    def _supervise(
        self,
        command: Command,
        lease: WorkItemAndDuration,
        started: int,
        spawned: int,
        progress: Progress,
        result: RunResult,
        channel: SplitChannel | None = None,
    ) -> int | None:
        """Renew while the command runs, then complete, fail or release the item.

        Renewals run on the call thread: this loop polls them while it keeps
        the deadline itself, so a renewal that hangs cannot delay the kill.
        """
        item_id, epoch = lease.work_item_id, lease.lease_epoch
        # Renewals keep the acquired length, so every deadline is "call start + this".
        length = micros_of(lease.lease_duration)
        deadline = started + length
        margin = self._margin(length)
        heartbeat = self._heartbeat(lease)
        next_beat = time.monotonic() + heartbeat
        lost_reason: str | None = None
        timeout = self.options.timeout
        timeout_at = None if timeout is None else spawned + to_micros(timeout)
        timed_out = False
        renewal: Pending[Any] | None = None  # the renewal in flight, if any
        renewal_started = 0
        splitting: tuple[Pending[Any], int] | None = None  # a split the command accepted, in flight
        while True:
            code = command.poll()
            if code is not None:
                break
            if timeout_at is not None and self._tick() >= timeout_at:
                code = command.terminate(self.options.grace, self.urgent)
                timed_out = True
                break
            if self.stop.is_set():
                code = command.terminate(self.options.grace, self.urgent)
                command.finish_reading()
                self._release(item_id, epoch, progress=progress)
                result.released.append(item_id)
                self.log(f"released {item_id} (epoch {epoch}): stopped, {describe_exit(code)}")
                result.reason = f"stopped; released {item_id}"
                return EXIT_INTERRUPTED
            if channel is not None and renewal is None and splitting is None:
                at = channel.take()
                if at is not None:
                    splitting = (self._split(item_id, epoch, at, deadline - margin), at)
            if splitting is not None and splitting[0].done():
                self._answer_split(channel, item_id, epoch, *splitting, deadline - margin)
                splitting = None
            if renewal is None and splitting is None and time.monotonic() >= next_beat:
                docs, size, _ = progress.snapshot()
                renewal_started = self._tick()
                renewal = self._calls.submit(
                    functools.partial(
                        self.coordinator.update_progress_and_renew_lease, item_id, docs, size, lease_epoch=epoch
                    ),
                    # Bounded by what is left of the lease: past that, its answer is worthless.
                    self._seconds_until(deadline - margin),
                )
            if renewal is not None and renewal.done():
                try:
                    renewed = renewal.result()
                    if channel is not None and renewed.split_requested_at is not None:
                        if channel.request(renewed.split_requested_at, renewed.range_end):
                            self.log(f"{item_id}: split requested at {renewed.split_requested_at}; told the command")
                    deadline = renewal_started + length
                    self._lease_confirmed = True
                except _LEASE_LOST as exc:
                    lost_reason = str(exc)
                except (LitecoordError, OSError) as exc:
                    self.log(f"renewing {item_id} failed ({exc}); retrying at the next heartbeat")
                renewal = None
                next_beat = time.monotonic() + heartbeat
            # Checked on every slice, whatever the renewal in flight is doing: the command
            # must be gone before the lease can lapse and the item pass to another worker.
            expiring = lost_reason is None and self._tick() >= deadline - margin
            if expiring:
                lost_reason = (
                    f"no renewal succeeded within the lease ({lease.lease_duration.total_seconds():g}s); "
                    "stopping before it can pass to another worker"
                )
            if lost_reason is not None:
                if renewal is not None or splitting is not None:
                    self._abandon_call()  # a hung call; nothing waits behind it
                    renewal = splitting = None
                # Another worker may own the item now (or soon): stop at once, no grace period.
                code = command.kill()
                command.finish_reading(timeout=1.0)
                if expiring:
                    # Whatever happens next, no command runs on this lease again.
                    self._abandoned.add((item_id, epoch))
                if code == 0:
                    # It had finished before the kill: its result stands. Completing checks
                    # the holder, not the expiry, so unless another worker took the item
                    # over meanwhile the completion is recorded instead of a re-run.
                    self.log(f"{item_id} (epoch {epoch}): {lost_reason}, but the command had already exited 0")
                    break
                result.lost.append(item_id)
                self.log(f"lost the lease on {item_id} (epoch {epoch}): {lost_reason}; killed the command")
                if expiring:
                    self._release(item_id, epoch, progress=progress)  # best effort: the store may be down
                return None
            # Short slices keep stop requests, exits and the deadline prompt; stop.wait returns at once on a stop.
            if renewal is not None or splitting is not None:
                # Returns as the call lands; a stop waits at most one slice.
                (renewal or splitting[0]).wait(0.05)  # type: ignore[index]
            else:
                self.stop.wait(min(0.05, max(0.0, next_beat - time.monotonic())))

        command.finish_reading()
        if splitting is not None:
            # The command exited with a split in flight: let it land (bounded by the lease) first.
            while not splitting[0].wait(0.05) and self._tick() < deadline - margin:
                pass
            if splitting[0].done():
                self._answer_split(channel, item_id, epoch, *splitting, deadline - margin)
            else:
                self._abandon_call()
        if renewal is not None:
            # The command exited while a renewal was in flight: let it land (it is bounded
            # by the lease), so the calls that follow do not queue behind it on a new thread.
            while not renewal.wait(0.05) and self._tick() < deadline - margin:
                pass
            if not renewal.done():
                self._abandon_call()
        if code == 0 and not timed_out:
            # The completion carries the command's final figures: the item records
            # what the command said it did (short of its range, the coverage audit
            # reports it); a command that reported nothing is trusted with all of it.
            return self._complete(item_id, epoch, result, progress.final())
        message = describe_exit(code)
        if timed_out:
            how = "killed with SIGKILL" if code == -signal.SIGKILL else "stopped with SIGTERM"
            message = f"command timed out after {timeout:g}s ({how})"
        tail = command.last_output()
        error = f"{message}\n{tail}" if tail else message
        self._flush(item_id, epoch, progress)
        failed = self._record_failure(item_id, epoch, error, result)
        if failed is not None:
            result.failed.append(item_id)
            parked = " (parked as failed)" if failed.status.value == "failed" else ""
            self.log(f"failed {item_id} (epoch {epoch}): {message}{parked}")
        return None

    def _record_failure(self, item_id: str, epoch: int, error: str, result: RunResult) -> WorkItem | None:
        """``fail_work_item``, repeated while the store is unreachable; ``None`` if it could not be recorded.

        A failed attempt is never dropped silently: it is recorded once the store
        answers again, or, if a stop comes first or the lease passes to another
        worker meanwhile, the item is listed in ``result.unrecorded`` and a line says so.
        """
        outage = Outage(self.log, self.options.poll_interval, self._seconds)
        maybe_recorded = False  # an attempt whose answer was lost may have been recorded
        what = f"recording the failure of {item_id} (epoch {epoch})"
        while True:
            try:
                return self._call(lambda: self.coordinator.fail_work_item(item_id, error, lease_epoch=epoch))
            except _LEASE_LOST as exc:
                if maybe_recorded and self._failure_was_recorded(item_id, epoch, error):
                    return self._call(lambda: self.coordinator.get_work_item(item_id))
                result.lost.append(item_id)
                result.unrecorded.append(item_id)
                self.log(f"could not record the failure of {item_id} (epoch {epoch}): {exc}")
                return None
            except (LitecoordError, OSError) as exc:
                if not _is_unreachable(exc) or self.stop.is_set():
                    result.unrecorded.append(item_id)
                    self.log(
                        f"could not record the failure of {item_id} (epoch {epoch}): {exc}; the attempt is not counted"
                    )
                    return None
                maybe_recorded = maybe_recorded or not isinstance(exc, DatabaseBusyError)
                self.stop.wait(outage.failed(what, exc))

    def _failure_was_recorded(self, item_id: str, epoch: int, error: str) -> bool:
        try:
            item = self._call(lambda: self.coordinator.get_work_item(item_id))
        except (LitecoordError, OSError):
            return False
        return item.lease_epoch == epoch and item.last_error == error and item.status is not WorkItemStatus.ASSIGNED

    def _give_back_prefetched(self) -> None:
        if self._prefetched is not None:
            outcome, _ = self._prefetched
            self._prefetched = None
            if isinstance(outcome, WorkItemAndDuration):
                self._release(outcome.work_item_id, outcome.lease_epoch, progress=None)

    def _complete(
        self, item_id: str, epoch: int, result: RunResult, final: tuple[int | None, int | None] = (None, None)
    ) -> None:
        """Complete the item, repeating while the store is unreachable (completing again is harmless).

        Completing checks the holder, not the expiry: a lease that lapsed during
        an outage still completes unless another worker took the item over.
        """
        outage = Outage(self.log, self.options.poll_interval, self._seconds)
        duration = self.options.lease_duration
        docs, size = final
        while True:
            try:
                if self.stop.is_set():
                    self._call(
                        lambda: self.coordinator.complete_work_item(
                            item_id, lease_epoch=epoch, documents_processed=docs, bytes_processed=size
                        )
                    )
                else:
                    # One transaction for this completion and the next lease: one commit
                    # (one sync at full durability) per item instead of two. A retry after
                    # a lost answer completes nothing twice and gets the same next lease.
                    started = self._tick()
                    _, outcome = self._call(
                        lambda: self.coordinator.complete_and_acquire_next(
                            item_id, duration, lease_epoch=epoch, documents_processed=docs, bytes_processed=size
                        )
                    )
                    self._prefetched = (outcome, started)
            except _LEASE_LOST as exc:
                result.lost.append(item_id)
                self.log(f"could not complete {item_id} (epoch {epoch}): {exc}")
                return None
            except (LitecoordError, OSError) as exc:
                if not _is_transient(exc) or self.stop.is_set():
                    result.unrecorded.append(item_id)
                    self.log(f"could not complete {item_id} (epoch {epoch}): {exc}")
                    return None
                self.stop.wait(outage.failed(f"completing {item_id} (epoch {epoch})", exc))
                continue
            result.completed.append(item_id)
            self.log(f"completed {item_id} (epoch {epoch})")
            return None

    def _flush(self, item_id: str, epoch: int, progress: Progress | None) -> None:
        """Record the command's last progress so the next holder can resume from it (best effort)."""
        if progress is None:
            return
        docs, size, _ = progress.snapshot()
        with contextlib.suppress(LitecoordError, OSError):
            self._call(lambda: self.coordinator.update_progress_and_renew_lease(item_id, docs, size, lease_epoch=epoch))

    def _release(self, item_id: str, epoch: int, progress: Progress | None) -> None:
        self._flush(item_id, epoch, progress)
        try:
            self._call(lambda: self.coordinator.release_work_item(item_id, lease_epoch=epoch))
        except (LitecoordError, OSError) as exc:
            self.log(f"could not release {item_id} (epoch {epoch}): {exc}; its lease will lapse instead")
