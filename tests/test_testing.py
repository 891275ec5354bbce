"""The pytest plugin ``litecoord.testing``, used the way users use it: by fixture name, nothing in conftest.

The fixtures here come from the ``pytest11`` entry point of the installed
package (this suite's conftest does not import the plugin), so these tests
also prove the registration.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from freezegun import freeze_time

from litecoord import (
    FakeClock,
    HttpCoordinator,
    LeaseExpiredError,
    NoAvailableWorkToBeDone,
    SqliteCoordinator,
    WorkItemAndDuration,
    WorkItemNotFoundError,
)
from litecoord.rest.server import Server
from litecoord.testing import START, Workers, advance_past_lease, assert_session_state


def test_the_coordinator_is_worker_1_of_the_test_session_on_the_fake_clock(
    litecoord_coordinator: SqliteCoordinator, litecoord_clock: FakeClock, litecoord_db_path: Path
) -> None:
    assert (litecoord_coordinator.session, litecoord_coordinator.worker_id) == ("test-session", "worker-1")
    litecoord_coordinator.create_unassigned_work_item("idx__0__0")
    assert litecoord_db_path.exists()
    lease = litecoord_coordinator.acquire_next_work_item()
    assert isinstance(lease, WorkItemAndDuration)
    assert lease.lease_expiration_time == START + timedelta(minutes=5) == litecoord_clock() + timedelta(minutes=5)


def test_a_lease_lapses_when_the_test_says_so(
    litecoord_coordinator: SqliteCoordinator, litecoord_workers: Workers, litecoord_clock: FakeClock
) -> None:
    (other,) = litecoord_workers(1)
    assert other.worker_id == "worker-2"  # worker-1 is litecoord_coordinator
    litecoord_coordinator.create_unassigned_work_item("idx__0__0")
    litecoord_coordinator.acquire_next_work_item()
    assert isinstance(other.acquire_next_work_item(), NoAvailableWorkToBeDone)
    assert_session_state(litecoord_coordinator, total=1, assigned=1, items={"idx__0__0": "assigned to worker-1"})

    moved_to = advance_past_lease(litecoord_clock, litecoord_coordinator, "idx__0__0")
    assert moved_to == START + timedelta(minutes=5, seconds=1) == litecoord_clock()
    with pytest.raises(LeaseExpiredError):
        litecoord_coordinator.update_progress_and_renew_lease("idx__0__0", 10, 10)
    assert_session_state(litecoord_coordinator, pending=1, assigned=0, expired_lease=1)
    taken = other.acquire_next_work_item()
    assert isinstance(taken, WorkItemAndDuration) and taken.lease_epoch == 2
    assert_session_state(other, assigned=1, items={"idx__0__0": "assigned to worker-2"})


def test_workers_share_file_session_and_clock_and_have_their_own_ids(litecoord_workers: Workers) -> None:
    a, b, c = litecoord_workers(3)
    assert [w.worker_id for w in (a, b, c)] == ["worker-1", "worker-2", "worker-3"]
    assert {w.session for w in (a, b, c)} == {"test-session"}
    assert litecoord_workers.worker("worker-2") is b
    named = litecoord_workers.worker("java-worker")
    a.create_unassigned_work_item("x")
    assert named.get_work_item("x").created_at == START
    with pytest.raises(ValueError, match="positive"):
        litecoord_workers(0)


def test_advance_past_lease_never_moves_back_and_refuses_an_item_without_a_lease(
    litecoord_coordinator: SqliteCoordinator, litecoord_clock: FakeClock
) -> None:
    litecoord_coordinator.create_unassigned_work_item("x")
    with pytest.raises(AssertionError, match="holds no lease"):
        advance_past_lease(litecoord_clock, litecoord_coordinator, "x")
    with pytest.raises(WorkItemNotFoundError):
        advance_past_lease(litecoord_clock, litecoord_coordinator, "nope")
    litecoord_coordinator.acquire_next_work_item()
    litecoord_clock.advance(hours=1)
    later = litecoord_clock()
    assert advance_past_lease(litecoord_clock, litecoord_coordinator, "x") == later == litecoord_clock()


def test_assert_session_state_names_every_difference(litecoord_workers: Workers) -> None:
    a, b = litecoord_workers(2)
    a.create_work_items([{"work_item_id": f"i{n}", "index_name": "i", "shard_number": n} for n in range(3)])
    lease = a.acquire_next_work_item()
    assert isinstance(lease, WorkItemAndDuration)
    a.complete_work_item(lease.work_item_id)
    b.acquire_next_work_item()
    assert_session_state(a, total=3, pending=1, assigned=1, completed=1, failed=0)
    with pytest.raises(AssertionError) as failed:
        assert_session_state(a, pending=2, completed=1, items={"i1": "assigned to worker-1", "zz": "pending"})
    message = str(failed.value)
    assert "session 'test-session' is not in the expected state" in message
    assert "pending: expected 2, got 1" in message
    assert "completed:" not in message.split("(counts")[0]  # a count that matched is not a difference
    assert "item 'i1': expected assigned to worker-1, got assigned to worker-2" in message
    assert "item 'zz': expected pending, got absent" in message
    assert "  i2: pending" in message  # every item of the session is listed


def test_the_server_shares_file_and_clock_and_its_clock_route_moves_the_fixture_clock(
    litecoord_server: Server,
    litecoord_base_url: str,
    litecoord_http_coordinator: HttpCoordinator,
    litecoord_coordinator: SqliteCoordinator,
    litecoord_clock: FakeClock,
) -> None:
    import json
    import urllib.request

    assert litecoord_base_url == litecoord_server.url and litecoord_base_url.startswith("http://127.0.0.1:")
    litecoord_coordinator.create_unassigned_work_item("idx__0__0")  # arranged in-process ...
    lease = litecoord_http_coordinator.acquire_next_work_item()  # ... seen over HTTP
    assert isinstance(lease, WorkItemAndDuration) and lease.work_item.worker_id == "worker-1"
    assert lease.lease_expiration_time == START + timedelta(minutes=5)

    request = urllib.request.Request(
        litecoord_base_url + "/_test/clock",
        data=json.dumps({"advance_seconds": 360}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},  # a body must say it is JSON
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert json.loads(response.read()) == {"now": "2025-01-19T20:36:00Z"}
    assert litecoord_clock() == START + timedelta(minutes=6)
    with pytest.raises(LeaseExpiredError):
        litecoord_http_coordinator.update_progress_and_renew_lease("idx__0__0", 1, 1)
    assert_session_state(litecoord_http_coordinator, pending=1, expired_lease=1)


class TestWithFreezegun:
    """freezegun drives time when litecoord_clock is overridden with None: the documented recipe."""

    @pytest.fixture
    def litecoord_clock(self) -> None:
        return None

    def test_frozen_time_moves_the_leases(self, litecoord_workers: Workers) -> None:
        start = datetime(2025, 1, 19, 20, 30, tzinfo=timezone.utc)
        with freeze_time(start) as frozen:
            a, b = litecoord_workers(2)
            a.create_unassigned_work_item("x")
            a.acquire_next_work_item(timedelta(minutes=5))
            assert advance_past_lease(frozen, a, "x") == start + timedelta(minutes=5, seconds=1)
            with pytest.raises(LeaseExpiredError):
                a.update_progress_and_renew_lease("x", 1, 1)
            taken = b.acquire_next_work_item()
            assert isinstance(taken, WorkItemAndDuration) and taken.work_item.worker_id == "worker-2"

    def test_the_server_reads_frozen_time_too(self, litecoord_http_coordinator: HttpCoordinator) -> None:
        with freeze_time("2025-01-19 20:30:00"):
            litecoord_http_coordinator.create_unassigned_work_item("x")
            assert litecoord_http_coordinator.get_work_item("x").created_at == START


def test_a_plain_fake_clock_still_works_beside_the_fixtures(litecoord_db_path: Path) -> None:
    clock = FakeClock(START + timedelta(days=1))
    coordinator = SqliteCoordinator(litecoord_db_path, session="mine", worker_id="w", clock=clock)
    coordinator.create_unassigned_work_item("x")
    assert coordinator.get_work_item("x").created_at == START + timedelta(days=1)
    coordinator.close()


# -- in a user's project: nothing but `pip install litecoord` ----------------------------------------

USER_TESTS = '''
from litecoord.testing import advance_past_lease, assert_session_state

def test_uses_the_kit(litecoord_coordinator, litecoord_workers, litecoord_clock):
    litecoord_coordinator.create_unassigned_work_item("idx__0__0")
    litecoord_coordinator.acquire_next_work_item()
    advance_past_lease(litecoord_clock, litecoord_coordinator, "idx__0__0")
    (other,) = litecoord_workers(1)
    other.acquire_next_work_item()
    assert_session_state(other, assigned=1, items={"idx__0__0": "assigned to worker-2"})

def test_does_not_use_the_kit():
    assert 1 + 1 == 2

def test_a_wrong_expectation_fails_readably(litecoord_coordinator):
    litecoord_coordinator.create_unassigned_work_item("idx__0__0")
    assert_session_state(litecoord_coordinator, completed=1)
'''


def test_a_project_without_conftest_gets_the_fixtures(tmp_path: Path) -> None:
    (tmp_path / "test_user.py").write_text(textwrap.dedent(USER_TESTS))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--setup-show", "-q", "test_user.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = result.stdout
    assert result.returncode == 1, out  # exactly the one failing test
    assert "2 passed, 1 failed" in out or "1 failed, 2 passed" in out, out
    assert "completed: expected 1, got 0" in out and "idx__0__0: pending" in out
    # Fixtures are opt-in: the test that names none sets none up (nor tmp_path, which the kit's file needs).
    lines = out.splitlines()
    plain = next(i for i, line in enumerate(lines) if "test_user.py::test_does_not_use_the_kit" in line)
    assert "fixtures used" not in lines[plain]
    assert "TEARDOWN" in lines[plain - 1]  # straight from the last test's teardown to this one: nothing set up


TESTING_PAGE = Path(__file__).resolve().parents[1] / "docs" / "testing.md"


def test_the_docs_pytest_example_passes_as_written(tmp_path: Path) -> None:
    text = TESTING_PAGE.read_text(encoding="utf-8")
    section = text[text.index("## With pytest") : text.index("## Clients in any language")]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 2  # the example, then the freezegun override
    (tmp_path / "test_docs_example.py").write_text(blocks[0])
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "test_docs_example.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0 and "2 passed" in result.stdout, result.stdout + result.stderr
