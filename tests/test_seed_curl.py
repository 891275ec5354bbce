"""The seed's curl examples, run literally against a real server started with ``serve()``.

The commands below are copied verbatim from the seed
(console-work-coordination-usage.md); when the seed is present beside the
repository, a test checks they still match it. Only the base URL is swapped
for the test server's. Without curl, the same method, headers and body are
sent with urllib.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SEED = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "console-work-coordination-usage.md"
SEED_URL = "http://localhost:8000"
RFC3339_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")

CREATE_ONE = """curl -X POST "http://localhost:8000/sessions/migration-session-1/backfill/work-items/" \\
  -H "Content-Type: application/json" \\
  -d '{
    "work_item_id": "index1_shard0",
    "index_name": "my-index",
    "shard_number": 0,
    "document_count": 50000,
    "total_size_bytes": 1024000
  }'"""

CREATE_BATCH = """curl -X POST "http://localhost:8000/sessions/migration-session-1/backfill/work-items/batch" \\
  -H "Content-Type: application/json" \\
  -d '[
    {
      "work_item_id": "index1_shard0",
      "index_name": "my-index",
      "shard_number": 0,
      "document_count": 50000,
      "total_size_bytes": 1024000
    },
    {
      "work_item_id": "index1_shard1",
      "index_name": "my-index",
      "shard_number": 1,
      "document_count": 45000,
      "total_size_bytes": 950000
    }
  ]'"""

ACQUIRE = (
    'curl -X GET "http://localhost:8000/sessions/migration-session-1/backfill/work-items/acquire?worker_id=worker-001"'
)

RENEW = """curl -X PUT "http://localhost:8000/sessions/migration-session-1/backfill/work-items/index1_shard0/lease" \\
  -H "Content-Type: application/json" \\
  -d '{
    "worker_id": "worker-001",
    "progress": {
      "documents_processed": 25000,
      "bytes_processed": 512000
    }
  }'"""

STATUS = 'curl -X GET "http://localhost:8000/sessions/migration-session-1/backfill/work-items/status"'
LIST = 'curl -X GET "http://localhost:8000/sessions/migration-session-1/backfill/work-items/"'
GET_ONE = 'curl -X GET "http://localhost:8000/sessions/migration-session-1/backfill/work-items/index1_shard0"'
CLEANUP = 'curl -X POST "http://localhost:8000/sessions/migration-session-1/backfill/work-items/cleanup-expired"'

COMMANDS = [CREATE_ONE, CREATE_BATCH, ACQUIRE, RENEW, STATUS, LIST, GET_ONE, CLEANUP]

#: The seed's "Response example" for /status: these keys, in this order.
SEED_STATUS_KEYS = [
    "session_name", "total_work_items", "pending_work_items", "assigned_work_items", "completed_work_items",
    "total_documents", "total_documents_processed", "total_size_bytes", "total_bytes_processed",
    "started_at", "last_update",
]  # fmt: skip


def seed_curl_commands(text: str) -> list[str]:
    """Every curl command in the seed's bash blocks (continuation lines joined back)."""
    commands: list[str] = []
    # The seed's last block is never closed: it runs to the end of the file.
    for block in re.findall(r"```bash\n(.*?)(?:```|\Z)", text, re.S):
        lines = block.splitlines()
        i = 0
        while i < len(lines):
            if lines[i].startswith("curl "):
                command = [lines[i]]
                # A command goes on while lines end with "\" or a quoted -d body is still open.
                while command[-1].endswith("\\") or "\n".join(command).count("'") % 2:
                    i += 1
                    command.append(lines[i])
                commands.append("\n".join(command))
            i += 1
    return commands


@pytest.mark.skipif(not SEED.exists(), reason="the seed is not beside this checkout")
def test_these_are_the_seeds_curl_commands() -> None:
    assert seed_curl_commands(SEED.read_text(encoding="utf-8")) == COMMANDS


@pytest.fixture
def base_url(tmp_path: Path) -> Iterator[str]:
    """A real server process, started the way ``litecoord serve`` starts it."""
    code = "import sys; from litecoord.rest.server import serve; serve(sys.argv[1], port=0, durability='normal')"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path / "seed.db")],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        banner = proc.stderr.readline() if proc.stderr else ""
        match = re.search(r"on (http://127\.0\.0\.1:\d+)", banner)
        assert match, f"no banner from serve(): {banner!r}"
        yield match.group(1)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(timeout=20) == 0  # SIGTERM is a clean shutdown, like Ctrl-C
        finally:
            if proc.poll() is None:
                proc.kill()
            if proc.stderr:
                proc.stderr.close()


def run(command: str, base_url: str) -> tuple[int, Any]:
    """Run one seed command against ``base_url``; return (status, parsed JSON body)."""
    command = command.replace(SEED_URL, base_url)
    if shutil.which("curl"):
        # Literally, in a shell (continuations and quoting as written), plus -s and the status code.
        result = subprocess.run(
            ["bash", "-c", command + ' -s -w "\\n%{http_code}"'], capture_output=True, text=True, timeout=30
        )
        assert result.returncode == 0, result.stderr
        body, _, status = result.stdout.rpartition("\n")
        return int(status), json.loads(body)
    return run_with_urllib(command)


def run_with_urllib(command: str) -> tuple[int, Any]:
    """The same request without curl: -X, -H and -d as curl would send them."""
    args = shlex.split(command.replace("\\\n", " "))
    assert args[0] == "curl"
    method, url, data, headers = "GET", "", None, {}
    i = 1
    while i < len(args):
        if args[i] == "-X":
            method, i = args[i + 1], i + 2
        elif args[i] == "-H":
            name, _, value = args[i + 1].partition(":")
            headers[name.strip()] = value.strip()
            i += 2
        elif args[i] == "-d":
            data, i = args[i + 1].encode("utf-8"), i + 2
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")  # curl's default for -d
        else:
            url, i = args[i], i + 1
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.parametrize("transport", ["curl", "urllib"])
def test_the_seeds_curl_flow_gives_the_seeds_responses(base_url: str, transport: str) -> None:
    send = (
        (lambda c: run(c, base_url))
        if transport == "curl"
        else (lambda c: run_with_urllib(c.replace(SEED_URL, base_url)))
    )
    if transport == "curl" and not shutil.which("curl"):
        pytest.skip("curl is not installed")

    status, item = send(CREATE_ONE)
    assert status == 201
    assert item["work_item_id"] == "index1_shard0" and item["status"] == "pending"
    assert (item["index_name"], item["shard_number"], item["document_count"], item["total_size_bytes"]) == (
        "my-index", 0, 50000, 1024000,
    )  # fmt: skip

    status, created = send(CREATE_BATCH)
    assert status == 201
    assert [i["work_item_id"] for i in created] == ["index1_shard1"]  # index1_shard0 existed: skipped

    status, lease = send(ACQUIRE)
    assert status == 200
    assert lease["work_item"]["work_item_id"] == "index1_shard0"  # the largest first
    assert lease["work_item"]["worker_id"] == "worker-001" and lease["lease_duration_seconds"] == 300
    assert RFC3339_Z.match(lease["work_item"]["lease_expiry"])

    status, renewed = send(RENEW)
    assert status == 200
    assert (renewed["documents_processed"], renewed["bytes_processed"]) == (25000, 512000)

    status, summary = send(STATUS)
    assert status == 200
    assert list(summary)[: len(SEED_STATUS_KEYS)] == SEED_STATUS_KEYS
    assert summary["session_name"] == "migration-session-1"
    counts = [summary[k] for k in SEED_STATUS_KEYS[1:9]]
    assert counts == [2, 1, 1, 0, 95000, 25000, 1974000, 512000]
    assert RFC3339_Z.match(summary["started_at"]) and RFC3339_Z.match(summary["last_update"])

    status, items = send(LIST)
    assert status == 200 and [i["work_item_id"] for i in items] == ["index1_shard0", "index1_shard1"]

    status, one = send(GET_ONE)
    assert status == 200 and one["status"] == "assigned" and one["documents_processed"] == 25000

    status, cleaned = send(CLEANUP)
    assert status == 200 and cleaned["cleaned"] == 0  # the lease is live


def test_what_the_java_client_sends_works_over_the_wire(base_url: str) -> None:
    """ConsoleApiClient: GET + JSON content type and no body; empty POST; bare-string complete; 404 = no work."""
    items = f"{base_url}/sessions/migration-session-1/backfill/work-items"

    def send(method: str, url: str, body: bytes | None = None) -> tuple[int, Any]:
        request = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    body = b'{"work_item_id": "index__0__0", "index_name": "index", "shard_number": 0}'
    assert send("POST", f"{items}/", body)[0] == 201
    status, lease = send("GET", f"{items}/acquire?worker_id=worker-001")
    assert status == 200 and lease["work_item"]["work_item_id"] == "index__0__0"
    status, no_work = send("GET", f"{items}/acquire?worker_id=worker-002")
    assert status == 404 and no_work["reason"] == "all_leased"
    status, done = send("PUT", f"{items}/index__0__0/complete", b'"worker-001"')
    assert status == 200 and done["status"] == "completed" and RFC3339_Z.match(done["completed_at"])
    assert send("POST", f"{items}/cleanup-expired", b"")[0] == 200
    status, summary = send("GET", f"{items}/status")
    assert summary["pending_work_items"] + summary["assigned_work_items"] == 0
