"""The status page in a real browser: headless Chromium (Debian's package) driven by Playwright.

The server runs in this process on a loopback port and shares the test's
FakeClock, so leases lapse and items stall when the test moves the clock,
never by sleeping. Without Chromium these tests skip with the reason, except
in CI (env CI set), where they fail: CI must run them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from browser_support import (
    FAILED,
    LAPSED,
    OK,
    SILENT,
    STALLED,
    WAIT_MS,
    Console,
    Served,
    expect,
    field,
    number,
    open_session,
)

from litecoord import FakeClock, SqliteCoordinator, WorkItemStatus

#: The bound for the page at 100,000 items: from navigation to the session's view drawn. The page
#: reads aggregates and one page of items, so it takes well under a second on a laptop; loading every
#: item (about 60 MB of JSON at 100k) could not fit in it.
RENDER_BOUND_S = 10.0


def test_the_page_shows_the_figures_of_status(page: Any, served: Served) -> None:
    open_session(page, served)
    status = served.get("/sessions/demo/backfill/work-items/status")
    for name in (
        "total_work_items",
        "completed_work_items",
        "in_progress_work_items",
        "failed_work_items",
        "retrying_work_items",
    ):
        assert number(field(page, name)) == status[name], name
    assert number(field(page, "expired_lease_work_items")) == status["expired_lease_work_items"] == 1
    assert number(field(page, "pending_only")) == status["pending_work_items"] - status["expired_lease_work_items"]
    assert field(page, "percent_complete") == f"{status['percent_complete']:.1f}%"
    done, total = field(page, "documents").split(" / ")
    assert (number(done), number(total)) == (status["total_documents_processed"], status["total_documents"])
    # Per index: the logs index has 3 of its 8 items done.
    logs_row = page.locator("table.indexes tr", has_text="logs")
    assert "3 / 8" in logs_row.inner_text()
    assert page.console.errors == []


def test_completing_an_item_through_the_api_updates_the_page_without_a_reload(page: Any, served: Served) -> None:
    open_session(page, served)
    page.evaluate("window.notReloaded = true")
    assert number(field(page, "completed_work_items")) == 3
    holder = served.http(served.roles[OK].worker_id)
    holder.complete_work_item(OK)
    expect(page.locator('section[data-session="demo"] [data-field="completed_work_items"]')).to_have_text("4")
    assert page.evaluate("window.notReloaded") is True
    assert page.locator(f'tr[data-item="{OK}"]').count() == 0  # no longer leased
    assert page.console.errors == []


def test_stalled_silent_lapsed_and_failed_items_are_flagged_in_words(page: Any, served: Served) -> None:
    open_session(page, served)
    expected = {STALLED: "STALLED", SILENT: "SILENT", LAPSED: "LAPSED", FAILED: "FAILED"}
    for item_id, word in expected.items():
        row = page.locator(f'tr[data-item="{item_id}"]')
        assert word in row.locator("td.flags").inner_text(), item_id
    ok_flags = page.locator(f'tr[data-item="{OK}"] td.flags').inner_text()
    assert not any(word in ok_flags for word in expected.values())
    assert "connection refused" in page.locator(f'tr[data-item="{FAILED}"]').inner_text()
    # Time moves on the server's clock: the healthy lease goes silent too, without a reload.
    served.clock.advance(seconds=101)
    expect(page.locator(f'tr[data-item="{OK}"] td.flags')).to_contain_text("SILENT")
    assert page.console.errors == []


def test_retry_asks_for_confirmation_and_works_from_the_keyboard(page: Any, served: Served) -> None:
    open_session(page, served)
    retry = page.get_by_role("button", name=f"Retry {FAILED}")
    retry.click()
    dialog = page.locator("dialog#confirm")
    assert dialog.is_visible() and FAILED in dialog.inner_text()
    page.keyboard.press("Escape")  # cancelled: nothing happens
    assert not dialog.is_visible()
    assert served.root.bind(session="demo").get_work_item(FAILED).status is WorkItemStatus.FAILED
    retry.focus()
    page.keyboard.press("Enter")
    assert dialog.is_visible()
    assert page.evaluate("document.activeElement.id") == "confirm-cancel"  # the safe choice first
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "confirm-ok"
    page.keyboard.press("Enter")
    page.get_by_text(f"{FAILED} was returned to pending").wait_for()
    item = served.root.bind(session="demo").get_work_item(FAILED)
    assert (item.status, item.failure_count) == (WorkItemStatus.PENDING, 0)
    expect(page.locator(f'tr[data-item="{FAILED}"]')).to_have_count(0)
    assert page.console.errors == []


def test_the_token_is_asked_once_kept_for_the_tab_and_never_put_in_a_url(
    browser: Any, db_path: Path, clock: FakeClock
) -> None:
    served = Served(db_path, clock, token="s3cret-token")
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        requests: list[Any] = []
        page.on("request", lambda r: requests.append(r))
        page.goto(f"{served.url}/?refresh=0.3")
        form = page.locator("#token-form")
        form.wait_for()
        assert page.locator("#token-error").inner_text() == ""  # no token given yet: no complaint
        page.fill("#token-input", "wrong")
        page.keyboard.press("Enter")
        page.get_by_text("did not accept that token").wait_for()
        page.fill("#token-input", "s3cret-token")
        page.click("#token-form button")
        page.wait_for_selector('section[data-session="demo"]')
        assert page.evaluate("sessionStorage.getItem('litecoord.token')") == "s3cret-token"
        page.reload()  # same tab: the token is remembered, not asked again
        page.wait_for_selector('section[data-session="demo"]')
        assert not page.locator("#token-panel").is_visible()
        data = [r for r in requests if "/sessions/" in r.url]
        assert data and all("s3cret" not in r.url for r in requests)
        sent = [r.headers.get("authorization") for r in data]
        assert "Bearer wrong" in sent and sent[-1] == "Bearer s3cret-token"
        assert all(a in ("Bearer wrong", "Bearer s3cret-token") for a in sent if a)
        fresh = context.new_page()  # session storage is per tab: a new tab asks again
        fresh.set_default_timeout(WAIT_MS)
        fresh.goto(served.url + "/")
        fresh.locator("#token-form").wait_for()
    finally:
        context.close()
        served.close()


def test_the_page_says_when_the_server_stops_answering(page: Any, served: Served) -> None:
    open_session(page, served)
    served.server.close()
    banner = page.locator("#offline")
    banner.wait_for(state="visible")
    assert "not answering" in banner.inner_text()
    assert page.get_by_role("alert").filter(has_text="not answering").count() == 1
    # The failed requests themselves are logged by the browser; nothing else may be.
    assert [e for e in page.console.errors if "Failed to load resource" not in e and "ERR_" not in e] == []


def test_the_page_at_100k_items_renders_within_the_bound(browser: Any, db_path: Path, clock: FakeClock) -> None:
    import time

    root = SqliteCoordinator(db_path, clock=clock, durability="normal")
    admin = root.bind(session="big", worker_id="admin")
    for start in range(0, 100_000, 20_000):
        admin.create_work_items(
            {"work_item_id": f"idx{n % 50}__{n}__0", "index_name": f"idx{n % 50}", "document_count": 1000}
            for n in range(start, start + 20_000)
        )
    for n in range(200):  # 200 leases, so the leased list takes several pages
        root.bind(session="big", worker_id=f"w{n}").acquire_next_work_item()
    from litecoord.rest.server import make_server

    server = make_server(db_path, port=0, clock=clock, threads=4, durability="normal").start()
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    try:
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        console = Console(page)
        started = time.perf_counter()
        page.goto(f"{server.url}/?session=big")
        page.wait_for_selector('section[data-session="big"] table.leased tbody tr')
        took = time.perf_counter() - started
        assert took < RENDER_BOUND_S, f"the page took {took:.2f}s at 100,000 items"
        assert page.locator('section[data-session="big"] [data-field="total_work_items"]').inner_text() == "100,000"
        assert page.locator("table.leased tbody tr").count() == 25  # one page, not 200 rows
        assert "page 1 of 8" in page.locator("nav.pager").first.inner_text()
        page.get_by_role("button", name="Next →").first.click()
        expect(page.locator("nav.pager").first).to_contain_text("page 2 of 8")
        assert console.errors == []
    finally:
        context.close()
        server.close()
        root.close()


def test_the_leased_table_shows_each_items_range_and_a_live_split(page: Any, served: Served) -> None:
    open_session(page, served)
    ok_range = page.locator(f'tr[data-item="{OK}"] [data-field="range"]')
    expect(ok_range).to_have_text("docs 0–10,000")
    # The holder gives away the end of its range: the page shows the shorter range without a reload.
    holder = served.http(served.roles[OK].worker_id)
    kept, new = holder.split_work_item(OK, 9_500)
    assert (kept.range_end, new.range_start, new.parent_id) == (9_500, 9_500, OK)
    expect(ok_range).to_have_text("docs 0–9,500")
    assert page.console.errors == []
