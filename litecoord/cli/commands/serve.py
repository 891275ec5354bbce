"""``litecoord serve``: the REST API and status page."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import click

from .base import (
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    CliError,
    _db_option,
    _one_line,
    _stall_after_option,
    cli,
)

# -- serving -----------------------------------------------------------------------------------


@cli.command()
@_db_option
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. The default accepts only this machine; any other address "
    "(0.0.0.0, ::, a LAN address) needs a --token, or --trust-network.",
)
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="TCP port.")
@click.option(
    "--token", envvar="LITECOORD_TOKEN", metavar="TOKEN", help="Require this bearer token [env LITECOORD_TOKEN]."
)
@click.option("--threads", type=click.IntRange(min=1), default=8, show_default=True, help="Request threads.")
@click.option("--quiet", "-q", is_flag=True, help="No access log (one line per request on stderr).")
@click.option(
    "--trust-network",
    is_flag=True,
    help="Serve a non-loopback --host without a token: every host that can reach it may lease, "
    "complete and delete work.",
)
@_stall_after_option(
    "The page and the metrics flag a lease stalled when its progress stands still this long."
)
@click.option(
    "--ephemeral",
    is_flag=True,
    help="For test harnesses: serve a new temporary file (removed at exit) on a free port (unless --port "
    "is given), and print the base URL alone as the first line on stdout.",
)
@click.option(
    "--test-clock",
    is_flag=True,
    help="For tests only: run on a fake clock that POST /_test/clock moves "
    '({"advance_seconds": 360} or {"now": "2025-01-19T20:36:00Z"}) and GET /_test/clock reads. '
    "Loopback hosts only.",
)
@click.option(
    "--port-file",
    type=click.Path(dir_okay=False, writable=True),
    metavar="PATH",
    help="Once listening, write the base URL to PATH (atomically; removed at exit).",
)
@click.pass_context
def serve(
    ctx: click.Context,
    db: str,
    host: str,
    port: int,
    token: str | None,
    threads: int,
    quiet: bool,
    ephemeral: bool,
    test_clock: bool,
    port_file: str | None,
    trust_network: bool,
    stall_after: float,
) -> None:
    """Serve the console REST API for the --db file or database (needs `pip install 'litecoord[server]'`).

    Workers on other hosts then use `--url http://HOST:PORT`. Over PostgreSQL
    (--db postgresql://...) any number of servers serve the same sessions. A browser at
    http://HOST:PORT/ shows the live status page; /metrics serves Prometheus
    metrics. Each request is logged on stderr (time, client, method, path,
    status, duration, worker id) unless --quiet. Ctrl-C stops it with exit
    code 130; SIGTERM (a service manager's stop) with 0. Tests of clients in
    any language start `litecoord serve --ephemeral --test-clock`, read the
    base URL from its first line of output, and stop it with SIGTERM.
    """
    try:
        from ...rest.server import serve as run_server
    except ImportError as exc:
        raise CliError(f"the REST server is not available in this installation ({exc})") from None
    source = click.core.ParameterSource
    if ephemeral and ctx.get_parameter_source("db") is source.COMMANDLINE:
        raise CliError("--ephemeral serves a new temporary file: leave out --db", EXIT_USAGE)
    if ephemeral and ctx.get_parameter_source("port") is not source.COMMANDLINE:
        port = 0

    def announce(server: Any) -> None:
        # The file first: whoever reads the line on stdout may look for the file next.
        if port_file:
            _write_atomically(port_file, server.url + "\n")
        if ephemeral:
            click.echo(server.url)  # alone on the first line: what a harness reads
            sys.stdout.flush()

    try:
        with _ephemeral_file() if ephemeral else contextlib.nullcontext(db) as path:
            try:
                stopped_by = run_server(
                    path,
                    host=host,
                    port=port,
                    token=token,
                    threads=threads,
                    access_log=None if quiet else sys.stderr,
                    stall_after=timedelta(seconds=stall_after),
                    # A file removed at exit cannot need to survive a power loss: skip the syncs.
                    durability="normal" if ephemeral else "full",
                    test_clock=test_clock,
                    on_ready=announce,
                    trust_network=trust_network,
                )
            finally:
                if port_file:
                    with contextlib.suppress(FileNotFoundError):
                        os.remove(port_file)  # a stale URL must not outlive the server
    except KeyboardInterrupt:
        stopped_by = signal.SIGINT
    except (ImportError, RuntimeError) as exc:
        raise CliError(_one_line(str(exc))) from None
    if stopped_by == signal.SIGINT:
        sys.exit(EXIT_INTERRUPTED)


@contextlib.contextmanager
def _ephemeral_file() -> Iterator[str]:
    """A new coordination file in a temporary directory, removed (with its WAL) on the way out."""
    with tempfile.TemporaryDirectory(prefix="litecoord-ephemeral-") as directory:
        yield os.path.join(directory, "litecoord.db")


def _write_atomically(path: str, text: str) -> None:
    # A harness polling the file must never read half a URL: write beside it, then rename over it.
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(temporary, path)


