"""Serving the REST API with waitress (the optional extra ``litecoord[server]``).

:func:`make_server` builds a server without running it (tests use port 0
and read :attr:`Server.effective_port`); :func:`serve` runs one until
interrupted, which is what ``litecoord serve`` does.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import IO, Any

from .. import validation as check
from ..backends.choose import display_name, open_coordinator
from ..backends.sqlite.store import Durability
from ..errors import ValidationError
from ..monitor import STALL_AFTER
from ..types import Clock, FakeClock
from .wsgi import App

__all__ = ["Server", "make_server", "serve", "require_waitress"]

logger = logging.getLogger("litecoord.rest.server")

INSTALL_HINT = "pip install 'litecoord[server]'"

#: Thread switch interval while a server runs (see :func:`make_server`).
SWITCH_INTERVAL = 0.0005


def require_waitress() -> Any:
    """The waitress module, or an ``ImportError`` that says how to install it."""
    try:
        import waitress.server
        import waitress.task
    except ImportError as exc:
        raise ImportError(f"serving the REST API needs waitress: {INSTALL_HINT}") from exc
    return waitress


class _SwitchInterval:
    """The interpreter's switch interval, shortened while any server of this process runs.

    Counted, so that with two servers in one process the first to stop does
    not restore the default under the second, and the last one restores it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self._saved = 0.0

    def enter(self, interval: float) -> None:
        with self._lock:
            if self._running == 0:
                self._saved = sys.getswitchinterval()
            self._running += 1
            sys.setswitchinterval(min(interval, sys.getswitchinterval()))

    def leave(self) -> None:
        with self._lock:
            self._running -= 1
            if self._running == 0:
                sys.setswitchinterval(self._saved)


_switch_interval = _SwitchInterval()


class Server:
    """A waitress server bound to its socket, not yet running.

    ``run()`` blocks until ``close()`` (from another thread) or Ctrl-C;
    ``start()`` runs it in a daemon thread. ``effective_port`` is the bound
    port (useful with ``port=0``); ``url`` is ``http://host:port``.
    """

    def __init__(self, app: App, waitress_server: Any, dispatcher: Any, switch_interval: float | None = None) -> None:
        self.app = app
        self.waitress = waitress_server
        self._dispatcher = dispatcher
        self.switch_interval = switch_interval
        self._thread: threading.Thread | None = None
        self._loop: threading.Thread | None = None  # the thread inside run()
        self._stopped = threading.Event()
        self._closed = False

    @property
    def effective_host(self) -> str:
        return str(self.waitress.effective_host)

    @property
    def effective_port(self) -> int:
        return int(self.waitress.effective_port)

    @property
    def url(self) -> str:
        host = self.effective_host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.effective_port}"

    def run(self) -> None:
        """Serve until :meth:`close` (from any thread) or KeyboardInterrupt."""
        self._loop = threading.current_thread()
        if self.switch_interval is not None:
            _switch_interval.enter(self.switch_interval)
        try:
            if not self._closed:
                self.waitress.run()
        finally:
            self._dispatcher.shutdown(cancel_pending=True, timeout=5)
            if self.switch_interval is not None:
                _switch_interval.leave()
            self._stopped.set()

    def start(self) -> Server:
        """Serve in a daemon thread; returns self."""
        self._thread = threading.Thread(target=self.run, name=f"litecoord-server-{self.effective_port}", daemon=True)
        self._thread.start()
        return self

    def close(self, timeout: float = 5.0) -> None:
        """Stop accepting, close every connection, stop the worker threads."""
        if self._closed:
            return
        self._closed = True
        from waitress import wasyncore

        server, socket_map = self.waitress, self.waitress._map
        trigger = server.trigger
        loop = self._loop
        if (
            loop is not None
            and loop.is_alive()
            and loop is not threading.current_thread()
            and not self._stopped.is_set()
        ):

            def stop_loop() -> None:
                # Runs on the loop's own thread (wasyncore is not thread-safe). It closes the
                # sockets but only unregisters the trigger: this very pull may still be writing
                # its wake-up byte, and a closed (then reused) descriptor must never get it.
                for obj in list(socket_map.values()):
                    if obj is server:
                        wasyncore.dispatcher.close(obj)  # the listener (its own close() shuts the trigger)
                    elif obj is not trigger:
                        obj.close()
                socket_map.clear()  # the loop finds its map empty and returns

            trigger.pull_trigger(stop_loop)
            self._stopped.wait(timeout)  # run() returns and stops the worker threads
        if socket_map and (loop is None or self._stopped.is_set()):
            # The loop never ran (run() sees _closed and returns), or it ended without our thunk.
            wasyncore.close_all(socket_map)
        self._dispatcher.shutdown(cancel_pending=True, timeout=timeout)
        trigger.close()  # nothing pulls it any more
        if self._thread is not None:
            self._thread.join(timeout)
        self.app.flush_access_log()  # the lines of the last requests, if they were batched
        self.app.root.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_server(
    db_path: str | os.PathLike[str],
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    token: str | None = None,
    threads: int = 8,
    durability: str = Durability.FULL,
    clock: Clock | None = None,
    max_body_bytes: int = 1_048_576,
    connection_limit: int = 1000,
    switch_interval: float | None = SWITCH_INTERVAL,
    access_log: IO[str] | None = None,
    stall_after: timedelta = STALL_AFTER,
    test_clock: bool = False,
    trust_network: bool = False,
) -> Server:
    """A waitress server for the REST API over ``db_path`` (a SQLite path or a ``postgresql://`` URI),
    bound but not running.

    ``port=0`` picks a free port (read :attr:`Server.effective_port`). Binds
    loopback by default. A non-loopback ``host`` (``0.0.0.0``, ``::``, a LAN
    address, a host name) needs a ``token``, or ``trust_network=True``
    (``ValidationError`` otherwise). A tokenless loopback server accepts only
    loopback ``Host`` and ``Origin`` headers (against DNS rebinding and
    cross-site pages).

    While it runs, the interpreter's thread switch interval is
    ``switch_interval`` seconds (restored when :meth:`Server.run` returns;
    ``None`` leaves it alone). A request thread that holds the write lock
    gives up the GIL inside every SQLite call and needs it back to commit;
    at CPython's default of 5 ms a busy sibling thread can keep it that long
    while every other writer queues behind the lock. With 16 clients at
    NORMAL durability 0.5 ms made the server 20-40% faster; a minimal WSGI
    app without the lock gained nothing measurable from it.

    ``access_log`` (a text stream) gets one line per request: time, client,
    method, path, status, duration, worker id (``litecoord serve`` writes it
    to stderr unless ``--quiet``).
    ``test_clock=True`` runs the server on a :class:`~litecoord.FakeClock`
    (``clock`` if it is one, else a new one at the current time) that
    ``POST /_test/clock`` moves (:mod:`.testclock`); it is refused
    (``ValidationError``) unless ``host`` is a loopback address.
    """
    if switch_interval is not None and (
        isinstance(switch_interval, bool) or not isinstance(switch_interval, int | float) or not switch_interval > 0
    ):
        raise ValidationError("switch_interval", f"must be positive seconds or None (got {switch_interval!r})")
    fake: FakeClock | None = None
    if test_clock:
        from .testclock import new_test_clock, require_loopback

        require_loopback(host)
        clock = fake = new_test_clock(clock)  # the coordinator reads the very clock the routes move
    local = check_exposure(host, token, trust_network)
    waitress = require_waitress()
    # PostgreSQL: one pool of as many connections as request threads; SQLite: one per thread.
    root = open_coordinator(db_path, clock=clock, durability=durability, pool_size=threads)
    # Check the database before anything is bound (its schema created if missing, as a write that
    # creates items does): a directory, a missing directory or another application's file or
    # tables fail here.
    root.store.ensure_schema()
    app = App(
        root,
        token=token,
        max_body_bytes=max_body_bytes,
        access_log=access_log,
        stall_after=stall_after,
        test_clock=fake,
        local_only=local and token is None,
    )
    dispatcher = _dispatcher_class(waitress)(root)
    dispatcher.set_thread_count(threads)
    try:
        server = waitress.server.create_server(
            app,
            host=host,
            port=port,
            threads=threads,
            ident="litecoord",
            # Our own 413 answers before the body matters; waitress's cap just stays above it.
            max_request_body_size=max(max_body_bytes * 2, 1 << 20),
            clear_untrusted_proxy_headers=True,
            # Every worker keeps one idle keep-alive connection between renewals. At waitress's
            # default limit (100) the 101st worker would stall until an idle one timed out (120 s),
            # so allow many, and poll() rather than select() (which stops at 1024 descriptors).
            connection_limit=connection_limit,
            asyncore_use_poll=True,
            _dispatcher=dispatcher,
        )
    except BaseException as exc:
        dispatcher.shutdown(cancel_pending=True, timeout=5)
        if isinstance(exc, OSError):  # the port is taken, or may not be bound: say which, in one line
            root.close()
            hint = " (another process holds it: choose another port, or 0 for a free one)"
            error = OSError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}"
                + (hint if exc.errno == errno.EADDRINUSE else "")
            )
            error.errno = exc.errno
            raise error from None
        raise
    # waitress answers what it refuses before the app sees it (a body over its cap, a bad
    # request line or URI, an invalid Content-Length) itself: in JSON too, as the README promises.
    server.channel_class = _json_error_channel(waitress)
    return Server(app, server, dispatcher, switch_interval)


#: The error code of each status waitress answers itself.
_WAITRESS_CODES = {
    400: "bad_request",
    413: "payload_too_large",
    431: "request_header_fields_too_large",
    501: "not_implemented",
}


def _json_error_channel(waitress: Any) -> type:
    import waitress.channel

    class JsonErrorTask(waitress.task.ErrorTask):  # type: ignore[misc,name-defined]
        """waitress's error answer as JSON ``{"detail", "code"}`` (its own is text/plain)."""

        def execute(self) -> None:
            error = self.request.error
            code = _WAITRESS_CODES.get(error.code, "bad_request" if error.code < 500 else "internal_error")
            detail = f"{error.reason}: {error.body}" if error.body else error.reason
            body = json.dumps({"detail": detail, "code": code}).encode("utf-8") + b"\n"
            self.status = f"{error.code} {error.reason}"
            self.response_headers.append(("Content-Type", "application/json"))
            self.set_close_on_finish()
            self.content_length = len(body)
            self.write(body)

    class JsonErrorChannel(waitress.channel.HTTPChannel):  # type: ignore[misc,name-defined]
        error_task_class = JsonErrorTask

    return JsonErrorChannel


def check_exposure(host: str, token: str | None, trust_network: bool) -> bool:
    """Whether ``host`` is loopback; refuses a non-loopback address without a token unless trusted.

    Without a token anyone who can reach the port can lease, complete and
    delete work: on loopback that is this machine's users (and, through the
    Host check of App.local_only, no web page); on any other address it is
    the network, which only an explicit ``trust_network`` may accept.
    """
    if token is not None:
        check.token(token)
    local = check.is_loopback_host(host)
    if not local and token is None and not trust_network:
        raise ValidationError(
            "host",
            f"refusing to serve {host} without a token: anyone who can reach it could lease, complete or "
            "delete work. Set a token (--token or LITECOORD_TOKEN), or pass --trust-network if every host "
            "that can reach this address may do that",
        )
    return local


def _dispatcher_class(waitress: Any) -> type:
    class Dispatcher(waitress.task.ThreadedTaskDispatcher):  # type: ignore[misc,name-defined]
        """Closes each worker thread's SQLite connection and lock file when the thread ends.

        The store keeps them per thread; without this a stopped server leaves
        them open until garbage collection.
        """

        def __init__(self, coordinator: Any) -> None:
            super().__init__()
            self._coordinator = coordinator

        def handler_thread(self, thread_no: int) -> None:
            try:
                super().handler_thread(thread_no)
            finally:
                self._coordinator.close()

    return Dispatcher


def serve(
    db_path: str | os.PathLike[str],
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    token: str | None = None,
    threads: int = 8,
    durability: str = Durability.FULL,
    clock: Clock | None = None,
    max_body_bytes: int = 1_048_576,
    access_log: IO[str] | None = None,
    stall_after: timedelta = STALL_AFTER,
    test_clock: bool = False,
    on_ready: Callable[[Server], None] | None = None,
    trust_network: bool = False,
) -> int | None:
    """Serve the REST API over ``db_path`` until interrupted (``litecoord serve``).

    Returns the signal that stopped it (``signal.SIGINT`` for Ctrl-C,
    ``signal.SIGTERM``), or ``None`` if the server stopped otherwise.
    ``access_log`` gets one line per request (see :class:`~litecoord.rest.wsgi.App`).
    ``on_ready(server)`` runs once the socket is bound, before the first
    request is served (``litecoord serve --ephemeral`` announces the URL there).
    """
    server = make_server(
        db_path,
        host,
        port,
        token=token,
        threads=threads,
        durability=durability,
        clock=clock,
        max_body_bytes=max_body_bytes,
        access_log=access_log,
        stall_after=stall_after,
        test_clock=test_clock,
        trust_network=trust_network,
    )
    ping = getattr(server.app.root.store, "ping", None)
    if ping is not None:  # PostgreSQL: an unreachable database is one clear error now, not 503s later
        try:
            ping()
        except BaseException:
            server.close()
            raise
    # SIGTERM (service managers, docker stop) shuts down as cleanly as Ctrl-C does.
    # SIGINT is installed explicitly too: a process started in the background by a
    # non-interactive shell inherits SIGINT ignored, and Python then leaves it so.
    # Both are in place before anyone learns the URL: a harness that reads it and
    # stops the server at once still gets a clean stop (and its temporary file removed).
    previous: dict[int, Any] = {}
    received: list[int] = []

    def interrupt(signum: int, frame: Any) -> None:
        received.append(signum)  # noted first: waitress's run() swallows the KeyboardInterrupt
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, interrupt)
    try:
        # One line on stderr, like waitress's own "Serving on ...": the user learns the URL and port.
        extra = "; test clock at /_test/clock" if test_clock else ""
        print(
            f"litecoord: serving {display_name(db_path)} on {server.url} "
            f"(auth: {'bearer token' if token else 'none'}{extra}); status page: {server.url}/",
            file=sys.stderr,
            flush=True,
        )
        if on_ready is not None:
            on_ready(server)
        server.run()
    except KeyboardInterrupt:
        received.append(signal.SIGINT)
    finally:
        server.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return received[0] if received else None
