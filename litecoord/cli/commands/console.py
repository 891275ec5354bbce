"""Commands of the operator's console: workers, failures (by error), pause and resume."""

from __future__ import annotations

import click

from ..render_console import render_failure_groups, render_workers
from .base import Target, _echo_json, _json_option, _now, cli, coordinator_options


@cli.command()
@coordinator_options(worker=False)
@_json_option
def workers(target: Target, as_json: bool) -> None:
    """List every worker seen in the session: its current item, last heartbeat, items done and failed, its rate.

    Workers come from the session's attempts (every lease ever granted). A
    worker marked ? is silent: it holds a live lease but sent no heartbeat for
    over a third of it. --json prints the REST API's GET …/backfill/workers body.
    """
    coord = target.open()
    found = coord.list_workers()
    if as_json:
        _echo_json({"workers": [w.to_dict() for w in found]})
    else:
        # Ages on the store's clock (a server's), as the status view judges them.
        click.echo(render_workers(found, coord.status().as_of or _now()))


@cli.command()
@coordinator_options(worker=False)
@_json_option
def failures(target: Target, as_json: bool) -> None:
    """Group failed and retrying items by their error, with ids, numbers and quoted values masked.

    "shard 52 failed: 429" and "shard 7 failed: 429" are one group, "shard N
    failed: N". Each group shows its counts, a few example ids and its first
    error; retry one with `litecoord retry --group PATTERN`. --json prints the
    REST API's GET …/backfill/failures body.
    """
    groups = target.open().failure_groups()
    if as_json:
        _echo_json(
            {
                "groups": [g.to_dict() for g in groups],
                "failed": sum(g.failed for g in groups),
                "retrying": sum(g.retrying for g in groups),
            }
        )
    else:
        click.echo(render_failure_groups(groups))


def _pause_state(target: Target, as_json: bool, verb: str) -> None:
    status = target.open().status().to_dict()
    if as_json:
        _echo_json({key: status[key] for key in ("session_name", "paused", "paused_at")})
    elif status["paused"]:
        click.echo(
            f"session {target.session} {verb} (since {status['paused_at']}): acquire hands out nothing until "
            f"`litecoord resume -s {target.session}`; leases in flight go on"
        )
    else:
        click.echo(f"session {target.session} {verb}: acquire hands out work")


@cli.command()
@coordinator_options(worker=False)
@_json_option
def pause(target: Target, as_json: bool) -> None:
    """Stop handing out work in the session (the console's `backfill stop`, without killing anyone).

    Acquire then answers "no work" (REST: 404 with reason "paused"); leases in
    flight go on and complete. `litecoord work` waits while its session is
    paused (or exits 4 with --no-wait). Pausing again keeps the first time.
    """
    target.open().pause()
    _pause_state(target, as_json, "paused")


@cli.command()
@coordinator_options(worker=False)
@_json_option
def resume(target: Target, as_json: bool) -> None:
    """Hand out work again in a paused session (a no-op when it is not paused)."""
    target.open().resume()
    _pause_state(target, as_json, "resumed")
