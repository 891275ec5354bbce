"""The status page as a console (issue 19), in headless Chromium: finding items, one item's
view, the session list, the tab title.

Same set-up as test_web_page.py: a server in this process sharing the test's
FakeClock, the backfill of browser_support.populate.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from browser_support import FAILED, STALLED, Served, expect, open_session


def found_ids(page: Any) -> list[str]:
    return page.locator("table.found tbody tr[data-item]").evaluate_all("rows => rows.map(r => r.dataset.item)")


def query(page: Any) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query)


def test_items_are_found_by_filter_sorted_and_paged_on_the_server_with_the_filter_in_the_url(
    page: Any, served: Served
) -> None:
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if "/backfill/items" in r.url else None)
    open_session(page, served, "&page_size=3")
    assert page.locator("table.found").count() == 0 and requests == []  # nothing asked until a search
    form = page.get_by_role("search")
    form.get_by_label("Id contains").fill("logs")
    form.get_by_label("Sort by").select_option("progress")
    form.get_by_label("Order").select_option("1")
    form.get_by_role("button", name="Find").click()
    expect(page.locator('[data-field="found_total"]')).to_contain_text("8 matching items")
    assert query(page)["q"] == ["logs"] and query(page)["sort"] == ["progress"] and query(page)["desc"] == ["1"]
    # Sorted by the share of documents done, most first: what the server sorted, shown in its order.
    expected = served.root.bind(session="demo").list_work_items_page(
        id_contains="logs", sort="progress", descending=True, limit=3
    )
    shares = [i.documents_processed / i.document_count for i in expected.items]
    assert found_ids(page) == [i.work_item_id for i in expected.items] and shares == sorted(shares, reverse=True)
    sent = parse_qs(urlsplit(requests[-1]).query)
    assert sent["id_contains"] == ["logs"] and sent["sort"] == ["progress"] and sent["limit"] == ["3"]
    # Pages come from the server.
    pager = page.get_by_role("navigation", name="Found items pages")
    expect(pager).to_contain_text("page 1 of 3")
    pager.get_by_role("button", name="Next →").click()
    expect(pager).to_contain_text("page 2 of 3")
    assert query(page)["at"] == ["3"] and parse_qs(urlsplit(requests[-1]).query)["after"] == ["3"]
    # Status and worker filters; the shared URL opens the same view, its form filled in.
    page.goto(f"{served.url}/?session=demo&refresh=0.3&status=assigned&worker=worker-logs-1")
    expect(page.locator("table.found tbody tr[data-item]")).to_have_count(1)
    assert found_ids(page) == [STALLED]
    assert page.get_by_role("search").get_by_label("Worker").input_value() == "worker-logs-1"
    page.goto(f"{served.url}/?session=demo&refresh=0.3&sort=failures&desc=1")
    expect(page.locator("table.found tbody tr[data-item]").first).to_have_attribute("data-item", FAILED)
    page.get_by_role("search").get_by_role("button", name="Clear").click()
    expect(page.locator("table.found")).to_have_count(0)
    assert "sort" not in query(page)
    assert page.console.errors == []


def test_an_item_id_opens_the_items_view_with_every_field_and_its_error_in_full(page: Any, served: Served) -> None:
    long_error = "exit code 1: " + "x" * 400 + " END"
    served.root.bind(session="demo", worker_id="worker-logs-1").fail_work_item(STALLED, long_error)
    open_session(page, served)
    page.locator(f'tr[data-item="{STALLED}"] a.item-link').click()
    expect(page.locator("#item-title")).to_contain_text(STALLED)
    assert query(page) == {"session": ["demo"], "item": [STALLED], "refresh": ["0.3"]}
    fields = {
        name: page.locator(f'.item-view [data-field="{name}"]').inner_text()
        for name in ("status", "index_name", "worker_id", "failure_count", "documents", "lease_epoch")
    }
    assert fields == {
        "status": "failed",
        "index_name": "logs",
        "worker_id": "–",  # parked: nobody holds it
        "failure_count": "1",
        "documents": "2,000 / 10,000",
        "lease_epoch": "1",
    }
    assert page.locator('[data-field="last_error"]').inner_text() == long_error  # whole, not cut
    assert "UTC" in page.locator('.item-view [data-field="created_at"]').inner_text()
    assert "failed" in page.title() and STALLED in page.title()
    # Retried from its own view: the button goes, the focus lands on the attempts' heading.
    page.get_by_role("button", name=f"Retry {STALLED}").click()
    page.locator("#confirm-ok").click()
    expect(page.locator('.item-view [data-field="status"]')).to_have_text("pending")
    assert page.evaluate("document.activeElement.dataset.key") == "item:history"
    page.get_by_role("link", name="← Session demo").click()
    page.wait_for_selector('section[data-session="demo"]')
    page.goto(f"{served.url}/?session=demo&item=nope&refresh=0.3")
    expect(page.locator('[data-field="missing"]')).to_contain_text("no item “nope”")


def test_the_session_list_shows_each_sessions_progress_failures_stalls_and_eta(page: Any, served: Served) -> None:
    other = served.root.bind(session="other", worker_id="w")
    other.create_work_items([{"work_item_id": f"o{n}", "document_count": 10} for n in range(4)])
    page.goto(f"{served.url}/?refresh=0.3")
    row = page.locator('tr[data-session-row="demo"]')
    row.wait_for()
    status = served.get("/sessions/demo/backfill/work-items/status")
    # The same progress measure as the session's own view (documents), not items completed.
    assert row.get_by_role("progressbar").get_attribute("aria-valuenow") == f"{status['percent_complete']:.1f}"
    assert row.locator('[data-field="failed"]').inner_text() == "1"
    assert row.locator('[data-field="stalled"]').inner_text() == "1"
    eta = row.locator('[data-field="eta"]').inner_text()
    assert eta != "?" and eta
    assert page.locator('tr[data-session-row="other"] [data-field="eta"]').inner_text() == "unknown"
    # 1 failed + 1 lapsed + 1 stalled + 1 silent in demo.
    assert page.title() == "2 sessions · 4 alerts · litecoord"
    assert page.console.errors == []


def test_the_tab_title_carries_the_percentage_and_the_alerts(page: Any, served: Served) -> None:
    open_session(page, served)
    status = served.get("/sessions/demo/backfill/work-items/status")
    expect(page).to_have_title(f"{status['percent_complete']:.1f}% · 4 alerts · demo · litecoord")
    served.root.bind(session="demo").retry_work_item(FAILED)
    expect(page).to_have_title(f"{status['percent_complete']:.1f}% · 3 alerts · demo · litecoord")
