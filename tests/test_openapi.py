"""The OpenAPI document: valid, complete against the route table, and true to the app.

The last test throws schemathesis-generated requests (valid and invalid) at
the app in-process: no 5xx, every status documented for its operation, every
body matching its documented schema.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from rest_support import call

from litecoord import FakeClock, SqliteCoordinator, create_app
from litecoord.rest.openapi import openapi_document
from litecoord.rest.wsgi import ROUTES

openapi_spec_validator = pytest.importorskip("openapi_spec_validator")
schemathesis = pytest.importorskip("schemathesis")
from schemathesis.specs.openapi import checks as openapi_checks  # noqa: E402

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


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = tmp_path_factory.mktemp("openapi") / "coord.db"
    root = SqliteCoordinator(path, clock=FakeClock(), durability="normal")
    # A few items so that some generated requests hit existing data, not only 404s.
    root.bind(session="s").create_work_items([{"work_item_id": i} for i in ("0", "a", "index__0__0")])
    return create_app(root)


# Loaded from the module's document (what /openapi.json serves, checked above); the app is
# passed per call. (schemathesis.pytest.from_fixture does not run under pytest 9.)
schema = schemathesis.openapi.from_dict(openapi_document())


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,  # same cases every run: CI stays reproducible and fast
    suppress_health_check=list(HealthCheck),
)
def test_generated_requests_get_documented_answers(case: Any, app: Any) -> None:
    case.call_and_validate(
        app=app,
        checks=[
            schemathesis.checks.not_a_server_error,
            openapi_checks.status_code_conformance,
            openapi_checks.content_type_conformance,
            openapi_checks.response_schema_conformance,
        ],
    )
