"""The documentation site: it builds strictly, loads nothing from another host, and its references come from the code.

The site is built once per run (``mkdocs build --strict``, the docs extra),
into a temporary directory; the tests read the HTML it wrote.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import subprocess
import sys
import textwrap
from html.parser import HTMLParser
from pathlib import Path

import click
import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "scripts" / "docs_hooks.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _need_docs_extra() -> None:
    missing = [m for m in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python", "griffe")
               if importlib.util.find_spec(m.split(".")[0]) is None]  # fmt: skip
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"the docs extra is not installed ({', '.join(missing)}): pip install '.[docs]'")
        pytest.skip(f"the docs extra is not installed ({', '.join(missing)}): pip install '.[docs]'")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _need_docs_extra()
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return out


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def test_every_page_of_the_nav_is_built(site: Path) -> None:
    nav = re.findall(r":\s+([\w/-]+)\.md\s*$", _text(ROOT / "mkdocs.yml"), re.M)
    assert {"index", "getting-started", "concepts", "runner", "reference/cli", "reference/rest",
            "reference/python", "sizing", "benchmarks", "operations", "testing"} <= set(nav)  # fmt: skip
    for page in nav:
        built = site / ("index.html" if page == "index" else f"{page}/index.html")
        assert built.is_file(), page


class _Loads(HTMLParser):
    """Every URL a page makes the browser fetch by itself (not links a reader may follow)."""

    FETCHED = {"script": "src", "img": "src", "iframe": "src", "source": "src", "video": "src", "audio": "src",
               "embed": "src", "object": "data", "track": "src"}  # fmt: skip

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.classes: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.classes += a.get("class", "").split()
        if tag in self.FETCHED and a.get(self.FETCHED[tag]):
            self.urls.append(a[self.FETCHED[tag]])
        # Stylesheets, fonts, icons, preloads and preconnects are fetched; only <a> and canonical links are not.
        if tag == "link" and a.get("href") and "canonical" not in a.get("rel", ""):
            self.urls.append(a["href"])
        if tag == "style" or "style" in a:
            self.urls += re.findall(r"url\(\s*['\"]?([^'\")]+)", a.get("style", ""))

    def handle_data(self, data: str) -> None:
        self.urls += re.findall(r"(?:url\(\s*['\"]?|@import\s+['\"])(https?:|//)", data)


def _remote(url: str) -> bool:
    return bool(re.match(r"^(https?:)?//", url.strip(), re.I))


def test_the_built_site_loads_nothing_from_another_host(site: Path) -> None:
    pages = sorted(site.rglob("*.html"))
    assert len(pages) >= 15
    for page in pages:
        parser = _Loads()
        parser.feed(_text(page))
        remote = [u for u in parser.urls if _remote(u)]
        assert not remote, f"{page.relative_to(site)} loads {remote}"
        # Material's bundle fetches a diagram library from a CDN for a mermaid block, and asks
        # GitHub's API for a repository widget: the site has neither.
        assert "mermaid" not in parser.classes and "md-source" not in parser.classes, page
    for sheet in site.rglob("*.css"):
        remote = re.findall(r"(?:url\(\s*['\"]?|@import\s+['\"]?)((?:https?:)?//[^'\")\s]+)", _text(sheet))
        assert not remote, f"{sheet.relative_to(site)} loads {remote}"
    assert "fonts.googleapis.com" not in "".join(_text(p) for p in pages)


def test_the_cli_reference_has_every_command_and_option(site: Path) -> None:
    from litecoord.cli import EXIT_CODES, cli
    from litecoord.cli import runner as worker

    page = _text(site / "reference" / "cli" / "index.html")
    for name, command in cli.commands.items():
        assert f'id="litecoord-{name}"' in page, name
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                for opt in param.opts:
                    assert opt in page, f"{name} {opt}"
    for code in [*EXIT_CODES, *worker.EXIT_CODES]:
        assert re.search(rf"<td>{code}</td>", page), code


def test_the_rest_reference_has_every_operation_and_error_code(site: Path) -> None:
    from litecoord.rest import testclock
    from litecoord.rest.openapi import BASE, ERROR_CODES, openapi_document

    page = _text(site / "reference" / "rest" / "index.html")
    document = testclock.add_to_document(openapi_document())
    for path, operations in document["paths"].items():
        shown = (path[len(BASE) :] or "/") if path.startswith(BASE) else path
        for method in operations:
            assert f"<code>{method.upper()} {shown}</code>" in page, (method, path)
    for name in document["components"]["schemas"]:
        assert f'id="schema-{name.lower()}"' in page, name
    for status, code, _ in ERROR_CODES:
        assert re.search(rf"<td>{status}</td>\s*<td><code>{code}</code></td>", page), code


def test_the_error_table_names_every_code_the_library_raises() -> None:
    import litecoord.errors as errors
    from litecoord.rest.openapi import ERROR_CODES, openapi_document

    table = {(status, code) for status, code, _ in ERROR_CODES}
    # Raised in a client or refused before a server runs: never in an answer.
    local = {"coordinator_unreachable", "not_a_litecoord_file", "session_not_empty"}
    for cls in vars(errors).values():
        if isinstance(cls, type) and issubclass(cls, errors.LitecoordError) and cls.code not in local:
            assert (cls.http_status, cls.code) in table, cls.__name__
    described = openapi_document()["components"]["schemas"]["Error"]["properties"]["code"]["description"]
    assert all(code in described for _, code in table)


def test_the_error_table_names_every_code_the_server_answers_with() -> None:
    from litecoord.rest.openapi import ERROR_CODES

    table = {(status, code) for status, code, _ in ERROR_CODES}
    # Every error answer of the REST layer is an HttpError(status, "code", ...) or a literal body with a code.
    source = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "litecoord" / "rest").rglob("*.py"))
    raised = {(int(status), code) for status, code in re.findall(r'HttpError\(\s*(\d{3}),\s*"(\w+)"', source)}
    raised |= {(int(status), code) for status, code in
               re.findall(r'(\d{3}),\s*\{"detail": [^}]*"code": "(\w+)"', source)}  # fmt: skip
    assert raised, "no error answer found in litecoord/rest: has the way errors are raised changed?"
    assert raised <= table, f"answered but not in the error table: {sorted(raised - table)}"


def test_the_python_reference_documents_every_public_name(site: Path) -> None:
    import litecoord

    page = _text(site / "reference" / "python" / "index.html")
    for name in litecoord.__all__:
        assert re.search(rf'id="litecoord\.(?:[\w.]+\.)?{re.escape(name)}"', page), name


def test_a_public_name_without_a_docstring_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _need_docs_extra()
    package = tmp_path / "undocumented_pkg"
    package.mkdir()
    (package / "__init__.py").write_text(
        textwrap.dedent(
            '''
            """A package."""

            __all__ = ["documented", "bare", "Thing", "LIMIT", "COMMENTED"]


            def documented() -> None:
                """Has one."""


            def bare() -> None:
                pass


            class Thing:
                """Has one."""


            LIMIT = 3
            """The limit."""

            #: A comment is not a docstring to mkdocstrings.
            COMMENTED = 4
            '''
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert _hooks().undocumented_public_names("undocumented_pkg") == ["bare", "COMMENTED"]


def test_the_build_fails_on_a_public_name_without_a_docstring(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _need_docs_extra()
    from mkdocs.config import load_config
    from mkdocs.structure.files import Files

    hooks = _hooks()
    monkeypatch.setattr(hooks, "undocumented_public_names", lambda: ["Undocumented"])
    config = load_config(str(ROOT / "mkdocs.yml"))
    # mkdocs records which plugin generated a file while it runs the event; outside a build there is none.
    monkeypatch.setattr(config.plugins, "_current_plugin", "hooks", raising=False)
    with caplog.at_level(logging.WARNING, logger="mkdocs"):
        files = hooks.on_files(Files([]), config)
    # A warning under the mkdocs logger is what --strict counts: the build aborts.
    assert any(r.levelno == logging.WARNING and "litecoord.Undocumented" in r.getMessage() for r in caplog.records)
    assert {f.src_uri for f in files} == {"reference/cli.md", "reference/rest.md", "reference/python.md"}


def test_a_placeholder_naming_nothing_warns_and_benchmarks_are_included(caplog: pytest.LogCaptureFixture) -> None:
    hooks = _hooks()
    with caplog.at_level(logging.WARNING, logger="mkdocs"):
        out = hooks.expand("<!-- generated: no-such-part -->", "page.md")
    assert "no-such-part" in out and any("no-such-part" in r.getMessage() for r in caplog.records)
    included = hooks.expand("<!-- include: BENCHMARKS.md -->", "benchmarks.md")
    assert included.startswith("# litecoord benchmarks")
    assert "](docs/" not in included and "](BENCHMARKS.md" not in included


def test_the_benchmarks_page_renders_benchmarks_md(site: Path) -> None:
    page = _text(site / "benchmarks" / "index.html")
    for heading in re.findall(r"^## (.+)$", _text(ROOT / "BENCHMARKS.md"), re.M):
        assert heading.replace("'", "&#39;").split("`")[0][:20] in page, heading


def _section(page: str, title: str) -> str:
    text = _text(DOCS / page)
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, f"{page} has no '## {title}' section"
    return match.group(1)


def test_the_getting_started_python_flow_runs_as_written(tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", _section("getting-started.md", "In Python: the seed's flow"), re.S)
    assert len(blocks) == 1
    result = subprocess.run(
        [sys.executable, "-c", blocks[0]], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "'completed_work_items': 1" in result.stdout and "'total_work_items': 2" in result.stdout
    assert (tmp_path / "backfill.db").is_file()


def test_the_getting_started_curl_flow_runs_as_written() -> None:
    import json
    import shutil

    if not shutil.which("curl") or not shutil.which("bash"):
        if os.environ.get("CI"):
            pytest.fail("curl and bash are needed to run the page's curl flow")
        pytest.skip("curl or bash is not installed")
    pytest.importorskip("waitress")
    section = _section("getting-started.md", "Over HTTP, with curl: the seed's flow")
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    assert len(blocks) == 1 and "http://localhost:8000" in blocks[0]
    server = subprocess.Popen(
        [sys.executable, "-m", "litecoord", "serve", "--ephemeral", "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stdout is not None
        base = server.stdout.readline().strip()  # the first line: http://127.0.0.1:PORT
        assert base.startswith("http://127.0.0.1:"), base
        flow = blocks[0].replace("http://localhost:8000", base)
        result = subprocess.run(["bash", "-c", flow], capture_output=True, text=True, timeout=120)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert result.returncode == 0, result.stderr
    created, lease, renewed, completed, status = (json.loads(line) for line in result.stdout.splitlines())
    assert [item["work_item_id"] for item in created] == ["index1_shard0", "index1_shard1"]
    assert lease["work_item"]["work_item_id"] == "index1_shard0" and lease["work_item"]["worker_id"] == "worker-001"
    assert renewed["documents_processed"] == 25000 and completed["status"] == "completed"
    assert (status["total_work_items"], status["pending_work_items"], status["completed_work_items"]) == (2, 1, 1)
    assert status["total_documents"] == 95000


README = ROOT / "README.md"


def _slug(heading: str) -> str:
    """The anchor MkDocs (and GitHub) give a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_the_readme_fits_on_a_few_screens_and_links_into_the_site() -> None:
    text = _text(README)
    lines = text.splitlines()
    assert len(lines) <= 300, f"README.md has {len(lines)} lines; the site is where the rest goes"
    first_screen = "\n".join(lines[:40])
    assert "litecoord demo" in first_screen and "bash scripts/test" in first_screen
    links = re.findall(r"\]\(([^)\s#]+)(?:#([^)\s]+))?\)", text)
    pages = {target for target, _ in links if target.startswith("docs/") and target.endswith(".md")}
    assert {"docs/getting-started.md", "docs/concepts.md", "docs/runner.md", "docs/rest.md", "docs/sizing.md"} <= pages
    for target, anchor in links:
        if re.match(r"^[a-z]+:", target):
            continue
        assert (ROOT / target).is_file(), target
        if anchor:
            headings = re.findall(r"^#+ (.+)$", _text(ROOT / target), re.M)
            assert anchor in {_slug(h) for h in headings}, f"{target}#{anchor}"


def test_the_readme_python_example_runs_as_written(tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", _text(README), re.S)
    assert len(blocks) == 1
    result = subprocess.run([sys.executable, "-c", blocks[0]], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "'completed_work_items': 1" in result.stdout and "'total_work_items': 1" in result.stdout
