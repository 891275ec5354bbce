"""The console's commands: show with the history, workers, failures, retry --group, pause and resume,
and the paused state in status. (Their Python and REST sides: test_conformance_console, test_wsgi_console.)"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import litecoord.cli.commands.base as cli_base
from litecoord import FakeClock, SqliteCoordinator
from litecoord.cli import cli


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LITECOORD_DB", "LITECOORD_URL", "LITECOORD_SESSION", "LITECOORD_WORKER_ID", "LITECOORD_TOKEN"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def coord(tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> SqliteCoordinator:
    monkeypatch.setattr(cli_base, "SqliteCoordinator", functools.partial(SqliteCoordinator, clock=clock))
    made = SqliteCoordinator(tmp_path / "cli.db", session="s1", worker_id="w1", clock=clock)
    made.setup(max_attempts=1)
    yield made
    made.close()


def run(coord: SqliteCoordinator, *args: str) -> Result:
    result = CliRunner().invoke(cli, [*args, "--db", coord.path, "--session", "s1"], catch_exceptions=False)
    assert "Traceback" not in result.output
    return result


def fail(coord: SqliteCoordinator, work_item_id: str, error: str, worker: str = "w1") -> None:
    holder = coord.bind(worker_id=worker)
    holder.create_or_update_lease_for_work_item(work_item_id)
    holder.fail_work_item(work_item_id, error)


def test_show_prints_the_history_under_the_item_each_error_in_full(coord: SqliteCoordinator, clock) -> None:
    coord.create_unassigned_work_item("a")
    coord.setup(max_attempts=3)
    fail(coord, "a", "shard 52 failed: 429\nsecond line of the error", worker="w2")
    clock.advance(seconds=5)
    coord.create_or_update_lease_for_work_item("a")
    clock.advance(seconds=9)
    text = run(coord, "show", "a").output
    history = text[text.index("history (2 attempts, oldest first)") :].splitlines()
    assert history[1].split() == ["EPOCH", "WORKER", "OUTCOME", "LEASED", "AT", "TOOK", "DOCS"]
    assert history[2].split()[:3] == ["1", "w2", "failed"]
    assert history[3:5] == ["      shard 52 failed: 429", "      second line of the error"]
    assert history[5].split() == ["2", "w1", "running", "2025-01-19T20:30:05Z", "-", "0"]
    data = json.loads(run(coord, "show", "a", "--json").output)
    assert data["work_item_id"] == "a" and data["attempts"] == 2  # the item's own fields stay as they were
    assert [(h["lease_epoch"], h["outcome"]) for h in data["history"]] == [(1, "failed"), (2, "running")]


def test_workers_lists_each_worker_as_a_table_or_as_the_rest_body(coord: SqliteCoordinator, clock) -> None:
    coord.create_work_items([{"work_item_id": n, "document_count": 100} for n in ("a", "b")])
    coord.acquire_next_work_item()
    clock.advance(seconds=20)
    coord.complete_work_item("a")
    fail(coord, "b", "boom", worker="w2")
    lines = run(coord, "workers").output.splitlines()
    assert lines[0].split() == ["WORKER", "ITEM", "LAST", "HEARTBEAT", "DONE", "FAILED", "ATTEMPTS", "DOCS/S", "(MEAN)"]
    assert lines[2].split() == ["w1", "-", "0s", "ago", "1", "0", "1", "5/s"]
    assert lines[3].split()[:2] == ["w2", "-"] and lines[3].split()[4:6] == ["0", "1"]
    data = json.loads(run(coord, "workers", "--json").output)
    assert data == {"workers": [w.to_dict() for w in coord.list_workers()]}
    unknown = CliRunner().invoke(cli, ["workers", "--db", coord.path, "--session", "nope"])
    assert unknown.exit_code == 9  # a mistyped session, not an empty list


def test_failures_groups_and_retry_group_retries_one_group(coord: SqliteCoordinator) -> None:
    coord.create_work_items([{"work_item_id": n} for n in ("s1", "s2", "x")])
    fail(coord, "s1", "shard 1 failed: 429")
    fail(coord, "s2", "shard 2 failed: 429")
    fail(coord, "x", "mapping 'a' rejected")
    text = run(coord, "failures").output
    assert "2 items (2 failed, 0 retrying): shard N failed: N" in text and "e.g. s1, s2" in text
    assert "1 item (1 failed, 0 retrying): mapping '?' rejected" in text
    data = json.loads(run(coord, "failures", "--json").output)
    assert (data["failed"], data["retrying"], len(data["groups"])) == (3, 0, 2)
    result = run(coord, "retry", "--group", "shard N failed: N")
    assert result.exit_code == 0
    assert result.output.splitlines() == ["retried s1: pending again", "retried s2: pending again"]
    assert [i.work_item_id for i in coord.list_work_items("failed")] == ["x"]
    assert run(coord, "retry", "--group", "x", "--all-failed").exit_code == 2


def test_pause_and_resume_show_in_status_and_acquire(coord: SqliteCoordinator) -> None:
    coord.create_unassigned_work_item("a")
    result = run(coord, "pause")
    assert result.exit_code == 0 and "session s1 paused (since " in result.output
    assert json.loads(run(coord, "pause", "--json").output)["paused"] is True
    status = run(coord, "status").output
    assert "PAUSED since" in status and "no ETA: paused" in status
    assert json.loads(run(coord, "status", "--json").output)["paused"] is True
    acquired = run(coord, "acquire", "--worker-id", "w9")
    assert acquired.exit_code == 4 and "paused" in acquired.output
    assert run(coord, "resume").output.startswith("session s1 resumed")
    assert "PAUSED" not in run(coord, "status").output
    assert run(coord, "acquire", "--worker-id", "w9").exit_code == 0


def test_metrics_carry_the_paused_state(coord: SqliteCoordinator) -> None:
    pytest.importorskip("prometheus_client")
    from litecoord.metrics import prometheus_text

    coord.create_unassigned_work_item("a")
    assert 'litecoord_session_paused{session="s1"} 0.0' in prometheus_text(coord)
    coord.pause()
    assert 'litecoord_session_paused{session="s1"} 1.0' in prometheus_text(coord)
