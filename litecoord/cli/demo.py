"""``litecoord demo``: a simulated backfill that shows the whole system working, crash included.

It recreates a demo file, creates a ``demo`` session of shards of different
sizes, and starts worker processes through the real runner (``python -m
litecoord.cli work``). The simulated work is a small Python command that
reports progress with the runner's line protocol. Once the shards are under
way it kills one worker with SIGKILL while that worker holds a lease, and it
keeps drawing the live view until every shard is complete and the killed
worker's shard was taken over (resuming from its last reported progress) by
another worker. It returns 0 only if all of that happened.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import click

from ..backends.sqlite.coordinator import SqliteCoordinator
from ..backends.sqlite.store import Store
from ..errors import LitecoordError
from ..types import WorkItem, WorkItemStatus
from .render import format_duration, render_status
from .runner import PROGRESS_PREFIX

__all__ = ["run_demo", "SIMULATED_SHARD", "DEMO_SESSION", "make_shards"]

DEMO_SESSION = "demo"

#: The simulated work: processes its item's range of documents at a fixed rate,
#: resuming from the progress a previous holder recorded, and reports on stdout.
#: It takes part in live splits (``work --split``): told of a split request on
#: LITECOORD_SPLIT_FD, it accepts a new end a little ahead of its position and,
#: once the runner says the split was made, stops there.
#: argv: documents per second.
SIMULATED_SHARD = f"""
import os, sys, time
rate = float(sys.argv[1])
start = int(os.environ["LITECOORD_RANGE_START"])
end = int(os.environ["LITECOORD_RANGE_END"])
size = int(os.environ["LITECOORD_TOTAL_SIZE_BYTES"] or 0)
count = max(1, end - start)
done = int(os.environ.get("LITECOORD_DOCUMENTS_PROCESSED") or 0)
split_fd = int(os.environ.get("LITECOORD_SPLIT_FD") or -1)
if split_fd >= 0:
    os.set_blocking(split_fd, False)
    answers = os.fdopen(split_fd, "rb", buffering=0)
step, pending = 0.1, b""
while start + done < end:
    time.sleep(step)
    done = min(end - start, done + int(rate * step) + 1)
    print("{PROGRESS_PREFIX} docs=%d bytes=%d" % (done, size * done // count), flush=True)
    if split_fd < 0:
        continue
    try:
        pending += answers.read() or b""
    except BlockingIOError:
        pass
    while b"\\n" in pending:
        line, pending = pending.split(b"\\n", 1)
        words = dict(w.split("=", 1) for w in line.decode().split()[1:])
        at = max(int(words["at"]), start + done + int(rate))
        if line.startswith(b"split-request") and at < end:
            print("{PROGRESS_PREFIX} split at=%d" % at, flush=True)
            os.set_blocking(split_fd, True)
            answer = answers.readline().decode().split()
            os.set_blocking(split_fd, False)
            if answer and answer[0] == "split-done":
                end = at
"""

_INDEXES = ("logs-2024", "orders", "customers", "products")


def make_shards(count: int, seed: int) -> list[dict[str, object]]:
    """``count`` shards spread over a few indexes, sizes spanning about 20x (deterministic per seed)."""
    rng = random.Random(seed)
    shards = []
    for n in range(count):
        index = _INDEXES[n % len(_INDEXES)]
        shard = n // len(_INDEXES)
        docs = int(20_000 * 10 ** rng.uniform(0.0, 1.3))
        shards.append(
            {
                "work_item_id": f"{index}__{shard}__0",
                "index_name": index,
                "shard_number": shard,
                "document_count": docs,
                "total_size_bytes": docs * rng.randint(300, 1500),
            }
        )
    return shards


def giant_shard(shards: list[dict[str, object]]) -> dict[str, object]:
    """One shard twice as large as all the others together: without splitting, the other
    workers would finish everything else and sit idle for most of the time it runs alone."""
    count = 2 * sum(int(s["document_count"]) for s in shards)  # type: ignore[call-overload]
    return {
        "work_item_id": "logs-giant__0__0",
        "index_name": "logs-giant",
        "shard_number": 0,
        "document_count": count,
        "total_size_bytes": count * 700,
    }


def _prepare_file(path: str) -> None:
    """Remove a previous demo file; refuse any file that is not a litecoord file holding only the demo session."""
    store = Store(path)
    if os.path.lexists(path):
        try:
            store.check_file()  # reads only: a file that is not litecoord's is refused, unchanged
            foreign = store.foreign_objects()
            names = {s.session_name for s in SqliteCoordinator(store, session=DEMO_SESSION).list_sessions()}
        except LitecoordError as exc:
            raise click.ClickException(f"refusing to overwrite {path}: {exc.detail}") from None
        finally:
            store.close()
        if foreign:
            shown = ", ".join(foreign[:4]) + (", ..." if len(foreign) > 4 else "")
            raise click.ClickException(
                f"refusing to overwrite {path}: it holds tables that are not litecoord's ({shown}); pass another --db"
            )
        if names - {DEMO_SESSION}:
            others = ", ".join(sorted(names - {DEMO_SESSION}))
            raise click.ClickException(
                f"refusing to overwrite {path}: it holds other sessions ({others}); pass another --db"
            )
    for suffix in ("", "-wal", "-shm", ".lock"):
        try:
            os.remove(store.path + suffix)  # the file SQLite uses, behind any symlink
        except FileNotFoundError:
            pass


@dataclass
class _Kill:
    worker: str
    pid: int
    item: str
    percent: float
    documents: int
    at: float
    recovered_by: str | None = None
    recovered_at: float | None = None
    completed_at: float | None = None


def _pick_victim(items: list[WorkItem], now: datetime) -> WorkItem | None:
    """A live lease well under way (so the crash loses real progress and recovery resumes it)."""
    candidates = [
        i
        for i in items
        if i.status is WorkItemStatus.ASSIGNED
        and i.lease_expiry is not None
        and i.lease_expiry > now
        and i.document_count
        and 0.2 <= i.documents_processed / i.document_count <= 0.7
    ]
    return max(candidates, key=lambda i: i.document_count or 0, default=None)


def run_demo(
    db: str,
    *,
    workers: int = 4,
    items: int = 24,
    lease: float = 4.0,
    seed: int = 7,
    tty: bool = False,
    unicode: bool = False,
    width: int = 80,
    full_seconds: float = 2.4,
    timeout: float = 120.0,
    serve_port: int | None = None,
    hold: bool = True,
) -> int:
    """Run the demo and return its exit code (0: all shards done and the killed worker's shard recovered).

    With ``serve_port`` the demo file is also served (REST API and the status
    page) on 127.0.0.1 at that port (0: any free port) while the demo runs,
    and, with ``hold``, afterwards until Ctrl-C.
    """
    echo = click.echo
    _prepare_file(db)
    # The session and its items exist before the page can be opened (a page asking
    # for a session nothing created yet would get 404 session_not_found).
    shards = make_shards(items, seed)
    shards.append(giant_shard(shards))
    with SqliteCoordinator(db, session=DEMO_SESSION, worker_id="demo-narrator") as creator:
        creator.setup(max_attempts=3)
        creator.create_work_items(shards)
    server = None
    if serve_port is not None:
        from ..rest.server import make_server

        try:
            server = make_server(db, host="127.0.0.1", port=serve_port, durability="normal").start()
        except (ImportError, RuntimeError, OSError) as exc:
            raise click.ClickException(f"cannot serve the demo: {exc}") from None
        echo(f"litecoord demo: watch it at {server.url}/?session={DEMO_SESSION}", err=not tty)
    try:
        return _run(db, server, workers, shards, lease, tty, unicode, width, full_seconds, timeout, hold)
    finally:
        if server is not None:
            server.close()


def _run(
    db: str,
    server: object,
    workers: int,
    shards: list[dict[str, object]],
    lease: float,
    tty: bool,
    unicode: bool,
    width: int,
    full_seconds: float,
    timeout: float,
    hold: bool,
) -> int:
    echo = click.echo
    coord = SqliteCoordinator(db, session=DEMO_SESSION, worker_id="demo-narrator")
    items = len(shards)
    # The largest ordinary shard takes half of full_seconds; the giant one, alone, many times that.
    largest = max(int(s["document_count"]) for s in shards[:-1])  # type: ignore[call-overload]
    rate = 2 * largest / full_seconds
    ids = [f"demo-worker-{i}" for i in range(1, workers + 1)]
    heartbeat = min(0.5, lease / 4)
    echo(
        f"litecoord demo: {items} shards in {db} (session {DEMO_SESSION}), {workers} workers, "
        f"lease {lease:g}s, heartbeat {heartbeat:g}s",
        err=not tty,
    )
    logs = tempfile.TemporaryDirectory(prefix="litecoord-demo-")
    procs: dict[str, subprocess.Popen[bytes]] = {}
    started = time.monotonic()
    for wid in ids:
        argv = [
            sys.executable, "-m", "litecoord.cli", "work", "--db", os.path.abspath(db), "--session", DEMO_SESSION,
            "--worker-id", wid, "--lease", str(lease), "--heartbeat", str(heartbeat), "--poll", "0.2",
            "--split", "--", sys.executable, "-c", SIMULATED_SHARD, f"{rate:.1f}",
        ]  # fmt: skip
        with open(Path(logs.name) / f"{wid}.log", "wb") as log:
            procs[wid] = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)

    kill: _Kill | None = None
    split_seen: set[str] = set()  # items created by a live split, already announced
    notes: list[str] = []
    last_plain = 0.0
    if tty:
        echo("\x1b[2J", nl=False)
    try:
        while True:
            elapsed = time.monotonic() - started
            summary = coord.status()
            view = coord.list_work_items()
            now = summary.as_of or datetime.now(timezone.utc)
            events: list[str] = []
            if kill is None and elapsed > 1.0:
                victim = _pick_victim(view, now)
                if victim is not None and victim.worker_id in procs:
                    proc = procs[victim.worker_id]
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
                    # What the next holder resumes from: the last progress the dead worker recorded.
                    left = coord.get_work_item(victim.work_item_id)
                    pct = 100.0 * left.documents_processed / (left.document_count or 1)
                    kill = _Kill(victim.worker_id, proc.pid, left.work_item_id, pct, left.documents_processed, elapsed)
                    events.append(
                        f"[{elapsed:5.1f}s] killed {kill.worker} (pid {kill.pid}) with SIGKILL while it held "
                        f"{kill.item} at {pct:.0f}%; its lease lapses within {lease:g}s"
                    )
            if kill is not None:
                item = next(i for i in view if i.work_item_id == kill.item)
                if kill.recovered_by is None and item.worker_id not in (None, kill.worker):
                    kill.recovered_by, kill.recovered_at = item.worker_id, elapsed
                    events.append(
                        f"[{elapsed:5.1f}s] recovered: {item.worker_id} took {kill.item} (lease epoch "
                        f"{item.lease_epoch}), resuming from {kill.documents:,} documents ({kill.percent:.0f}%)"
                    )
                if kill.completed_at is None and item.status is WorkItemStatus.COMPLETED:
                    kill.completed_at = elapsed
                    events.append(f"[{elapsed:5.1f}s] {kill.item} completed by {item.worker_id}")
            for item in view:
                if item.parent_id is not None and item.work_item_id not in split_seen:
                    split_seen.add(item.work_item_id)
                    events.append(
                        f"[{elapsed:5.1f}s] split: an idle worker asked, and the holder of {item.parent_id} "
                        f"gave away [{item.range_start:,}, {item.range_end:,}) as {item.work_item_id}"
                    )
            notes.extend(events)
            done = summary.total_work_items > 0 and summary.not_yet_complete == 0
            running = [w for w, p in procs.items() if p.poll() is None]
            frame = render_status(summary, view, now, width, notes=notes[-6:], unicode=unicode, color=tty)
            if tty:
                body = "\x1b[K\n".join(frame.split("\n"))
                echo(f"\x1b[H{body}\x1b[K\n\x1b[J", nl=False)
            else:
                for event in events:
                    echo(event)
                if elapsed - last_plain >= 5.0:
                    last_plain = elapsed
                    echo(f"[{elapsed:5.1f}s] {summary.completed_work_items}/{summary.total_work_items} shards "
                         f"complete, {summary.assigned_work_items} in progress")  # fmt: skip
            if done and not running:
                break
            if not running:
                echo("all workers exited before the work was done; their logs:", err=True)
                for wid in ids:
                    echo(f"--- {wid}\n{(Path(logs.name) / f'{wid}.log').read_text(errors='replace')[-2000:]}", err=True)
                return 1
            if elapsed > timeout:
                echo(f"the demo did not finish within {timeout:g}s", err=True)
                return 1
            time.sleep(0.25)
    except KeyboardInterrupt:
        echo("\ninterrupted; stopping the workers", err=True)
        return 130
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        logs.cleanup()
        coord.close()

    elapsed = time.monotonic() - started
    if not tty:  # on a terminal the last frame is still on screen
        summary = coord.status()
        echo("")
        echo(render_status(summary, coord.list_work_items(), summary.as_of or datetime.now(timezone.utc), width))
    echo("")
    bad = [w for w, p in procs.items() if (kill is None or w != kill.worker) and p.returncode != 0]
    splits = len(split_seen)
    covered = coord.verify_coverage().ok
    ok = kill is not None and kill.completed_at is not None and kill.recovered_by is not None and not bad
    ok = ok and splits > 0 and covered
    if not splits:
        echo("the giant shard was never split", err=True)
    if not covered:
        echo("the coverage audit found gaps (litecoord verify -s demo)", err=True)
    if kill is None:
        echo("the demo never found a shard in progress to crash", err=True)
    elif kill.recovered_by is None:
        echo(f"{kill.item} was never taken over after {kill.worker} was killed", err=True)
    if bad:
        echo(f"workers that did not exit 0: {', '.join(bad)}", err=True)
    if ok:
        assert kill is not None and kill.recovered_at is not None
        echo(
            f"demo finished in {format_duration(elapsed)} ({elapsed:.1f}s): {summary.completed_work_items} shards "
            f"complete. {kill.worker} was killed holding {kill.item} at {kill.percent:.0f}%; "
            f"{kill.recovered_by} took it over {kill.recovered_at - kill.at:.1f}s later, resumed from "
            f"{kill.documents:,} documents, and completed it. The giant shard was split {splits} time(s) "
            "while it ran, and the coverage audit is ok: every document of every shard was covered once."
        )
        echo(f"Explore: litecoord list --db {db} --session {DEMO_SESSION}  |  litecoord status --db {db} -s demo")
    if server is not None and hold:
        echo(f"the status page stays at {server.url}/?session={DEMO_SESSION} (Ctrl-C to stop)")  # type: ignore[attr-defined]
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0 if ok else 1
