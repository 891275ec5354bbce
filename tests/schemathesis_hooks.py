"""schemathesis hooks for tests/test_openapi.py's ``st run --checks all`` (SCHEMATHESIS_HOOKS).

One rule of the API spans the path and the body, which a JSON Schema cannot
state: ``POST …/{work_item_id}/successors`` refuses (422) an item as its own
successor (the document says so in words). Only that refusal of a
schema-valid request is dropped; every other failure fails the run.
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
    return not own_successor
