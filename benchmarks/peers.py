"""The libraries users would pick instead, at equal durability.

huey's SQLite storage, persist-queue's ``SQLiteAckQueue`` and litequeue each
get the same items: one producer puts them one at a time (one commit each),
then 4 consumer processes claim and acknowledge until the queue is empty.
litecoord runs the same flow: ``create_work_items`` with one item, then
``acquire_next_work_item`` + ``complete_work_item``. Every store runs WAL with
the same ``synchronous`` setting, set on its own connections.

Duplicates are hand-outs of an item beyond its first across all consumers;
losses are items put but never handed out, or left unacknowledged in the
file. huey's ``dequeue`` deletes the row as it claims it, so it has no
separate ack (and nothing to count a crash between claim and work against).
"""

from __future__ import annotations

import os
import sqlite3
import time
from array import array
from datetime import timedelta
from typing import Any

from litecoord import SqliteCoordinator, WorkItemAndDuration

from .common import (
    LEASE_SECONDS,
    SESSION,
    Results,
    Row,
    Settings,
    Target,
    connect_raw,
    cycle_loop,
    log,
    median,
    percentile,
    remove_db,
    round_ratios,
    run_processes,
    summarize,
    write_transaction,
)
from .cycles import ACQUIRE, COMPLETE, HELD_BY_WORKER

CONSUMERS = 4
DURABILITIES = ("full", "normal")
_SYNC = {"full": "FULL", "normal": "NORMAL"}
BUSY_TIMEOUT = 60.0


def payload(i: int) -> str:
    return f"bench__{i}__0"


class Peer:
    """One library: how to put, claim, ack, and count what is left, at a durability."""

    name = ""
    has_ack = True

    def __init__(self, base: str, durability: str) -> None:
        self.base = base
        self.durability = durability

    def reset(self) -> None:
        remove_db(self.base)

    def producer(self):
        """An object with ``put(str)`` and ``close()``, opened in the calling process."""
        raise NotImplementedError

    def consumer(self, worker: str):
        """``(claim, ack)`` for a consumer process; claim returns a payload or None."""
        raise NotImplementedError

    def unacked(self) -> int:
        raise NotImplementedError


class _QueueProducer:
    """A producer for the peers whose queue object has put() and close()."""

    def __init__(self, queue) -> None:
        self._queue = queue

    def put(self, data: str) -> None:
        self._queue.put(data)

    def close(self) -> None:
        self._queue.close()


class HueyPeer(Peer):
    name = "huey SqliteStorage"
    has_ack = False

    def _storage(self):
        from huey.storage import SqliteStorage

        storage = SqliteStorage(name="bench", filename=self.base, fsync=True, timeout=BUSY_TIMEOUT)
        # fsync=True means synchronous=FULL; NORMAL is set the same way on its one connection.
        storage.conn.execute(f"pragma synchronous={_SYNC[self.durability]}")
        return storage

    def producer(self):
        storage = self._storage()

        class Producer:
            def put(self, data: str) -> None:
                storage.enqueue(data.encode())

            def close(self) -> None:
                storage.close()

        return Producer()

    def consumer(self, worker: str):
        storage = self._storage()

        def claim() -> str | None:
            data = storage.dequeue()
            return None if data is None else bytes(data).decode()

        return claim, lambda item: None

    def unacked(self) -> int:
        with sqlite3.connect(self.base) as conn:
            return conn.execute("select count(*) from task").fetchone()[0]


class PersistQueuePeer(Peer):
    name = "persist-queue SQLiteAckQueue"

    def reset(self) -> None:
        remove_db(os.path.join(self.base, "data.db"))

    def _queue(self):
        from persistqueue import SQLiteAckQueue

        q = SQLiteAckQueue(self.base, multithreading=True, timeout=BUSY_TIMEOUT)
        for conn in {id(q._getter): q._getter, id(q._putter): q._putter}.values():
            conn.execute(f"PRAGMA synchronous={_SYNC[self.durability]}")
        return q

    def producer(self):
        return _QueueProducer(self._queue())

    def consumer(self, worker: str):
        from persistqueue import Empty

        # Opened before the start barrier: its auto-resume (which re-offers
        # unacked items) runs while nothing is claimed yet, so any duplicate
        # below comes from concurrent claims alone.
        q = self._queue()
        ids: dict[str, int] = {}

        def claim() -> str | None:
            try:
                got = q.get(block=False, raw=True)
            except Empty:
                return None
            ids[got["data"]] = got["pqid"]
            return got["data"]

        def ack(item: str) -> None:
            q.ack(id=ids.pop(item))

        return claim, ack

    def unacked(self) -> int:
        with sqlite3.connect(os.path.join(self.base, "data.db")) as conn:
            return conn.execute("SELECT count(*) FROM ack_queue_default WHERE status != '5'").fetchone()[0]


class LitequeuePeer(Peer):
    name = "litequeue LiteQueue"

    def _queue(self):
        from litequeue import LiteQueue

        q = LiteQueue(self.base, queue_name="bench", timeout=BUSY_TIMEOUT)
        q.conn.execute(f"PRAGMA synchronous={_SYNC[self.durability]}")  # it sets NORMAL itself
        return q

    def producer(self):
        return _QueueProducer(self._queue())

    def consumer(self, worker: str):
        q = self._queue()
        ids: dict[str, str] = {}

        def claim() -> str | None:
            message = q.pop()
            if message is None:
                return None
            ids[message.data] = message.message_id
            return message.data

        def ack(item: str) -> None:
            q.done(ids.pop(item))

        return claim, ack

    def unacked(self) -> int:
        with sqlite3.connect(self.base) as conn:
            return conn.execute("SELECT count(*) FROM bench WHERE status != 2").fetchone()[0]


class CoordinatorPeer(Peer):
    """A litecoord coordinator used as a queue: create puts, acquire claims, complete acks.

    ``_coord(worker)`` opens the backend's coordinator for one worker.
    """

    def _coord(self, worker: str) -> Any:
        raise NotImplementedError

    def producer(self):
        coord = self._coord("producer")

        class Producer:
            def put(self, data: str) -> None:
                coord.create_work_items([{"work_item_id": data}])

            def close(self) -> None:
                coord.close()

        return Producer()

    def consumer(self, worker: str):
        coord = self._coord(worker)
        coord.num_work_items_not_yet_complete()  # connect and check the schema before the clock starts
        lease = timedelta(seconds=LEASE_SECONDS)

        def claim() -> str | None:
            got = coord.acquire_next_work_item(lease)
            return got.work_item.work_item_id if isinstance(got, WorkItemAndDuration) else None

        def ack(item: str) -> None:
            coord.complete_work_item(item)

        return claim, ack


class LitecoordPeer(CoordinatorPeer):
    name = "litecoord SqliteCoordinator"

    def _coord(self, worker: str) -> SqliteCoordinator:
        return SqliteCoordinator(self.base, session=SESSION, worker_id=worker, durability=self.durability)

    def unacked(self) -> int:
        with sqlite3.connect(self.base) as conn:
            return conn.execute("SELECT count(*) FROM work_items WHERE status != 'completed'").fetchone()[0]


class LitecoordCombinedPeer(LitecoordPeer):
    """The same, with the previous completion and the next acquisition in one call (one commit per item).

    Measured only when the core offers ``complete_and_acquire_next`` (a proposal).
    """

    name = "litecoord complete_and_acquire_next"
    has_ack = False

    def consumer(self, worker: str):
        coord = self._coord(worker)
        coord.num_work_items_not_yet_complete()
        lease = timedelta(seconds=LEASE_SECONDS)
        held: list[str | None] = [None]

        def claim() -> str | None:
            if held[0] is None:
                got = coord.acquire_next_work_item(lease)
            else:
                _, got = coord.complete_and_acquire_next(held[0], lease)
            held[0] = got.work_item.work_item_id if isinstance(got, WorkItemAndDuration) else None
            return held[0]

        return claim, lambda item: None


class RawCombinedPeer(LitecoordPeer):
    """Not a library: litecoord's own complete-and-acquire SQL on a plain connection.

    One ``BEGIN IMMEDIATE`` per item (complete the held item, check for a held
    lease, acquire the next), waiting with SQLite's busy handler and building
    no objects: the most this schema can do per item on this machine, so the
    row says how much of the gap to huey is the data kept rather than the code.
    """

    name = "raw sqlite3, litecoord's SQL (a bound)"
    has_ack = False

    def consumer(self, worker: str):
        conn = connect_raw(self.base, self.durability)
        sid = conn.execute("SELECT id FROM sessions WHERE name = ?", (SESSION,)).fetchone()[0]
        held: list[str | None] = [None]

        def step(conn: sqlite3.Connection) -> Any:
            now = int(time.time() * 1_000_000)
            if held[0] is not None:
                done = {
                    "session": sid,
                    "id": held[0],
                    "worker": worker,
                    "epoch": None,
                    "now": now,
                    "docs": None,
                    "bytes": None,
                }
                if conn.execute(COMPLETE, done).fetchone() is None:
                    raise AssertionError(f"{worker}: could not complete {held[0]}")
            row = conn.execute(HELD_BY_WORKER, (sid, worker, now)).fetchone()
            if row is None:
                lease = {"session": sid, "worker": worker, "now": now, "duration": LEASE_SECONDS * 1_000_000}
                row = conn.execute(ACQUIRE, lease).fetchone()
            return row

        def claim() -> str | None:
            row = write_transaction(conn, step)
            held[0] = None if row is None else row[0]
            return held[0]

        return claim, lambda item: None


PEERS: tuple[type[Peer], ...] = (HueyPeer, PersistQueuePeer, LitequeuePeer, LitecoordPeer)
if hasattr(SqliteCoordinator, "complete_and_acquire_next"):
    PEERS += (LitecoordCombinedPeer,)
PEERS += (RawCombinedPeer,)


def items_for(durability: str, settings: Settings) -> int:
    if settings.quick:
        return 200 if durability == "full" else 500
    return 1000 if durability == "full" else 3000


def one_run(peer: Peer, items: int) -> dict:
    peer.reset()
    producer = peer.producer()
    t = time.perf_counter()
    for i in range(items):
        producer.put(payload(i))
    put_rate = items / (time.perf_counter() - t)
    producer.close()  # no connection crosses the fork

    def prepare(i: int):
        claim, ack = peer.consumer(f"consumer-{i}")
        return lambda: cycle_loop(claim, None, ack)

    reports = run_processes(CONSUMERS, prepare)
    outcome = summarize(reports, items)
    claims, acks = array("d"), array("d")
    for r in reports:
        waits = array("d")
        waits.frombytes(r["waits"])
        claims.extend(waits[0::2])  # the loop times claim, ack, claim, ack, ..., the last (empty) claim
        acks.extend(waits[1::2])
    return {
        "put": put_rate,
        "consume": outcome.throughput,
        "claim_us": percentile(sorted(claims), 0.5) * 1e6,
        "min_share": min(outcome.shares) / (sum(outcome.shares) / len(outcome.shares)),
        "ack_us": percentile(sorted(acks), 0.5) * 1e6 if peer.has_ack else None,
        "duplicates": outcome.duplicates,
        "lost": outcome.lost,
        "unacked": peer.unacked(),
    }


def run(settings: Settings, results: Results) -> None:
    measured: dict[tuple[str, str], dict] = {}
    for durability in DURABILITIES:
        items = items_for(durability, settings)
        log(f"peers: {durability}")
        found: dict[type, list[dict]] = {cls: [] for cls in PEERS}
        for _ in range(settings.runs):  # interleaved, so drift in the machine hits every library alike
            for cls in PEERS:
                suffix = ".d" if cls is PersistQueuePeer else ".db"
                peer = cls(settings.path(f"peer-{cls.__name__}-{durability}{suffix}"), durability)
                found[cls].append(one_run(peer, items))
        for cls, runs in found.items():
            measured[cls.name, durability] = m = {
                "put": median(r["put"] for r in runs),
                "consume": median(r["consume"] for r in runs),
                "consumes": [r["consume"] for r in runs],
                "claim_us": median(r["claim_us"] for r in runs),
                "min_share": median(r["min_share"] for r in runs),
                "ack_us": None if runs[0]["ack_us"] is None else median(r["ack_us"] for r in runs),
                "duplicates": sum(r["duplicates"] for r in runs),
                # Lost: never handed out, or (for stores with an ack) still not acknowledged in the file.
                "lost": sum(max(r["lost"], r["unacked"]) for r in runs),
            }
            if m["ack_us"] is not None:
                ack = f"ack p50 {m['ack_us']:,.0f} us"
            else:
                ack = "dequeue deletes: no ack" if cls is HueyPeer else "ack inside the next claim"
            results.rows.append(
                Row("peers", cls.name, durability.upper(), f"1+{CONSUMERS}", m["consume"], "items/s",
                    dup=m["duplicates"], lost=m["lost"],
                    note=f"put {m['put']:,.0f}/s (1 proc); claim p50 {m['claim_us']:,.0f} us; {ack}; "
                    f"smallest consumer share {m['min_share']:.2f} of average; {items} items x {settings.runs}")
            )  # fmt: skip
        huey = measured[HueyPeer.name, durability]
        for cls, row in zip(PEERS, results.rows[-len(PEERS) :], strict=True):
            row.ratio = row.value / huey["consume"]
            row.ratio_of = "huey"
            if cls is not HueyPeer:
                row.note += f"; per round {round_ratios(measured[cls.name, durability]['consumes'], huey['consumes'])}"
        # The target: litecoord's fastest way to acquire and complete (the combined call when the core has it).
        best = max(
            (cls for cls in PEERS if cls in (LitecoordPeer, LitecoordCombinedPeer)),
            key=lambda c: measured[c.name, durability]["consume"],
        )
        ours = measured[best.name, durability]
        ratio = ours["consume"] / huey["consume"]
        results.targets.append(
            Target(
                f"acquire+complete vs huey dequeue, {durability.upper()}, {CONSUMERS} consumers",
                f"{ratio:.3f}x, {ours['duplicates']} duplicates ({best.name})",
                ">= 1.00x, 0 duplicates",
                ratio >= 1.0 and ours["duplicates"] == 0 and ours["lost"] == 0,
            )
        )
