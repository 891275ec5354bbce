"""Take the README's screenshot of the status page during the demo: ``python scripts/screenshot.py``.

Runs ``litecoord demo --serve`` on a temporary file and a free port, waits
until the killed worker's lease has lapsed (the page then shows a LAPSED
flag beside the live leases; it refreshes every 0.5 s here), and saves the page as seen by headless
Chromium at a laptop's width to ``docs/status-page.png`` (``--out``).
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(REPO / "docs" / "status-page.png"))
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
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
                    return 1
                time.sleep(0.2)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": args.width, "height": 800})
                # The moment worth showing: the killed worker's lease has lapsed, mid-backfill.
                page.goto(f"{url}/?session=demo&refresh=0.5")
                page.wait_for_selector('section[data-session="demo"] .flag-lapsed', timeout=120_000)
                page.screenshot(path=args.out, full_page=True)
                browser.close()
        finally:
            demo.send_signal(signal.SIGINT)
            try:
                demo.wait(timeout=30)
            except subprocess.TimeoutExpired:
                demo.kill()
    print(f"wrote {args.out} ({os.path.getsize(args.out):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
