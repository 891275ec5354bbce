"""A backfill with one item of each kind the status page flags, built on a fake clock, and the
browser fixtures of the page's tests.

Used by the browser tests (tests/test_web_page*.py) and test_web.py. Time only moves when
``clock`` moves; the server shares the clock, so leases lapse without sleeping. Without
Chromium the browser tests skip with the reason, except in CI (env CI set), where they
fail: CI must run them.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from litecoord import FakeClock, HttpCoordinator, SqliteCoordinator

#: What :func:`populate` leaves, item by item.
OK, STALLED, SILENT, LAPSED, FAILED = "logs__0__0", "logs__1__0", "customers__0__0", "customers__1__0", "orders__0__0"


def populate(root: SqliteCoordinator, clock: FakeClock, session: str = "demo") -> dict[str, Any]:
    """Items in every state; returns the coordinators by role (to act on them later).

    After it returns: ``OK`` is healthy, ``STALLED`` heartbeats without progress
    for 120 s (stall threshold 60 s), ``SILENT`` has sent no heartbeat for 120 s
    on a 300 s lease (a third of it is 100 s), ``LAPSED``'s 30 s lease expired
    100 s ago, ``FAILED`` failed its only attempt; 3 items are complete.
    """
    admin = root.bind(session=session, worker_id="admin")
    admin.setup(max_attempts=1, acquire_order="fifo")
    specs = [(OK, "logs"), (STALLED, "logs"), (SILENT, "customers"), (LAPSED, "customers"), (FAILED, "orders")]
    specs += [(f"logs__{n}__0", "logs") for n in range(2, 8)] + [(f"orders__{n}__0", "orders") for n in range(1, 4)]
    admin.create_work_items(
        [
            {
                "work_item_id": item_id,
                "index_name": index,
                "shard_number": int(item_id.split("__")[1]),
                "document_count": 10_000,
                "total_size_bytes": 5_000_000,
            }
            for item_id, index in specs
        ]
    )
    roles = {}
    for item_id, lease in ((OK, 300), (STALLED, 300), (SILENT, 300), (LAPSED, 30), (FAILED, 300)):
        worker = root.bind(session=session, worker_id=f"worker-{item_id.split('__')[0]}-{item_id.split('__')[1]}")
        lease_got = worker.acquire_next_work_item(timedelta(seconds=lease))
        assert lease_got.work_item_id == item_id, (lease_got, item_id)  # fifo order
        roles[item_id] = worker
    roles[FAILED].fail_work_item(FAILED, "exit code 1: connection refused by the target cluster")
    finisher = root.bind(session=session, worker_id="worker-finisher")
    to_finish = iter(f"logs__{n}__0" for n in range(2, 8))
    for step in range(1, 13):  # 120 s in 10 s steps
        clock.advance(seconds=10)
        roles[OK].update_progress_and_renew_lease(OK, 700 * step, 350_000 * step)
        roles[STALLED].update_progress_and_renew_lease(STALLED, 2_000, 1_000_000)  # same figures each time
        if step == 1:
            roles[SILENT].update_progress_and_renew_lease(SILENT, 1_500, 700_000)
        if step % 4 == 0:
            # By name: acquire_next_work_item would hand out the lapsed lease first.
            item_id = next(to_finish)
            finisher.create_or_update_lease_for_work_item(item_id, timedelta(seconds=300))
            finisher.complete_work_item(item_id)
    roles["finisher"] = finisher
    return roles


CHROMIUM = os.environ.get("LITECOORD_CHROMIUM", "/usr/bin/chromium")
#: Flags for a headless Chromium as root in a container with no network.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Playwright's waits, in milliseconds: far above what a refresh takes (0.3 s here), so only a page that
#: never updates fails them.
WAIT_MS = 15_000


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install '.[test]')"
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        return f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
    return None


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    playwright_expect.set_options(timeout=WAIT_MS)
    return playwright_expect(locator, "the page did not update")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    problem = _missing()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests must run in CI: {problem}")
        pytest.skip(problem)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Served:
    """A server over a populated file, sharing the test's fake clock."""

    def __init__(self, db_path: Path, clock: FakeClock, token: str | None = None, items: bool = True) -> None:
        from litecoord.rest.server import make_server

        self.clock = clock
        self.token = token
        self.root = SqliteCoordinator(db_path, clock=clock, durability="normal")
        self.roles = populate(self.root, clock) if items else {}
        self.server = make_server(db_path, port=0, clock=clock, threads=4, durability="normal", token=token).start()
        self.url = self.server.url

    def http(self, worker_id: str) -> HttpCoordinator:
        return HttpCoordinator(self.url, session="demo", worker_id=worker_id, token=self.token)

    def get(self, path: str) -> Any:
        request = urllib.request.Request(self.url + path)
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def close(self) -> None:
        self.server.close()
        self.root.close()


@pytest.fixture
def served(db_path: Path, clock: FakeClock) -> Iterator[Served]:
    s = Served(db_path, clock)
    yield s
    s.close()


class Console:
    """Console errors and uncaught exceptions of a page."""

    def __init__(self, page: Any) -> None:
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    p = context.new_page()
    p.set_default_timeout(WAIT_MS)
    p.console = Console(p)
    yield p
    context.close()


def open_session(page: Any, served: Served, extra: str = "") -> Any:
    page.goto(f"{served.url}/?session=demo&refresh=0.3{extra}")
    return page.wait_for_selector('section[data-session="demo"]')


def field(page: Any, name: str) -> str:
    return page.locator(f'section[data-session="demo"] [data-field="{name}"]').inner_text()


def number(text: str) -> int:
    return int(text.replace(",", ""))
