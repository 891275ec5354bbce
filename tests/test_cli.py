"""The command line, through click's CliRunner: every command, its output, its errors and exit codes.

Commands open ``SqliteCoordinator`` through ``litecoord.cli``; the fixture
below swaps in one bound to a FakeClock, so leases lapse when a test moves
the clock, never by waiting. The ``--url`` tests run the same commands
against a real server on a loopback port.
"""

from __future__ import annotations

import functools
import json
import os
import socket
import sys
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from proc_support import alive

import litecoord.cli.commands.base as cli_base
import litecoord.cli.commands.views as cli_views
from litecoord import FakeClock, SqliteCoordinator, WorkItemStatus
from litecoord.cli import cli

ITEMS = [
    {"work_item_id": "logs__0__0", "index_name": "logs", "shard_number": 0, "document_count": 100,
     "total_size_bytes": 1000},
    {"work_item_id": "logs__1__0", "index_name": "logs", "shard_number": 1, "document_count": 300,
     "total_size_bytes": 5000},
    {"work_item_id": "logs__2__0", "index_name": "logs", "shard_number": 2},
]  # fmt: skip


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LITECOORD_DB", "LITECOORD_URL", "LITECOORD_SESSION", "LITECOORD_WORKER_ID", "LITECOORD_TOKEN"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def fake_clock(monkeypatch: pytest.MonkeyPatch, clock: FakeClock) -> FakeClock:
    monkeypatch.setattr(cli_base, "SqliteCoordinator", functools.partial(SqliteCoordinator, clock=clock))
    return clock


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "cli.db")


Run = Callable[..., Result]


@pytest.fixture
def run(db: str) -> Run:
    """``run("acquire", "--json")``: invoke with ``--db`` and ``--session s1`` appended unless given."""

    def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None, db_args: bool = True) -> Result:
        argv = list(args)
        if db_args and argv and argv[0] not in ("serve", "demo"):
            extra = ["--db", db]
            if argv[0] != "sessions":
                extra += ["--session", "s1"]
            # Options go after the command name; keep any `--` separator last.
            cut = argv.index("--") if "--" in argv else len(argv)
            argv = argv[:cut] + extra + argv[cut:]
        result = CliRunner().invoke(cli, argv, input=input, env=env, catch_exceptions=False)
        assert "Traceback" not in result.output
        return result

    return invoke


def coordinator(db: str, clock: FakeClock, worker_id: str = "tester") -> SqliteCoordinator:
    return SqliteCoordinator(db, session="s1", worker_id=worker_id, clock=clock)


@pytest.fixture
def loaded(run: Run, tmp_path: Path) -> Run:
    path = tmp_path / "items.json"
    path.write_text(json.dumps(ITEMS))
    assert run("batch", str(path)).exit_code == 0
    return run


def error_line(result: Result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, result.output
    return lines[0]


# -- creating ---------------------------------------------------------------------


def test_create_then_create_again_is_a_conflict(run: Run) -> None:
    result = run("create", "a__0__0", "--index", "a", "--shard", "0", "--documents", "10", "--bytes", "99", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert (data["work_item_id"], data["index_name"], data["document_count"], data["status"]) == (
        "a__0__0",
        "a",
        10,
        "pending",
    )
    again = run("create", "a__0__0")
    assert again.exit_code == 6
    assert error_line(again) == "Error: work item 'a__0__0' already exists in session 's1'"


def test_batch_from_a_json_array_file(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "items.json"
    path.write_text(json.dumps(ITEMS))
    first = run("batch", str(path))
    assert (first.exit_code, first.stdout) == (0, "created 3 work item(s); 0 already existed\n")
    again = run("batch", str(path), "--json")
    assert (again.exit_code, json.loads(again.stdout)) == (0, [])


def test_batch_from_json_lines_on_stdin(run: Run) -> None:
    lines = "\n".join(json.dumps(item) for item in ITEMS[:2]) + "\n\n"
    result = run("batch", "-", "--json", input=lines)
    assert result.exit_code == 0
    assert [item["work_item_id"] for item in json.loads(result.stdout)] == ["logs__0__0", "logs__1__0"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"a": 1}\n{"work_item_id": \n', "Error: {path} line 2: malformed JSON: Expecting value at column 18"),
        ('[{"work_item_id": "a"},\n', "Error: {path}: malformed JSON: Expecting value at line 2, column 1"),
        ('{"items": []}', "Error: items[0].items: is not a work item field"),
        ('[{"work_item_id": "a", "shard_number": -1}]', "Error: items[0].shard_number: must not be negative"),
        ('[{"work_item_id": 7}]', "Error: items[0].work_item_id: must be a string, not int"),
        ('"just a string"', "Error: items[0]: must be an object, not str"),
        ("  \n", "Error: {path}: no work items (the file is empty)"),
    ],
)
def test_batch_rejects_bad_input_with_one_clear_line(run: Run, tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "items.jsonl"
    path.write_text(content)
    result = run("batch", str(path))
    assert result.exit_code == 2
    assert error_line(result) == message.format(path=path) or error_line(result).startswith(message)


def test_batch_with_a_missing_file(run: Run, tmp_path: Path) -> None:
    result = run("batch", str(tmp_path / "nope.json"))
    assert result.exit_code == 2
    assert "nope.json': No such file or directory" in result.stderr


def test_reads_refuse_a_missing_database_instead_of_creating_one(run: Run, tmp_path: Path) -> None:
    missing = tmp_path / "typo.db"
    result = run("list", "--db", str(missing), db_args=False)
    assert result.exit_code == 2
    assert error_line(result).startswith(f"Error: no litecoord database at {missing}")
    assert not missing.exists()


def test_a_file_that_is_not_a_database_is_a_one_line_error(run: Run, tmp_path: Path) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    result = run("list", "--db", str(bad), db_args=False)
    assert result.exit_code == 1
    assert f"{bad} is not a litecoord file: it is not an SQLite database" in error_line(result)


def test_setup_stores_session_settings(run: Run) -> None:
    assert run("setup", "--max-attempts", "5", "--lease-mode", "exponential").exit_code == 0
    sessions = json.loads(run("sessions", "--json").stdout)
    assert [(s["session_name"], s["max_attempts"], s["lease_mode"]) for s in sessions] == [("s1", 5, "exponential")]
    assert run("setup", "--max-attempts", "0").exit_code == 2
    assert run("setup", "--retry-delay", "-1").exit_code == 2
    done = run("setup", "--retry-delay", "2.5", "--max-retry-delay", "60", "--json")
    assert done.exit_code == 0
    settings = json.loads(done.stdout)
    assert (settings["retry_delay_seconds"], settings["max_retry_delay_seconds"], settings["max_attempts"]) == (
        2.5, 60, 5,
    )  # fmt: skip


def test_a_failed_item_shows_when_its_retry_is_due(
    loaded: Run, db: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli_views, "_now", clock)  # list and show count from "now"
    assert loaded("setup", "--retry-delay", "20").exit_code == 0
    assert loaded("acquire", "-w", "w1").exit_code == 0
    failed = json.loads(loaded("fail", "logs__1__0", "-w", "w1", "-e", "boom", "--json").stdout)
    wait = (datetime.fromisoformat(failed["next_attempt_at"].replace("Z", "+00:00")) - clock()).total_seconds()
    assert 10 <= wait <= 20
    row = next(line for line in loaded("list").stdout.splitlines() if line.startswith("logs__1__0"))
    assert row.split()[-4:] == ["1", "retry", "in", f"{round(wait)}s"]  # FAILURES, then when the retry is due
    shown = [line.split() for line in loaded("show", "logs__1__0").stdout.splitlines()]
    assert next(line for line in shown if line[0] == "next_attempt_at")[2:] == ["(retry", "in", f"{round(wait)}s)"]
    # Only the other two items can be acquired now; the third caller is told work waits for a retry (4).
    assert loaded("acquire", "-w", "w2").exit_code == 0 and loaded("acquire", "-w", "w3").exit_code == 0
    waiting = loaded("acquire", "-w", "w4", "--json")
    assert (waiting.exit_code, json.loads(waiting.stdout)["reason"]) == (4, "retry_wait")
    clock.advance(seconds=20)
    assert json.loads(loaded("acquire", "-w", "w4", "--json").stdout)["work_item"]["work_item_id"] == "logs__1__0"


# -- leasing ------------------------------------------------------------------------


def test_acquire_renew_complete_round_trip(loaded: Run, db: str, clock: FakeClock) -> None:
    acquired = loaded("acquire", "--worker-id", "w1", "--lease", "60", "--json")
    assert acquired.exit_code == 0
    lease = json.loads(acquired.stdout)
    assert lease["work_item"]["work_item_id"] == "logs__1__0"  # largest first
    assert (lease["lease_duration_seconds"], lease["lease_epoch"]) == (60.0, 1)

    renewed = loaded("renew", "logs__1__0", "-w", "w1", "--docs", "150", "--bytes", "2500", "--lease-epoch", "1")
    assert renewed.exit_code == 0 and renewed.stdout.startswith("renewed logs__1__0 until ")
    item = coordinator(db, clock).get_work_item("logs__1__0")
    assert (item.documents_processed, item.bytes_processed) == (150, 2500)

    completed = loaded("complete", "logs__1__0", "-w", "w1", "--lease-epoch", "1")
    assert (completed.exit_code, completed.stdout) == (0, "completed logs__1__0\n")
    assert coordinator(db, clock).get_work_item("logs__1__0").status is WorkItemStatus.COMPLETED


def test_acquire_text_output_and_the_default_worker_id(loaded: Run, db: str, clock: FakeClock) -> None:
    result = loaded("acquire")
    assert result.exit_code == 0
    assert result.stdout.startswith("acquired logs__1__0 (lease epoch 1) until 2025-01-19T20:35:00Z (300s)")
    # Without --worker-id every invocation is the same worker (the host name), so this completes it.
    assert coordinator(db, clock).get_work_item("logs__1__0").worker_id == socket.gethostname()
    assert loaded("complete", "logs__1__0").exit_code == 0


def test_acquire_exit_codes_when_no_work_is_available(loaded: Run, db: str, clock: FakeClock) -> None:
    holder = coordinator(db, clock, "holder")
    leases = [holder.bind(worker_id=f"h{i}").acquire_next_work_item() for i in range(3)]
    leased = loaded("acquire", "--json")
    assert leased.exit_code == 4
    assert json.loads(leased.stdout)["reason"] == "all_leased"
    error = json.loads(leased.stderr)  # under --json, stderr is a JSON object too
    assert "3 incomplete item(s) remain, all leased" in error["detail"]
    assert (error["code"], error["exit_code"]) == ("no_available_work", 4)

    for i, lease in enumerate(leases):
        holder.bind(worker_id=f"h{i}").complete_work_item(lease.work_item_id)
    done = loaded("acquire")
    assert done.exit_code == 3
    assert "every work item is complete" in done.stderr


def test_renew_and_complete_errors_map_to_exit_codes(loaded: Run, clock: FakeClock) -> None:
    assert loaded("acquire", "-w", "w1", "--lease", "60").exit_code == 0
    not_mine = loaded("renew", "logs__1__0", "-w", "w2")
    assert not_mine.exit_code == 6 and "leased by another worker" in error_line(not_mine)
    unknown = loaded("renew", "nope", "-w", "w1")
    assert unknown.exit_code == 5
    assert error_line(unknown) == "Error: work item 'nope' not found in session 's1'"
    stale = loaded("complete", "logs__1__0", "-w", "w1", "--lease-epoch", "7")
    assert stale.exit_code == 6 and "lease epoch 7 of work item 'logs__1__0' is stale" in error_line(stale)
    clock.advance(seconds=61)
    expired = loaded("renew", "logs__1__0", "-w", "w1")
    assert expired.exit_code == 7 and "expired" in error_line(expired)


def test_release(loaded: Run, db: str, clock: FakeClock) -> None:
    assert loaded("acquire", "-w", "w1").exit_code == 0
    not_held = loaded("release", "logs__1__0", "-w", "w2", "--json")
    assert not_held.exit_code == 6
    assert json.loads(not_held.stdout) == {"work_item_id": "logs__1__0", "released": False}
    error = json.loads(not_held.stderr)  # under --json the error is a JSON object too
    assert (error["code"], error["exit_code"]) == ("not_released", 6)
    assert "was not released" in error_line(loaded("release", "logs__1__0", "-w", "w2"))
    released = loaded("release", "logs__1__0", "-w", "w1")
    assert (released.exit_code, released.stdout) == (0, "released logs__1__0\n")
    assert coordinator(db, clock).get_work_item("logs__1__0").worker_id is None


def test_fail_then_retry(loaded: Run, db: str, clock: FakeClock) -> None:
    assert loaded("setup", "--max-attempts", "1").exit_code == 0
    assert loaded("acquire", "-w", "w1").exit_code == 0
    failed = loaded("fail", "logs__1__0", "-w", "w1", "--error", "disk full", "--json")
    assert failed.exit_code == 0
    data = json.loads(failed.stdout)
    assert (data["status"], data["failure_count"], data["last_error"]) == ("failed", 1, "disk full")
    assert loaded("fail", "logs__1__0", "-w", "w1", "-e", "again").exit_code == 6
    retried = loaded("retry", "logs__1__0")
    assert (retried.exit_code, retried.stdout) == (0, "retried logs__1__0: pending again\n")
    assert coordinator(db, clock).get_work_item("logs__1__0").failure_count == 0
    assert loaded("fail", "logs__1__0").exit_code == 2  # --error is required


def test_retry_several_ids_or_all_failed_and_say_when_an_item_was_not_failed(
    loaded: Run, db: str, clock: FakeClock
) -> None:
    worker = coordinator(db, clock, "w1")
    worker.setup(max_attempts=1)
    for _ in range(2):
        worker.fail_work_item(worker.acquire_next_work_item().work_item_id, "boom")  # logs__1__0, logs__0__0
    assert loaded("retry").exit_code == 2  # nothing named
    both = loaded("retry", "logs__1__0", "logs__0__0")
    assert both.exit_code == 0
    assert both.stdout == "retried logs__1__0: pending again\nretried logs__0__0: pending again\n"
    assert worker.status().failed_work_items == 0
    # An item that is not failed is left as it is, and said so: exit 6 (the others are still retried).
    for _ in range(2):
        worker.fail_work_item(worker.acquire_next_work_item().work_item_id, "boom")
    mixed = loaded("retry", "logs__2__0", "logs__1__0")
    assert mixed.exit_code == 6
    assert mixed.stdout == "retried logs__1__0: pending again\n"
    assert error_line(mixed) == "Error: logs__2__0 is not failed (it is pending); left as it is"
    unknown = loaded("retry", "nope", "--json")
    assert unknown.exit_code == 5
    assert json.loads(unknown.stdout) == {"retried": [], "not_failed": [], "not_found": ["nope"]}
    # --all-failed: every failed item of the session, and nothing else.
    assert [i.work_item_id for i in worker.list_work_items("failed")] == ["logs__0__0"]
    every = loaded("retry", "--all-failed", "--json")
    assert every.exit_code == 0
    assert [i["work_item_id"] for i in json.loads(every.stdout)["retried"]] == ["logs__0__0"]
    none = loaded("retry", "--all-failed")
    assert (none.exit_code, none.stdout) == (0, "no failed items in session s1\n")


def test_split_creates_successors(loaded: Run, db: str, clock: FakeClock) -> None:
    assert loaded("acquire", "-w", "w1").exit_code == 0
    assert loaded("renew", "logs__1__0", "-w", "w1", "--docs", "100").exit_code == 0
    itself = loaded("split", "logs__1__0", "logs__1__0", "-w", "w1")
    assert itself.exit_code == 2 and "cannot be its own successor" in error_line(itself)
    result = loaded("split", "logs__1__0", "logs__1__100", "logs__1__200", "-w", "w1")
    assert (result.exit_code, result.stdout) == (0, "completed logs__1__0 with successors logs__1__100, logs__1__200\n")
    successor = coordinator(db, clock).get_work_item("logs__1__100")
    assert (successor.parent_id, successor.document_count) == ("logs__1__0", 100)
    other = loaded("split", "logs__1__0", "logs__1__999", "-w", "w1")
    assert other.exit_code == 6


def test_named_lease(loaded: Run, clock: FakeClock) -> None:
    leased = loaded("lease", "shard_setup", "-w", "w1", "--json")
    assert leased.exit_code == 0 and json.loads(leased.stdout)["lease_epoch"] == 1
    assert loaded("lease", "shard_setup", "-w", "w2").exit_code == 6
    assert loaded("complete", "shard_setup", "-w", "w1").exit_code == 0
    again = loaded("lease", "shard_setup", "-w", "w2")
    assert (again.exit_code, again.stdout) == (0, "shard_setup is already completed\n")


# -- reading ------------------------------------------------------------------------


def test_list_show_and_filters(loaded: Run) -> None:
    assert loaded("acquire", "-w", "w1").exit_code == 0
    table = loaded("list").stdout.splitlines()
    assert table[0].split() == [
        "ID", "STATUS", "INDEX", "SHARD", "DOCUMENTS", "BYTES", "WORKER", "EPOCH", "FAILURES", "LEASE",
    ]  # fmt: skip
    assert [line.split()[0] for line in table[2:]] == ["logs__0__0", "logs__1__0", "logs__2__0"]
    assigned = json.loads(loaded("list", "--status", "assigned", "--json").stdout)
    assert [i["work_item_id"] for i in assigned] == ["logs__1__0"]
    assert loaded("list", "--status", "bogus").exit_code == 2

    shown = loaded("show", "logs__1__0")
    assert ["worker_id", "w1"] in [line.split() for line in shown.stdout.splitlines()]
    assert json.loads(loaded("show", "logs__1__0", "--json").stdout)["lease_epoch"] == 1
    missing = loaded("show", "nope")
    assert missing.exit_code == 5 and error_line(missing) == "Error: work item 'nope' not found in session 's1'"


def test_status_json_is_exactly_the_rest_status_body(loaded: Run, db: str, clock: FakeClock) -> None:
    result = loaded("status", "--json")
    assert result.exit_code == 0
    from rest_support import call

    from litecoord import create_app

    rest = call(create_app(db, clock=clock), "GET", "/sessions/s1/backfill/work-items/status")
    assert json.loads(result.stdout) == rest.json


def test_status_text_is_the_plain_view(loaded: Run) -> None:
    assert loaded("acquire", "-w", "w1").exit_code == 0
    out = loaded("status").stdout
    assert out.startswith("session s1 | 0.0% | 3 items: 0 done, 1 in progress, 2 pending, 0 failed")
    assert "logs__1__0" in out and "\x1b[" not in out


def test_status_watch_redraws_until_the_work_is_done(
    loaded: Run, db: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = coordinator(db, clock, "w1")
    leases = [worker.bind(worker_id=f"w{i}").acquire_next_work_item() for i in range(3)]
    frames: list[str] = []

    def draw(frame: str, *, redraw: bool) -> None:
        frames.append(frame)
        assert not redraw  # CliRunner is not a terminal: plain frames
        if len(frames) == 1:  # the work finishes after the first frame
            for i, lease in enumerate(leases):
                worker.bind(worker_id=f"w{i}").complete_work_item(lease.work_item_id)

    monkeypatch.setattr(cli_views, "draw_frame", draw)
    result = loaded("status", "--watch", "--interval", "0.1")
    assert result.exit_code == 0
    assert len(frames) == 2
    assert "in progress (3)" in frames[0]
    assert "3 items: 3 done" in frames[1] and frames[1].splitlines()[3].endswith(" | done")


def test_status_piped_is_never_cut_and_flags_a_silent_holder(run: Run, db: str, clock: FakeClock) -> None:
    session = "a-backfill-session-whose-name-pushes-the-counts-past-eighty-columns"
    worker = SqliteCoordinator(db, session=session, worker_id="w1", clock=clock)
    worker.setup(retry_delay=30)
    worker.create_work_items(ITEMS)
    worker.fail_work_item(worker.acquire_next_work_item().work_item_id, "exit 3: disk full")
    clock.advance(seconds=30)
    worker.acquire_next_work_item(timedelta(seconds=30))
    clock.advance(seconds=11)  # more than a third of its 30 s lease without a heartbeat
    out = run("status", "--db", db, "--session", session, db_args=False).stdout.splitlines()
    assert out[0].endswith("3 items: 0 done, 1 in progress, 2 pending, 0 failed") and len(out[0]) > 80
    assert any(line.startswith("? logs__1__0  w1") for line in out)
    assert "silent (1, marked ?): no heartbeat for longer than a third of the lease" in out


def test_status_shows_items_waiting_to_be_retried(loaded: Run, db: str, clock: FakeClock) -> None:
    worker = coordinator(db, clock, "w1")
    worker.fail_work_item(worker.acquire_next_work_item().work_item_id, "exit 3: disk full")
    out = loaded("status").stdout.splitlines()
    assert "3 pending (1 retrying)" in out[0]
    at = out.index("retrying (1): failed, back in the queue")
    assert out[at + 1].startswith("  logs__1__0  1 failure(s), retry ") and out[at + 1].endswith(": exit 3: disk full")


def test_status_watch_that_ends_with_only_failed_items_exits_3(loaded: Run, db: str, clock: FakeClock) -> None:
    worker = coordinator(db, clock, "w1")
    worker.setup(max_attempts=1)
    for _ in range(3):
        worker.fail_work_item(worker.acquire_next_work_item().work_item_id, "boom")
    result = loaded("status", "--watch", "--interval", "0.1")
    assert result.exit_code == 3
    assert "stopped: only failed items remain" in result.stdout
    assert loaded("status").exit_code == 0  # a single frame is a read: 0


def test_status_watch_exits_130_on_ctrl_c(tmp_path: Path) -> None:
    import signal
    import subprocess

    db = str(tmp_path / "watched.db")
    SqliteCoordinator(db, session="s1").create_work_items(ITEMS)
    proc = subprocess.Popen(
        [sys.executable, "-m", "litecoord", "status", "--watch", "--interval", "0.2", "--db", db, "-s", "s1"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("session s1")  # the first frame is drawn
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_status_watch_json_prints_one_object_per_line(loaded: Run, db: str, clock: FakeClock) -> None:
    worker = coordinator(db, clock, "w1")
    for i in range(3):
        w = worker.bind(worker_id=f"w{i}")
        w.complete_work_item(w.acquire_next_work_item().work_item_id)
    result = loaded("status", "--watch", "--json")
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["completed_work_items"] == 3


def test_sessions(loaded: Run) -> None:
    out = loaded("sessions").stdout.splitlines()
    assert out[0].split()[:3] == ["SESSION", "ITEMS", "COMPLETED"]
    assert out[2].split()[:3] == ["s1", "3", "0"]


# -- housekeeping -------------------------------------------------------------------


def test_cleanup_expired(loaded: Run, clock: FakeClock) -> None:
    assert loaded("acquire", "-w", "w1", "--lease", "10").exit_code == 0
    clock.advance(seconds=11)
    result = loaded("cleanup-expired", "--json")
    assert (result.exit_code, json.loads(result.stdout)) == (0, {"session_name": "s1", "cleaned": 1})
    assert loaded("cleanup-expired").stdout == "returned 0 item(s) with lapsed leases to pending\n"


def test_delete_session_asks_first(loaded: Run, db: str, clock: FakeClock) -> None:
    declined = loaded("delete-session", input="n\n")
    assert declined.exit_code == 1 and "Aborted" in declined.output
    assert coordinator(db, clock).num_work_items_not_yet_complete() == 3
    assert loaded("delete-session", "--yes").stdout == "deleted 3 work item(s) of session s1\n"
    assert coordinator(db, clock).list_work_items() == []


def test_delete_session_json_is_the_rest_body(loaded: Run, db: str, clock: FakeClock) -> None:
    result = loaded("delete-session", "--yes", "--json")
    assert (result.exit_code, json.loads(result.stdout)) == (0, {"session_name": "s1", "deleted": 3})


def test_errors_under_json_are_one_json_object_on_stderr(loaded: Run, run: Run) -> None:
    missing = loaded("show", "nope", "--json")
    assert missing.exit_code == 5 and missing.stdout == ""
    error = json.loads(missing.stderr)
    assert error == {
        "detail": "work item 'nope' not found in session 's1'",
        "code": "work_item_not_found",
        "work_item_id": "nope",
        "exit_code": 5,
    }
    invalid = loaded("batch", "-", "--json", input='{"work_item_id": "x", "shard_number": -1}\n')
    assert (invalid.exit_code, json.loads(invalid.stderr)["field"]) == (2, "items[0].shard_number")
    usage = loaded("acquire", "--lease", "-1", "--json")  # a click usage error, raised before the command runs
    assert usage.exit_code == 2
    assert json.loads(usage.stderr)["code"] == "usage_error" and "--lease" in json.loads(usage.stderr)["detail"]
    no_db = run("list", "--json", "--db", "/nonexistent/x.db", db_args=False)
    assert (no_db.exit_code, json.loads(no_db.stderr)["code"]) == (2, "no_database")
    # Without --json the same errors stay one readable line.
    assert error_line(loaded("show", "nope")) == "Error: work item 'nope' not found in session 's1'"


def test_python_dash_m_litecoord_runs_the_command_line() -> None:
    import subprocess

    done = subprocess.run([sys.executable, "-m", "litecoord", "--version"], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout.split(",")[0]) == (0, "litecoord")
    helped = subprocess.run([sys.executable, "-m", "litecoord", "--help"], capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0 and helped.stdout.startswith("Usage: litecoord ")


# -- options and environment ----------------------------------------------------------


def test_environment_variables_stand_in_for_options(loaded: Run, db: str, clock: FakeClock) -> None:
    env = {"LITECOORD_DB": db, "LITECOORD_SESSION": "s1", "LITECOORD_WORKER_ID": "env-worker"}
    result = loaded("acquire", "--json", env=env, db_args=False)
    assert result.exit_code == 0
    assert json.loads(result.stdout)["work_item"]["worker_id"] == "env-worker"


def test_db_and_url_together_are_a_usage_error(run: Run, db: str) -> None:
    result = run("list", "--db", db, "--url", "http://127.0.0.1:9", db_args=False)
    assert result.exit_code == 2 and "give --db or --url, not both" in result.stderr


def test_a_db_on_the_command_line_beats_litecoord_url(loaded: Run, db: str) -> None:
    result = loaded("list", "--db", db, "-s", "s1", env={"LITECOORD_URL": "http://127.0.0.1:9"}, db_args=False)
    assert result.exit_code == 0 and "logs__0__0" in result.stdout


def test_serve_defaults_to_loopback(run: Run, monkeypatch: pytest.MonkeyPatch, db: str) -> None:
    import litecoord.rest.server

    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(litecoord.rest.server, "serve", lambda *a, **kw: calls.append((a, kw)))
    assert run("serve", "--db", db, env={"LITECOORD_TOKEN": "sekrit"}).exit_code == 0
    log = calls[0][1].pop("access_log")
    assert calls[0][1].pop("on_ready") is not None
    defaults = {"host": "127.0.0.1", "port": 8000, "token": "sekrit", "threads": 8}
    extras = {"durability": "full", "test_clock": False, "trust_network": False}  # a lasting file; no test clock
    assert calls == [((db,), {**defaults, **extras, "stall_after": timedelta(seconds=60)})]
    assert "stderr" in log.name  # the access log goes to stderr
    calls.clear()
    assert run("serve", "--db", db, "--quiet").exit_code == 0
    assert calls[0][1]["access_log"] is None
    assert "0.0.0.0" in run("serve", "--help").stdout


# -- the worker runner through the CLI ----------------------------------------------------

RECORD = "import os; print('item', os.environ['LITECOORD_WORK_ITEM_ID'], os.environ['LITECOORD_WORKER_ID'])"


def test_work_runs_every_item_and_exits_0(loaded: Run, db: str, clock: FakeClock) -> None:
    result = loaded("work", "-w", "runner", "--", sys.executable, "-c", RECORD)
    assert result.exit_code == 0, result.output
    assert sorted(line for line in result.stdout.splitlines() if line.startswith("item")) == [
        "item logs__0__0 runner",
        "item logs__1__0 runner",
        "item logs__2__0 runner",
    ]
    assert "runner: exiting with code 0: all work done" in result.stderr
    assert coordinator(db, clock).status().completed_work_items == 3


def test_work_quiet_and_failed_items_exit_3(loaded: Run, db: str, clock: FakeClock) -> None:
    assert loaded("setup", "--max-attempts", "1").exit_code == 0
    result = loaded("work", "-q", "-w", "runner", "--", sys.executable, "-c", "print('noise'); raise SystemExit(5)")
    assert result.exit_code == 3
    assert result.stdout == ""
    assert result.stderr == "runner: no work left; 3 failed item(s) await a retry\n"
    assert coordinator(db, clock).get_work_item("logs__0__0").last_error == "command exited with code 5\nstdout:\nnoise"


def test_work_timeout_stops_the_command_and_counts_the_attempt_as_failed(
    loaded: Run, db: str, clock: FakeClock
) -> None:
    assert loaded("setup", "--max-attempts", "1").exit_code == 0
    # A shell starts in milliseconds even on a loaded machine (a Python interpreter took
    # longer than the old 0.2 s timeout there, so "started" was sometimes never printed).
    sleeper = "echo started; exec sleep 120"
    result = loaded("work", "-w", "runner", "--timeout", "1", "--", "sh", "-c", sleeper)
    assert result.exit_code == 3, result.output
    assert "runner: failed logs__0__0 (epoch 1): command timed out after 1s (stopped with SIGTERM)" in result.stderr
    item = coordinator(db, clock).get_work_item("logs__0__0")
    assert item.status is WorkItemStatus.FAILED
    assert item.last_error == "command timed out after 1s (stopped with SIGTERM)\nstdout:\nstarted"
    assert loaded("work", "--timeout", "0", "--", "true").exit_code == 2


def test_work_needs_a_command_and_a_heartbeat_shorter_than_the_lease(loaded: Run) -> None:
    assert loaded("work").exit_code == 2
    bad = loaded("work", "--lease", "5", "--heartbeat", "5", "--", "true")
    assert bad.exit_code == 2 and "must be shorter than the lease" in bad.stderr


def test_work_with_several_processes_gives_each_its_own_worker_id(
    loaded: Run, db: str, clock: FakeClock, capfd: pytest.CaptureFixture[str]
) -> None:
    # The child processes use the real clock; the items are pending, so that is fine.
    result = loaded("work", "--workers", "2", "-w", "team", "--poll", "0.05", "-q", "--", sys.executable, "-c", "pass")
    assert result.exit_code == 0, result.output + capfd.readouterr().err
    items = coordinator(db, clock).list_work_items()
    assert all(i.status is WorkItemStatus.COMPLETED for i in items)
    assert {i.worker_id for i in items} <= {"team-1", "team-2"}


# -- an unknown session is an error, never "all done" -------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("acquire",),
        ("status",),
        ("status", "--json"),
        ("list",),
        ("show", "logs__0__0"),
        ("renew", "logs__0__0"),
        ("complete", "logs__0__0"),
        ("release", "logs__0__0"),
        ("fail", "logs__0__0", "-e", "boom"),
        ("retry", "logs__0__0"),
        ("split", "logs__0__0", "x"),
        ("split", "logs__0__0", "--at", "5"),
        ("successors", "logs__0__0", "x"),
        ("verify",),
        ("cleanup-expired",),
        ("delete-session", "--yes"),
        ("work", "--", sys.executable, "-c", "raise SystemExit(0)"),
        ("work", "-q", "--", sys.executable, "-c", "raise SystemExit(0)"),
        ("work", "--workers", "2", "--", sys.executable, "-c", "raise SystemExit(0)"),
    ],
    ids=lambda args: "-".join(a for a in args if not a.startswith(("/", "raise"))),
)
def test_an_unknown_session_exits_9_with_one_line_and_creates_nothing(
    loaded: Run, db: str, clock: FakeClock, args: tuple[str, ...]
) -> None:
    argv = list(args)
    cut = argv.index("--") if "--" in argv else len(argv)
    result = loaded(*argv[:cut], "--db", db, "--session", "typo", *argv[cut:], db_args=False)
    assert result.exit_code == 9, result.output
    assert "typo" in result.stderr and "not found" in result.stderr
    assert "all work done" not in result.output and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert [s.session_name for s in coordinator(db, clock).list_sessions()] == ["s1"]  # no empty session left


def test_creating_commands_still_create_the_session(run: Run, db: str, clock: FakeClock) -> None:
    assert run("create", "a", "--session", "one", "--db", db, db_args=False).exit_code == 0
    assert run("lease", "b", "--session", "two", "--db", db, db_args=False).exit_code == 0
    assert run("setup", "--session", "three", "--db", db, db_args=False).exit_code == 0
    batch = run("batch", "-", "--session", "four", "--db", db, input='{"work_item_id": "c"}', db_args=False)
    assert batch.exit_code == 0
    empty = run("acquire", "--session", "three", "--db", db, db_args=False)
    assert empty.exit_code == 3  # a session that exists but holds no work: no work left, as before
    assert sorted(s.session_name for s in coordinator(db, clock).list_sessions()) == ["four", "one", "three", "two"]


# -- the demo's safety check ----------------------------------------------------------------


def test_demo_refuses_to_overwrite_a_file_with_other_sessions(run: Run, loaded: Run, db: str) -> None:
    result = run("demo", "--db", db)
    assert result.exit_code == 1
    assert "refusing to overwrite" in error_line(result) and "s1" in error_line(result)
    assert Path(db).exists()


# -- against a real server (--url) -------------------------------------------------------------


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Any]:
    server_module = pytest.importorskip("litecoord.rest.server")
    pytest.importorskip("waitress")
    srv = server_module.make_server(tmp_path / "served.db", "127.0.0.1", 0, token="t0ken").start()
    yield srv
    srv.close()


def test_every_kind_of_command_works_over_url(run: Run, server: Any, tmp_path: Path) -> None:
    env = {"LITECOORD_URL": server.url, "LITECOORD_TOKEN": "t0ken", "LITECOORD_SESSION": "remote"}

    def remote(*args: str, input: str | None = None) -> Result:
        return run(*args, input=input, env=env, db_args=False)

    created = remote("batch", "-", input=json.dumps(ITEMS))
    assert (created.exit_code, created.stdout) == (0, "created 3 work item(s); 0 already existed\n")
    lease = json.loads(remote("acquire", "-w", "w1", "--json").stdout)
    assert lease["work_item"]["work_item_id"] == "logs__1__0"
    assert remote("renew", "logs__1__0", "-w", "w1", "--docs", "7", "--lease-epoch", "1").exit_code == 0
    assert remote("complete", "logs__1__0", "-w", "w2").exit_code == 6
    assert remote("complete", "logs__1__0", "-w", "w1").exit_code == 0
    assert remote("show", "nope").exit_code == 5
    for typo in (("status", "-s", "typo"), ("acquire", "-s", "typo"), ("work", "-s", "typo", "--", "true")):
        assert remote(*typo).exit_code == 9  # session_not_found over HTTP too
    status = json.loads(remote("status", "--json").stdout)
    assert (status["session_name"], status["completed_work_items"], status["total_work_items"]) == ("remote", 1, 3)
    assert [s["session_name"] for s in json.loads(remote("sessions", "--json").stdout)] == ["remote"]

    result = remote("work", "-w", "remote-runner", "--", sys.executable, "-c", RECORD)
    assert result.exit_code == 0, result.output
    assert "item logs__0__0 remote-runner" in result.stdout
    assert json.loads(remote("status", "--json").stdout)["completed_work_items"] == 3


def test_a_wrong_token_is_a_one_line_error(run: Run, server: Any) -> None:
    result = run("list", "--url", server.url, "--token", "wrong", db_args=False)
    assert result.exit_code == 1
    assert error_line(result).startswith("Error: ")


def test_demo_recreates_its_own_file(tmp_path: Path, clock: FakeClock) -> None:
    from litecoord.cli.demo import DEMO_SESSION, _prepare_file

    path = tmp_path / "demo.db"
    old = SqliteCoordinator(path, session=DEMO_SESSION, clock=clock)
    old.create_unassigned_work_item("left-over")
    old.close()
    _prepare_file(str(path))
    assert not path.exists()


# -- real processes and real signals --------------------------------------------------------

HOLD = """
import os, sys, time
with open(os.path.join(sys.argv[1], os.environ["LITECOORD_WORK_ITEM_ID"]), "w") as f:
    f.write(str(os.getpid()))
print("LITECOORD-PROGRESS docs=5", flush=True)
time.sleep(120)
"""


@pytest.mark.parametrize(("workers", "sig"), [(1, "SIGTERM"), (2, "SIGINT")])
def test_a_signal_stops_runners_gracefully_and_releases_their_items(tmp_path: Path, workers: int, sig: str) -> None:
    import signal
    import subprocess
    import time

    db = tmp_path / "sig.db"
    setup = SqliteCoordinator(db, session="s1", worker_id="setup")
    setup.create_work_items([{"work_item_id": f"i{n}", "document_count": 10} for n in range(workers)])
    argv = [sys.executable, "-m", "litecoord.cli", "work", "--db", str(db), "-s", "s1", "-w", "sig",
            "--workers", str(workers), "--heartbeat", "0.05", "-q",
            "--", sys.executable, "-c", HOLD, str(tmp_path)]  # fmt: skip
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not all(i.documents_processed == 5 for i in setup.list_work_items()):
            assert time.monotonic() < deadline and proc.poll() is None, "the runners never got going"
            time.sleep(0.02)
        commands = [int((tmp_path / f"i{n}").read_text()) for n in range(workers)]
        proc.send_signal(getattr(signal, sig))  # only the runner (or the supervisor), as `kill` would
        assert proc.wait(timeout=30) == 130, proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
    for item in setup.list_work_items():
        assert (item.status, item.worker_id, item.documents_processed) == (WorkItemStatus.PENDING, None, 5)
    assert not any(alive(pid) for pid in commands)


@pytest.mark.parametrize(("sig", "expected"), [("SIGINT", 130), ("SIGTERM", 0)])
def test_serve_runs_the_rest_api_logs_each_request_and_exits_130_on_ctrl_c(
    tmp_path: Path, sig: str, expected: int
) -> None:
    pytest.importorskip("waitress")
    import re
    import signal
    import subprocess

    from litecoord.backends.http import HttpCoordinator

    db = tmp_path / "served.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "litecoord", "serve", "--db", str(db), "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
        # If shutdown ever hangs, SIGABRT below makes faulthandler print every thread's stack.
        env={**os.environ, "PYTHONFAULTHANDLER": "1"},
        # As when started in the background by a script: SIGINT arrives ignored, and
        # serve must still stop on it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert url, line
        client = HttpCoordinator(url.group(0), session="s1", worker_id="w1")
        assert client.create_unassigned_work_item("a") is True
        assert SqliteCoordinator(db, session="s1").get_work_item("a").status is WorkItemStatus.PENDING
        assert client.acquire_next_work_item().work_item_id == "a"
        def access_line() -> str:
            # waitress may warn "Task queue depth is N" between the lines on a loaded machine.
            while "Task queue depth" in (line := proc.stderr.readline()):
                pass
            return line

        # The access log: one line per request, with method, path, status, duration and worker id.
        created = access_line()
        assert re.fullmatch(
            r"\S+Z 127\.0\.0\.1 POST /sessions/s1/backfill/work-items/? 201 \d+\.\dms worker=-\n", created
        ), created
        acquired = access_line()
        acquire_line = r" GET /sessions/s1/backfill/work-items/acquire\?\S*worker_id=w1\S* 200 [\d.]+ms worker=w1$"
        assert re.search(acquire_line, acquired), acquired
        proc.send_signal(getattr(signal, sig))
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)
            pytest.fail("serve did not stop on a signal; its threads:\n" + proc.communicate(timeout=10)[1][-8000:])
        assert code == expected  # Ctrl-C: 130, as the README's exit code table says; SIGTERM: a clean stop
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_url_takes_several_comma_separated_servers_and_skips_a_dead_one(run: Run, server: Any) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"  # bound, not listening: refused
        env = {"LITECOORD_URL": f"{dead},{server.url}", "LITECOORD_TOKEN": "t0ken", "LITECOORD_SESSION": "remote"}
        created = run("batch", "-", input=json.dumps(ITEMS), env=env, db_args=False)
        assert (created.exit_code, created.stdout) == (0, "created 3 work item(s); 0 already existed\n")
        listed = run("list", "--url", f"{server.url},{dead}", "--token", "t0ken", "-s", "remote", db_args=False)
        assert listed.exit_code == 0 and "logs__1__0" in listed.stdout
        bad = run("list", "--url", f"{server.url},localhost:9", db_args=False)
        assert bad.exit_code == 2 and "base_url" in bad.stderr and "'localhost:9'" in bad.stderr
# -- bad numbers and bad encodings are usage errors -------------------------------------------


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN", "infinity"])
@pytest.mark.parametrize(
    "args",
    [
        ("acquire", "--lease", "{}"),
        ("lease", "x", "--lease", "{}"),
        ("renew", "logs__0__0", "--lease", "{}"),
        ("status", "--interval", "{}", "--watch"),
        ("status", "--stall-after", "{}"),
        ("work", "--heartbeat", "{}", "--", "true"),
        ("work", "--poll", "{}", "--", "true"),
        ("work", "--grace", "{}", "--", "true"),
        ("work", "--lease", "{}", "--", "true"),
        ("demo", "--lease", "{}"),
    ],
    ids=lambda args: " ".join(a for a in args if a not in ("{}", "--", "true")),
)
def test_non_finite_seconds_are_usage_errors(loaded: Run, db: str, args: tuple[str, ...], value: str) -> None:
    argv = [value if a == "{}" else a for a in args]
    result = loaded(*argv)
    assert result.exit_code == 2, result.output
    assert "is not a finite number of seconds" in result.stderr or "not in the range" in result.stderr
    assert coordinator(db, FakeClock()).status().assigned_work_items == 0


@pytest.mark.parametrize(
    ("encoding", "message"),
    [
        ("utf-16", "the file is UTF-16"),
        ("latin-1", "the file is not UTF-8 (byte 0xe9"),
    ],
)
def test_a_batch_file_in_another_encoding_is_one_line_naming_it(
    run: Run, tmp_path: Path, db: str, encoding: str, message: str
) -> None:
    path = tmp_path / "items.jsonl"
    path.write_text('{"work_item_id": "caf\u00e9__0__0"}\n', encoding=encoding)
    result = run("batch", str(path))
    assert result.exit_code == 2
    assert error_line(result).startswith(f"Error: {path}: {message}")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not Path(db).exists() or coordinator(db, FakeClock()).list_sessions() == []


def test_a_batch_file_with_a_utf8_byte_order_mark_is_read(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    path.write_text('{"work_item_id": "a"}\n', encoding="utf-8-sig")
    assert run("batch", str(path)).exit_code == 0


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:99999", "http://127.0.0.1:port", "http://127.0.0.1:0", "ftp://127.0.0.1:8000", "http://"]
)
@pytest.mark.parametrize("command", [["create", "x"], ["status"], ["import", "-"], ["list"]])
def test_a_bad_url_is_a_usage_error_naming_the_option(url: str, command: list[str]) -> None:
    result = CliRunner().invoke(cli, [*command, "--url", url, "-s", "s1"], input="")
    assert result.exit_code == 2, (result.output, result.exception)
    assert "--url" in result.output and "Traceback" not in result.output
    assert not isinstance(result.exception, ValueError)
