"""The worker runner (``litecoord work``) and the demo."""

from __future__ import annotations

import contextlib
import functools
import io
import os
import socket
import sys
import threading
from datetime import timedelta

import click

from ...backends.choose import is_postgres
from ...protocol import DEFAULT_LEASE_DURATION
from .. import runner, supervisor
from .base import (
    Seconds,
    Target,
    _lease_option,
    cli,
    coordinator_options,
)
from .views import _terminal

# -- the worker runner ----------------------------------------------------------------------------

_WORK_HELP = (
    f"""Run COMMAND once per work item until no work is left.

For each item the runner acquires a lease, runs COMMAND with the item in
environment variables (LITECOORD_WORK_ITEM_ID, _INDEX_NAME, _SHARD_NUMBER,
_DOCUMENT_COUNT, _TOTAL_SIZE_BYTES, _DOCUMENTS_PROCESSED, _BYTES_PROCESSED,
_LEASE_EXPIRY, _LEASE_SECONDS, _LEASE_EPOCH, _ATTEMPT, _SESSION, _WORKER_ID,
_PROGRESS_FD), renews the lease every heartbeat while it runs, and completes
the item when COMMAND exits 0 or records a failure (exit code and last
output lines) otherwise; a failed item comes back after the session's retry
delay (see `litecoord setup --retry-delay`). If the lease is lost,
COMMAND's process group is killed.

COMMAND reports progress (absolute totals) with lines on stdout, or on the
file descriptor in LITECOORD_PROGRESS_FD:

\b
    {runner.PROGRESS_PREFIX} docs=1200 bytes=480000

\b
Exit codes:
"""
    + "\n".join(f"  {code:>3}  {text}" for code, text in runner.EXIT_CODES.items())
    + """

With --workers N, N runner processes run side by side (worker ids
<ID>-1 .. <ID>-N) and the exit code describes the whole run. A worker that
dies is announced and restarted under its own id (it picks its item up
again); one that dies more than --max-restarts times within a minute is
given up. The first Ctrl-C stops the commands (SIGKILL after --grace) and
releases their items; a second one kills the commands at once.

Example: litecoord work --db backfill.db --workers 4 -- ./reindex-shard.sh
"""
)


@cli.command(help=_WORK_HELP, context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@coordinator_options()
@click.option("--workers", "-n", type=click.IntRange(1, 512), default=1, show_default=True, help="Runner processes.")
@_lease_option(DEFAULT_LEASE_DURATION.total_seconds())
@click.option(
    "--heartbeat",
    type=Seconds(min=0.01),
    metavar="SECONDS",
    help=f"Seconds between renewals [default: a third of the lease, at most {runner.DEFAULT_MAX_HEARTBEAT:g}].",
)
@click.option(
    "--poll", type=Seconds(min=0.01), default=1.0, show_default=True, help="Seconds between acquire attempts."
)
@click.option(
    "--wait/--no-wait",
    default=True,
    show_default=True,
    help="While all remaining work is leased elsewhere, keep polling (a holder may die) or exit 4 at once.",
)
@click.option(
    "--grace", type=Seconds(min=0), default=5.0, show_default=True, help="Seconds from SIGTERM to SIGKILL."
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Stop COMMAND if it runs longer than this on one item (SIGTERM, SIGKILL after --grace) "
    "and count the attempt as failed [default: no limit].",
)
@click.option(
    "--prefix/--no-prefix",
    default=None,
    help="Start each line COMMAND writes with '<worker> <item> | ' [default: on with --workers > 1]. "
    "--no-prefix passes the output through unchanged (binary, JSON).",
)
@click.option(
    "--max-restarts",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    help="With --workers: restart a dead worker at most this often within "
    f"{supervisor.RestartPolicy().window:g}s (with a growing delay), then give it up.",
)
@click.option(
    "--split",
    is_flag=True,
    help="Open the split channel: COMMAND reads split requests from the descriptor in LITECOORD_SPLIT_FD "
    "and may accept a new end ('split at=N' on its progress channel); the runner then splits its item "
    "there. Without it no item is split on COMMAND's behalf.",
)
@click.option("--quiet", "-q", is_flag=True, help="Do not echo COMMAND's output or the runner's events.")
# Set by the supervisor of --workers N: EOF on this descriptor means the supervisor is gone.
@click.option("--supervisor-fd", type=click.IntRange(min=0), hidden=True)
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def work(
    target: Target,
    workers: int,
    lease_seconds: float,
    heartbeat: float | None,
    poll: float,
    wait: bool,
    grace: float,
    timeout: float | None,
    prefix: bool | None,
    max_restarts: int,
    split: bool,
    quiet: bool,
    supervisor_fd: int | None,
    command: tuple[str, ...],
) -> None:
    if heartbeat is not None and heartbeat >= lease_seconds:
        raise click.BadParameter("must be shorter than the lease", param_hint="--heartbeat")
    if prefix is None:
        prefix = workers > 1
    base = target.worker_id or f"{socket.gethostname()}-{os.getpid()}"
    coord = target.open(worker_id=base)
    if workers > 1:
        coord.status()  # an unknown session: one error line (exit 9), not one per worker process
    stop, urgent = threading.Event(), threading.Event()

    def log(line: str) -> None:
        click.echo(runner.timestamped(line), err=True)

    if workers == 1:
        options = runner.RunnerOptions(
            command=command,
            lease_duration=timedelta(seconds=lease_seconds),
            heartbeat=heartbeat,
            poll_interval=poll,
            wait=wait,
            grace=grace,
            echo_output=not quiet,
            prefix_output=prefix,
            timeout=timeout,
            split=split,
        )
        loop = runner.Runner(
            coord,
            options,
            stop=stop,
            urgent=urgent,
            log=None if quiet else log,
            # The command's output bytes go through unchanged (whatever their encoding).
            stdout=getattr(sys.stdout, "buffer", None),
            stderr=getattr(sys.stderr, "buffer", None),
        )
        if supervisor_fd is not None:
            # A worker of `--workers N`: the supervisor speaks for the run, and says when it stops.
            def supervisor_gone() -> None:
                if not stop.is_set():
                    loop.log("the supervisor is gone; stopping")
                stop.set()

            supervisor.stop_when_closed(supervisor_fd, supervisor_gone)
            on_signal = None
        else:
            on_signal = functools.partial(_announce_stop, base, grace)
        with runner.stop_on_signals(stop, urgent, on_signal):
            result = loop.run()
        if quiet and result.exit_code != runner.EXIT_ALL_DONE:
            click.echo(f"{base}: {result.reason}", err=True)
        sys.exit(result.exit_code)

    argv = [sys.executable, "-m", "litecoord.cli", "work", "--session", target.session]
    if target.url:
        argv += ["--url", target.url]
    elif not is_postgres(target.db):
        argv += ["--db", os.path.abspath(target.db)]
    argv += ["--lease", repr(lease_seconds), "--poll", repr(poll), "--grace", repr(grace)]
    argv += ["--wait" if wait else "--no-wait"] + (["--quiet"] if quiet else [])
    argv += [] if heartbeat is None else ["--heartbeat", repr(heartbeat)]
    argv += [] if timeout is None else ["--timeout", repr(timeout)]
    argv += ["--prefix" if prefix else "--no-prefix"] + (["--split"] if split else [])
    env = dict(os.environ)
    if target.token:
        env["LITECOORD_TOKEN"] = target.token  # not in argv, where `ps` would show it
    env.pop("LITECOORD_DB", None)
    env.pop("LITECOORD_URL", None)
    if not target.url and is_postgres(target.db):
        env["LITECOORD_DB"] = target.db  # a DSN may hold a password: not in argv either
    ids = [f"{base}-{i}" for i in range(1, workers + 1)]
    if not quiet:
        log(f"supervisor: starting {workers} worker processes: {ids[0]} .. {ids[-1]}")
    team = supervisor.Supervisor(
        ids,
        lambda wid, fd: [*argv, "--supervisor-fd", str(fd), "--worker-id", wid, "--", *command],
        stop=stop,
        urgent=urgent,
        env=env,
        grace=grace,
        policy=supervisor.RestartPolicy(max_restarts=max_restarts),
        # Deaths, restarts and stopping are shown even with --quiet: they need the operator's eye.
        log=log,
    )
    with runner.stop_on_signals(stop, urgent):
        results = team.run()
    codes = [r.exit_code for r in results]
    code = runner.combine_exit_codes(codes, coord.status(), interrupted=stop.is_set())
    if code != runner.EXIT_ALL_DONE or not quiet:
        summary = ", ".join(
            f"{r.worker_id}={r.exit_code}"
            + (f" after {r.restarts} restart(s)" if r.restarts else "")
            + (" (given up)" if r.gave_up else "")
            for r in results
        )
        log(f"supervisor: workers exited ({summary}); run exit code {code}: {runner.EXIT_CODES[code]}")
    sys.exit(code)


def _announce_stop(worker_id: str, grace: float, count: int) -> None:
    """What a lone runner says on Ctrl-C (from inside the signal handler, hence ``os.write``)."""
    if count == 1:
        text = (
            f"{worker_id}: stopping: the command gets SIGTERM (SIGKILL after --grace {grace:g}s), "
            "then its item is released; Ctrl-C again to kill it now"
        )
    elif count == 2:
        text = f"{worker_id}: stopping now: killing the command"
    else:
        return
    with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
        os.write(sys.stderr.fileno(), (runner.timestamped(text) + "\n").encode())


# -- the demo -----------------------------------------------------------------------------------


@cli.command()
@click.option(
    "--db",
    default="litecoord-demo.db",
    show_default=True,
    metavar="PATH",
    help="Demo file, recreated on each run (refused if it holds other sessions).",
)
@click.option("--workers", type=click.IntRange(2, 32), default=4, show_default=True, help="Worker processes.")
@click.option("--items", type=click.IntRange(4, 1000), default=24, show_default=True, help="Simulated shards.")
@click.option(
    "--lease",
    type=Seconds(min=1),
    default=4.0,
    show_default=True,
    help="Lease seconds (short: fast recovery).",
)
@click.option("--seed", type=int, default=7, show_default=True, help="Seed for the shard sizes.")
@click.option(
    "--serve",
    is_flag=True,
    help="Also serve the status page (and REST API) on 127.0.0.1:--port to watch in a browser; the shards "
    "then run for about a minute and the page stays up until Ctrl-C. Needs `pip install 'litecoord[server]'`.",
)
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="Port for --serve.")
def demo(db: str, workers: int, items: int, lease: float, seed: int, serve: bool, port: int) -> None:
    """Run a simulated backfill: workers, a live view, a worker killed with SIGKILL and its shard recovered.

    Creates a `demo` session of shards of different sizes in the demo file,
    starts worker processes through `litecoord work`, kills one of them
    mid-lease, and shows the live view until every shard is done; exit 0 when
    the backfill completed and the killed worker's shard was recovered.
    """
    from ..demo import run_demo

    tty, unicode, width = _terminal()
    pace = {"full_seconds": 20.0, "timeout": 600.0, "serve_port": port} if serve else {}
    sys.exit(
        run_demo(
            db, workers=workers, items=items, lease=lease, seed=seed, tty=tty, unicode=unicode, width=width, **pace
        )
    )
