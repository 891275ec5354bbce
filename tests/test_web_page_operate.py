"""The status page's operator controls (issue 19, sections 1 and 3-6), in headless Chromium:
an item's attempts, the workers view, failure groups with bulk retry, pause and resume, the
ETA cases and the chart of a finished run.

Same set-up as test_web_page.py: a server in this process sharing the test's
FakeClock, the backfill of browser_support.populate.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from browser_support import FAILED, LAPSED, STALLED, WAIT_MS, Served, expect, open_session

from litecoord import FakeClock, SqliteCoordinator, WorkItemStatus


def test_an_items_view_lists_its_attempts_with_each_error_in_full(page: Any, served: Served) -> None:
    long_error = "exit code 1: " + "y" * 300 + " END"
    served.root.bind(session="demo", worker_id="worker-logs-1").fail_work_item(STALLED, long_error)
    page.goto(f"{served.url}/?session=demo&item={STALLED}&refresh=0.3")
    rows = page.locator("table.history tbody tr[data-attempt]")
    expect(rows).to_have_count(1)
    assert rows.locator('[data-field="outcome"]').inner_text() == "failed"
    assert "worker-logs-1" in rows.inner_text()
    assert rows.locator("pre.error-full").inner_text() == long_error
    # The lapsed lease taken over by another worker: two attempts, the first one lapsed.
    served.root.bind(session="demo", worker_id="heir").acquire_next_work_item(timedelta(minutes=5))
    page.goto(f"{served.url}/?session=demo&item={LAPSED}&refresh=0.3")
    expect(page.locator("table.history tbody tr[data-attempt]")).to_have_count(2)
    outcomes = page.locator('table.history [data-field="outcome"]').all_inner_texts()
    assert outcomes == ["lapsed", "running"]
    assert page.console.errors == []


def test_the_workers_view_flags_silent_workers(page: Any, served: Served) -> None:
    open_session(page, served)
    page.locator(".workers summary").click()
    silent = page.locator('tr[data-worker="worker-customers-0"]')
    expect(silent).to_contain_text("SILENT")
    assert "SILENT" not in page.locator('tr[data-worker="worker-logs-0"]').inner_text()
    assert "working" in page.locator('tr[data-worker="worker-logs-0"]').inner_text()
    finisher = page.locator('tr[data-worker="worker-finisher"]')
    assert finisher.locator('[data-label="Completed"]').inner_text() == "3"
    assert "idle" in finisher.inner_text()
    expect(page.locator(".workers summary")).to_contain_text("1 silent")
    # Time moves on the server's clock: the healthy worker goes silent too.
    served.clock.advance(seconds=101)
    expect(page.locator('tr[data-worker="worker-logs-0"]')).to_contain_text("SILENT")
    assert page.console.errors == []


def _fail(served: Served, item_id: str, error: str) -> None:
    worker = served.root.bind(session="demo", worker_id=f"failer-{item_id}")
    worker.create_or_update_lease_for_work_item(item_id, timedelta(minutes=5))
    worker.fail_work_item(item_id, error)


def test_failures_are_grouped_and_retried_by_group_or_all_after_a_confirmation_with_the_count(
    page: Any, served: Served
) -> None:
    _fail(served, "orders__1__0", "shard 1 failed: HTTP 429 from 'target-a'")
    _fail(served, "orders__2__0", "shard 2 failed: HTTP 429 from 'target-b'")
    _fail(served, "orders__3__0", "disk full")
    open_session(page, served)
    groups = page.locator("table.groups tbody tr[data-group]")
    expect(groups).to_have_count(3)
    group = groups.filter(has_text="orders__1__0")
    assert group.locator('[data-field="count"]').inner_text() == "2"
    group.get_by_role("button", name=re.compile(r"^Retry the 2 failed items of the group shard")).click()
    dialog = page.locator("dialog#confirm")
    assert "2 failed item(s)" in dialog.inner_text() and "2 item(s) will be touched" in dialog.inner_text()
    page.locator("#confirm-ok").click()
    page.get_by_text("2 item(s) were returned to pending.").wait_for()
    coord = served.root.bind(session="demo")
    assert [coord.get_work_item(i).status for i in ("orders__1__0", "orders__2__0")] == [WorkItemStatus.PENDING] * 2
    expect(groups).to_have_count(2)
    # Every failed item: the dialog says how many; cancelled, nothing moves.
    retry_all = page.get_by_role("button", name="Retry all 2 failed…")
    retry_all.click()
    assert "all 2 failed item(s)" in dialog.inner_text()
    page.keyboard.press("Escape")
    assert coord.get_work_item("orders__3__0").status is WorkItemStatus.FAILED
    expect(retry_all).to_be_focused()
    retry_all.click()
    page.locator("#confirm-ok").click()
    # (The first retry's message reads the same: wait for what only this one changes.)
    expect(page.locator("table.groups")).to_have_count(0)
    assert coord.get_work_item(FAILED).status is WorkItemStatus.PENDING
    assert page.console.errors == []


def test_pause_and_resume_ask_first_and_show_the_paused_state(page: Any, served: Served) -> None:
    open_session(page, served)
    page.get_by_role("button", name="Pause hand-outs…").click()
    dialog = page.locator("dialog#confirm")
    assert "3 lease(s) in flight go on and complete" in dialog.inner_text()
    page.keyboard.press("Escape")
    assert served.get("/sessions/demo/backfill/work-items/status")["paused"] is False
    page.get_by_role("button", name="Pause hand-outs…").click()
    page.locator("#confirm-ok").click()
    expect(page.locator('[data-field="paused"]')).to_contain_text("PAUSED")
    assert served.get("/sessions/demo/backfill/work-items/status")["paused"] is True
    expect(page.locator('[data-field="eta"]')).to_have_text("paused")
    from litecoord import NoAvailableWorkToBeDone

    got = served.http("newcomer").acquire_next_work_item()
    assert isinstance(got, NoAvailableWorkToBeDone) and got.paused
    page.get_by_role("button", name="Resume hand-outs…").click()
    assert "can be handed out" in dialog.inner_text()
    page.locator("#confirm-ok").click()
    expect(page.locator('[data-field="paused"]')).to_have_count(0)
    assert served.get("/sessions/demo/backfill/work-items/status")["paused"] is False
    assert page.console.errors == []


def test_the_eta_says_why_there_is_none_and_a_finished_run_says_when_it_ran(
    browser: Any, db_path: Path, clock: FakeClock
) -> None:
    from litecoord.rest.server import make_server

    root = SqliteCoordinator(db_path, clock=clock, durability="normal")
    a = root.bind(session="eta", worker_id="a")
    a.create_work_items([{"work_item_id": f"i{n}", "document_count": 1000} for n in range(3)])
    server = make_server(db_path, port=0, clock=clock, threads=2, durability="normal").start()
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    try:
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(f"{server.url}/?session=eta&refresh=0.3")
        eta = page.locator('[data-field="eta"]')
        detail = page.locator('[data-field="eta_detail"]')
        expect(eta).to_have_text("unknown")
        expect(detail).to_contain_text("nobody holds a live lease")
        # Moving: an ETA, and the rates labelled.
        lease = a.acquire_next_work_item(timedelta(minutes=30))
        for step in range(1, 7):
            clock.advance(seconds=10)
            a.update_progress_and_renew_lease(lease.work_item_id, 100 * step, 0)
        expect(eta).not_to_have_text("unknown")
        rates = page.locator(".totals .rates").first.inner_text()
        assert "Recent rate (last" in rates and "Mean rate over the run" in rates
        # Only a stalled lease left moving nothing: no ETA, and why.
        for _ in range(8):
            clock.advance(seconds=10)
            a.update_progress_and_renew_lease(lease.work_item_id, 600, 0)
        expect(eta).to_have_text("unknown")
        expect(detail).to_contain_text("stalled or silent")
        # Finished: started, finished, took; the chart ends where the run ended and stays.
        a.update_progress_and_renew_lease(lease.work_item_id, 1000, 0)
        a.complete_work_item(lease.work_item_id)
        for _ in range(2):
            nxt = a.acquire_next_work_item(timedelta(minutes=30))
            clock.advance(seconds=20)
            a.update_progress_and_renew_lease(nxt.work_item_id, 1000, 0)
            a.complete_work_item(nxt.work_item_id)
        expect(eta).to_have_text("done")
        times = page.locator('[data-field="run_times"]')
        expect(times).to_contain_text("finished")
        assert "took 3m 00s" in times.inner_text() and "Started" in times.inner_text()
        chart = page.locator("figure.chart svg").get_attribute("aria-label")
        axis = page.locator("figure.chart .axis").inner_text()
        clock.advance(hours=2)
        page.reload()
        expect(eta).to_have_text("done")
        assert page.locator("figure.chart svg").get_attribute("aria-label") == chart
        assert page.locator("figure.chart .axis").inner_text() == axis
        assert "0 docs/s" in page.locator("figure.chart .y-axis").inner_text()
    finally:
        context.close()
        server.close()
        root.close()


def test_the_phone_layout_keeps_the_operator_controls_on_screen(browser: Any, served: Served) -> None:
    context = browser.new_context(viewport={"width": 420, "height": 900})
    try:
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        open_session(page, served)
        page.locator(".workers summary").click()
        page.wait_for_selector("table.workers tbody tr[data-worker]")
        page.wait_for_selector("table.groups tbody tr[data-group]")
        assert page.evaluate("document.documentElement.scrollWidth") <= 420
        outside = page.evaluate(
            "[...document.querySelectorAll('table.stack td, table.stack th[scope=row], button')]"
            ".filter(c => { const r = c.getBoundingClientRect(); return r.width && (r.left < 0 || r.right > 421); })"
            ".map(c => (c.dataset.label || c.tagName) + ': ' + c.textContent)"
        )
        assert outside == []
    finally:
        context.close()





def test_the_chart_covers_the_whole_run_beyond_the_hour_of_samples_the_server_keeps(
    browser: Any, db_path: Path, clock: FakeClock
) -> None:
    from litecoord.rest.server import make_server

    root = SqliteCoordinator(db_path, clock=clock, durability="normal")
    a = root.bind(session="long", worker_id="a")
    a.create_work_items([{"work_item_id": "big", "document_count": 1_000_000}])
    lease = a.acquire_next_work_item(timedelta(minutes=30))
    started = a.status().started_at
    for step in range(1, 90 * 6 + 1):  # 90 minutes of renewals every 10 s
        clock.advance(seconds=10)
        a.update_progress_and_renew_lease(lease.work_item_id, 1_000 * step, 0)
    samples = a.progress_samples()
    assert samples[0].sampled_at - started > timedelta(minutes=25)  # the server kept the last hour only
    server = make_server(db_path, port=0, clock=clock, threads=2, durability="normal").start()
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    try:
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(f"{server.url}/?session=long&refresh=0.3")
        axis = page.locator("figure.chart .axis span").first
        expect(axis).to_have_text(started.strftime("%Y-%m-%d %H:%M:%S UTC"))
        assert "100 docs/s" in page.locator("figure.chart svg").get_attribute("aria-label")  # the steady rate
    finally:
        context.close()
        server.close()
        root.close()


def test_a_finished_session_shows_each_shards_coverage_and_names_a_gap(
    browser: Any, db_path: Path, clock: FakeClock
) -> None:
    from litecoord.rest.server import make_server

    root = SqliteCoordinator(db_path, clock=clock, durability="normal")
    a = root.bind(session="cov", worker_id="a")
    a.setup(max_attempts=1)
    a.create_work_items([{"work_item_id": f"logs__{n}__0", "index_name": "logs", "shard_number": n,
                          "document_count": 1000} for n in range(2)])  # fmt: skip
    lease = a.acquire_next_work_item(timedelta(minutes=5))
    a.update_progress_and_renew_lease(lease.work_item_id, 1000, 0)
    a.complete_work_item(lease.work_item_id)
    server = make_server(db_path, port=0, clock=clock, threads=2, durability="normal").start()
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    try:
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(f"{server.url}/?session=cov&refresh=0.3")
        page.wait_for_selector('section[data-session="cov"] [data-field="percent_complete"]')
        assert page.locator("table.coverage").count() == 0  # while work remains, no audit is asked
        short = a.acquire_next_work_item(timedelta(minutes=5))
        a.update_progress_and_renew_lease(short.work_item_id, 600, 0)
        a.fail_work_item(short.work_item_id, "gone")  # parked (max_attempts 1): its shard never covered
        row = page.locator(f'table.coverage tr[data-shard="logs/{short.work_item.shard_number}"]')
        expect(row.locator('[data-field="verdict"]')).to_have_text("NOT OK")
        expect(row.locator('[data-field="gaps"]')).to_have_text("0–1,000")
        expect(page.locator('section[aria-label="Coverage audit"] h3')).to_contain_text("NOT OK (1 gaps")
        done = lease.work_item.shard_number
        expect(page.locator(f'table.coverage tr[data-shard="logs/{done}"] [data-field="verdict"]')).to_have_text("ok")
    finally:
        context.close()
        server.close()
