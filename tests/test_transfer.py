"""Moving a session between stores: ``export_session`` / ``import_session`` and the CLI's export/import.

A session is built mid-run (live and lapsed leases, progress, failures, a
parked item, a split, progress history), exported, imported elsewhere and
compared field by field; then the workers carry on against the new store.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from litecoord import FakeClock, NoAvailableWorkToBeDone, SqliteCoordinator, ValidationError, WorkItemAndDuration
from litecoord.cli.commands import base as cli_base
from litecoord.cli.commands import cli
from litecoord.errors import LeaseConflictError, SessionNotEmptyError
from litecoord.protocol import Coordinator, SessionTransfer
from litecoord.transfer import read_jsonl, write_jsonl

Make = Callable[..., Any]


@contextlib.contextmanager
def sqlite_store(path: Path, clock: FakeClock) -> Iterator[Make]:
    made: list[SqliteCoordinator] = []

    def make(session: str = "s1", worker_id: str = "w1") -> SqliteCoordinator:
        made.append(SqliteCoordinator(path, session=session, worker_id=worker_id, clock=clock))
        return made[-1]

    yield make
    for coordinator in made:
        coordinator.close()


@contextlib.contextmanager
def postgres_store(path: Path, clock: FakeClock) -> Iterator[Make]:
    """A PostgreSQL schema of the test's own (pg_support: skipped locally without a server, fails under CI)."""
    from pg_support import fresh_schema

    from litecoord import PostgresCoordinator

    with fresh_schema() as dsn:
        made: list[Any] = []

        def make(session: str = "s1", worker_id: str = "w1") -> Any:
            made.append(PostgresCoordinator(dsn, session=session, worker_id=worker_id, clock=clock))
            return made[-1]

        try:
            yield make
        finally:
            for coordinator in made:
                coordinator.close()


STORES: dict[str, Callable[[Path, FakeClock], contextlib.AbstractContextManager[Make]]] = {
    "sqlite": sqlite_store,
    "postgres": postgres_store,
}


def mid_run(make: Make, clock: FakeClock) -> None:
    """A backfill caught mid-run: every state an item can be in, and progress history."""
    admin = make()
    admin.setup(lease_mode="exponential", acquire_order="largest_first", max_attempts=2, retry_delay=0)
    admin.create_work_items(
        [
            {"work_item_id": f"logs__{n}", "index_name": "logs", "shard_number": n,
             "document_count": 1000 * (n + 1), "total_size_bytes": 10_000 * (n + 1)}
            for n in range(6)
        ]
        + [{"work_item_id": "bare, with comma / and ünïcode"}]
    )  # fmt: skip
    w1, w2, w3, w4 = (make(worker_id=w) for w in ("w1", "w2", "w3", "w4"))
    lease1 = w1.acquire_next_work_item(timedelta(minutes=5))  # logs__5: live, with progress
    clock.advance(seconds=11)
    w1.update_progress_and_renew_lease(lease1.work_item_id, 700, 7000, lease_epoch=1)
    lease2 = w2.acquire_next_work_item(timedelta(seconds=30))  # logs__4: will lapse
    w2.update_progress_and_renew_lease(lease2.work_item_id, 100, 1000)
    lease3 = w3.acquire_next_work_item()  # logs__3: split into two successors
    w3.create_successor_work_items_and_mark_complete(lease3.work_item_id, ["logs__3a", "logs__3b"])
    clock.advance(seconds=11)
    for _ in range(2):  # logs__2 fails twice: parked as failed (max_attempts=2)
        lease = w4.acquire_next_work_item()
        w4.fail_work_item(lease.work_item_id, f"boom at {lease.lease_epoch}\nsecond line")
    lease = w4.acquire_next_work_item()  # logs__1: completed
    w4.complete_work_item(lease.work_item_id)
    lease = w4.acquire_next_work_item()  # failed once, back to pending, waiting out a retry delay
    admin.setup(retry_delay=600, max_retry_delay=900)
    w4.fail_work_item(lease.work_item_id, "transient")
    clock.advance(seconds=40)  # w2's 30 s lease has lapsed; w1's 5 minutes have not


def records_of(coordinator: SessionTransfer) -> list[dict[str, Any]]:
    return list(coordinator.export_session())


def as_file(records: list[dict[str, Any]]) -> io.StringIO:
    stream = io.StringIO()
    write_jsonl(records, stream)
    stream.seek(0)
    return stream


@pytest.fixture(params=sorted(STORES))
def target(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Iterator[Make]:
    with STORES[request.param](tmp_path / "target.db", clock) as make:
        yield make


@pytest.fixture
def source(tmp_path: Path, clock: FakeClock) -> Iterator[Make]:
    with sqlite_store(tmp_path / "source.db", clock) as make:
        mid_run(make, clock)
        yield make


def test_a_session_mid_run_arrives_whole(source: Make, target: Make) -> None:
    exported = records_of(source())
    assert [r["type"] for r in exported] == (
        ["header", "session"] + ["item"] * 9 + ["attempt"] * 7 + ["sample"] * 3 + ["end"]
    )

    summary = target().import_session(read_jsonl(as_file(exported)))

    assert (summary.items, summary.samples, summary.live_leases, summary.replaced_items) == (9, 3, 1, 0)
    before, after = source(), target()
    assert after.list_work_items() == before.list_work_items()  # every field, in creation order
    assert after.status() == before.status()  # counts, progress, throughput and ETA from the history
    assert after.list_sessions() == before.list_sessions()  # options too
    assert records_of(after)[1:] == exported[1:]  # and out again, the same records
    items = {i.work_item_id: i for i in after.list_work_items()}
    assert items["logs__5"].status.value == "assigned" and items["logs__5"].documents_processed == 700
    assert items["logs__2"].status.value == "failed" and items["logs__2"].last_error == "boom at 2\nsecond line"
    waiting = [i for i in before.list_work_items() if i.next_attempt_at is not None]
    assert len(waiting) == 1 and items[waiting[0].work_item_id].next_attempt_at == waiting[0].next_attempt_at
    assert items["logs__3"].successor_ids == ("logs__3a", "logs__3b") and items["logs__3a"].parent_id == "logs__3"
    # Every item's history came along: who held it, how each attempt ended, the errors.
    for name in items:
        assert after.work_item_history(name) == before.work_item_history(name)
    assert [(a.worker_id, a.outcome.value, a.error) for a in after.work_item_history("logs__2")] == [
        ("w4", "failed", "boom at 1\nsecond line"), ("w4", "failed", "boom at 2\nsecond line"),
    ]  # fmt: skip
    assert [a.outcome.value for a in after.work_item_history("logs__3")] == ["split"]


def test_workers_carry_on_against_the_new_store(source: Make, target: Make, clock: FakeClock) -> None:
    target().import_session(source().export_session())
    w1, w2, w5 = target(worker_id="w1"), target(worker_id="w2"), target(worker_id="w5")

    # The live lease survived: same holder, same epoch, same expiry.
    renewed = w1.update_progress_and_renew_lease("logs__5", 900, lease_epoch=1)
    assert (renewed.worker_id, renewed.lease_epoch, renewed.documents_processed) == ("w1", 1, 900)
    with pytest.raises(LeaseConflictError):
        w5.complete_work_item("logs__5")
    # The lapsed one is taken over first, with the next epoch; its late holder is fenced off.
    taken = w5.acquire_next_work_item(timedelta(seconds=30))
    assert isinstance(taken, WorkItemAndDuration)
    assert (taken.work_item_id, taken.lease_epoch) == ("logs__4", 2)
    assert taken.lease_duration == timedelta(seconds=60)  # exponential mode: 30 s x 2^(epoch so far)
    with pytest.raises(LeaseConflictError):
        w2.complete_work_item("logs__4", lease_epoch=1)
    w1.complete_work_item("logs__5", lease_epoch=1)
    w5.complete_work_item("logs__4", lease_epoch=2)
    done = 2
    while isinstance(lease := w5.acquire_next_work_item(), WorkItemAndDuration):
        w5.complete_work_item(lease.work_item_id, lease_epoch=lease.lease_epoch)
        done += 1
    waiting = w5.acquire_next_work_item()
    assert done == 5 and waiting.reason == "retry_wait"  # the retry delay came along with the item
    clock.set(waiting.next_attempt_at)
    w5.complete_work_item(w5.acquire_next_work_item().work_item_id)
    done += 1
    status = w5.status()
    assert done == 6  # logs__5, logs__4, then logs__0, logs__3b and the bare item, then logs__3a once due
    assert (status.completed_work_items, status.failed_work_items, status.pending_work_items) == (8, 1, 0)


def test_sqlite_to_the_target_and_back_again_loses_nothing(
    source: Make, target: Make, tmp_path: Path, clock: FakeClock
) -> None:
    """Mid-run onto the target, work goes on there (a lease, progress, a failure), then back to a new SQLite file."""
    target().import_session(source().export_session())
    w1, w6 = target(worker_id="w1"), target(worker_id="w6")
    w1.update_progress_and_renew_lease("logs__5", 950, 9500, lease_epoch=1)
    clock.advance(seconds=12)
    lease = w6.acquire_next_work_item()  # the lapsed logs__4, epoch 2
    w6.fail_work_item(lease.work_item_id, "moved and failed", lease_epoch=lease.lease_epoch)
    there = records_of(target())

    with sqlite_store(tmp_path / "back.db", clock) as back:
        back().import_session(there)
        assert records_of(back())[1:] == there[1:]
        assert back().list_work_items() == target().list_work_items()
        assert back().status() == target().status()
    item = {i.work_item_id: i for i in target().list_work_items()}["logs__4"]
    assert (item.lease_epoch, item.failure_count, item.last_error) == (2, 1, "moved and failed")


def test_a_session_that_holds_items_is_kept_unless_replace(source: Make, target: Make) -> None:
    exported = records_of(source())
    occupant = target()
    occupant.create_work_items([{"work_item_id": "mine"}])
    with pytest.raises(SessionNotEmptyError, match="already holds 1 work item"):
        occupant.import_session(exported)
    assert [i.work_item_id for i in occupant.list_work_items()] == ["mine"]

    summary = target().import_session(exported, replace=True)
    assert summary.replaced_items == 1
    assert [i.work_item_id for i in target().list_work_items()] == [i.work_item_id for i in source().list_work_items()]


def test_an_empty_session_or_another_name_is_fine(source: Make, target: Make) -> None:
    exported = records_of(source())
    target().setup(max_attempts=9)  # exists, holds nothing
    target().import_session(exported)
    assert target().list_sessions()[0].max_attempts == 2  # the file's options win
    renamed = target(session="moved")
    assert renamed.import_session(exported).session_name == "moved"
    assert renamed.list_work_items() == [
        i.__class__(**{**i.__dict__, "session_name": "moved"}) for i in source().list_work_items()
    ]


def edit(records: list[dict[str, Any]], index: int, **changes: Any) -> list[Any]:
    edited = [dict(r) for r in records]
    edited[index].update(changes)
    return edited


BAD_FILES: list[tuple[str, Callable[[list[dict[str, Any]]], list[Any]], str, str]] = [
    ("not an export", lambda r: [{"work_item_id": "a"}] + r[1:], "line 1", "not a litecoord session export"),
    ("newer version", lambda r: edit(r, 0, version=3), "line 1", "version is 3"),
    ("truncated", lambda r: r[:-4], "line 19", "end record is missing"),
    ("miscounted", lambda r: r[:8] + r[9:], "line 21", "it is incomplete"),
    ("attempt lost", lambda r: r[:11] + r[12:], "line 21", "attempts and samples say 9, 7 and 3"),
    ("bad outcome", lambda r: edit(r, 11, outcome="crashed"), "line 12", "outcome must be one of"),
    ("stray attempt", lambda r: edit(r, 12, work_item_id="nope"), "line 13", "names work item 'nope'"),
    ("repeated attempt", lambda r: edit(r, 12, **{k: r[11][k] for k in ("work_item_id", "lease_epoch")}),
     "line 13", "repeats attempt"),
    ("bad status", lambda r: edit(r, 4, status="done"), "line 5", "status must be one of"),
    ("negative epoch", lambda r: edit(r, 3, lease_epoch=-1), "line 4", "lease_epoch must be an integer >= 0"),
    ("bad time", lambda r: edit(r, 6, created_at="yesterday"), "line 7", "created_at must be an RFC 3339 time"),
    ("unknown field", lambda r: edit(r, 2, colour="red"), "line 3", "colour is not a field"),
    ("holderless lease", lambda r: edit(r, 7, worker_id=None), "line 8", "worker_id, lease_expiry"),
    ("repeated id", lambda r: edit(r, 8, work_item_id=r[7]["work_item_id"]), "line 9", "repeats line 8"),
    ("lost successor", lambda r: edit(r[:10] + r[11:], -1, items=8), "line 6", "names work item 'logs__3b'"),
    ("comma successor", lambda r: edit(r, 5, successor_ids=["a,b"]), "line 6", "must not contain a comma"),
    ("bad option", lambda r: edit(r, 1, max_attempts=0), "line 2", "max_attempts must be an integer >= 1"),
    ("array", lambda r: r[:3] + [[1]] + r[3:], "line 4", "must be a JSON object"),
]


@pytest.mark.parametrize(("case", "mutate", "where", "message"), BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_a_bad_file_names_its_line_and_writes_nothing(
    source: Make, target: Make, case: str, mutate: Any, where: str, message: str
) -> None:
    exported = records_of(source())
    assert [r.get("work_item_id") for r in exported[2:9]] == [f"logs__{n}" for n in range(6)] + [
        "bare, with comma / and ünïcode"
    ]
    destination = target()
    destination.create_work_items([{"work_item_id": "untouched"}])
    with pytest.raises(ValidationError, match=message) as info:
        destination.import_session(mutate(exported), replace=True)
    assert info.value.field.startswith(where)
    assert [i.work_item_id for i in target().list_work_items()] == ["untouched"]


def test_malformed_json_lines_are_named() -> None:
    with pytest.raises(ValidationError, match=r"line 2: malformed JSON"):
        list(read_jsonl(io.StringIO('{"type": "header"}\n{"type": \n')))
    with pytest.raises(ValidationError, match=r"line 2: is blank"):
        list(read_jsonl(io.StringIO('{"type": "header"}\n\n{}\n')))


def test_both_embedded_backends_speak_the_transfer_protocol(tmp_path: Path) -> None:
    coordinator = SqliteCoordinator(tmp_path / "x.db")
    assert isinstance(coordinator, SessionTransfer) and isinstance(coordinator, Coordinator)


# -- the command line --------------------------------------------------------------------------------


def test_cli_export_then_import_moves_a_running_session(
    source: Make, tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli_base, "SqliteCoordinator", functools.partial(SqliteCoordinator, clock=clock))
    runner = CliRunner()
    dump = tmp_path / "s1.jsonl"
    exported = runner.invoke(cli, ["export", "--db", str(tmp_path / "source.db"), "-s", "s1", "-o", str(dump)])
    assert exported.exit_code == 0, exported.output
    assert "exported session s1: 9 work item(s), 3 progress sample(s)" in exported.stderr
    assert [json.loads(line)["type"] for line in dump.read_text().splitlines()][-1] == "end"

    moved = tmp_path / "moved.db"
    imported = runner.invoke(cli, ["import", "--db", str(moved), str(dump)])  # the file's session name
    assert imported.exit_code == 0, imported.output
    assert imported.stdout.startswith("imported session s1: 9 work item(s) (1 live lease(s) kept), 3 progress")
    again = runner.invoke(cli, ["import", "--db", str(moved), str(dump)])
    assert again.exit_code == 6 and "already holds 9 work item(s)" in again.stderr
    replaced = runner.invoke(cli, ["import", "--db", str(moved), "--replace", "--json", str(dump)])
    assert json.loads(replaced.stdout)["replaced_items"] == 9

    lines = dump.read_text().splitlines()
    lines[6] = lines[6].replace('"lease_epoch":', '"lease_epoch":-')
    (tmp_path / "bad.jsonl").write_text("\n".join(lines) + "\n")
    bad = runner.invoke(cli, ["import", "--db", str(tmp_path / "other.db"), str(tmp_path / "bad.jsonl")])
    assert bad.exit_code == 2
    assert bad.stderr.count("\n") == 1 and "bad.jsonl line 7: lease_epoch must be an integer" in bad.stderr
    assert "nothing was imported" in bad.stderr

    missing = runner.invoke(cli, ["export", "--db", str(tmp_path / "source.db"), "-s", "nope"])
    assert missing.exit_code == 9 and "session 'nope' not found" in missing.stderr  # SessionNotFoundError
    remote = runner.invoke(cli, ["export", "--url", "http://127.0.0.1:9", "-s", "s1"])
    assert remote.exit_code == 2 and "give --db, not --url" in remote.stderr


def test_retry_delays_are_optional_in_a_file_and_next_attempt_at_only_fits_a_pending_item(
    source: Make, target: Make
) -> None:
    exported = records_of(source())
    older = [dict(r) for r in exported]  # as written before retry delays existed
    for name in ("retry_delay_micros", "max_retry_delay_micros"):
        del older[1][name]
    for record in older[2:]:
        record.pop("next_attempt_at", None)
    target(session="old").import_session(older)
    info = next(s for s in target().list_sessions() if s.session_name == "old")
    assert (info.retry_delay, info.max_retry_delay) == (timedelta(seconds=10), timedelta(minutes=10))
    bad = [dict(r) for r in exported]
    assigned = next(i for i, r in enumerate(bad) if r.get("status") == "assigned")
    bad[assigned]["next_attempt_at"] = "2025-01-19T20:40:00Z"
    with pytest.raises(ValidationError, match=rf"line {assigned + 1}: next_attempt_at is only for a pending item"):
        target(session="bad").import_session(bad)


def test_ranges_splits_and_requests_move_between_stores_and_the_audit_stays_exact(
    tmp_path: Path, target: Make, clock: FakeClock
) -> None:
    with sqlite_store(tmp_path / "ranges.db", clock) as make:
        admin, w1, w2, idle = make(), make(worker_id="w1"), make(worker_id="w2"), make(worker_id="idle")
        admin.setup(split_min_documents=10)
        admin.create_work_items(
            [{"work_item_id": f"logs__{n}__0", "index_name": "logs", "shard_number": n, "document_count": 1000}
             for n in range(2)]
        )  # fmt: skip
        first = w1.acquire_next_work_item()
        second = w2.acquire_next_work_item()
        w1.update_progress_and_renew_lease(first.work_item_id, 100)
        w1.split_work_item(first.work_item_id, 400)  # a live split: [400, 1000) is pending
        w2.update_progress_and_renew_lease(second.work_item_id, 300)
        w2.create_successor_work_items_and_mark_complete(second.work_item_id, ["logs__1__300", "logs__1__800"])
        assert idle.acquire_next_work_item().work_item_id == "logs__0__400"
        idle.complete_work_item("logs__0__400")
        assert idle.acquire_next_work_item().work_item_id == "logs__1__300"
        assert make(worker_id="idle2").acquire_next_work_item().work_item_id == "logs__1__800"
        assert isinstance(make(worker_id="idle3").acquire_next_work_item(), NoAvailableWorkToBeDone)  # asks
        exported = records_of(admin)
        before = (admin.list_work_items(), admin.status(), admin.verify_coverage(), admin.list_sessions())
    requested = [(i.work_item_id, i.split_requested_at) for i in before[0] if i.split_requested_at]
    assert requested == [("logs__1__300", 550)]

    target().import_session(exported)
    after = target()
    assert (after.list_work_items(), after.status(), after.verify_coverage(), after.list_sessions()) == before
    assert records_of(after)[1:] == exported[1:]
    # Work goes on in the new store: everything left completes, and the audit is ok.
    for item in after.list_work_items("assigned"):
        target(worker_id=item.worker_id).complete_work_item(item.work_item_id)
    assert isinstance(after.acquire_next_work_item(), NoAvailableWorkToBeDone)
    report = after.verify_coverage()
    assert report.ok and [s.covered for s in report.shards] == [((0, 1000),), ((0, 1000),)]
    assert after.status().total_documents_processed == 2000


def test_a_file_written_before_ranges_gets_the_defaults_of_new_items(tmp_path: Path, clock: FakeClock) -> None:
    with sqlite_store(tmp_path / "old.db", clock) as make:
        make().create_work_items([{"work_item_id": "logs__0__500", "document_count": 100}])
        records = records_of(make())
    for record in records:
        for name in ("range_start", "range_end", "split_requested_at", "counts_in_totals", "split_min_documents"):
            record.pop(name, None)
    with sqlite_store(tmp_path / "new.db", clock) as make:
        make().import_session(records)
        item = make().get_work_item("logs__0__500")
        assert (item.range_start, item.range_end, item.split_requested_at) == (500, 600, None)
        assert make().list_sessions()[0].split_min_documents == 10_000
        assert make().status().total_documents == 100
