"""Take the README's screenshots of the status page during the demo: ``python scripts/screenshot.py``.

Runs ``litecoord demo --serve`` on a temporary file and a free port, waits
until the killed worker's lease has lapsed (the page then shows a LAPSED
flag beside the live leases; it refreshes every 0.5 s here), and saves, as
seen by headless Chromium, into ``docs/`` (``--out-dir``):

* ``status-page.png``: the session's page at a laptop's width (``--width``);
* ``status-page-phone.png``: the same page 420 px wide;
* ``status-page-item.png``: the lapsed item's own view, with its attempts.

Needs the ``server`` and ``test`` extras and Debian's ``chromium``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def overview(url: str) -> dict | None:
    try:
        with urllib.request.urlopen(f"{url}/sessions/demo/backfill/overview", timeout=5) as response:
            return json.loads(response.read())
    except OSError:
        return None


def shoot(args: argparse.Namespace, out: dict[str, str]) -> bool | None:
    """One demo run and its screenshots: True when taken, False when the lapsed lease was taken over
    before a page saw it (a matter of timing on a busy machine: try again), None on a failure."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="litecoord-shot-") as tmp:
        demo = subprocess.Popen(
            [sys.executable, "-m", "litecoord", "demo", "--serve", "--port", str(port), "--db", f"{tmp}/demo.db"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 60
            while overview(url) is None:  # the server is up once the demo file exists
                if time.monotonic() > deadline or demo.poll() is not None:
                    print("the demo's server never answered", file=sys.stderr)
                    return None
                time.sleep(0.2)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": args.width, "height": 800})
                phone = browser.new_page(viewport={"width": 420, "height": 800})
                # The moment worth showing: the killed worker's lease has lapsed, mid-backfill. Both
                # pages watch at once: the lapsed lease is soon taken over.
                for p in (page, phone):
                    p.goto(f"{url}/?session=demo&refresh=0.2")
                try:
                    page.wait_for_selector('section[data-session="demo"] .flag-lapsed', timeout=60_000)
                    page.screenshot(path=out["status-page.png"], full_page=True)
                    lapsed = page.locator("tr:has(.flag-lapsed)").first.get_attribute("data-item")
                    phone.wait_for_selector('section[data-session="demo"] .flag-lapsed', timeout=2_000)
                    phone.screenshot(path=out["status-page-phone.png"], full_page=True)
                except PlaywrightTimeout:
                    browser.close()
                    return False
                page.goto(f"{url}/?session=demo&refresh=0.5&item={urllib.parse.quote(lapsed or '')}")
                page.wait_for_selector(".item-view table.history", timeout=60_000)
                page.screenshot(path=out["status-page-item.png"], full_page=True)
                browser.close()
        finally:
            demo.send_signal(signal.SIGINT)
            try:
                demo.wait(timeout=30)
            except subprocess.TimeoutExpired:
                demo.kill()
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", default=str(REPO / "docs"))
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    names = ("status-page.png", "status-page-phone.png", "status-page-item.png")
    out = {name: os.path.join(args.out_dir, name) for name in names}
    for _ in range(3):
        taken = shoot(args, out)
        if taken is None:
            return 1
        if taken:
            for path in out.values():
                print(f"wrote {path} ({os.path.getsize(path):,} bytes)")
            return 0
        print("the lapsed lease was taken over before the pages saw it; running the demo again", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
