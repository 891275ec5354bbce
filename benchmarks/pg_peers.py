"""The PostgreSQL job queues users would pick instead, at equal durability: pgqueuer and procrastinate.

The flow of :mod:`benchmarks.peers`: one producer puts the items one at a
time (one commit each), then 4 consumer processes claim and acknowledge
until the queue is empty. Each library is driven through its own claim and
acknowledge calls (pgqueuer's ``Queries.dequeue`` + ``log_jobs``,
procrastinate's ``JobManager.fetch_job`` + ``finish_job``), without its
worker loop around them, as litecoord is driven through
``acquire_next_work_item`` + ``complete_work_item``. Both libraries are
asynchronous; each consumer process keeps one event loop and one connection
and runs each call to completion on it.

Equal durability: every connection of every side runs with the same
``synchronous_commit`` (``on`` for FULL, ``off`` for NORMAL), litecoord's
through its ``durability`` and the others' through their connection options.
Duplicates: hand-outs of an item beyond its first across the consumers;
losses: items never handed out, or still not acknowledged in the database.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

from .common import LEASE_SECONDS, SESSION, Results, Row, Settings, Target, log, median, round_ratios
from .peers import CONSUMERS, CoordinatorPeer, Peer, one_run
from .pg_common import SYNCHRONOUS_COMMIT, fresh_schema, with_options

DURABILITIES = ("full", "normal")


class PgPeer(Peer):
    """A peer in a schema of its own on the benchmark server (``base`` is the server's DSN)."""

    schema = ""

    def __init__(self, base: str, durability: str) -> None:
        super().__init__(base, durability)
        self.dsn = with_options(base, schema=self.schema, synchronous_commit=SYNCHRONOUS_COMMIT[durability])

    def reset(self) -> None:
        fresh_schema(self.base, self.schema)
        self.install()

    def install(self) -> None:
        pass

    def count(self, sql: str) -> int:
        import psycopg

        with psycopg.connect(self.dsn) as conn:
            row = conn.execute(sql).fetchone()
        assert row is not None
        return int(row[0])


class LitecoordPgPeer(CoordinatorPeer, PgPeer):
    name = "litecoord PostgresCoordinator"
    schema = "peer_litecoord"

    def __init__(self, base: str, durability: str) -> None:
        super().__init__(base, durability)
        self.dsn = with_options(base, schema=self.schema)  # litecoord sets synchronous_commit itself

    def _coord(self, worker: str) -> Any:
        from litecoord.backends.postgres import PostgresCoordinator

        return PostgresCoordinator(self.dsn, session=SESSION, worker_id=worker, durability=self.durability)

    def unacked(self) -> int:
        return self.count("SELECT count(*) FROM work_items WHERE status != 'completed'")


class PgQueuerPeer(PgPeer):
    name = "pgqueuer"
    schema = "peer_pgqueuer"

    def install(self) -> None:
        import psycopg
        from pgqueuer.db import PsycopgDriver
        from pgqueuer.queries import Queries

        async def install() -> None:
            conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
            await Queries(PsycopgDriver(conn)).install()
            await conn.close()

        asyncio.run(install())

    def producer(self):
        import psycopg
        from pgqueuer.db import SyncPsycopgDriver
        from pgqueuer.queries import SyncQueries

        conn = psycopg.connect(self.dsn, autocommit=True)
        queries = SyncQueries(SyncPsycopgDriver(conn))

        class Producer:
            def put(self, data: str) -> None:
                queries.enqueue("bench", data.encode())

            def close(self) -> None:
                conn.close()

        return Producer()

    def consumer(self, worker: str):
        import psycopg
        from pgqueuer.db import PsycopgDriver
        from pgqueuer.queries import EntrypointExecutionParameter, Queries

        loop = asyncio.new_event_loop()
        conn = loop.run_until_complete(psycopg.AsyncConnection.connect(self.dsn, autocommit=True))
        queries = Queries(PsycopgDriver(conn))
        entrypoints = {"bench": EntrypointExecutionParameter(concurrency_limit=0)}
        manager = uuid.uuid4()
        held: dict[str, Any] = {}

        def claim() -> str | None:
            jobs = loop.run_until_complete(
                queries.dequeue(1, entrypoints, manager, None, timedelta(seconds=LEASE_SECONDS))
            )
            if not jobs:
                return None
            item = jobs[0].payload.decode()
            held[item] = jobs[0]
            return item

        def ack(item: str) -> None:
            loop.run_until_complete(queries.log_jobs([(held.pop(item), "successful", None)]))

        return claim, ack

    def unacked(self) -> int:
        return self.count("SELECT count(*) FROM pgqueuer")  # acknowledged jobs move to pgqueuer_log


class ProcrastinatePeer(PgPeer):
    name = "procrastinate"
    schema = "peer_procrastinate"

    def _app(self, connector: Any) -> Any:
        import procrastinate

        app = procrastinate.App(connector=connector)
        app.task(name="bench", queue="bench")(_bench_task)
        return app

    def install(self) -> None:
        import procrastinate

        app = self._app(procrastinate.SyncPsycopgConnector(conninfo=self.dsn))
        with app.open():
            app.schema_manager.apply_schema()

    def producer(self):
        import procrastinate

        app = self._app(procrastinate.SyncPsycopgConnector(conninfo=self.dsn, min_size=1, max_size=1))
        app.open()
        task = app.tasks["bench"]

        class Producer:
            def put(self, data: str) -> None:
                task.defer(item=data)

            def close(self) -> None:
                app.close()

        return Producer()

    def consumer(self, worker: str):
        import procrastinate
        from procrastinate.jobs import Status

        loop = asyncio.new_event_loop()
        app = self._app(procrastinate.PsycopgConnector(conninfo=self.dsn, min_size=1, max_size=1))
        loop.run_until_complete(app.open_async())
        manager = app.job_manager
        worker_id = loop.run_until_complete(manager.register_worker())
        held: dict[str, Any] = {}

        def claim() -> str | None:
            job = loop.run_until_complete(manager.fetch_job(["bench"], worker_id))
            if job is None:
                return None
            item = job.task_kwargs["item"]
            held[item] = job
            return item

        def ack(item: str) -> None:
            loop.run_until_complete(manager.finish_job(held.pop(item), Status.SUCCEEDED, delete_job=False))

        return claim, ack

    def unacked(self) -> int:
        return self.count("SELECT count(*) FROM procrastinate_jobs WHERE status != 'succeeded'")


def _bench_task(item: str) -> None:
    """The task the procrastinate jobs name (never run: the benchmark claims and finishes jobs itself)."""


PEERS: tuple[type[PgPeer], ...] = (LitecoordPgPeer, PgQueuerPeer, ProcrastinatePeer)


def installed() -> tuple[list[type[PgPeer]], list[str]]:
    """The peers whose library imports here, and a note for each that does not."""
    found, notes = [], []
    for cls, module in ((LitecoordPgPeer, "psycopg"), (PgQueuerPeer, "pgqueuer"), (ProcrastinatePeer, "procrastinate")):
        try:
            __import__(module)
        except ImportError as exc:
            notes.append(f"{cls.name} not measured: {exc}")
            continue
        found.append(cls)
    return found, notes


def items_for(durability: str, settings: Settings) -> int:
    if settings.quick:
        return 200 if durability == "full" else 500
    return 1000 if durability == "full" else 3000


def run(settings: Settings, results: Results, dsn: str) -> None:
    peers, notes = installed()
    results.notes.extend(notes)
    for durability in DURABILITIES:
        items = items_for(durability, settings)
        log(f"pg-peers: {durability}")
        found: dict[type, list[dict]] = {cls: [] for cls in peers}
        for _ in range(settings.runs):  # interleaved, so drift in the machine hits every library alike
            for cls in peers:
                found[cls].append(one_run(cls(dsn, durability), items))
        ours = found.get(LitecoordPgPeer, [])
        for cls, runs in found.items():
            m = {
                "put": median(r["put"] for r in runs),
                "consume": median(r["consume"] for r in runs),
                "claim_us": median(r["claim_us"] for r in runs),
                "ack_us": median(r["ack_us"] for r in runs),
                "min_share": median(r["min_share"] for r in runs),
                "duplicates": sum(r["duplicates"] for r in runs),
                "lost": sum(max(r["lost"], r["unacked"]) for r in runs),
            }
            base = median(r["consume"] for r in ours) if ours else None
            row = Row(
                "pg-peers", cls.name, f"synchronous_commit={'on' if durability == 'full' else 'off'}",
                f"1+{CONSUMERS}", m["consume"], "items/s",
                dup=m["duplicates"], lost=m["lost"],
                note=f"put {m['put']:,.0f}/s (1 proc); claim p50 {m['claim_us']:,.0f} us; "
                f"ack p50 {m['ack_us']:,.0f} us; smallest consumer share {m['min_share']:.2f}; "
                f"{items} items x {settings.runs}",
            )  # fmt: skip
            if base and cls is not LitecoordPgPeer:
                row.ratio = base / m["consume"]
                row.ratio_of = f"litecoord / {cls.name}"
                rounds = round_ratios([r["consume"] for r in ours], [r["consume"] for r in runs])
                row.note += f"; litecoord/peer per round {rounds}"
            results.rows.append(row)
        if ours:
            dup = sum(r["duplicates"] for r in ours)
            lost = sum(max(r["lost"], r["unacked"]) for r in ours)
            results.targets.append(
                Target(
                    f"PostgreSQL peers, {durability.upper()}: litecoord duplicates and losses",
                    f"{dup} duplicates, {lost} lost",
                    "0 / 0",
                    dup == 0 and lost == 0,
                )
            )
