"""Makespan against the ideal on a skewed session: live splitting off and on (issue 18, section 4).

4 worker processes each process documents at a fixed simulated rate
(:data:`RATE` documents a second, a batch every :data:`BATCH_SECONDS`) and
renew with their progress after every batch. The session's shards have
heavy-tailed sizes and the largest holds :data:`LARGEST_SHARE` of all
documents, so without splitting the run lasts about as long as that shard
alone. The ideal is total documents / (4 x rate): what 4 workers that never
sit idle would take.

Two kinds of worker, each on SQLite and on PostgreSQL, splitting off and on:

- ``python``: a loop over a coordinator (acquire, renew every batch,
  complete); with splitting on it answers each split request it sees on a
  renewal with ``split_work_item`` at the proposed position (or its own, if
  that is further). Every coordinator call is counted.
- ``runner``: ``litecoord work --workers 4`` running the README's bash
  script (the one tests/test_runner_split.py runs), its ``copy-documents``
  a wait that keeps it to RUNNER_RATE documents a second; ``--split`` on or off. Its calls are not counted
  (they happen inside the runner).

The makespan is the session's own: from its first lease to its last
completion (``status().elapsed_seconds``), so the runner's process start-up
(4 Python interpreters on a loaded machine) is not counted against it; the
note gives the wall time of the whole run beside it. Every run ends with the
coverage audit (``verify_coverage``), which must be ok.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from litecoord.backends.choose import open_coordinator
from litecoord.types import NoAvailableWorkToBeDone

from .common import Results, Row, Settings, Target, log, remove_db, run_processes

WORKERS = 4
#: Documents a second per worker (the Python workers: batches of RATE x BATCH_SECONDS documents).
RATE = 20_000
#: The runner's command is the README script, whose batches are 1000 documents: at this rate a
#: batch takes BATCH_SECONDS too (a few forks per batch in bash must fit in it on a loaded machine).
RUNNER_RATE = 4_000
#: A batch's simulated time; progress is renewed after each one.
BATCH_SECONDS = 0.25
#: The ideal makespan: total documents / (4 x RATE).
IDEAL_SECONDS = 10.0
LARGEST_SHARE = 0.4
SHARDS = 24
POLL_SECONDS = 0.1
LEASE = timedelta(seconds=60)
TARGET = 1.15
SESSION = "makespan"


def shard_sizes(total: int, shards: int = SHARDS, largest_share: float = LARGEST_SHARE) -> list[int]:
    """Heavy-tailed (Zipf-like, 1/rank) sizes summing to ``total``, the largest holding ``largest_share``."""
    largest = int(total * largest_share)
    weights = [1 / rank for rank in range(2, shards + 1)]
    rest = total - largest
    sizes = [max(1, int(rest * w / sum(weights))) for w in weights]
    sizes[0] += rest - sum(sizes)
    return [largest, *sizes]


def _items(sizes: list[int]) -> list[dict[str, Any]]:
    return [
        {"work_item_id": f"idx{n % 3}__{n}__0", "index_name": f"idx{n % 3}", "shard_number": n,
         "document_count": size, "total_size_bytes": size * 500}
        for n, size in enumerate(sizes)
    ]  # fmt: skip


def _create(target: str, split: bool, rate: int = RATE) -> int:
    total = int(IDEAL_SECONDS * WORKERS * rate)
    with open_coordinator(target, session=SESSION, worker_id="bench-setup") as coord:
        # Requests for items with at least a second of work left (twice split_min_documents).
        coord.setup(split_min_documents=rate // 2 if split else None)
        coord.create_work_items(_items(shard_sizes(total)))
    return total


def _python_worker(target: str, split: bool):
    def prepare(index: int):
        coord = open_coordinator(target, session=SESSION, worker_id=f"bench-{index}")

        def run() -> dict:
            calls = splits = items = 0
            started = time.time()
            while True:
                calls += 1
                outcome = coord.acquire_next_work_item(LEASE)
                if isinstance(outcome, NoAvailableWorkToBeDone):
                    if outcome.reason == "none_remain":
                        break
                    time.sleep(POLL_SECONDS)
                    continue
                item = outcome.work_item
                epoch = outcome.lease_epoch
                start, end = item.range_start, item.range_end
                assert end is not None
                done = item.documents_processed
                batch = int(RATE * BATCH_SECONDS)
                while start + done < end:
                    time.sleep(BATCH_SECONDS * min(batch, end - start - done) / batch)
                    done = min(end - start, done + batch)
                    calls += 1
                    item = coord.update_progress_and_renew_lease(item.work_item_id, done, lease_epoch=epoch)
                    ask = item.split_requested_at
                    if split and ask is not None and max(ask, start + done) < end:
                        calls += 1
                        kept, _ = coord.split_work_item(item.work_item_id, max(ask, start + done), lease_epoch=epoch)
                        end = kept.range_end
                        splits += 1
                calls += 1
                coord.complete_work_item(item.work_item_id, lease_epoch=epoch)
                items += 1
            coord.close()
            return {"started": started, "finished": time.time(), "calls": calls, "splits": splits, "items": items}

        return run

    return prepare


def _python_run(target: str, split: bool) -> dict:
    total = _create(target, split)
    reports = run_processes(WORKERS, _python_worker(target, split))
    makespan = max(r["finished"] for r in reports) - min(r["started"] for r in reports)
    items = sum(r["items"] for r in reports)
    return {
        "makespan": makespan, "ideal": total / (WORKERS * RATE), "splits": sum(r["splits"] for r in reports),
        "calls_per_item": sum(r["calls"] for r in reports) / items, "items": items,
    }  # fmt: skip


def readme_script() -> str:
    readme = Path(__file__).resolve().parents[1] / "README.md"
    match = re.search(r"```bash\n(#!/usr/bin/env bash\n# litecoord work --split .*?)```", readme.read_text(), re.S)
    assert match, "the README's split-channel script is missing"
    return match.group(1)


def _runner_run(target: str, split: bool, workdir: str) -> dict:
    total = _create(target, split, RUNNER_RATE)
    script = Path(workdir) / "copy-range.sh"
    script.write_text(readme_script())
    # copy-documents keeps the item to RATE documents a second on an absolute schedule
    # (bash's $EPOCHREALTIME), so the cost of forking `sleep` on a loaded machine is not counted as work.
    wrapper = (
        "copy-documents() { local now=${EPOCHREALTIME/./}; : ${t0:=$now} ${first:=$1}; "
        f"local wait=$(( t0 + ($2 - first) * 1000000 / {RUNNER_RATE} - now )); "
        "(( wait > 0 )) && sleep $(printf '%d.%06d' $((wait / 1000000)) $((wait % 1000000))); :; }; "
        f"source {script}"
    )
    argv = [sys.executable, "-m", "litecoord.cli", "work", "--session", SESSION, "--workers", str(WORKERS),
            "--lease", "60", "--heartbeat", str(BATCH_SECONDS), "--poll", str(POLL_SECONDS), "-q",
            *(["--split"] if split else []), "--", "bash", "-c", wrapper]  # fmt: skip
    env = {**os.environ, "LITECOORD_DB": target}
    started = time.monotonic()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    makespan = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(f"litecoord work exited {done.returncode}: {done.stderr[-2000:]}")
    with open_coordinator(target, session=SESSION, worker_id="bench-audit") as coord:
        items = coord.list_work_items()
    return {
        "makespan": makespan, "ideal": total / (WORKERS * RUNNER_RATE),
        "splits": sum(1 for i in items if i.parent_id is not None),
        "calls_per_item": None, "items": len(items),
    }  # fmt: skip


def _audit(target: str) -> tuple[bool, float]:
    """The audit's verdict, and the session's makespan: its first lease to its last completion."""
    with open_coordinator(target, session=SESSION, worker_id="bench-audit") as coord:
        status = coord.status()
        assert status.not_yet_complete == 0 and status.elapsed_seconds is not None
        return bool(coord.verify_coverage().ok), float(status.elapsed_seconds)


def run_on(settings: Settings, results: Results, backend: str, fresh: Any) -> None:
    """Both kinds of worker, splitting off then on; ``fresh()`` returns an empty target for each run."""
    for kind in ("python", "runner"):
        for split in (False, True):
            target = fresh()
            log(f"makespan: {backend}, {kind}, splitting {'on' if split else 'off'}")
            if kind == "python":
                out = _python_run(target, split)
            else:
                out = _runner_run(target, split, settings.workdir)
            ok, makespan = _audit(target)
            ideal = out["ideal"]
            ratio = makespan / ideal
            calls = "n/a" if out["calls_per_item"] is None else f"{out['calls_per_item']:.1f}"
            results.rows.append(
                Row(
                    "makespan", f"{kind}, splitting {'on' if split else 'off'}", backend, WORKERS,
                    makespan, "s", ratio, "of ideal",
                    note=f"ideal {ideal:.1f} s; wall {out['makespan']:.1f} s; {out['splits']} splits; "
                    f"{out['items']} items; {calls} calls/item; audit {'ok' if ok else 'NOT OK'}",
                )
            )  # fmt: skip
            results.targets.append(
                Target(f"makespan audit ({backend}, {kind}, split {'on' if split else 'off'})",
                       "ok" if ok else "not ok", "ok", ok)
            )  # fmt: skip
            if split:
                results.targets.append(
                    Target(f"makespan with splitting ({backend}, {kind})", f"{ratio:.2f}x ideal",
                           f"<= {TARGET}x ideal", ratio <= TARGET)
                )  # fmt: skip


def run(settings: Settings, results: Results) -> None:
    counter = iter(range(1_000_000))

    def fresh() -> str:
        path = settings.path(f"makespan-{next(counter)}.db")
        remove_db(path)
        return path

    run_on(settings, results, "sqlite", fresh)
