"""The command line documents itself: every command has help and appears in the docs pages, with its exit codes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from litecoord.cli import runner as worker
from litecoord.cli.commands import EXIT_CODES, cli, commands

DOCS = Path(__file__).resolve().parents[1] / "docs"


def page(name: str, section: str | None = None) -> str:
    """A page of the documentation site (docs/NAME), or one '## SECTION' of it."""
    text = (DOCS / name).read_text(encoding="utf-8")
    if section is None:
        return text
    match = re.search(rf"^## {re.escape(section)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, f"docs/{name} has no '## {section}' section"
    return match.group(1)


def test_the_command_list_is_what_the_issue_asks_for_and_more() -> None:
    required = {
        "create", "batch", "acquire", "renew", "complete", "release", "fail", "split", "retry", "list", "show",
        "status", "cleanup-expired", "sessions", "serve", "work", "demo",
    }  # fmt: skip
    assert required <= set(commands())


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_command_has_help(name: str) -> None:
    command = cli.commands[name]
    assert command.help and len(command.help.split()) >= 5, f"{name} needs a real help text"
    result = CliRunner().invoke(cli, [name, "--help"], prog_name="litecoord")
    assert result.exit_code == 0
    assert result.output.startswith(f"Usage: litecoord {name} ")
    first_sentence = command.help.split("\n\n")[0]
    assert " ".join(first_sentence.split()) in " ".join(result.output.split())


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_command_appears_in_the_command_line_page(name: str) -> None:
    assert re.search(rf"`litecoord {re.escape(name)}[ `]", page("cli.md")), name


def test_the_pages_list_every_exit_code() -> None:
    command_line, runner = page("cli.md"), page("runner.md")
    for code in EXIT_CODES:
        assert re.search(rf"^\| {code} \|", command_line, re.M), f"exit code {code} of the commands"
    for code in worker.EXIT_CODES:
        assert re.search(rf"^\| {code} \|", runner, re.M), f"exit code {code} of litecoord work"


def test_work_help_lists_its_exit_codes_and_the_progress_protocol() -> None:
    text = CliRunner().invoke(cli, ["work", "--help"], prog_name="litecoord").output
    for code, meaning in worker.EXIT_CODES.items():
        assert re.search(rf"^\s+{code}\s+{re.escape(meaning[:30])}", text, re.M), code
    assert "LITECOORD-PROGRESS docs=1200 bytes=480000" in text


def test_the_runner_page_documents_the_runner_environment_and_protocol() -> None:
    runner = page("runner.md")
    variables = [
        "LITECOORD_WORK_ITEM_ID", "LITECOORD_INDEX_NAME", "LITECOORD_SHARD_NUMBER", "LITECOORD_DOCUMENT_COUNT",
        "LITECOORD_TOTAL_SIZE_BYTES", "LITECOORD_DOCUMENTS_PROCESSED", "LITECOORD_BYTES_PROCESSED",
        "LITECOORD_LEASE_EXPIRY", "LITECOORD_LEASE_SECONDS", "LITECOORD_LEASE_EPOCH", "LITECOORD_ATTEMPT",
        "LITECOORD_SESSION", "LITECOORD_WORKER_ID", "LITECOORD_PROGRESS_FD",
    ]  # fmt: skip
    for name in variables:
        assert f"`{name}`" in runner, name
    assert worker.PROGRESS_PREFIX in runner


def test_the_command_line_page_names_the_option_environment_variables() -> None:
    command_line = page("cli.md")
    for name in ("LITECOORD_DB", "LITECOORD_URL", "LITECOORD_TOKEN", "LITECOORD_SESSION", "LITECOORD_WORKER_ID"):
        assert f"`{name}`" in command_line, name


def test_getting_started_has_a_demo_section_naming_the_command() -> None:
    assert "litecoord demo" in page("getting-started.md", "The demo")


def test_the_console_example_runs_as_written(tmp_path, monkeypatch) -> None:
    console = page("operations.md", "The console: each item's history, workers, failures, pause")
    blocks = re.findall(r"```python\n(.*?)```", console, re.S)
    assert len(blocks) == 1
    monkeypatch.chdir(tmp_path)
    exec(compile(blocks[0], "the console example", "exec"), {})  # its asserts check what it says
    for name in ("workers", "failures", "pause", "resume"):
        assert f"`litecoord {name} -s S`" in console
