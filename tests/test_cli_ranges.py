# ruff: noqa: F811  (the fixtures of test_cli are imported by name, and tests take them as arguments)
"""The command line of ranges: `split --at`, `successors` (and the old `split` spelling), `verify`, setup's options."""

from __future__ import annotations

import json

from test_cli import ITEMS, Run, clean_environment, coordinator, db, error_line, fake_clock, loaded, run  # noqa: F401

from litecoord import FakeClock


def test_split_at_is_the_live_split(loaded: Run, db: str, clock: FakeClock) -> None:
    assert loaded("acquire", "-w", "w1").exit_code == 0  # logs__1__0: the largest
    assert loaded("renew", "logs__1__0", "-w", "w1", "--docs", "100").exit_code == 0
    result = loaded("split", "logs__1__0", "--at", "200", "-w", "w1")
    assert (result.exit_code, result.stdout) == (
        0,
        "split logs__1__0: it keeps [0, 200); logs__1__200 takes [200, 300)\n",
    )
    new = coordinator(db, clock).get_work_item("logs__1__200")
    assert (new.parent_id, new.range_start, new.range_end, new.status.value) == ("logs__1__0", 200, 300, "pending")
    again = loaded("split", "logs__1__0", "--at", "200", "-w", "w1", "--json")
    assert again.exit_code == 0 and json.loads(again.stdout)["new"]["work_item_id"] == "logs__1__200"
    behind = loaded("split", "logs__1__0", "--at", "50", "-w", "w1")
    assert behind.exit_code == 2 and "behind the recorded position 100" in error_line(behind)
    assert loaded("split", "logs__1__0", "--at", "150", "-w", "other").exit_code == 6
    clock.advance(minutes=6)
    assert loaded("split", "logs__1__0", "--at", "150", "-w", "w1").exit_code == 7
    assert loaded("split", "logs__1__0", "-w", "w1").exit_code == 2  # --at is required
    assert loaded("split", "logs__1__0", "x", "--at", "5", "-w", "w1").exit_code == 2  # not both


def test_successors_and_the_old_split_spelling_with_a_notice(loaded: Run, db: str, clock: FakeClock) -> None:
    assert loaded("acquire", "-w", "w1").exit_code == 0
    result = loaded("successors", "logs__1__0", "logs__1__200", "logs__1__100", "-w", "w1")
    assert (result.exit_code, result.stdout) == (0, "completed logs__1__0 with successors logs__1__200, logs__1__100\n")
    assert (coordinator(db, clock).get_work_item("logs__1__0").range_end) == 100
    assert loaded("lease", "logs__0__0", "-w", "w2").exit_code == 0
    old = loaded("split", "logs__0__0", "logs__0__50", "-w", "w2")
    assert old.exit_code == 0 and old.stdout == "completed logs__0__0 with successors logs__0__50\n"
    assert old.stderr == "notice: `litecoord split ID SUCCESSOR...` is now `litecoord successors ID SUCCESSOR...`\n"
    outside = loaded("successors", "logs__1__200", "logs__1__900", "-w", "w1")
    assert outside.exit_code != 0


def test_verify_exits_0_when_covered_1_when_not_9_for_an_unknown_session(
    loaded: Run, db: str, clock: FakeClock
) -> None:
    not_yet = loaded("verify")
    assert not_yet.exit_code == 1
    lines = not_yet.stdout.splitlines()
    assert lines[0].split()[:2] == ["NOT", "OK"] and "gaps [0, 100)" in lines[0]
    assert lines[2].startswith("UNVERIFIABLE") and "no known end" in lines[2]
    assert lines[-1] == "coverage of s1: NOT ok (3 shard(s), 1 unverifiable, 2 gap(s))"
    report = json.loads(loaded("verify", "--json").stdout)
    assert (report["ok"], report["gap_count"], len(report["shards"])) == (False, 2, 3)
    worker = coordinator(db, clock, "w")
    for _ in ITEMS:
        worker.complete_work_item(worker.acquire_next_work_item().work_item_id)
    done = loaded("verify")
    assert (
        done.exit_code == 0
        and done.stdout.splitlines()[-1] == "coverage of s1: ok (3 shard(s), 1 unverifiable, 0 gap(s))"
    )
    unknown = loaded("verify", "--db", db, "--session", "nope", db_args=False)
    assert unknown.exit_code == 9


def test_setup_sets_or_turns_off_split_requests(run: Run, db: str, clock: FakeClock) -> None:
    assert run("setup", "--split-min-documents", "5").exit_code == 0
    assert coordinator(db, clock).list_sessions()[0].split_min_documents == 5
    assert run("setup").exit_code == 0
    assert coordinator(db, clock).list_sessions()[0].split_min_documents == 5
    info = json.loads(run("setup", "--no-split-requests", "--json").stdout)
    assert info["split_min_documents"] is None
    assert run("setup", "--no-split-requests", "--split-min-documents", "5").exit_code == 2


def test_complete_with_a_final_count_below_the_range_is_short_in_verify(loaded: Run, db: str) -> None:
    assert loaded("acquire", "-w", "w1").exit_code == 0  # logs__1__0: [0, 300)
    bad = loaded("complete", "logs__1__0", "--docs", "-1", "-w", "w1")
    assert bad.exit_code == 2 and "--docs" in bad.stderr
    done = loaded("complete", "logs__1__0", "--docs", "250", "-w", "w1", "--json")
    assert done.exit_code == 0 and json.loads(done.stdout)["documents_processed"] == 250
    verify = loaded("verify")
    assert verify.exit_code == 1
    assert verify.stdout.splitlines()[1].split(maxsplit=2)[2] == (
        "logs/1  1 item(s)  extent [0, 300); gaps [250, 300); short: logs__1__0"
    )
