"""The benchmark suite's machinery on a tiny subset: correctness only, never a timing.

Each run forks real worker processes (and, for HTTP, a real server on
loopback) exactly as ``python -m benchmarks.run`` does, and checks what every
benchmark run checks: no item handed out twice, none lost. It also keeps the
suite importable as litecoord changes (the raw baseline reads litecoord's hot
SQL).
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest

# The suite lives beside the package in the checkout; appended, so the installed litecoord still wins.
sys.path.append(str(Path(__file__).resolve().parents[1]))

from benchmarks import cycles, page_traffic, peers, rest  # noqa: E402


@pytest.mark.parametrize("kind", [cycles.RAW, cycles.EMBEDDED], ids=lambda kind: kind.key)
def test_cycles_hand_out_every_item_exactly_once(tmp_path: Path, kind: cycles.Kind) -> None:
    outcome = cycles.one_run(kind, str(tmp_path / "cycles.db"), "normal", procs=3, items=90)
    assert (outcome.duplicates, outcome.lost, outcome.handed_out) == (0, 0, 90)
    assert sum(outcome.shares) == 90


@pytest.mark.parametrize("kind", [cycles.RAW, cycles.EMBEDDED], ids=lambda kind: kind.key)
def test_threads_of_one_process_hand_out_every_item_exactly_once(tmp_path: Path, kind: cycles.Kind) -> None:
    # FULL: the litecoord threads share one coordinator, so their writes go through group commit.
    outcome = cycles.one_run(kind, str(tmp_path / "threads.db"), "full", procs=4, items=60, threads=True)
    assert (outcome.duplicates, outcome.lost, outcome.handed_out) == (0, 0, 60)
    assert len(outcome.shares) == 4 and sum(outcome.shares) == 60


def test_litecoord_as_a_queue_loses_nothing(tmp_path: Path) -> None:
    result = peers.one_run(peers.LitecoordPeer(str(tmp_path / "peer.db"), "normal"), 40)
    assert (result["duplicates"], result["lost"], result["unacked"]) == (0, 0, 0)


def test_http_cycles_through_the_rest_server(tmp_path: Path) -> None:
    pytest.importorskip("waitress")
    outcome, _ = rest.one_run("litecoord", str(tmp_path / "http.db"), "normal", 2, 30, rest.server_threads())
    assert (outcome.duplicates, outcome.lost, outcome.handed_out) == (0, 0, 30)


def test_http_cycles_through_the_minimal_app(tmp_path: Path) -> None:
    # The baseline runs litecoord's own statements: one that gains a parameter must be given it here too.
    pytest.importorskip("waitress")
    outcome, _ = rest.one_run("minimal", str(tmp_path / "http.db"), "normal", 2, 30, rest.server_threads())
    assert (outcome.duplicates, outcome.lost, outcome.handed_out) == (0, 0, 30)


def test_the_http_parts_in_process_rounds_drain_the_file(tmp_path: Path) -> None:
    from benchmarks import rest_parts

    for kind in ("minimal", "litecoord"):
        path = tmp_path / f"{kind}.db"
        assert rest_parts.in_process(kind, (), str(path), "normal", 20, 2) > 0
        assert rest.unfinished_items(str(path)) == []


def test_round_ratios_pair_each_round_with_its_own_baseline() -> None:
    from benchmarks.common import round_ratios

    # Round 2's baseline ran slow: paired, its ratio is high even though its own figure is low.
    assert round_ratios([70.0, 35.0, 80.0], [100.0, 40.0, 100.0]) == "0.70-0.88x"
    assert round_ratios([50.0], [100.0]) == "0.50x"


def test_the_raw_sql_bound_of_the_peers_group_loses_nothing(tmp_path: Path) -> None:
    result = peers.one_run(peers.RawCombinedPeer(str(tmp_path / "raw.db"), "normal"), 40)
    assert (result["duplicates"], result["lost"], result["unacked"]) == (0, 0, 0)


def test_the_testkit_groups_suites_pass_and_its_set_ups_make_a_file(tmp_path: Path) -> None:
    from benchmarks import testkit

    kit = testkit.write_suite(str(tmp_path), "test_kit_suite.py", testkit.KIT_SUITE, 5)
    base = testkit.write_suite(str(tmp_path), "test_base_suite.py", testkit.BASELINE_SUITE, 5)
    for suite in (kit, base):
        wall, cpu = testkit.run_suite(suite, 5)  # raises unless all 5 tests pass
        assert wall > 0 and cpu > 0
    testkit.kit_setup(str(tmp_path), 1)
    testkit.raw_setup(str(tmp_path), 1, testkit.load_schema())
    for name in ("kit-1.db", "raw-1.db"):
        with sqlite3.connect(tmp_path / name) as conn:
            assert conn.execute("SELECT work_item_id FROM work_items").fetchall() == [("idx__0__0",)]


# -- on PostgreSQL (pg_support: skipped locally without a server, fails under CI) ----------------------


@pytest.fixture
def pg_server() -> Any:
    """The test server's DSN; every schema the runs below create is dropped afterwards."""
    from pg_support import admin_dsn

    dsn = admin_dsn()
    yield dsn
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        for schema in ("smoke_cycles_raw", "smoke_cycles_litecoord", "smoke_http", "peer_litecoord", "smoke_scale"):
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.mark.parametrize("kind", ["raw", "litecoord"])
def test_postgres_cycles_hand_out_every_item_exactly_once(pg_server: str, kind: str) -> None:
    from benchmarks import pg_cycles

    chosen = pg_cycles.RAW if kind == "raw" else pg_cycles.EMBEDDED
    outcome = pg_cycles.one_run(chosen, pg_server, "normal", procs=3, items=60, schema=f"smoke_cycles_{kind}")
    assert (outcome.duplicates, outcome.lost, outcome.handed_out) == (0, 0, 60)


def test_http_cycles_through_two_serve_processes_over_postgres(pg_server: str) -> None:
    pytest.importorskip("waitress")
    from benchmarks import pg_http

    outcome = pg_http.one_run(pg_server, "normal", servers=2, items=40, clients=3, schema="smoke_http")
    assert (outcome.duplicates, outcome.lost, outcome.handed_out) == (0, 0, 40)


def test_litecoord_as_a_postgres_queue_loses_nothing(pg_server: str) -> None:
    from benchmarks import pg_peers

    result = peers.one_run(pg_peers.LitecoordPgPeer(pg_server, "normal"), 40)
    assert (result["duplicates"], result["lost"], result["unacked"]) == (0, 0, 0)


def test_postgres_scale_sample_counts_what_it_completed(pg_server: str) -> None:
    from benchmarks import pg_scale

    sample = pg_scale.Sample(1_000, pg_server, rounds=1, schema="smoke_scale")
    sample.round()
    result = sample.result()
    assert (result["duplicates"], result["lost"]) == (0, 0) and result["samples"] > 0


def test_the_sizing_model_and_its_simulated_workers(tmp_path: Path) -> None:
    from benchmarks import sizing
    from benchmarks.common import SESSION

    # The model: one renewal per heartbeat, then per item a last report and a complete-and-acquire.
    assert sizing.writes_per_worker(5.0, 60.0) == pytest.approx(0.2 + 2 / 60)
    assert sizing.max_workers(1000.0, 5.0, 60.0) == int(0.5 * 1000 / (0.2 + 2 / 60))
    path = str(tmp_path / "sizing.db")
    store = sizing.sqlite_store(path)
    pending = store.build(4000)  # more items than 8 workers complete in half a second
    # Unpaced: 8 workers' calls as fast as they go, each worker holding a real lease throughout.
    outcome = sizing.simulate(store, "smoke", 8, 0.5, paced=False)
    assert outcome["lost"] == 0 and outcome["done"] == outcome["offered"] > 0
    assert outcome["completed"] > 0
    conn = sqlite3.connect(path)
    (sid,) = conn.execute("SELECT id FROM sessions WHERE name = ?", (SESSION,)).fetchone()
    completed = conn.execute("SELECT count(*) FROM work_items WHERE session_id = ? AND status = 'completed'", (sid,))
    assert completed.fetchone()[0] == 4000 - pending + outcome["completed"]
    held = conn.execute(
        "SELECT worker_id, count(*) FROM work_items WHERE session_id = ? AND status = 'assigned' GROUP BY worker_id",
        (sid,),
    ).fetchall()
    assert len(held) == 8 and all(count == 1 for _, count in held)  # one live lease per simulated worker


def test_history_benchmark_compares_both_stores_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks import history

    monkeypatch.setenv("BENCH_DIR", str(tmp_path))
    [line] = history.sqlite_rows(30, 1, [1], ["normal"])
    assert line.startswith("sqlite normal 1 proc: with history") and "ratio median" in line and "CPU per cycle" in line
    # --previous: a third store with the previous schema version's triggers (frozen in tests/data), same run.
    assert len(history._previous_sqlite_triggers()) == 3
    [line] = history.sqlite_rows(30, 1, [1], ["normal"], previous=True)
    assert "previous version's history" in line and "us previous" in line and "ratio to without: with" in line


def test_the_page_traffic_tabs_count_every_byte_and_the_new_page_moves_fewer(tmp_path: Path) -> None:
    pytest.importorskip("waitress")
    tabs, status = page_traffic.measure(str(tmp_path / "traffic.db"), 40.0, 8)
    before, after = tabs["before"], tabs["after"]
    assert (before.requests, after.requests) == (40, 20)  # two reads per refresh before, one after
    assert before.received > 3 * after.received > 0 and before.not_modified == 0
    assert status.total_work_items == 8 and status.total_documents_processed > 0
