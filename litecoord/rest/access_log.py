"""The REST server's access log: one line per request, in order.

``2025-01-19T20:30:00Z 127.0.0.1 POST /sessions/s1/backfill/work-items/acquire 200 1.2ms worker=w1``
(``worker=-`` when the request named none). The duration is the app's own
time (the store included), not the network's.

Why lines are batched under load: writing a line is a system call, and a
request thread that makes one gives up the interpreter lock and queues for
it again behind every busy request thread. With 16 clients that cost the
server about a twentieth of its requests. So a request that is the only one
in flight writes its line (and any queued before it) itself, before its
answer is sent, as a line per request always was; a request that has
company queues its line, and a writer thread writes what is queued at most
:attr:`AccessLog.BATCH_SECONDS` later, in one write. Lines keep their
order; :meth:`AccessLog.flush` (the server calls it when it stops, and at
exit) writes what is left.
"""

from __future__ import annotations

import atexit
import threading
import time
import weakref
from collections import deque
from typing import IO, Any

from .request import _NO_BODY, Request

__all__ = ["AccessLog", "request_worker", "printable"]


def request_worker(request: Request) -> str | None:
    """The worker id a request named: in the query (Java client), else in a body already parsed."""
    worker = request.query.get("worker_id")
    if worker is None and request._body is not _NO_BODY:
        body = request._body
        if isinstance(body, dict):
            worker = body.get("worker_id")
        elif isinstance(body, str):
            worker = body  # complete's body is the bare worker id
    return worker if isinstance(worker, str) else None


def printable(text: str) -> str:
    """Text safe on one log line: no spaces or control characters (a client chose it)."""
    if text.isprintable() and " " not in text:
        return text
    return "".join(c if c.isprintable() and c != " " else f"\\x{ord(c):02x}" for c in text)


_OPEN: weakref.WeakSet[AccessLog] = weakref.WeakSet()


@atexit.register
def _flush_all() -> None:  # the writer is a daemon thread: what it had not written yet
    for log in list(_OPEN):
        log.flush()


class AccessLog:
    """The access-log lines of one server, for one text stream.

    The request path takes no lock: the in-flight count, the queue and the
    time stamp are each changed by one operation the interpreter makes
    atomic (a list's append and pop, a deque's append and popleft, one
    attribute assignment). A lock there is one a request thread can be
    switched out holding, and then every other request thread blocks on it:
    at 16 clients each such wait was a context switch more per request.
    Races only decide whether a line is written now or by the writer thread
    (never whether it is written, nor its order).
    """

    #: How long a queued line waits at most before the writer thread writes it.
    BATCH_SECONDS = 0.05

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        # A line-buffered stream (stderr) flushes each write itself; anything else is flushed per write.
        self._flush = not getattr(stream, "line_buffering", False)
        self._in_flight: list[None] = []  # one entry per request begun and not yet logged
        self._queue: deque[str] = deque()
        self._writing = threading.Lock()  # one write to the stream at a time, in queue order
        self._queued = threading.Event()
        self._writer: threading.Thread | None = None
        self._starting = threading.Lock()  # taken once, to start the writer thread
        self._stamp: tuple[int, str] = (-1, "")  # (second, its text): formatting costs more than the rest
        _OPEN.add(self)

    def begin(self) -> None:
        """A request arrived (its line is logged with :meth:`log`)."""
        self._in_flight.append(None)

    def log(self, environ: Any, request: Request | None, status: int, seconds: float) -> None:
        """Log the request that :meth:`begin` counted: written now if it was alone, else batched."""
        worker = request_worker(request) if request is not None else None
        path = environ.get("REQUEST_URI") or environ.get("RAW_URI")
        if not path:  # no raw URI from the server: rebuild it
            path = environ.get("PATH_INFO") or ""
            if environ.get("QUERY_STRING"):
                path += "?" + environ["QUERY_STRING"]
        second = int(time.time())
        stamp = self._stamp
        if stamp[0] != second:
            stamp = self._stamp = (second, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second)))
        self._queue.append(
            f"{stamp[1]} {environ.get('REMOTE_ADDR') or '-'} {environ.get('REQUEST_METHOD') or '-'} "
            f"{printable(path)} {status} {seconds * 1000:.1f}ms worker={printable(worker) if worker else '-'}\n"
        )
        in_flight = self._in_flight
        if in_flight:  # a log() without its begin() (a caller's mistake) must not raise
            in_flight.pop()
        if not in_flight:
            self.flush()  # alone: written before the answer
            return
        if self._writer is None:
            self._start_writer()
        if not self._queued.is_set():  # set() takes the event's lock: only when the writer may be asleep
            self._queued.set()

    def _start_writer(self) -> None:
        with self._starting:
            if self._writer is None:
                writer = threading.Thread(target=self._write_batches, name="litecoord-access-log", daemon=True)
                writer.start()
                self._writer = writer

    def flush(self) -> None:
        """Write every queued line now."""
        with self._writing:
            queue, lines = self._queue, []
            while queue:  # popleft is atomic: a line queued meanwhile is taken now or by the next flush
                lines.append(queue.popleft())
            if lines:
                try:
                    self.stream.write("".join(lines))
                    if self._flush:
                        self.stream.flush()
                except (OSError, ValueError):
                    pass  # a closed or broken log must not fail the requests it describes

    def _write_batches(self) -> None:
        while True:
            self._queued.wait()
            time.sleep(self.BATCH_SECONDS)  # let the lines of the requests in flight gather
            self._queued.clear()  # before taking the queue: a line queued after this sets it again
            self.flush()
