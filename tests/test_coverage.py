"""The coverage audit's arithmetic (litecoord.coverage.coverage_of) on items no API call can make:
overlaps and items completed short, as a damaged or hand-edited store could hold them."""

from __future__ import annotations

from litecoord.coverage import CoverageReport, coverage_of
from litecoord.types import WorkItem, WorkItemStatus

DONE = WorkItemStatus.COMPLETED


def item(name: str, start: int, end: int | None, processed: int, status: WorkItemStatus = DONE, **extra) -> WorkItem:
    fields = {"index_name": "logs", "shard_number": 0, **extra}
    return WorkItem(
        work_item_id=name, session_name="s", status=status, range_start=start, range_end=end,
        documents_processed=processed, **fields,
    )  # fmt: skip


def test_exact_tiling_is_ok():
    report = coverage_of("s", [item("a", 0, 500, 500), item("b", 500, 1000, 500)])
    assert report.ok and report.shards[0].covered == ((0, 1000),) and report.gap_count == 0


def test_an_item_completed_short_leaves_a_gap_and_is_named():
    report = coverage_of("s", [item("a", 0, 500, 450), item("b", 500, 1000, 500)])
    shard = report.shards[0]
    assert not report.ok and shard.short == ("a",) and shard.gaps == ((450, 500),)


def test_overlapping_items_are_reported_as_processed_twice():
    report = coverage_of("s", [item("a", 0, 600, 600), item("b", 500, 1000, 500), item("c", 550, 700, 150)])
    assert not report.ok and report.shards[0].overlaps == ((500, 700),) and report.shards[0].gaps == ()


def test_a_hole_between_items_and_unfinished_items_are_gaps():
    pending = WorkItemStatus.PENDING
    report = coverage_of("s", [item("a", 0, 300, 300), item("b", 600, 1000, 400), item("c", 300, 500, 0, pending)])
    shard = report.shards[0]
    assert shard.gaps == ((300, 600),) and shard.incomplete == ("c",) and shard.verdict == "not_ok"


def test_shards_are_told_apart_and_the_report_round_trips_through_json():
    other = WorkItem(work_item_id="logs__1__0", session_name="s", status=DONE, range_start=0, range_end=10,
                     documents_processed=10)  # fmt: skip
    bare = item("open", 0, None, 5, index_name=None, shard_number=None)
    report = coverage_of("s", [item("a", 0, 10, 10), other, bare])
    assert [(s.index_name, s.shard_number, s.root_id, s.verdict) for s in report.shards] == [
        ("logs", 0, None, "ok"), ("logs", 1, None, "ok"), (None, None, "open", "unverifiable"),
    ]  # fmt: skip
    assert report.ok  # an unverifiable shard is listed, not failed
    assert CoverageReport.from_dict(report.to_dict()) == report


def test_the_concepts_pages_ranges_example_runs_as_written(tmp_path, monkeypatch):
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "concepts.md").read_text(encoding="utf-8")
    section = text[text.index("## Ranges, live splits and the coverage audit") : text.index("## Retries")]
    (block,) = re.findall(r"```python\n(.*?)```", section, re.S)
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "docs/concepts.md", "exec"), {})
    assert (tmp_path / "ranges-demo.db").exists()
