"""JSON size and depth limits for free-form payload parts."""

from __future__ import annotations

import pytest

from shared.job_types.limits import bounded_json, json_bytes, json_depth


@pytest.mark.parametrize(
    ("value", "depth"),
    [
        (1, 0),
        ("text", 0),
        ({}, 1),
        ([], 1),
        ({"a": 1}, 1),
        ({"a": {"b": [1, {"c": None}]}}, 4),
        ([[[[]]]], 4),
    ],
)
def test_depth(value: object, depth: int) -> None:
    assert json_depth(value) == depth


def test_depth_of_a_very_deep_value_needs_no_recursion() -> None:
    value: object = 1
    for _ in range(5000):
        value = [value]
    assert json_depth(value) == 5000


def test_size_is_measured_as_compact_utf8_json() -> None:
    assert json_bytes({"a": [1, 2], "ü": "€"}) == '{"a":[1,2],"ü":"€"}'.encode()


def test_bounded_json_accepts_up_to_the_limits() -> None:
    check = bounded_json(max_bytes=9, max_depth=2)
    assert check({"a": [1]}) == {"a": [1]}  # {"a":[1]} is 9 bytes, depth 2


def test_bounded_json_rejects_too_large_too_deep_and_non_json() -> None:
    check = bounded_json(max_bytes=9, max_depth=2)
    with pytest.raises(ValueError, match="10 bytes as JSON; at most 9"):
        check({"a": [12]})
    with pytest.raises(ValueError, match="nested 3 levels deep; at most 2"):
        check({"a": [[]]})
    with pytest.raises(ValueError, match="must be plain JSON"):
        bounded_json(100)({"x": float("nan")})
