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
   command's process group at once, since another worker may now own the item;
5. stop when no work remains, with an exit code that says why (:data:`EXIT_CODES`).

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
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import IO, Any

from .. import validation as check
from ..errors import (
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
    WorkItemAndDuration,
    WorkQueueStatus,
    format_time,
    micros_of,
    to_micros,
)
from .command import PROGRESS_PREFIX, Command, Progress, describe_exit, parse_progress

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
    EXIT_ALL_LEASED: "work remains but all of it is leased to other workers or waits out a retry delay (--no-wait)",
    EXIT_SESSION_NOT_FOUND: "unknown session: nothing was ever created in it (check --session)",
    EXIT_INTERRUPTED: "stopped by Ctrl-C or SIGTERM; running items were released",
}


#: Heartbeats come at a third of the lease, but at least this often, so that
#: progress (and ``status --watch``) stays fresh even with long leases.
DEFAULT_MAX_HEARTBEAT = 5.0

# Errors after which a call is worth repeating: the store was busy, or the
# network failed (the HTTP backend's connection errors are OSError or the
# base LitecoordError).
_TRANSIENT = (DatabaseBusyError, OSError)
_LEASE_LOST = (LeaseConflictError, LeaseExpiredError, WorkItemNotFoundError)
_MAX_TRANSIENT_RETRIES = 5
#: How long acquire keeps retrying while the store is busy or the server unreachable
#: (long enough to ride out a server restart).
_TRANSIENT_BUDGET = 60.0


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, _TRANSIENT) or type(exc) is LitecoordError


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

    def __post_init__(self) -> None:
        # A NaN heartbeat never fires and an infinite poll never returns: both slip past range checks.
        check.duration(self.lease_duration)
        if self.heartbeat is not None:
            check.seconds("heartbeat", self.heartbeat)
        check.seconds("poll_interval", self.poll_interval)
        if check.finite("grace", self.grace) < 0:
            raise ValidationError("grace", "must not be negative")


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


def timestamped(line: str) -> str:
    """``line`` after the current UTC time, as the CLI writes its log lines (millisecond precision)."""
    now = datetime.now(timezone.utc)
    return f"{now:%Y-%m-%dT%H:%M:%S}.{now.microsecond // 1000:03d}Z {line}"


def item_environment(lease: WorkItemAndDuration, session: str, worker_id: str) -> dict[str, str]:
    """The ``LITECOORD_*`` variables a command sees for one leased item (unknown values are empty).

    The runner adds ``LITECOORD_PROGRESS_FD`` when it starts the command.
    """
    item = lease.work_item

    def text(value: Any) -> str:
        return "" if value is None else str(value)

    env = {
        "LITECOORD_WORK_ITEM_ID": item.work_item_id,
        "LITECOORD_INDEX_NAME": text(item.index_name),
        "LITECOORD_SHARD_NUMBER": text(item.shard_number),
        "LITECOORD_DOCUMENT_COUNT": text(item.document_count),
        "LITECOORD_TOTAL_SIZE_BYTES": text(item.total_size_bytes),
        "LITECOORD_DOCUMENTS_PROCESSED": str(item.documents_processed),
        "LITECOORD_BYTES_PROCESSED": str(item.bytes_processed),
        "LITECOORD_LEASE_EXPIRY": text(format_time(lease.lease_expiration_time)),
        "LITECOORD_LEASE_SECONDS": f"{lease.lease_duration.total_seconds():g}",
        "LITECOORD_LEASE_EPOCH": str(lease.lease_epoch),
        "LITECOORD_ATTEMPT": str(item.attempts),
        "LITECOORD_SESSION": session,
        "LITECOORD_WORKER_ID": worker_id,
    }
    return env


# -- the loop ------------------------------------------------------------------------


class Runner:
    """One worker loop. ``run()`` returns when no work is left, on a stop request, or on an error.

    ``clock`` measures the lease locally: a lease acquired or renewed by a
    call that started at ``t`` is taken as lost at ``t + lease duration``
    unless renewed again, whatever the coordinator's own clock says (so clock
    skew between this host and a server does not matter). It defaults to
    ``time.monotonic``; tests pass the FakeClock they move. ``log`` receives one line per event, such as
    ``w-1: completed index__0__0 (epoch 3)``; ``stdout``/``stderr`` receive the
    command's output when ``options.echo_output`` is set. ``urgent`` (set by
    ``request_stop(now=True)``) turns a stop's grace period into an immediate SIGKILL.

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

    def _heartbeat(self, lease: WorkItemAndDuration) -> float:
        if self.options.heartbeat is not None:
            return self.options.heartbeat
        return min(lease.lease_duration.total_seconds() / 3, DEFAULT_MAX_HEARTBEAT)

    def run(self) -> RunResult:
        result = RunResult(EXIT_ALL_DONE, "")
        failing_since: float | None = None
        waiting = False  # log the wait once, not at every poll
        while True:
            if self.stop.is_set():
                self._give_back_prefetched()
                return self._finish(result, EXIT_INTERRUPTED, "stopped")
            started = self._tick()
            try:
                if self._prefetched is not None:
                    (outcome, started), self._prefetched = self._prefetched, None
                else:
                    outcome = self.coordinator.acquire_next_work_item(self.options.lease_duration)
            except SessionNotFoundError as exc:
                return self._finish(result, EXIT_SESSION_NOT_FOUND, str(exc))
            except (LitecoordError, OSError) as exc:
                failing_since = time.monotonic() if failing_since is None else failing_since
                if not _is_transient(exc) or time.monotonic() - failing_since > _TRANSIENT_BUDGET:
                    return self._finish(result, EXIT_ERROR, f"cannot acquire work: {exc}")
                self.log(f"acquire failed ({exc}); retrying")
                self.stop.wait(self.options.poll_interval)
                continue
            failing_since = None
            if isinstance(outcome, NoAvailableWorkToBeDone):
                if outcome.reason == "none_remain":
                    return self._finish(result, EXIT_ALL_DONE, "all work done")
                if outcome.reason == "failed_remain":
                    return self._finish(
                        result, EXIT_FAILED_REMAIN, f"no work left; {outcome.failed} failed item(s) await a retry"
                    )
                if outcome.next_attempt_at is not None:
                    why = (
                        f"{outcome.remaining} item(s) remain, leased or waiting out a retry delay "
                        f"(next due at {format_time(outcome.next_attempt_at)})"
                    )
                else:
                    why = f"{outcome.remaining} item(s) remain, all leased to other workers"
                if not self.options.wait:
                    return self._finish(result, EXIT_ALL_LEASED, why)
                if not waiting:
                    waiting = True
                    self.log(f"{why}; waiting")
                self.stop.wait(self.options.poll_interval)
                continue
            waiting = False
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
            renewed = self._confirm(item_id, epoch)
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
            )
        except OSError as exc:
            # Not the item's fault: give it back without spending one of its attempts.
            self._release(item_id, epoch, progress=None)
            result.reason = f"cannot run {self.options.command[0]!r}: {exc.strerror or exc}"
            return EXIT_ERROR

        try:
            return self._supervise(command, lease, started, spawned, progress, result)
        except BaseException:
            # Never leave a command running on an item we stopped looking after.
            command.kill()
            raise

    def _confirm(self, item_id: str, epoch: int) -> int | bool | None:
        """Renew a runner's first lease before its command starts (it may be a dead process's).

        Returns the tick the renewal began at (the lease's length counts from
        there), ``False`` if the lease is gone (the loop acquires again), or
        ``None`` if the store could not be reached (the lease is taken as fresh).
        """
        call_started = self._tick()
        try:
            self.coordinator.update_progress_and_renew_lease(item_id, lease_epoch=epoch)
        except _LEASE_LOST as exc:
            self.log(f"{item_id} (epoch {epoch}) lapsed before its command started: {exc}")
            return False
        except (LitecoordError, OSError) as exc:
            self.log(f"renewing {item_id} before starting failed ({exc}); going on")
            return None
        self._lease_confirmed = True
        return call_started

    def _supervise(
        self,
        command: Command,
        lease: WorkItemAndDuration,
        started: int,
        spawned: int,
        progress: Progress,
        result: RunResult,
    ) -> int | None:
        """Renew while the command runs, then complete, fail or release the item."""
        item_id, epoch = lease.work_item_id, lease.lease_epoch
        sent_version = 0
        # Renewals keep the acquired length, so every deadline is "call start + this".
        length = micros_of(lease.lease_duration)
        deadline = started + length
        # Stop this long before the deadline (a tenth of the lease, at most a second):
        # the kill and the loop's slice take time, and the lease must not lapse first.
        margin = min(length // 10, 1_000_000)
        heartbeat = self._heartbeat(lease)
        next_beat = time.monotonic() + heartbeat
        lost_reason: str | None = None
        timeout = self.options.timeout
        timeout_at = None if timeout is None else spawned + to_micros(timeout)
        timed_out = False
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
            if time.monotonic() >= next_beat:
                docs, size, version = progress.snapshot()
                call_started = self._tick()
                try:
                    self.coordinator.update_progress_and_renew_lease(item_id, docs, size, lease_epoch=epoch)
                    deadline = call_started + length
                    sent_version = version
                    self._lease_confirmed = True
                except _LEASE_LOST as exc:
                    lost_reason = str(exc)
                except (LitecoordError, OSError) as exc:
                    self.log(f"renewing {item_id} failed ({exc}); retrying at the next heartbeat")
                next_beat = time.monotonic() + heartbeat
            # Checked on every slice, not only at heartbeats: the command must be gone
            # before the lease can lapse and the item pass to another worker.
            expiring = lost_reason is None and self._tick() >= deadline - margin
            if expiring:
                lost_reason = (
                    f"no renewal succeeded within the lease ({lease.lease_duration.total_seconds():g}s); "
                    "stopping before it can pass to another worker"
                )
            if lost_reason is not None:
                # Another worker may own the item now (or soon): stop at once, no grace period.
                code = command.kill()
                command.finish_reading(timeout=1.0)
                result.lost.append(item_id)
                self.log(f"lost the lease on {item_id} (epoch {epoch}): {lost_reason}; killed the command")
                if expiring:
                    self._abandoned.add((item_id, epoch))
                    self._release(item_id, epoch, progress=progress)  # best effort: the store may be down
                return None
            # Short slices keep stop requests and exits prompt; stop.wait returns at once on a stop.
            self.stop.wait(min(0.05, max(0.0, next_beat - time.monotonic())))

        command.finish_reading()
        if code == 0 and not timed_out:
            docs, size, version = progress.snapshot()
            if version != sent_version:
                # Best effort: the final figures matter when the item has no document count.
                with contextlib.suppress(LitecoordError, OSError):
                    self.coordinator.update_progress_and_renew_lease(item_id, docs, size, lease_epoch=epoch)
            return self._complete(item_id, epoch, result)
        message = describe_exit(code)
        if timed_out:
            how = "killed with SIGKILL" if code == -signal.SIGKILL else "stopped with SIGTERM"
            message = f"command timed out after {timeout:g}s ({how})"
        tail = command.last_output()
        error = f"{message}\n{tail}" if tail else message
        self._flush(item_id, epoch, progress)
        try:
            failed = self.coordinator.fail_work_item(item_id, error, lease_epoch=epoch)
        except _LEASE_LOST as exc:
            result.lost.append(item_id)
            self.log(f"could not record the failure of {item_id} (epoch {epoch}): {exc}")
            return None
        except (LitecoordError, OSError) as exc:
            self.log(f"could not record the failure of {item_id} (epoch {epoch}): {exc}")
            return None
        result.failed.append(item_id)
        parked = " (parked as failed)" if failed.status.value == "failed" else ""
        self.log(f"failed {item_id} (epoch {epoch}): {message}{parked}")
        return None

    def _give_back_prefetched(self) -> None:
        if self._prefetched is not None:
            outcome, _ = self._prefetched
            self._prefetched = None
            if isinstance(outcome, WorkItemAndDuration):
                self._release(outcome.work_item_id, outcome.lease_epoch, progress=None)

    def _complete(self, item_id: str, epoch: int, result: RunResult) -> None:
        for attempt in range(_MAX_TRANSIENT_RETRIES + 1):
            try:
                if self.stop.is_set():
                    self.coordinator.complete_work_item(item_id, lease_epoch=epoch)
                else:
                    # One transaction for this completion and the next lease: one commit
                    # (one sync at full durability) per item instead of two. A retry after
                    # a lost answer completes nothing twice and gets the same next lease.
                    started = self._tick()
                    _, outcome = self.coordinator.complete_and_acquire_next(
                        item_id, self.options.lease_duration, lease_epoch=epoch
                    )
                    self._prefetched = (outcome, started)
            except _LEASE_LOST as exc:
                result.lost.append(item_id)
                self.log(f"could not complete {item_id} (epoch {epoch}): {exc}")
                return None
            except (LitecoordError, OSError) as exc:
                if not _is_transient(exc) or attempt == _MAX_TRANSIENT_RETRIES:
                    self.log(f"could not complete {item_id} (epoch {epoch}): {exc}")
                    return None
                self.stop.wait(self.options.poll_interval)  # completing again is harmless
                continue
            result.completed.append(item_id)
            self.log(f"completed {item_id} (epoch {epoch})")
            return None
        return None

    def _flush(self, item_id: str, epoch: int, progress: Progress | None) -> None:
        """Record the command's last progress so the next holder can resume from it (best effort)."""
        if progress is None:
            return
        docs, size, _ = progress.snapshot()
        with contextlib.suppress(LitecoordError, OSError):
            self.coordinator.update_progress_and_renew_lease(item_id, docs, size, lease_epoch=epoch)

    def _release(self, item_id: str, epoch: int, progress: Progress | None) -> None:
        self._flush(item_id, epoch, progress)
        try:
            self.coordinator.release_work_item(item_id, lease_epoch=epoch)
        except (LitecoordError, OSError) as exc:
            self.log(f"could not release {item_id} (epoch {epoch}): {exc}; its lease will lapse instead")


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
