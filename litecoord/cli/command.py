"""The command's side of a runner: one process group per item, its output and its progress reports.

:class:`Command` starts the command in its own process group (stdin closed,
``LITECOORD_PROGRESS_FD`` open for progress reports), reads its stdout and
stderr on threads of their own (keeping the last lines for a failure
message), and kills or terminates the whole group. :func:`parse_progress`
reads one progress line. :mod:`.runner` drives these; nothing here talks to
a coordinator.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import ctypes.util
import functools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import IO, Any

from ..types import WorkItemAndDuration, format_time
from .splitting import SplitChannel, is_split_line, parse_split_accept

__all__ = ["PROGRESS_PREFIX", "parse_progress", "describe_exit", "item_environment", "Command", "Progress"]

PROGRESS_PREFIX = "LITECOORD-PROGRESS"


def parse_progress(text: str) -> tuple[int | None, int | None] | None:
    """``"[LITECOORD-PROGRESS] docs=N bytes=M"`` -> ``(N, M)``; ``None`` if malformed.

    Either key may be missing (its value is then ``None``); ``documents`` is
    accepted for ``docs``. Values must be non-negative integers.
    """
    words = text.split()
    if words and words[0] == PROGRESS_PREFIX:
        words = words[1:]
    if not words:
        return None
    docs = size = None
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not value.isdigit():
            return None
        if key in ("docs", "documents"):
            docs = int(value)
        elif key == "bytes":
            size = int(value)
        else:
            return None
    return docs, size


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
        "LITECOORD_RANGE_START": str(item.range_start),
        "LITECOORD_RANGE_END": text(item.range_end),
        "LITECOORD_LEASE_EXPIRY": text(format_time(lease.lease_expiration_time)),
        "LITECOORD_LEASE_SECONDS": f"{lease.lease_duration.total_seconds():g}",
        "LITECOORD_LEASE_EPOCH": str(lease.lease_epoch),
        "LITECOORD_ATTEMPT": str(item.attempts),
        "LITECOORD_SESSION": session,
        "LITECOORD_WORKER_ID": worker_id,
    }
    return env


def _parent_death_hook() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes Linux SIGKILL the command if its runner dies.

    A runner killed with SIGKILL cannot stop its command, which would go on
    working on an item whose lease is about to pass to another worker. The
    libc function is looked up here, before forking, so the child only makes
    one foreign call (no imports, no allocation-heavy work after fork).
    """
    prctl = _prctl()
    if prctl is None:
        return None
    parent = os.getpid()
    pr_set_pdeathsig = 1

    def hook() -> None:
        prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent:  # the runner died before the hook ran
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


@functools.lru_cache(maxsize=1)
def _prctl() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return None


class Progress:
    """The latest figures a command reported, shared by the reader threads and the loop."""

    def __init__(self, docs: int, size: int) -> None:
        self._lock = threading.Lock()
        self.docs = docs
        self.size = size
        self.version = 0  # bumps on every change; the loop compares it with what it sent
        # Which figures the command itself reported (the starting ones may be an earlier holder's).
        self._reported = [False, False]

    def update(self, docs: int | None, size: int | None) -> None:
        with self._lock:
            if docs is not None:
                self._reported[0] = True
                if docs != self.docs:
                    self.docs = docs
                    self.version += 1
            if size is not None:
                self._reported[1] = True
                if size != self.size:
                    self.size = size
                    self.version += 1

    def snapshot(self) -> tuple[int, int, int]:
        with self._lock:
            return self.docs, self.size, self.version

    def final(self) -> tuple[int | None, int | None]:
        """The figures to complete with: the command's last report of each, ``None`` where it made none."""
        with self._lock:
            return (self.docs if self._reported[0] else None, self.size if self._reported[1] else None)


class Command:
    """One running command: the process, its output readers and its progress."""

    def __init__(
        self,
        argv: Sequence[str],
        env: dict[str, str],
        progress: Progress,
        *,
        tail_lines: int,
        stdout: IO[bytes] | None,
        stderr: IO[bytes] | None,
        warn: Callable[[str], None],
        prefix: bytes | None = None,
        split: SplitChannel | None = None,
    ) -> None:
        self.progress = progress
        self.split = split
        self._prefix = prefix
        # One tail per stream: the two readers race, so a merged tail would have no reliable order.
        # stderr last: its last line, usually the cause, ends the failure message.
        self.tails: dict[str, collections.deque[str]] = {
            "stdout": collections.deque(maxlen=max(1, tail_lines)),
            "stderr": collections.deque(maxlen=max(1, tail_lines)),
        }
        self._warn = warn
        read_fd, write_fd = os.pipe()
        env = {**env, "LITECOORD_PROGRESS_FD": str(write_fd)}
        pass_fds = [write_fd]
        if split is not None:
            env.update(split.child_env())
            pass_fds.append(split.read_fd)
        try:
            self.proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                pass_fds=tuple(pass_fds),
                # Own process group: a lost lease kills the command and its children, and a
                # Ctrl-C at the terminal reaches the runner, which then stops the command itself.
                start_new_session=True,
                preexec_fn=_parent_death_hook(),
            )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)  # ours; the child keeps its copy, so EOF comes when it exits
            if split is not None:
                split.after_spawn()
        self._threads = [
            threading.Thread(target=self._read_output, args=(self.proc.stdout, stdout, "stdout"), daemon=True),
            threading.Thread(target=self._read_output, args=(self.proc.stderr, stderr, "stderr"), daemon=True),
            threading.Thread(target=self._read_progress_fd, args=(read_fd,), daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _read_output(self, stream: IO[bytes], echo: IO[bytes] | None, name: str) -> None:
        tail = self.tails[name]
        with contextlib.suppress(OSError, ValueError):
            for line in iter(stream.readline, b""):
                if name == "stdout" and line.startswith(PROGRESS_PREFIX.encode()):
                    self._on_progress(line)
                    continue
                tail.append(line.decode("utf-8", "replace").rstrip("\r\n"))  # deque.append is atomic
                if echo is not None:
                    if self._prefix is not None:
                        # One write per line, prefix included, so lines of several workers never mix;
                        # a last line without its newline gets one, or the next prefix would join it.
                        line = self._prefix + (line if line.endswith(b"\n") else line + b"\n")
                    with contextlib.suppress(OSError, ValueError):
                        echo.write(line)
                        echo.flush()

    def _read_progress_fd(self, fd: int) -> None:
        with contextlib.suppress(OSError, ValueError), os.fdopen(fd, "rb") as stream:
            for line in stream:
                self._on_progress(line)

    def _on_progress(self, line: bytes) -> None:
        text = line.decode("utf-8", "replace").strip()
        if self.split is not None and is_split_line(text):
            at = parse_split_accept(text)
            if at is None:
                self._warn(f"ignored a malformed split line: {text[:200]!r}")
            else:
                self.split.accepted(at)
            return
        parsed = parse_progress(text)
        if parsed is None:
            self._warn(f"ignored a malformed progress line: {text[:200]!r}")
            return
        self.progress.update(*parsed)

    def poll(self) -> int | None:
        return self.proc.poll()

    def signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)

    def kill(self) -> int:
        """SIGKILL the whole process group and reap the command."""
        self.signal_group(signal.SIGKILL)
        return self.proc.wait()

    def terminate(self, grace: float, urgent: threading.Event | None = None) -> int:
        """SIGTERM the process group; SIGKILL it if the command outlives ``grace`` seconds.

        ``urgent`` cuts the grace short: once it is set, the group gets SIGKILL at once.
        """
        self.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + grace
        while True:
            code = self.proc.poll()
            if code is not None:
                return code
            left = deadline - time.monotonic()
            if left <= 0 or (urgent is not None and urgent.is_set()):
                return self.kill()
            if urgent is not None:
                urgent.wait(min(0.05, left))
            else:
                time.sleep(min(0.05, left))

    def finish_reading(self, timeout: float = 5.0) -> None:
        """Wait for the readers to drain what the command wrote before it exited.

        A grandchild that inherited the pipes can keep them open after the
        command exits; the deadline keeps such a leftover from blocking the loop.
        """
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def last_output(self) -> str:
        """The last lines of stdout, then of stderr, each under its name (empty if there were none)."""
        parts = [f"{name}:\n" + "\n".join(tail) for name, tail in self.tails.items() if tail]
        return "\n".join(parts)


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"command was killed by {name}"
    return f"command exited with code {code}"
