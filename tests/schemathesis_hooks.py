"""schemathesis hooks for tests/test_openapi.py's ``st run --checks all`` (SCHEMATHESIS_HOOKS).

Two rules of the API span the body and the path or the item's state, which a
JSON Schema cannot state (the document says both in words):
``POST …/{work_item_id}/successors`` refuses (422) an item as its own
successor, and ``POST …/{work_item_id}/split`` refuses (422, field ``at``) a
position that is not inside what is left of the item's range. Only those
refusals of a schema-valid request are dropped; every other failure fails
the run.
"""

from __future__ import annotations

from typing import Any

import schemathesis


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    own_successor = (
        case.operation.path.endswith("/{work_item_id}/successors")
        and type(failure).__name__ == "RejectedPositiveData"
        and response.status_code == 422
        and isinstance(case.body, dict)
        and (case.path_parameters or {}).get("work_item_id") in (case.body.get("successor_work_item_ids") or [])
    )
    split_outside_range = (
        case.operation.path.endswith("/{work_item_id}/split")
        and type(failure).__name__ == "RejectedPositiveData"
        and response.status_code == 422
        and _error_field(response) == "at"
    )
    return not (own_successor or split_outside_range)


def _error_field(response: Any) -> Any:
    try:
        return response.json().get("field")
    except ValueError:
        return None
