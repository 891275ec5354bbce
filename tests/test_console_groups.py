"""How failures are grouped (litecoord.console.error_pattern): what varies is masked, what failed is kept."""

from __future__ import annotations

import pytest

from litecoord.console import error_pattern, failure_groups_from


@pytest.mark.parametrize(
    ("error", "pattern"),
    [
        ("shard 52 failed: 429", "shard N failed: N"),
        ("shard 7 failed: 429", "shard N failed: N"),
        ("index 'logs-2024' is missing", "index '?' is missing"),
        ('field "user.name" rejected', 'field "?" rejected'),
        ("doc 3fa85f64-5717-4562-b3fc-2c963f66afa6 bad", "doc <id> bad"),
        ("segment deadbeefcafe1234 corrupt", "segment <id> corrupt"),
        ("timed out after 30.5s at -1e3", "timed out after Ns at N"),
        ("  spaces\tand   tabs  ", "spaces and tabs"),
        ("command exited with code 1\nstderr:\n  at line 7\nValueError: bad doc 12",
         "command exited with code N … ValueError: bad doc N"),
        ("", ""),
        (None, ""),
    ],
)
def test_ids_numbers_and_quoted_values_are_masked(error: str | None, pattern: str) -> None:
    assert error_pattern(error) == pattern
    assert error_pattern(pattern) == pattern  # a pattern names its own group


def test_words_that_look_like_hex_are_kept() -> None:
    # "deadbeef" alone (no digit) and "cafe" are words; only long hex with digits is an id.
    assert error_pattern("deadbeef cafe") == "deadbeef cafe"


def test_groups_count_failed_and_retrying_and_keep_the_first_examples() -> None:
    rows = [(f"s{n}", "failed" if n % 2 else "pending", f"shard {n} failed: 429") for n in range(8)]
    rows.insert(3, ("other", "failed", "boom"))
    groups = failure_groups_from(rows)
    assert [(g.error_pattern, g.count, g.failed, g.retrying) for g in groups] == [
        ("shard N failed: N", 8, 4, 4), ("boom", 1, 1, 0),
    ]  # fmt: skip
    assert groups[0].example_work_item_ids == ("s0", "s1", "s2", "s3", "s4")
    assert groups[0].example_error == "shard 0 failed: 429"
