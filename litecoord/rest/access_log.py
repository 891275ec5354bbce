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
    """The access-log lines of one server, for one text stream."""

    #: How long a queued line waits at most before the writer thread writes it.
    BATCH_SECONDS = 0.05

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        # A line-buffered stream (stderr) flushes each write itself; anything else is flushed per write.
        self._flush = not getattr(stream, "line_buffering", False)
        self._lock = threading.Lock()  # the queue, the in-flight count and the time stamp
        self._queue: list[str] = []
        self._in_flight = 0
        self._writing = threading.Lock()  # one write to the stream at a time, in queue order
        self._queued = threading.Event()
        self._writer: threading.Thread | None = None
        self._stamp, self._stamp_second = "", -1
        _OPEN.add(self)

    def begin(self) -> None:
        """A request arrived (its line is logged with :meth:`log`)."""
        with self._lock:
            self._in_flight += 1

    def log(self, environ: Any, request: Request | None, status: int, seconds: float) -> None:
        """Log the request that :meth:`begin` counted: written now if it was alone, else batched."""
        worker = request_worker(request) if request is not None else None
        path = environ.get("REQUEST_URI") or environ.get("RAW_URI")
        if not path:  # no raw URI from the server: rebuild it
            path = environ.get("PATH_INFO") or ""
            if environ.get("QUERY_STRING"):
                path += "?" + environ["QUERY_STRING"]
        rest = (
            f" {environ.get('REMOTE_ADDR') or '-'} {environ.get('REQUEST_METHOD') or '-'} {printable(path)} "
            f"{status} {seconds * 1000:.1f}ms worker={printable(worker) if worker else '-'}\n"
        )
        second = int(time.time())
        with self._lock:
            if second != self._stamp_second:  # formatting the time costs more than the rest of the line
                self._stamp, self._stamp_second = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second)), second
            self._queue.append(self._stamp + rest)
            alone = self._in_flight == 1
            self._in_flight -= 1
            start = not alone and self._writer is None
            if start:
                self._writer = threading.Thread(target=self._write_batches, name="litecoord-access-log", daemon=True)
        if alone:
            self.flush()
        else:
            if start:
                self._writer.start()  # type: ignore[union-attr]
            self._queued.set()

    def flush(self) -> None:
        """Write every queued line now."""
        with self._writing:
            with self._lock:
                lines, self._queue = self._queue, []
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
