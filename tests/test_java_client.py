"""The console's real Java client against a real ``litecoord serve``, in the seed's order.

``ConsoleApiClient.java`` is compiled from ``../shared/reference/java`` (beside
the checkout, as the seed's curl test finds the seed; never copied into this
project) with Debian's JDK and jars (default-jdk-headless,
libjackson2-databind-java, libslf4j-java: scripts/test installs them where
missing). tests/java/SeedFlow.java, our driver, runs the seed's flow with it
on a session nobody has written to: status first (the RFS worker's
``setup()``), create, acquire, renew with progress, the 409 and 410 lease
errors, complete, cleanup-expired, acquire with nothing left. Leases lapse by
the server's test clock, never by sleeping. With ``CI`` set a missing JDK or
jar fails the test instead of skipping it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

REFERENCE_CLIENT = (
    Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "java" / "ConsoleApiClient.java"
)
DRIVER = Path(__file__).resolve().parent / "java" / "SeedFlow.java"
JARS = Path("/usr/share/java")
#: Compile-time jars (Debian's unversioned names); slf4j-simple prints the client's warnings at run time.
COMPILE_JARS = ("jackson-databind.jar", "jackson-core.jar", "jackson-annotations.jar", "slf4j-api.jar")
RUN_JARS = (*COMPILE_JARS, "slf4j-simple.jar")
SESSION = "migration-session-1"
UNTOUCHED = SESSION + "-untouched"  # the driver's second session: never created
ACCESS_LINE = re.compile(r"^\S+Z \S+ [A-Z]+ (\S+) \d{3} ")

#: The seed's /status fields, all zero (or null) on a session with no items.
EMPTY_STATUS = {
    "session_name": SESSION, "total_work_items": 0, "pending_work_items": 0, "assigned_work_items": 0,
    "completed_work_items": 0, "total_documents": 0, "total_documents_processed": 0, "total_size_bytes": 0,
    "total_bytes_processed": 0, "started_at": None, "last_update": None,
}  # fmt: skip


def missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must run the Java client's test: apt-get install default-jdk-headless "
                    "libjackson2-databind-java libslf4j-java)")  # fmt: skip
    pytest.skip(reason)


@pytest.fixture(scope="module")
def classes(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A class path with the compiled client and driver, and Debian's jars."""
    if not REFERENCE_CLIENT.exists():
        pytest.skip(f"the reference Java client is not beside this checkout ({REFERENCE_CLIENT})")
    for tool in ("javac", "java"):
        if not shutil.which(tool):
            missing(f"{tool} is not installed")
    for jar in RUN_JARS:
        if not (JARS / jar).exists():
            missing(f"{JARS / jar} is missing")
    out = tmp_path_factory.mktemp("java-classes")
    compile_path = os.pathsep.join(str(JARS / jar) for jar in COMPILE_JARS)
    result = subprocess.run(
        ["javac", "-nowarn", "-d", str(out), "-cp", compile_path, str(REFERENCE_CLIENT), str(DRIVER)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return os.pathsep.join([str(out), *(str(JARS / jar) for jar in RUN_JARS)])


def run_flow(class_path: str) -> tuple[dict[str, dict[str, Any]], dict[str, list[str]], str]:
    """Serve a fresh database with a test clock; run SeedFlow against it.

    Returns each step's line by name, the server's access-log lines by session and the JVM's stderr.
    """
    server = subprocess.Popen(
        [sys.executable, "-m", "litecoord", "serve", "--ephemeral", "--test-clock"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONFAULTHANDLER": "1"},
    )  # fmt: skip
    assert server.stdout is not None
    try:
        base = server.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", base), base
        flow = subprocess.run(
            ["java", "-cp", class_path, "SeedFlow", base, SESSION], capture_output=True, text=True, timeout=300
        )
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            _, server_err = server.communicate(timeout=30)
        finally:
            if server.poll() is None:
                server.kill()
    assert flow.returncode == 0, flow.stderr
    lines = [json.loads(line) for line in flow.stdout.splitlines()]
    steps = {line["step"]: line for line in lines}
    assert len(steps) == len(lines)
    access: dict[str, list[str]] = {}
    for line in server_err.splitlines():
        request = ACCESS_LINE.match(line)  # time, client, method, path, status, ...
        if request is None:
            continue
        for name in (SESSION, UNTOUCHED):
            if request.group(1).startswith(f"/sessions/{name}/") or (
                name == SESSION and request.group(1) == "/_test/clock"
            ):
                access.setdefault(name, []).append(line)
    return steps, access, flow.stderr


def test_the_java_client_runs_the_seeds_flow_on_a_fresh_session(classes: str) -> None:
    steps, access, java_err = run_flow(classes)

    def body(name: str) -> Any:
        step = steps[name]
        assert "error" not in step, f"{name}: {step.get('error')}: {step.get('message')}"
        return step["body"]

    def error(name: str) -> str:
        return steps[name].get("error", "no error")

    # setup(): 200 with zero counts on a session nobody has written to, and litecoord's own field.
    fresh = body("setup_status")
    assert {key: fresh[key] for key in EMPTY_STATUS} == EMPTY_STATUS
    assert fresh["session_exists"] is False

    assert body("create_shard0")["status"] == "pending"
    assert body("create_shard1")["work_item_id"] == "index1_shard1"

    lease = body("acquire_w1")
    item = lease["work_item"]
    assert (item["work_item_id"], item["worker_id"]) == ("index1_shard0", "worker-001")
    assert lease["lease_duration_seconds"] == 300 and isinstance(lease["lease_duration_seconds"], int)
    expiry = datetime.fromisoformat(item["lease_expiry"].replace("Z", "+00:00"))
    assert lease["parsed_lease_expiry_epoch_seconds"] == int(expiry.timestamp())  # Instant.parse read it

    renewed = body("renew_w1")
    assert (renewed["documents_processed"], renewed["bytes_processed"]) == (25000, 512000)
    assert body("renew_w1_no_progress")["documents_processed"] == 25000
    assert error("renew_w2_not_holder") == "LeaseNotOwnedByWorkerException"  # 409

    assert body("complete_w1")["status"] == "completed"
    assert body("acquire_w2")["work_item"]["work_item_id"] == "index1_shard1"
    assert error("complete_w1_not_holder") == "LeaseNotOwnedByWorkerException"  # 409
    body("advance_clock")
    assert error("renew_w2_expired") == "LeaseExpiredException"  # 410

    assert body("cleanup_expired") is None
    assert "Failed to cleanup" not in java_err  # the client only logs a refused cleanup
    after = body("status_after_cleanup")
    assert (after["pending_work_items"], after["assigned_work_items"], after["completed_work_items"]) == (1, 0, 1)
    assert after["session_exists"] is True

    again = body("acquire_w3")["work_item"]
    assert (again["work_item_id"], again["worker_id"]) == ("index1_shard1", "worker-003")
    assert body("complete_w3")["status"] == "completed"
    assert body("acquire_nothing_left") is None  # 404: no work
    final = body("final_status")
    assert final["pending_work_items"] + final["assigned_work_items"] == 0 and final["completed_work_items"] == 2

    # What the server answered, request by request, in the seed's order (its access log).
    statuses = [int(line.split()[4]) for line in access[SESSION]]
    assert statuses == [200, 201, 201, 200, 200, 200, 409, 200, 200, 409, 200, 410, 200, 200, 200, 200, 404, 200]
    assert " POST /sessions/migration-session-1/backfill/work-items/cleanup-expired 200 " in access[SESSION][12]

    # The same calls on a session nobody wrote to: status and cleanup answer 200 (nothing to
    # do), acquire 404 (the client's "no work"), renew and complete 404 (no such item).
    assert body("untouched_status")["session_exists"] is False
    assert body("untouched_acquire") is None
    assert error("untouched_renew") == error("untouched_complete") == "IOException"
    assert "Status: 404" in steps["untouched_renew"]["message"]
    assert body("untouched_cleanup_expired") is None
    untouched = body("untouched_status_again")
    assert {key: untouched[key] for key in EMPTY_STATUS} == {**EMPTY_STATUS, "session_name": UNTOUCHED}
    assert untouched["session_exists"] is False  # none of those calls created it
    assert [int(line.split()[4]) for line in access[UNTOUCHED]] == [200, 404, 404, 404, 200, 200]
