from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from backends import FACTORIES, Make
from browser_support import browser, page, served  # noqa: F401 - the browser tests' fixtures

from litecoord import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "coord.db"


@pytest.fixture(params=sorted(FACTORIES))
def make(request: pytest.FixtureRequest, db_path: Path, clock: FakeClock) -> Iterator[Make]:
    """``make(worker_id=..., session=...)``: coordinators of each backend over one file and clock."""
    with FACTORIES[request.param](db_path, clock) as factory:
        yield factory
