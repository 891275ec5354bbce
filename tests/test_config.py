"""WorkCoordinationConfig, the properties file of the seed, and connect()."""

from __future__ import annotations

from pathlib import Path

import pytest

from litecoord import (
    FakeClock,
    HttpCoordinator,
    SqliteCoordinator,
    ValidationError,
    WorkCoordinationConfig,
    connect,
)
from litecoord.config import parse_properties

# Verbatim from the seed's "Configuration Properties" section.
SEED_PROPERTIES = """\
# Choose coordination backend
workcoordination.backend=console  # or 'opensearch'

# Console-specific configuration
workcoordination.console.baseUrl=http://localhost:8000
workcoordination.console.sessionName=migration-session-1

# Worker identification
workcoordination.workerId=worker-001
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rfs.properties"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_seeds_properties_file_gives_a_console_config(tmp_path: Path) -> None:
    config = WorkCoordinationConfig.from_properties(write(tmp_path, SEED_PROPERTIES))
    assert config == WorkCoordinationConfig.console("http://localhost:8000", "migration-session-1", "worker-001")
    coordinator = connect(config)
    assert isinstance(coordinator, HttpCoordinator)
    assert (coordinator.base_url, coordinator.session, coordinator.worker_id) == (
        "http://localhost:8000",
        "migration-session-1",
        "worker-001",
    )


def test_opensearch_backend_is_refused_by_name(tmp_path: Path) -> None:
    text = SEED_PROPERTIES.replace("backend=console  # or 'opensearch'", "backend=opensearch")
    with pytest.raises(ValidationError) as info:
        WorkCoordinationConfig.from_properties(write(tmp_path, text))
    assert info.value.field == "workcoordination.backend"
    assert "'opensearch'" in str(info.value) and "not supported" in str(info.value)


def test_sqlite_backend_from_properties_resolves_the_path_beside_the_file(tmp_path: Path) -> None:
    text = (
        "workcoordination.backend = sqlite\n"
        "workcoordination.sqlite.path: data/backfill.db\n"
        "workcoordination.sessionName migration-session-1\n"
        "workcoordination.workerId=worker-001\n"
    )
    config = WorkCoordinationConfig.from_properties(write(tmp_path, text))
    assert config.backend == "sqlite"
    assert config.path == str(tmp_path / "data" / "backfill.db")
    assert (config.session, config.worker_id) == ("migration-session-1", "worker-001")


def test_backend_is_inferred_when_only_one_kind_of_location_is_given() -> None:
    assert WorkCoordinationConfig.from_mapping({"workcoordination.sqlite.path": "/tmp/x.db"}).backend == "sqlite"
    assert WorkCoordinationConfig.from_mapping({"workcoordination.console.baseUrl": "http://h:1"}).backend == "console"
    with pytest.raises(ValidationError) as info:
        WorkCoordinationConfig.from_mapping({})
    assert info.value.field == "workcoordination.backend"


@pytest.mark.parametrize(
    ("props", "field"),
    [
        ({"workcoordination.backend": "console"}, "workcoordination.console.baseUrl"),
        ({"workcoordination.backend": "sqlite"}, "workcoordination.sqlite.path"),
        (
            {"workcoordination.backend": "console", "workcoordination.console.baseUrl": "localhost:8000"},
            "workcoordination.console.baseUrl",
        ),
        (
            {
                "workcoordination.backend": "console",
                "workcoordination.console.baseUrl": "http://h:1",
                "workcoordination.workerId": "w" * 300,
            },
            "workcoordination.workerId",
        ),
        ({"workcoordination.backend": "redis"}, "workcoordination.backend"),
    ],
)
def test_bad_properties_name_the_key(props: dict[str, str], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        WorkCoordinationConfig.from_mapping(props)
    assert info.value.field == field


def test_properties_syntax() -> None:
    props = parse_properties(
        "! bang comment\n"
        "   # indented comment\n"
        "a=1\n"
        "b : two words  \n"
        "c\tthree\n"
        "long=first \\\n"
        "     second\n"
        "url=http://h:1/#fragment\n"
        "hash=value\\ # kept\n"
        "escaped\\=key=x\n"
        "uni=caf\\u00e9\\n\n"
        "empty=\n"
        "a=override\n"
    )
    assert props == {
        "a": "override",
        "b": "two words  ",
        "c": "three",
        "long": "first second",
        "url": "http://h:1/#fragment",
        "hash": "value # kept",
        "escaped=key": "x",
        "uni": "café\n",
        "empty": "",
    }


def test_malformed_unicode_escape_is_a_validation_error() -> None:
    with pytest.raises(ValidationError):
        parse_properties("a=\\u12G4\n")


def test_config_checks_itself() -> None:
    with pytest.raises(ValidationError) as info:
        WorkCoordinationConfig("console", base_url="ftp://x")
    assert info.value.field == "base_url"
    with pytest.raises(ValidationError) as info:
        WorkCoordinationConfig("sqlite")
    assert info.value.field == "path"
    with pytest.raises(ValidationError) as info:
        WorkCoordinationConfig("opensearch")
    assert "not supported" in str(info.value)
    with pytest.raises(ValidationError):
        WorkCoordinationConfig.sqlite("x.db", session="")
    with pytest.raises(AttributeError):
        WorkCoordinationConfig.sqlite("x.db").path = "y.db"  # type: ignore[misc]


def test_connect_sqlite_uses_the_clock(tmp_path: Path) -> None:
    clock = FakeClock()
    coordinator = connect(WorkCoordinationConfig.sqlite(tmp_path / "c.db", "s1", "worker-001"), clock=clock)
    assert isinstance(coordinator, SqliteCoordinator)
    coordinator.create_unassigned_work_item("a")
    assert coordinator.get_work_item("a").created_at == clock()
    assert (coordinator.session, coordinator.worker_id) == ("s1", "worker-001")


def test_connect_console_passes_the_token() -> None:
    coordinator = connect(WorkCoordinationConfig.console("http://127.0.0.1:1", "s1", "w1", token="t0k"))
    assert isinstance(coordinator, HttpCoordinator) and coordinator.token == "t0k"


def test_several_comma_separated_base_urls_give_a_failover_coordinator() -> None:
    props = {
        "workcoordination.backend": "console",
        "workcoordination.console.baseUrl": "http://host-a:8000, http://host-b:8000",
    }
    coordinator = connect(WorkCoordinationConfig.from_mapping(props))
    assert isinstance(coordinator, HttpCoordinator)
    assert coordinator.base_urls == ("http://host-a:8000", "http://host-b:8000")
    props["workcoordination.console.baseUrl"] = "http://host-a:8000,host-b:8000"
    with pytest.raises(ValidationError, match="'host-b:8000'") as info:
        WorkCoordinationConfig.from_mapping(props)
    assert info.value.field == "workcoordination.console.baseUrl"
