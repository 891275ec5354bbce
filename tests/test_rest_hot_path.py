"""What the REST server's per-request hot path must keep while it got cheaper.

Each answer's JSON is written by orjson when it is installed and by the
standard library otherwise (``litecoord.rest.encoding.json_bytes``); the two
must give clients the same values, byte for byte but for small floats. A
time's text is remembered (``litecoord.times._TEXT``) and must stay right for
every kind of datetime. The access log takes no lock on the request path and
must still write every line exactly once, in order.
"""

from __future__ import annotations

import io
import json
import random
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from rest_support import call

from litecoord import FakeClock, SqliteCoordinator, create_app
from litecoord.rest import encoding
from litecoord.times import format_time


def _stdlib(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@pytest.fixture
def answers(db_path: Path, clock: FakeClock) -> list[Any]:
    """Real answers of the server: an item, a lease, a renewal, a status, an error, a no-work body."""
    root = SqliteCoordinator(db_path, clock=clock)
    app = create_app(root)
    base = "/sessions/s1/backfill/work-items"
    bodies = [call(app, "POST", base, {"work_item_id": "logs__0__0", "document_count": 10_000, "index_name": "lögs"})]
    bodies.append(call(app, "GET", f"{base}/acquire?worker_id=w1"))
    item = bodies[-1].json["work_item"]["work_item_id"]
    clock.advance(seconds=1.5)
    bodies.append(call(app, "PUT", f"{base}/{item}/lease", {"worker_id": "w1", "progress": {"documents_processed": 7}}))
    bodies.append(call(app, "GET", f"{base}/status"))
    bodies.append(call(app, "PUT", f"{base}/{item}/complete", "someone-else"))  # 409
    bodies.append(call(app, "PUT", f"{base}/{item}/complete", "w1"))
    bodies.append(call(app, "GET", f"{base}/acquire?worker_id=w1"))  # 404: no work
    assert [b.status for b in bodies] == [201, 200, 200, 200, 409, 200, 404]
    return [b.json for b in bodies]


def test_the_server_answers_json_that_the_standard_library_would_write(answers: list[Any]) -> None:
    assert encoding.orjson is not None, "the server extra (and the test extra) install orjson"
    for body in answers:
        assert encoding.json_bytes(body) == _stdlib(body), body


def test_without_orjson_the_standard_library_writes_the_same(
    answers: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    written = [encoding.json_bytes(body) for body in answers]
    monkeypatch.setattr(encoding, "orjson", None)
    assert [encoding.json_bytes(body) for body in answers] == written


@pytest.mark.parametrize(
    "body",
    [
        {"total": 2**64 + 1},  # past 64 bits: orjson refuses it
        {"nested": [{"deep": -(2**70)}]},
        {1: "an integer key", None: "a null key"},  # keys that are not strings
    ],
)
def test_what_orjson_refuses_is_written_by_the_standard_library(body: Any) -> None:
    assert encoding.json_bytes(body) == _stdlib(body)


def test_floats_are_the_same_numbers_whoever_writes_them() -> None:
    rng = random.Random(5)
    values = [rng.random() * 10 ** rng.randint(-12, 20) for _ in range(5_000)] + [1e-7, 2.5e-05, 1e16, 0.1, -0.0]
    body = {"rates": values, "eta_seconds": 1234.5678}
    assert json.loads(encoding.json_bytes(body)) == json.loads(_stdlib(body))


def test_a_remembered_time_text_is_right_for_every_kind_of_datetime() -> None:
    class Nanos(datetime):  # a pandas-like time that writes more digits than a datetime holds
        def isoformat(self, sep: str = "T", timespec: str = "auto") -> str:
            return super().isoformat(sep, timespec).replace("+00:00", "789+00:00")

    utc = datetime(2025, 1, 19, 20, 35, 0, 123456, tzinfo=timezone.utc)
    assert format_time(utc) == "2025-01-19T20:35:00.123456Z"  # now remembered
    # Equal instants: the same text, from the cache or not.
    india = utc.astimezone(timezone(timedelta(hours=5, minutes=30)))
    assert format_time(india) == "2025-01-19T20:35:00.123456Z"
    # A subclass equal to the remembered time still formats itself.
    assert format_time(Nanos(2025, 1, 19, 20, 35, 0, 123456, tzinfo=timezone.utc)) == "2025-01-19T20:35:00.123456789Z"
    # A naive time (local time) is never taken for the aware one with the same fields.
    naive = utc.replace(tzinfo=None)
    assert format_time(naive) == naive.astimezone(timezone.utc).isoformat()[:-6] + "Z"


def test_every_access_log_line_is_written_once_in_order_under_concurrent_requests() -> None:
    from litecoord.rest.access_log import AccessLog

    stream = io.StringIO()
    log = AccessLog(stream)
    log.BATCH_SECONDS = 0.001
    threads, per_thread = 8, 400
    start = threading.Barrier(threads)

    def requests(t: int) -> None:
        start.wait()
        for i in range(per_thread):
            log.begin()
            log.log({"REQUEST_METHOD": "GET", "REMOTE_ADDR": "127.0.0.1", "PATH_INFO": f"/t{t}/{i}"}, None, 200, 0.0)

    workers = [threading.Thread(target=requests, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    log.flush()
    paths = [line.split(" ")[3] for line in stream.getvalue().splitlines()]
    assert sorted(paths) == sorted(f"/t{t}/{i}" for t in range(threads) for i in range(per_thread))
    for t in range(threads):  # each thread's lines in the order it logged them
        mine = [int(p.rsplit("/", 1)[1]) for p in paths if p.startswith(f"/t{t}/")]
        assert mine == list(range(per_thread))
    assert log._in_flight == []  # every begin() was matched by its log()
