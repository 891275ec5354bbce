"""Routes over sessions: list them, create one with its settings."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ... import validation as check
from ..request import (
    Request,
    Response,
)

if TYPE_CHECKING:
    from ..wsgi import App

logger = logging.getLogger("litecoord.rest.wsgi")


def list_sessions(app: App, req: Request) -> Response:
    return 200, [s.to_dict() for s in app.root.list_sessions()]


def setup_session(app: App, req: Request) -> Response:
    body = req.obj(
        (
            "lease_mode", "acquire_order", "max_attempts", "retry_delay_seconds", "max_retry_delay_seconds",
            "split_min_documents",
        ),
        required=False,
    )
    delays = {
        name: None if body.get(f"{name}_seconds") is None else check.delay(body[f"{name}_seconds"], f"{name}_seconds")
        for name in ("retry_delay", "max_retry_delay")
    }
    coord = app.coordinator(req.params["session"])
    coord.setup(
        lease_mode=body.get("lease_mode"),
        acquire_order=body.get("acquire_order"),
        max_attempts=body.get("max_attempts"),
        **delays,
        # Left out: kept as stored; null: split requests off.
        **({"split_min_documents": body["split_min_documents"]} if "split_min_documents" in body else {}),
    )
    info = next(s for s in coord.list_sessions() if s.session_name == coord.session)
    return 200, info.to_dict()


