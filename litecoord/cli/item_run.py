"""One leased item in the worker runner: confirm the lease, run the command, watch it, record the outcome.

Mixed into :class:`~.runner.Runner`, whose acquire loop hands each lease to
:meth:`ItemRun._work_on`. This is the per-item half of the loop: the
supervision that renews the lease while the command runs and kills the
command before the lease could lapse, then the calls that complete, fail or
release the item, repeated across outages so that no outcome is dropped
silently. Kept apart from the acquire loop, options and results
(:mod:`.runner`) so that each file holds one concern.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import threading
import time
from typing import IO, TYPE_CHECKING, Any

from ..errors import DatabaseBusyError, LitecoordError
from ..protocol import Coordinator
from ..types import AcquisitionOutcome, WorkItem, WorkItemAndDuration, WorkItemStatus, micros_of, to_micros
from .calls import _LEASE_LOST, Outage, Pending, _is_transient, _is_unreachable
from .command import Command, Progress, describe_exit, item_environment
from .exits import EXIT_ERROR, EXIT_INTERRUPTED, RunResult
from .splitting import SplitCalls, SplitChannel

if TYPE_CHECKING:  # runner.py imports this module: only the type checker may look back
    from .runner import RunnerOptions

__all__ = ["ItemRun"]


class ItemRun(SplitCalls):
    """The runner's work on one leased item (and the split calls its command may ask for).

    The state and the clock and call helpers are the :class:`~.runner.Runner`'s.
    """

    options: RunnerOptions
    coordinator: Coordinator
    stop: threading.Event
    urgent: threading.Event
    _stdout: IO[bytes] | None
    _stderr: IO[bytes] | None
    _abandoned: set[tuple[str, int]]
    _prefetched: tuple[AcquisitionOutcome, int] | None
    _lease_confirmed: bool

    def _seconds(self) -> float:  # pragma: no cover - the Runner's
        raise NotImplementedError

    def _abandon_call(self) -> None:  # pragma: no cover - the Runner's
        raise NotImplementedError

    def _heartbeat(self, lease: WorkItemAndDuration) -> float:  # pragma: no cover - the Runner's
        raise NotImplementedError

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
