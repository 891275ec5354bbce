"""``litecoord work --workers N``: N runner processes, watched, restarted when they die, stopped together.

:class:`Supervisor` starts one ``python -m litecoord.cli work`` process per
worker id and watches them:

* a worker that dies (killed by a signal, or an exit code other than the
  runner's "finished" codes 0, 3 and 4, or 130 for a worker someone stopped
  on purpose) is announced at once and restarted under the *same* worker id,
  after a delay that doubles with each recent death (:class:`RestartPolicy`).
  More than ``max_restarts`` deaths of one worker within ``window`` seconds
  and that worker is given up (announced), so a crash loop does not spin;
  the others go on.
* Why the same id: the dead worker's item is still leased to that id. A
  worker holds at most one live lease per session and asking again returns
  it, so the restarted worker picks its item up again at once (resuming
  from the last recorded progress) instead of leaving it idle until the
  lease lapses. The runner renews such an inherited lease before starting
  the command, so the lease's length counts from then. On Linux the dead
  worker's command died with it (``PR_SET_PDEATHSIG``); elsewhere it may
  outlive its runner, as it would with any other id.
* Each worker reads the end of a pipe whose other end only the supervisor
  holds (:func:`stop_when_closed`). However the supervisor ends, SIGKILL
  included, the kernel closes its end, the worker reads EOF and stops as on
  SIGTERM: it stops its command, records the command's progress and
  releases its item. This works on any POSIX system, where
  ``PR_SET_PDEATHSIG`` exists only on Linux.
* A stop request (the first Ctrl-C or SIGTERM) sends each worker SIGTERM: they
  stop their commands (SIGTERM, SIGKILL after ``grace``) and release their
  items. An urgent one (the second signal) sends SIGTERM again, which workers
  take as "kill the command now". Workers run in their own sessions, so a
  Ctrl-C at the terminal reaches only the supervisor, which forwards it once.
"""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from .runner import EXIT_ALL_DONE, EXIT_ALL_LEASED, EXIT_FAILED_REMAIN, EXIT_INTERRUPTED

__all__ = ["RestartPolicy", "WorkerResult", "Supervisor", "stop_when_closed", "describe_exit"]

#: Exit codes of a worker that ended its run normally: it is not restarted.
_FINISHED = (EXIT_ALL_DONE, EXIT_FAILED_REMAIN, EXIT_ALL_LEASED)

#: After an urgent stop, how long workers get to kill their commands and release their items.
_URGENT_DEADLINE = 10.0


@dataclass(frozen=True)
class RestartPolicy:
    """How dead workers are restarted: at most ``max_restarts`` per ``window`` seconds, with backoff.

    The n-th death within the window waits ``backoff * 2 ** (n - 1)`` seconds
    (at most ``max_backoff``) before the restart; a death beyond
    ``max_restarts`` within the window gives the worker up.
    ``max_restarts=0`` never restarts.
    """

    max_restarts: int = 5
    window: float = 60.0
    backoff: float = 0.5
    max_backoff: float = 30.0

    def delay(self, recent_deaths: int) -> float:
        return min(self.max_backoff, self.backoff * 2 ** max(0, recent_deaths - 1))


@dataclass
class WorkerResult:
    """One worker slot's outcome: its last process's exit code (negative: killed by that signal)."""

    worker_id: str
    exit_code: int
    restarts: int = 0
    #: Restarted too often within the window, and left dead.
    gave_up: bool = False


@dataclass
class _Slot:
    worker_id: str
    proc: subprocess.Popen[bytes] | None = None
    #: The supervisor's end of the pipe the worker watches (closing it tells the worker to stop).
    pipe: int | None = None
    restart_at: float | None = None
    deaths: collections.deque[float] = field(default_factory=collections.deque)
    result: WorkerResult | None = None


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


class Supervisor:
    """Runs one worker process per id until each has finished, been given up, or been stopped.

    ``argv(worker_id, fd)`` is the command line of one worker, which must
    stop when the file descriptor ``fd`` reads EOF (``work --supervisor-fd``).
    ``log`` receives one line per event (deaths, restarts, giving up, stopping).
    ``stop``/``urgent`` are the events :func:`~litecoord.cli.runner.stop_on_signals` sets.
    """

    def __init__(
        self,
        worker_ids: Sequence[str],
        argv: Callable[[str, int], Sequence[str]],
        *,
        stop: threading.Event,
        urgent: threading.Event | None = None,
        env: Mapping[str, str] | None = None,
        grace: float = 5.0,
        policy: RestartPolicy | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self._slots = [_Slot(wid) for wid in worker_ids]
        self._argv = argv
        self.stop = stop
        self.urgent = urgent or threading.Event()
        self._env = None if env is None else dict(env)
        self.grace = grace
        self.policy = policy or RestartPolicy()
        self._log = log or (lambda line: None)
        self._stopping_since: float | None = None
        self._urgent_since: float | None = None

    def log(self, message: str) -> None:
        self._log(f"supervisor: {message}")

    def run(self) -> list[WorkerResult]:
        """Start the workers and supervise them until none is left; one result per worker id, in order."""
        try:
            for slot in self._slots:
                self._start(slot)
            while True:
                self._handle_stop()
                now = time.monotonic()
                for slot in self._slots:
                    if slot.proc is not None:
                        code = slot.proc.poll()
                        if code is not None:
                            self._on_exit(slot, code, now)
                    elif slot.restart_at is not None and now >= slot.restart_at:
                        slot.restart_at = None
                        self._start(slot)
                if all(s.proc is None and s.restart_at is None for s in self._slots):
                    break
                time.sleep(0.1)  # a signal's handler runs during the sleep; the next pass sees its event
        finally:
            self._teardown()
        return [s.result or WorkerResult(s.worker_id, EXIT_INTERRUPTED) for s in self._slots]

    # -- events -------------------------------------------------------------------

    def _start(self, slot: _Slot) -> None:
        read_fd, write_fd = os.pipe()  # both non-inheritable: no other worker or command gets them
        try:
            slot.proc = subprocess.Popen(
                list(self._argv(slot.worker_id, read_fd)),
                env=self._env,
                pass_fds=(read_fd,),
                stdin=subprocess.DEVNULL,
                # Own session: a Ctrl-C at the terminal reaches only us, and we forward it once;
                # otherwise every worker would get it twice (from the terminal and from us).
                start_new_session=True,
            )
        except BaseException:
            os.close(write_fd)
            raise
        finally:
            os.close(read_fd)
        slot.pipe = write_fd
        if slot.result is not None:  # a restart
            self.log(f"restarted {slot.worker_id} (pid {slot.proc.pid})")

    def _on_exit(self, slot: _Slot, code: int, now: float) -> None:
        assert slot.proc is not None
        pid = slot.proc.pid
        slot.proc = None
        self._close_pipe(slot)
        restarts = 0 if slot.result is None else slot.result.restarts
        slot.result = WorkerResult(slot.worker_id, code, restarts)
        if code in _FINISHED:
            return  # the worker logged why it ended
        if self.stop.is_set():
            if code != EXIT_INTERRUPTED:
                self.log(f"{slot.worker_id} (pid {pid}) {describe_exit(code)} while stopping")
            return
        if code == EXIT_INTERRUPTED:
            # SIGTERM sent to this worker alone: someone stopped it on purpose (it released its item).
            self.log(f"{slot.worker_id} (pid {pid}) was stopped (exit {code}); not restarting it")
            return
        policy = self.policy
        while slot.deaths and slot.deaths[0] <= now - policy.window:
            slot.deaths.popleft()
        slot.deaths.append(now)
        recent = len(slot.deaths)
        if recent > policy.max_restarts:
            slot.result.gave_up = True
            others = sum(1 for s in self._slots if s.proc is not None or s.restart_at is not None)
            self.log(
                f"{slot.worker_id} (pid {pid}) {describe_exit(code)}; it died {recent} times within "
                f"{policy.window:g}s, more than --max-restarts {policy.max_restarts}: not restarting it "
                f"({others} other worker(s) go on)"
            )
            return
        delay = policy.delay(recent)
        slot.result.restarts += 1
        slot.restart_at = now + delay
        self.log(
            f"{slot.worker_id} (pid {pid}) {describe_exit(code)}; restarting it in {delay:g}s "
            f"(restart {recent} of at most {policy.max_restarts} within {policy.window:g}s)"
        )

    def _handle_stop(self) -> None:
        now = time.monotonic()
        live = [s for s in self._slots if s.proc is not None and s.proc.poll() is None]
        if self.stop.is_set() and self._stopping_since is None:
            self._stopping_since = now
            for slot in self._slots:
                slot.restart_at = None  # a pending restart is cancelled
            self.log(
                f"stopping: {len(live)} worker(s) stop their commands (SIGKILL after --grace {self.grace:g}s) "
                "and release their items; Ctrl-C again to kill the commands now"
            )
            self._signal(live, signal.SIGTERM)
        if self.urgent.is_set() and self._urgent_since is None:
            self._urgent_since = now
            self.log(f"stopping now: {len(live)} worker(s) kill their commands and release their items")
            self._signal(live, signal.SIGTERM)  # the second SIGTERM: the worker's urgent stop
        # Last resort: a worker that does not stop (a hung store, a stuck thread) is killed;
        # its item's lease then lapses and the item passes on.
        overdue = (self._stopping_since is not None and now - self._stopping_since > 2 * self.grace + 10) or (
            self._urgent_since is not None and now - self._urgent_since > _URGENT_DEADLINE
        )
        if overdue and live:
            self.log(f"killing {len(live)} worker(s) that did not stop: {', '.join(s.worker_id for s in live)}")
            self._signal(live, signal.SIGKILL)

    @staticmethod
    def _signal(slots: list[_Slot], sig: int) -> None:
        for slot in slots:
            if slot.proc is not None:
                with contextlib.suppress(ProcessLookupError):
                    slot.proc.send_signal(sig)

    def _close_pipe(self, slot: _Slot) -> None:
        if slot.pipe is not None:
            with contextlib.suppress(OSError):
                os.close(slot.pipe)
            slot.pipe = None

    def _teardown(self) -> None:
        """Leave no worker behind: on an error in the loop, closing the pipes stops the workers gracefully."""
        for slot in self._slots:
            self._close_pipe(slot)
        deadline = time.monotonic() + self.grace + 10
        for slot in self._slots:
            if slot.proc is None:
                continue
            try:
                slot.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                slot.proc.kill()
                slot.proc.wait()
            if slot.result is None or slot.result.exit_code != slot.proc.returncode:
                restarts = 0 if slot.result is None else slot.result.restarts
                slot.result = WorkerResult(slot.worker_id, slot.proc.returncode, restarts)
            slot.proc = None


def stop_when_closed(fd: int, on_closed: Callable[[], None]) -> threading.Thread:
    """Call ``on_closed`` (from a daemon thread) once ``fd`` reads EOF: the supervisor that holds its other end is gone.

    Nothing is ever written to the pipe; any data read is ignored.
    """

    def watch() -> None:
        with contextlib.suppress(OSError):
            while os.read(fd, 64):
                pass
        on_closed()

    thread = threading.Thread(target=watch, name="litecoord-supervisor-watch", daemon=True)
    thread.start()
    return thread
