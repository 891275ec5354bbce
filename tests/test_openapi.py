"""The OpenAPI document: valid, complete against the route table, and true to the app.

The last test runs schemathesis with every check it has (``st run --checks
all``) against a real ``litecoord serve``, with and without ``--test-clock``:
no 5xx, every status, header and body as documented, every schema-valid
request accepted and every schema-violating one refused, 405 with a true
``Allow`` for undocumented methods. One rule across the path and the body
(an item cannot be its own successor) is not expressible in a schema; the
hooks module (tests/schemathesis_hooks.py) drops exactly that refusal.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from rest_support import call

from litecoord import HttpCoordinator, create_app
from litecoord.rest.openapi import openapi_document
from litecoord.rest.wsgi import ROUTES

openapi_spec_validator = pytest.importorskip("openapi_spec_validator")
schemathesis = pytest.importorskip("schemathesis")

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


def documented_operations(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in doc["paths"].items() for method in item if method in HTTP_METHODS}


def test_document_is_valid_openapi() -> None:
    openapi_spec_validator.validate(openapi_document())


def test_every_route_is_documented_and_nothing_else() -> None:
    routes = {(route.method, route.template) for route in ROUTES}
    assert documented_operations(openapi_document()) == routes


def test_every_operation_has_a_unique_id_and_json_responses() -> None:
    doc = openapi_document()
    ids = [op["operationId"] for item in doc["paths"].values() for m, op in item.items() if m in HTTP_METHODS]
    assert len(ids) == len(set(ids)) == len(ROUTES)
    for item in doc["paths"].values():
        for method, op in item.items():
            assert any(code.startswith("2") for code in op["responses"]), (method, op["operationId"])


def test_the_served_document_is_the_module_document(db_path: Path) -> None:
    assert call(create_app(db_path), "GET", "/openapi.json").json == openapi_document()


def test_every_status_the_error_tree_can_produce_is_described() -> None:
    from litecoord import errors

    statuses = {
        cls.http_status for cls in vars(errors).values() if isinstance(cls, type) and cls.__module__ == errors.__name__
    }
    described = {int(code[1:]) for code in openapi_document()["components"]["responses"]}
    assert statuses - {500} <= described  # 500 is the base class, never raised bare


# -- schemathesis --checks all against a real server ------------------------------------------------

#: Requests per operation and phase: the whole run takes tens of seconds on two cores.
MAX_EXAMPLES = 20


def schemathesis_run(tmp_path: Path, *serve_args: str) -> subprocess.CompletedProcess[str]:
    """``st run --checks all`` against ``litecoord serve --ephemeral`` (with a few items to hit)."""
    server = subprocess.Popen(
        [sys.executable, "-m", "litecoord", "serve", "--ephemeral", "--quiet", *serve_args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert server.stdout is not None
    try:
        base = server.stdout.readline().strip()
        assert base.startswith("http://127.0.0.1:"), base
        HttpCoordinator(base, session="s").create_work_items([{"work_item_id": i} for i in ("0", "a", "index__0__0")])
        tests = str(Path(__file__).resolve().parent)
        return subprocess.run(
            [str(Path(sys.executable).with_name("st")), "run", f"{base}/openapi.json", "--checks", "all",
             "--max-examples", str(MAX_EXAMPLES), "--generation-deterministic", "--workers", "1",
             "--request-timeout", "30", "--no-color", "--report", "junit", "--report-dir", str(tmp_path)],
            capture_output=True, text=True, timeout=900, cwd=tmp_path,  # its .schemathesis cache goes there
            env={**os.environ, "SCHEMATHESIS_HOOKS": "schemathesis_hooks",
                 "PYTHONPATH": os.pathsep.join([tests, os.environ.get("PYTHONPATH", "")])},
        )  # fmt: skip
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.communicate(timeout=30)
        finally:
            if server.poll() is None:
                server.kill()


@pytest.mark.slow
@pytest.mark.parametrize("serve_args", [(), ("--test-clock",)], ids=["plain", "test-clock"])
def test_schemathesis_checks_all_find_no_mismatch(tmp_path: Path, serve_args: tuple[str, ...]) -> None:
    """Every check schemathesis has: no 5xx, documented statuses, headers and bodies, schema-valid
    requests accepted, schema-violating ones refused, unsupported methods 405, Allow headers true."""
    result = schemathesis_run(tmp_path, *serve_args)
    summary = result.stdout[result.stdout.rfind("SUMMARY") :]
    assert result.returncode == 0, result.stdout[-12000:] + result.stderr[-4000:]
    # It ran every operation of the served document (all but /openapi.json itself, which it reads).
    selected = re.search(r"Selected: (\d+)/(\d+)\s+Tested: (\d+)", summary)
    assert selected, summary
    assert len({*selected.groups(), str(len(ROUTES) - 1 + (2 if serve_args else 0))}) == 1, summary
    assert " passed" in summary and "failed" not in summary, summary
