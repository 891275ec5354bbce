"""The status page's defects found in review (issue 19, section 7), in headless Chromium.

Same set-up as test_web_page.py: a server in this process sharing the test's
FakeClock, the backfill of browser_support.populate.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from browser_support import FAILED, OK, WAIT_MS, Console, Served, expect, open_session

from litecoord import FakeClock


def active(page: Any) -> dict[str, Any]:
    return page.evaluate(
        "(() => { const a = document.activeElement; return {tag: a.tagName, connected: a.isConnected, "
        "label: a.getAttribute('aria-label'), text: a.textContent, key: a.dataset ? a.dataset.key : null}; })()"
    )


def test_focus_returns_to_a_live_control_after_the_dialog_even_when_a_refresh_replaced_the_table(
    page: Any, served: Served
) -> None:
    open_session(page, served)
    retry = page.get_by_role("button", name=f"Retry {FAILED}")
    retry.evaluate("b => { b.dataset.old = '1'; }")  # a redraw builds a new button without the mark
    retry.focus()
    page.keyboard.press("Enter")
    assert page.locator("dialog#confirm").is_visible()
    served.clock.advance(seconds=5)  # ages change: the next refresh redraws the tables behind the dialog
    page.wait_for_selector(f'button[aria-label="Retry {FAILED}"]:not([data-old])', state="attached")
    page.keyboard.press("Escape")
    # The dialog closes (its close event comes a moment later): the focus lands on the new button.
    expect(page.locator(f'button[aria-label="Retry {FAILED}"]')).to_be_focused()
    assert page.locator(f'button[aria-label="Retry {FAILED}"][data-old]').count() == 0
    # Confirmed: the row goes away with the retry; the focus goes to its table's heading, not <body>.
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page.locator(f'tr[data-item="{FAILED}"]')).to_have_count(0)
    expect(page.locator("h3", has_text="Failed items")).to_be_focused()
    now = active(page)
    assert now["connected"] and now["tag"] == "H3", now
    assert page.console.errors == []


def test_a_session_that_does_not_exist_is_named_as_missing(page: Any, served: Served) -> None:
    page.goto(f"{served.url}/?session=typo&refresh=0.3")
    alert = page.locator('[data-field="missing"]')
    expect(alert).to_contain_text("no session named “typo”")
    assert page.locator("h2", has_text="No such session").is_visible()
    assert "No such session" in page.title()
    assert not page.locator("#offline").is_visible()  # not a server failure
    assert [e for e in page.console.errors if "404" not in e] == []


def test_any_error_but_401_shows_the_banner_and_dims_the_figures(page: Any, served: Served) -> None:
    open_session(page, served)
    body = json.dumps({"detail": "the database cannot be read", "code": "database_unavailable"})
    page.route("**/backfill/overview*", lambda r: r.fulfill(status=503, body=body, content_type="application/json"))
    banner = page.locator("#offline")
    expect(banner).to_contain_text("HTTP 503 (database_unavailable): the database cannot be read")
    assert "stale" in page.evaluate("document.body.className")
    assert page.locator('[data-field="completed_work_items"]').inner_text() == "3"  # the last figures stay
    page.unroute("**/backfill/overview*")
    expect(banner).to_be_hidden()
    assert "stale" not in page.evaluate("document.body.className")


def test_the_tables_fit_a_phone_420_px_wide(browser: Any, served: Served) -> None:
    context = browser.new_context(viewport={"width": 420, "height": 900})
    try:
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        open_session(page, served)
        page.wait_for_selector("table.failed tbody tr")
        assert page.evaluate("document.documentElement.scrollWidth") <= 420
        # Every cell of every table is on screen, labelled with its column.
        outside = page.evaluate(
            "[...document.querySelectorAll('table.stack td, table.stack th[scope=row]')]"
            ".filter(c => { const r = c.getBoundingClientRect(); return r.width && (r.left < 0 || r.right > 421); })"
            ".map(c => c.dataset.label + ': ' + c.textContent)"
        )
        assert outside == []
        processed = page.locator('table.indexes tr[data-index="logs"] td[data-label="Processed"]')
        assert processed.is_visible() and "40,400 / 80,000" in processed.inner_text()
        # The error gets the width of the card, not a column of 8 characters.
        error = page.locator(f'tr[data-item="{FAILED}"] td.error-text code').bounding_box()
        assert error is not None and error["width"] > 300
    finally:
        context.close()


UTC_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC")


def test_every_time_on_the_page_has_one_format_with_its_zone(page: Any, served: Served) -> None:
    open_session(page, served)
    text = page.inner_text("body")
    header = page.locator("#connection").inner_text()
    assert UTC_TIME.search(header), header  # the browser's own time too
    assert not re.search(r"\b\d{1,2}:\d{2}(:\d{2})?\s?[AP]M\b", text)
    times = re.findall(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(?::\d{2})?(?:\.\d+)?Z?(?: UTC)?", text)
    assert times and all(UTC_TIME.fullmatch(t) for t in times), times


def test_the_index_table_and_the_leased_table_agree_in_the_same_frame(page: Any, served: Served) -> None:
    open_session(page, served)
    served.http(served.roles[OK].worker_id).complete_work_item(OK)
    expect(page.locator(f'tr[data-item="{OK}"]')).to_have_count(0)
    # Read in one go, from one drawn frame.
    frame = page.evaluate(
        "(() => ({index: document.querySelector('table.indexes tr[data-index=\"logs\"] [data-field=in_progress]')"
        ".textContent, leases: [...document.querySelectorAll('table.leased tr[data-item^=\"logs__\"]')]"
        ".filter(r => !r.textContent.includes('LAPSED')).length}))()"
    )
    assert frame == {"index": "1", "leases": 1}


def until(page: Any, condition: Any) -> None:
    """Let the page run until ``condition()`` holds (the page's own refreshes make it true)."""
    for _ in range(WAIT_MS // 100):
        if condition():
            return
        page.wait_for_timeout(100)
    raise AssertionError("the page never got there")


def set_hidden(page: Any, hidden: bool) -> None:
    # What the browser does when the tab goes to the background (headless tabs are always shown).
    page.evaluate(
        f"Object.defineProperty(document, 'hidden', {{value: {str(hidden).lower()}, configurable: true}});"
        "document.dispatchEvent(new Event('visibilitychange'))"
    )


def test_refreshes_are_conditional_and_compressed_and_stop_in_a_hidden_tab(page: Any, served: Served) -> None:
    seen: list[tuple[int, str | None, str | None]] = []
    urls: list[str] = []

    def record(r: Any) -> None:
        if "/backfill/overview" in r.url:
            seen.append((r.status, r.request.headers.get("if-none-match"), r.headers.get("content-encoding")))
            urls.append(r.url)

    page.on("response", record)
    open_session(page, served)
    chart = page.locator("figure.chart svg").get_attribute("aria-label")
    # Nothing changes while the fake clock stands still: the next refreshes are 304s without a body.
    until(page, lambda: any(status == 304 for status, _, _ in seen))
    assert seen[0][0] == 200 and seen[0][2] == "gzip"
    assert all(tag for status, tag, _ in seen if status == 304)
    # Only the throughput samples after the newest one held are asked for; the chart keeps them all.
    assert "samples_after" not in urls[0] and all("samples_after=" in u for u in urls[1:])
    assert page.locator("figure.chart svg").get_attribute("aria-label") == chart and "12 intervals" in chart
    # A hidden tab asks nothing; shown again, it asks at once.
    set_hidden(page, True)
    page.wait_for_timeout(500)  # a refresh already under way may still land
    before = len(seen)
    page.wait_for_timeout(1500)  # five refresh periods
    assert len(seen) == before
    set_hidden(page, False)
    until(page, lambda: len(seen) > before)
    assert page.console.errors == []


def test_the_first_request_of_a_tokened_server_is_not_refused(browser: Any, db_path: Path, clock: FakeClock) -> None:
    served = Served(db_path, clock, token="s3cret-token")
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        console = Console(page)
        statuses: list[int] = []
        page.on("response", lambda r: statuses.append(r.status))
        page.goto(f"{served.url}/?refresh=0.3")
        page.locator("#token-form").wait_for()
        assert 401 not in statuses and console.errors == []
        page.fill("#token-input", "s3cret-token")
        page.keyboard.press("Enter")
        page.wait_for_selector('section[data-session="demo"]')
        assert 401 not in statuses and console.errors == []
    finally:
        context.close()
        served.close()


def test_the_retry_message_clears_after_a_while(page: Any, served: Served) -> None:
    page.clock.install()
    open_session(page, served)
    page.get_by_role("button", name=f"Retry {FAILED}").click()
    page.locator("#confirm-ok").click()
    message = page.get_by_text(f"{FAILED} was returned to pending")
    message.wait_for()
    page.clock.fast_forward(11_000)  # the page's own clock: its message lasts 10 s
    for _ in range(3):
        page.clock.run_for(400)  # the refreshes that follow
    expect(message).to_have_count(0)
