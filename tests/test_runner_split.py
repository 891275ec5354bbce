"""The runner's split channel (``work --split``, litecoord.cli.splitting) with real commands.

The command that takes part is the runner page's own bash script, read from
docs/runner.md and run as it stands (``copy-documents`` defined around it to record
which documents it copied). Leases never run out: the FakeClock stands still.
A split request is made the way it is in production, by another worker's
acquire finding nothing to hand out.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from test_worker import Background, options, py, wait_for

from litecoord import FakeClock, SqliteCoordinator
from litecoord.cli.runner import EXIT_ALL_DONE
from litecoord.cli.splitting import parse_split_accept

RUNNER_PAGE = Path(__file__).resolve().parents[1] / "docs" / "runner.md"
COUNT = 100_000

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="the runner page's command is a bash script")


def readme_split_script() -> str:
    text = RUNNER_PAGE.read_text(encoding="utf-8")
    match = re.search(r"```bash\n(#!/usr/bin/env bash\n# litecoord work --split .*?)```", text, re.S)
    assert match, "the runner page's split-channel script is missing"
    return match.group(1)


@pytest.fixture
def coord(db_path: Path, clock: FakeClock) -> SqliteCoordinator:
    c = SqliteCoordinator(db_path, session="s", worker_id="w1", clock=clock)
    c.setup(split_min_documents=1000)
    c.create_work_item_with_metadata("logs__0__0", "logs", 0, COUNT, COUNT * 10)
    yield c
    c.close()


def script_command(tmp_path: Path) -> tuple[list[str], Path, Path]:
    """The runner page's script, with copy-documents recording its ranges and going slowly until ``go`` exists."""
    script = tmp_path / "copy-range.sh"
    script.write_text(readme_split_script())
    copied, go = tmp_path / "copied.txt", tmp_path / "go"
    wrapper = (
        f'copy-documents() {{ echo "$1 $2" >> {copied}; [[ -e {go} ]] || sleep 0.05; }}; '
        f"source {script}"
    )
    return ["bash", "-c", wrapper], copied, go


def ranges_copied(copied: Path) -> list[tuple[int, int]]:
    return sorted(tuple(map(int, line.split())) for line in copied.read_text().splitlines())  # type: ignore[misc]


def request_split(db_path: Path, clock: FakeClock) -> None:
    """An idle worker's acquire: nothing to hand out, so it asks the holder to split."""
    with SqliteCoordinator(db_path, session="s", worker_id="idle", clock=clock) as idle:
        idle.acquire_next_work_item(options(["true"]).lease_duration)


def test_the_readme_script_accepts_a_request_and_the_runner_splits_where_it_accepted(
    coord: SqliteCoordinator, clock: FakeClock, db_path: Path, tmp_path: Path
) -> None:
    command, copied, go = script_command(tmp_path)
    run = Background(coord, options(command, split=True), clock)
    wait_for(lambda: coord.get_work_item("logs__0__0").documents_processed > 0, "progress")
    request_split(db_path, clock)
    assert coord.get_work_item("logs__0__0").split_requested_at is not None
    new = wait_for(lambda: [i for i in coord.list_work_items() if i.parent_id == "logs__0__0"], "the split")
    go.touch()
    result = run.join()

    assert result.exit_code == EXIT_ALL_DONE
    (child,) = new
    kept = coord.get_work_item("logs__0__0")
    assert kept.range_end == child.range_start and child.range_end == COUNT
    assert sorted(result.completed) == sorted(["logs__0__0", child.work_item_id])
    assert any(f"split at {child.range_start}" in line for line in run.logs)
    # What the command really copied: every document exactly once, across both items.
    spans = ranges_copied(copied)
    assert spans[0][0] == 0 and spans[-1][1] == COUNT
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False)), "a gap or an overlap in what was copied"
    report = coord.verify_coverage()
    assert report.ok


def test_a_command_that_ignores_the_channel_is_never_split(
    coord: SqliteCoordinator, clock: FakeClock, db_path: Path, tmp_path: Path
) -> None:
    # Reads nothing from LITECOORD_SPLIT_FD; reports progress and finishes its whole range.
    go = tmp_path / "go"
    command = py(
        f"""
        import os, time
        fd = int(os.environ["LITECOORD_PROGRESS_FD"])
        for done in range(1000, {COUNT} + 1, 1000):
            os.write(fd, b"docs=%d\\n" % done)
            while done == 1000 and not os.path.exists({str(go)!r}):
                time.sleep(0.01)
        """
    )
    run = Background(coord, options(command, split=True), clock)
    wait_for(lambda: coord.get_work_item("logs__0__0").documents_processed > 0, "progress")
    request_split(db_path, clock)
    wait_for(lambda: any("told the command" in line for line in run.logs), "the request passed on")
    go.touch()
    result = run.join()

    assert result.exit_code == EXIT_ALL_DONE and result.completed == ["logs__0__0"]
    assert [i.work_item_id for i in coord.list_work_items()] == ["logs__0__0"]
    item = coord.get_work_item("logs__0__0")
    assert (item.range_start, item.range_end, item.documents_processed) == (0, COUNT, COUNT)
    assert coord.verify_coverage().ok


def test_without_split_a_command_asking_for_one_is_not_split(
    coord: SqliteCoordinator, clock: FakeClock, tmp_path: Path
) -> None:
    command = py(
        """
        import os
        fd = int(os.environ["LITECOORD_PROGRESS_FD"])
        assert "LITECOORD_SPLIT_FD" not in os.environ
        os.write(fd, b"docs=1000\\nsplit at=50000\\n")
        print("LITECOORD-PROGRESS split at=60000", flush=True)
        os.write(fd, b"docs=%d\\n" % int(os.environ["LITECOORD_DOCUMENT_COUNT"]))
        """
    )
    run = Background(coord, options(command), clock)
    result = run.join()

    assert result.exit_code == EXIT_ALL_DONE
    assert [i.work_item_id for i in coord.list_work_items()] == ["logs__0__0"]
    assert coord.get_work_item("logs__0__0").range_end == COUNT


def test_a_refused_split_leaves_the_command_its_old_end(
    coord: SqliteCoordinator, clock: FakeClock, tmp_path: Path
) -> None:
    # Accepts a new end that would leave the item nothing (at its own start): the store
    # refuses, nothing changes, and the command hears "split-refused" with its old end.
    answer = tmp_path / "answer.txt"
    command = py(
        f"""
        import os
        fd = int(os.environ["LITECOORD_PROGRESS_FD"])
        os.write(fd, b"docs=5000\\nsplit at=0\\n")
        line = os.fdopen(int(os.environ["LITECOORD_SPLIT_FD"]), "r").readline()
        open({str(answer)!r}, "w").write(line)
        os.write(fd, b"docs={COUNT}\\n")
        """
    )
    run = Background(coord, options(command, split=True), clock)
    result = run.join()

    assert result.exit_code == EXIT_ALL_DONE
    assert answer.read_text().startswith(f"split-refused at=0 end={COUNT} reason=")
    assert [i.work_item_id for i in coord.list_work_items()] == ["logs__0__0"]
    assert coord.verify_coverage().ok


@pytest.mark.parametrize(
    ("line", "at"),
    [("split at=42", 42), ("LITECOORD-PROGRESS split at=7", 7), ("split at=-1", None), ("split at=", None),
     ("split", None), ("split at=1 x=2", None), ("docs=5", None)],
)  # fmt: skip
def test_parse_split_accept(line: str, at: int | None) -> None:
    assert parse_split_accept(line) == at
