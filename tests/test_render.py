"""The pure renderers in litecoord.cli.render, checked on exact snapshots."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from litecoord.cli.render import (
    format_bytes,
    format_count,
    format_duration,
    has_lapsed_lease,
    is_silent,
    is_stalled,
    render_item,
    render_items,
    render_sessions,
    render_status,
    render_table,
)
from litecoord.types import SessionInfo, WorkItem, WorkItemStatus, WorkQueueStatus

NOW = datetime(2025, 1, 19, 20, 35, 0, tzinfo=timezone.utc)
T0 = datetime(2025, 1, 19, 20, 30, 0, tzinfo=timezone.utc)
MIB = 1024**2


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


def item(work_item_id: str, status: WorkItemStatus, **fields: object) -> WorkItem:
    index, shard, _ = work_item_id.split("__")
    values: dict[str, object] = {
        "work_item_id": work_item_id,
        "session_name": "demo",
        "status": status,
        "index_name": index,
        "shard_number": int(shard),
        "created_at": T0,
    }
    values.update(fields)
    return WorkItem(**values)  # type: ignore[arg-type]


STATUS = WorkQueueStatus(
    session_name="demo",
    total_work_items=12,
    pending_work_items=5,
    assigned_work_items=3,
    completed_work_items=3,
    total_documents=1_200_000,
    total_documents_processed=450_000,
    total_size_bytes=600 * MIB,
    total_bytes_processed=210 * MIB,
    started_at=T0,
    last_update=ago(1),
    failed_work_items=1,
    in_progress_work_items=3,
    expired_lease_work_items=1,
    percent_complete=37.5,
    documents_per_second=1500.0,
    bytes_per_second=700 * 1024.0,
    eta_seconds=500.0,
    estimated_completion=NOW + timedelta(seconds=500),
    as_of=NOW,
)

HEALTHY = item(
    "orders__0__0", WorkItemStatus.ASSIGNED, worker_id="demo-worker-1", document_count=200_000,
    total_size_bytes=100 * MIB, documents_processed=100_000, bytes_processed=25 * MIB,
    lease_expiry=NOW + timedelta(seconds=3), started_at=ago(60), last_heartbeat=ago(1), progress_changed_at=ago(1),
    lease_epoch=1,
)  # fmt: skip
NO_SIZE = item(
    "logs-2024__3__0", WorkItemStatus.ASSIGNED, worker_id="demo-worker-2", document_count=50_000,
    total_size_bytes=None, documents_processed=45_000, lease_expiry=NOW + timedelta(seconds=2), started_at=ago(30),
    last_heartbeat=ago(2), progress_changed_at=ago(2), lease_epoch=2,
)  # fmt: skip
# Heartbeats keep coming (1 s ago) but progress last moved 125 s ago: stalled.
STALLED = item(
    "customers__1__0", WorkItemStatus.ASSIGNED, worker_id="demo-worker-3", document_count=80_000,
    total_size_bytes=40 * MIB, documents_processed=8_000, bytes_processed=4 * MIB,
    lease_expiry=NOW + timedelta(seconds=4), started_at=ago(200), last_heartbeat=ago(1), progress_changed_at=ago(125),
    lease_epoch=1,
)  # fmt: skip
# The holder stopped renewing: the lease ran out 3 s ago (the item reads pending).
LAPSED = item(
    "products__2__0", WorkItemStatus.PENDING, worker_id="demo-worker-4", document_count=90_000,
    total_size_bytes=30 * MIB, documents_processed=30_000, bytes_processed=10 * MIB, lease_expiry=ago(3),
    started_at=ago(100), last_heartbeat=ago(7), progress_changed_at=ago(7), lease_epoch=1,
)  # fmt: skip
FAILED = item(
    "orders__5__0", WorkItemStatus.FAILED, failure_count=3, lease_epoch=3,
    last_error="command exited with code 1\nstdout:\nfetching shard\nstderr:\nconnection refused",
)  # fmt: skip
ITEMS = [
    HEALTHY,
    NO_SIZE,
    STALLED,
    LAPSED,
    FAILED,
    item("orders__6__0", WorkItemStatus.PENDING),
    item("orders__7__0", WorkItemStatus.COMPLETED, worker_id="demo-worker-1", completed_at=ago(10)),
]

VIEW_80 = """\
session demo | 37.5% | 12 items: 3 done, 3 in progress, 5 pending, 1 failed
documents [##############........................]  37.5%  450,000 / 1,200,000
bytes     [#############.........................]  35.0%  210.0 MiB / 600.0 MiB
throughput 1,500 docs/s, 700.0 KiB/s | elapsed 5m 00s | ETA 8m 20s at 20:43:20Z

in progress (3)
  ID               WORKER         ELAPSED  HEARTBEAT  DOCUMENTS     BYTES
! customers__1__0  demo-worker-3   3m 20s         1s  [.....]  10%  [.....]  10%
  orders__0__0     demo-worker-1   1m 00s         1s  [##...]  50%  [#....]  25%
  logs-2024__3__0  demo-worker-2      30s         2s  [####.]  90%  [?????]    ?

stalled (1, marked !): heartbeats arrive, progress has not moved
  customers__1__0  demo-worker-3  no progress for 2m 05s, last heartbeat 1s ago

lapsed leases (1): the next acquire hands these to another worker
  products__2__0  demo-worker-4  lease expired 3s ago at 33%

failed (1): retry with `litecoord retry ID` or `--all-failed`
  orders__5__0  3 failure(s): command exited with code 1 ... connection refused"""

# A narrow terminal: the header splits in two rather than lose the counts; rows drop the bytes bar.
VIEW_50 = """\
session demo | 37.5%
12 items: 3 done, 3 in progress, 5 pending, 1 fai~
documents [###.....]  37.5%  450,000 / 1,200,000
bytes     [##......]  35.0%  210.0 MiB / 600.0 MiB
throughput 1,500 docs/s, 700.0 KiB/s | elapsed 5m~

in progress (3)
  ID        WOR~  ELAPSED  HEARTBEAT  DOCUMENTS
! custome~  dem~   3m 20s         1s  [.....]  10%
  ... and 2 more

stalled (1, marked !): heartbeats arrive, progres~
  customers__1__0  demo-worker-3  no progress for~

lapsed leases (1): the next acquire hands these t~
  products__2__0  demo-worker-4  lease expired 3s~

failed (1): retry with `litecoord retry ID` or `-~
  orders__5__0  3 failure(s): command exited with~"""

VIEW_DONE = """\
session demo · 100.0%
12 items: 12 done, 0 in progress, 0 pending, 0 failed
documents [██████████████████] 100.0%  1,200,000 / 1,200,000
bytes     [██████████████████] 100.0%  600.0 MiB / 600.0 MiB
mean 1,500 docs/s, 700.0 KiB/s · took 4m 59s · done

kill: demo-worker-2 was killed; recovered"""


def test_status_view_at_80_columns() -> None:
    assert render_status(STATUS, ITEMS, NOW, 80) == VIEW_80


def test_status_view_is_cut_to_a_narrow_terminal_and_limits_rows() -> None:
    view = render_status(STATUS, ITEMS, NOW, 50, max_rows=1)
    assert view == VIEW_50
    assert max(len(line) for line in view.splitlines()) <= 50


def test_status_view_when_done_with_unicode_bars_and_notes() -> None:
    done = replace(
        STATUS,
        pending_work_items=0,
        assigned_work_items=0,
        completed_work_items=12,
        failed_work_items=0,
        total_documents_processed=1_200_000,
        total_bytes_processed=600 * MIB,
        percent_complete=100.0,
        eta_seconds=0.0,
    )
    view = render_status(done, [], NOW, 60, unicode=True, notes=["kill: demo-worker-2 was killed; recovered"])
    assert view == VIEW_DONE


def test_status_view_of_an_empty_session() -> None:
    empty = WorkQueueStatus("s", 0, 0, 0, 0, 0, 0, 0, 0, None, None)
    assert render_status(empty, [], NOW, 80) == (
        "session s | 0.0% | 0 items: 0 done, 0 in progress, 0 pending, 0 failed\n"
        "no work items yet: create them with `litecoord create` or `litecoord batch`"
    )


def test_status_view_says_when_only_failed_items_remain() -> None:
    stuck = replace(STATUS, pending_work_items=0, assigned_work_items=0, completed_work_items=11)
    assert "stopped: only failed items remain" in render_status(stuck, [FAILED], NOW, 100).splitlines()[3]


def test_color_adds_ansi_styles_and_nothing_else() -> None:
    plain = render_status(STATUS, ITEMS, NOW, 80)
    colored = render_status(STATUS, ITEMS, NOW, 80, color=True)
    assert "\x1b[" in colored and "\x1b[" not in plain
    assert re.sub(r"\x1b\[[0-9;]*m", "", colored) == plain


# A live lease of 60 s whose holder last renewed 25 s ago: longer than the 20 s it renews within.
SILENT = item(
    "events__4__0", WorkItemStatus.ASSIGNED, worker_id="demo-worker-5", document_count=1000,
    documents_processed=500, lease_expiry=NOW + timedelta(seconds=35), lease_duration=timedelta(seconds=60),
    leased_at=ago(40), started_at=ago(40), last_heartbeat=ago(25), progress_changed_at=ago(25), lease_epoch=1,
)  # fmt: skip


def test_a_live_lease_without_heartbeats_is_flagged_silent_with_its_heartbeat_age() -> None:
    view = render_status(STATUS, [HEALTHY, SILENT], NOW, None)
    lines = view.splitlines()
    row = next(line for line in lines if "events__4__0" in line)
    assert row.startswith("? events__4__0")  # marked
    assert row.split()[3:6] == ["40s", "25s", "[########........]"]  # elapsed since the lease, heartbeat age
    assert "silent (1, marked ?): no heartbeat for longer than a third of the lease" in lines
    assert (
        "  events__4__0  demo-worker-5  no heartbeat for 25s (due every 20s), lease ends in 35s"
    ) in lines
    # Within a third of its lease, the same holder is healthy.
    assert not is_silent(replace(SILENT, last_heartbeat=ago(19)), NOW)
    assert is_silent(SILENT, NOW) and not is_silent(LAPSED, NOW) and not is_silent(HEALTHY, NOW)


def test_retried_items_show_their_failures_last_error_and_when_they_come_back() -> None:
    retrying = item(
        "orders__6__0", WorkItemStatus.PENDING, failure_count=2, lease_epoch=2,
        next_attempt_at=NOW + timedelta(seconds=8), last_error="command exited with code 1\nstderr:\ntimeout",
    )  # fmt: skip
    due = replace(retrying, work_item_id="orders__7__0", failure_count=1, next_attempt_at=ago(1))
    status = replace(STATUS, retrying_work_items=2)
    lines = render_status(status, [*ITEMS, retrying, due], NOW, None).splitlines()
    assert lines[0].endswith("5 pending (2 retrying), 1 failed")
    at = lines.index("retrying (2): failed, back in the queue")
    assert lines[at + 1 : at + 3] == [
        "  orders__7__0  1 failure(s), retry due: command exited with code 1 ... timeout",
        "  orders__6__0  2 failure(s), retry in 8s: command exited with code 1 ... timeout",
    ]


def test_output_that_is_not_a_terminal_is_never_cut() -> None:
    long = replace(STATUS, session_name="a-session-name-long-enough-to-push-the-failed-count-past-80-columns")
    view = render_status(long, ITEMS, NOW, None)
    assert view.splitlines()[0].endswith("5 pending, 1 failed")
    assert "~" not in view
    assert "in progress (3)" in view and "[#######........]  50%" in view  # bars laid out for 100 columns


def test_no_eta_without_a_live_lease_and_frozen_figures_when_done() -> None:
    idle = replace(STATUS, assigned_work_items=0, in_progress_work_items=0, eta_seconds=None)
    assert render_status(idle, [], NOW, 100).splitlines()[3].endswith("| no ETA: no item is leased")
    done = replace(
        STATUS, pending_work_items=0, assigned_work_items=0, completed_work_items=11, elapsed_seconds=250.0,
        finished_at=ago(60), documents_per_second=1800.0,
    )  # fmt: skip
    line = render_status(done, [FAILED], NOW, 100).splitlines()[3]
    assert line == "mean 1,800 docs/s, 700.0 KiB/s | took 4m 10s | stopped: only failed items remain"


def test_stalled_and_lapsed_classification() -> None:
    assert is_stalled(STALLED, NOW)
    assert not is_stalled(HEALTHY, NOW)
    assert not is_stalled(STALLED, NOW, stall_after=timedelta(minutes=5))
    # No recent heartbeat: a dying lease, not a stall.
    assert not is_stalled(replace(STALLED, last_heartbeat=ago(120)), NOW)
    assert not is_stalled(LAPSED, NOW)
    assert has_lapsed_lease(LAPSED, NOW)
    assert not has_lapsed_lease(HEALTHY, NOW) and not has_lapsed_lease(FAILED, NOW)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "?"), (0, "0s"), (45.4, "45s"), (65, "1m 05s"), (7380, "2h 03m"), (90000, "1d 01h"), (-3, "0s")],
)
def test_format_duration(seconds: float | None, text: str) -> None:
    assert format_duration(seconds) == text


def test_format_numbers() -> None:
    assert (format_count(1234567), format_count(None), format_count(2.6)) == ("1,234,567", "?", "3")
    assert [format_bytes(v) for v in (0, 1023, 1536, 5 * MIB, 3 * 1024**4, None)] == [
        "0 B",
        "1023 B",
        "1.5 KiB",
        "5.0 MiB",
        "3.0 TiB",
        "?",
    ]


def test_render_table_aligns_columns_without_trailing_spaces() -> None:
    assert render_table(("A", "LONG HEADER"), [("xyz", 1), ("q", None)]) == (
        "A    LONG HEADER\n---  -----------\nxyz  1\nq"
    )


ITEMS_TABLE = "\n".join(
    [
        "ID              STATUS    INDEX     SHARD  DOCUMENTS        BYTES               WORKER         EPOCH  FAILURES"
        "  LEASE",
        "--------------  --------  --------  -----  ---------------  ------------------  -------------  -----  --------"
        "  -----------",
        "orders__0__0    assigned  orders    0      100,000/200,000  25.0 MiB/100.0 MiB  demo-worker-1  1        "
        "        3s left",
        "products__2__0  pending   products  2      30,000/90,000    10.0 MiB/30.0 MiB   demo-worker-4  1        "
        "        lapsed",
        "orders__5__0    failed    orders    5      0/?              0 B/?                              3      3",
        "orders__6__0    pending   orders    6      0/?              0 B/?                              1      1   "
        "      retry in 8s",
    ]
)

# Failed once, back to pending, waiting out its retry delay.
RETRYING = item(
    "orders__6__0", WorkItemStatus.PENDING, failure_count=1, lease_epoch=1, next_attempt_at=NOW + timedelta(seconds=8),
    last_error="command exited with code 1\nstderr:\nconnection refused",
)  # fmt: skip


def test_render_items() -> None:
    assert render_items([], NOW) == "no work items"
    assert render_items([HEALTHY, LAPSED, FAILED, RETRYING], NOW) == ITEMS_TABLE


def test_show_says_when_a_retry_is_due() -> None:
    lines = render_item(RETRYING, NOW).splitlines()
    assert "next_attempt_at         2025-01-19T20:35:08Z (retry in 8s)" in lines
    due = render_item(replace(RETRYING, next_attempt_at=NOW), NOW).splitlines()
    assert "next_attempt_at         2025-01-19T20:35:00Z (retry due)" in due


def test_render_item_lists_every_field_and_indents_multiline_values() -> None:
    text = render_item(FAILED, NOW)
    lines = text.splitlines()
    # Values line up after the longest field name (lease_duration_seconds) and two spaces.
    assert lines[0] == "work_item_id            orders__5__0"
    assert "status                  failed" in lines
    assert "last_error              command exited with code 1" in lines
    assert "                        connection refused" in lines
    assert len([line for line in lines if not line.startswith(" ")]) == len(FAILED.to_dict())


def test_render_sessions() -> None:
    assert render_sessions([]) == "no sessions"
    session = SessionInfo("demo", T0, total_work_items=24, completed_work_items=3)
    assert render_sessions([session]) == (
        "SESSION  ITEMS  COMPLETED  LEASE MODE  ORDER          MAX ATTEMPTS  RETRY DELAY   CREATED\n"
        "-------  -----  ---------  ----------  -------------  ------------  ------------  --------------------\n"
        "demo     24     3          fixed       largest_first  3             10s..10m 00s  2025-01-19T20:30:00Z"
    )


def test_an_item_just_recovered_from_a_dead_worker_is_not_stalled() -> None:
    # The dead holder's last progress is minutes old; the new lease began 10 s ago.
    recovered = WorkItem(
        work_item_id="orders__1__0",
        session_name="s",
        status=WorkItemStatus.ASSIGNED,
        worker_id="w2",
        lease_expiry=NOW + timedelta(minutes=5),
        started_at=T0,
        progress_changed_at=T0,
        leased_at=NOW - timedelta(seconds=10),
        last_heartbeat=NOW - timedelta(seconds=5),
    )
    assert not is_stalled(recovered, NOW)
    # Ninety seconds on with heartbeats but no progress, it is.
    later = NOW + timedelta(seconds=90)
    assert is_stalled(replace(recovered, last_heartbeat=later - timedelta(seconds=5)), later)


def test_status_view_shows_split_requests_and_the_items_splits_made() -> None:
    giant = replace(HEALTHY, range_start=0, range_end=120_000, split_requested_at=110_000)
    kept = item(
        "logs__1__0", WorkItemStatus.COMPLETED, range_start=0, range_end=60_000, document_count=60_000,
        documents_processed=60_000,
    )  # fmt: skip
    new = item(
        "logs__1__60000", WorkItemStatus.PENDING, range_start=60_000, range_end=None, parent_id="logs__1__0",
        created_at=T0 + timedelta(seconds=5),
    )  # fmt: skip
    older = replace(new, work_item_id="logs__1__30000", range_start=30_000, range_end=60_000, created_at=T0)
    lines = render_status(STATUS, [giant, kept, new, older], NOW, 100).splitlines()
    at = lines.index("split requested (1): an idle worker asked the holder to give part away")
    assert lines[at + 1] == "  orders__0__0  demo-worker-1  [0, 120,000)  asked to split at 110,000"
    at = lines.index("split off (2): items that splits made, newest first")
    assert lines[at + 1 : at + 3] == [
        "  logs__1__60000  [60,000, end)  from logs__1__0  pending",
        "  logs__1__30000  [30,000, 60,000)  from logs__1__0  pending",
    ]


def test_split_rows_fold_onto_more_lines_at_80_columns_instead_of_losing_their_end() -> None:
    # The demo's names: a row of the giant shard's split is wider than 80 columns.
    giant = replace(
        HEALTHY, work_item_id="logs-giant__0__0", worker_id="demo-worker-1@host-a", range_start=0,
        range_end=4_337_634, split_requested_at=3_098_007,
    )  # fmt: skip
    piece = item(
        "logs-giant__0__3098007", WorkItemStatus.COMPLETED, range_start=3_098_007, range_end=3_717_820,
        parent_id="logs-giant__0__0", created_at=T0,
    )  # fmt: skip
    lines = render_status(STATUS, [giant, piece], NOW, 80).splitlines()
    assert max(len(line) for line in lines) <= 80 and not any(line.endswith("~") for line in lines)
    at = lines.index("split off (1): items that splits made, newest first")
    assert lines[at + 1 : at + 3] == [
        "  logs-giant__0__3098007  [3,098,007, 3,717,820)  from logs-giant__0__0",
        "      completed",
    ]
    at = lines.index("split requested (1): an idle worker asked the holder to give part away")
    assert lines[at + 1 : at + 3] == [
        "  logs-giant__0__0  demo-worker-1@host-a  [0, 4,337,634)",
        "      asked to split at 3,098,007",
    ]
    # At 40 columns every field still shows, one per line where two do not fit.
    narrow = render_status(STATUS, [giant, piece], NOW, 40).splitlines()
    at = narrow.index("split off (1): items that splits made, ~")
    assert narrow[at + 1 :] == [
        "  logs-giant__0__3098007",
        "      [3,098,007, 3,717,820)",
        "      from logs-giant__0__0  completed",
    ]
