"""Path ids, cursors and If-Match parsing."""

from __future__ import annotations

import pytest
from bson import ObjectId

from api.errors import ApiError
from api.params import etag, parse_cursor, parse_if_match, parse_job_id

OID = "6740a1f2c3d4e5f601234567"


def test_job_ids() -> None:
    assert parse_job_id(OID) == ObjectId(OID)
    assert parse_job_id(OID.upper()) == ObjectId(OID)
    for bad in ("", "6740a1f2c3d4e5f60123456", OID + "0", "g" * 24, '{"$oid": "x"}', OID + "\n"):
        with pytest.raises(ApiError) as raised:
            parse_job_id(bad)
        assert raised.value.status == 404


def test_cursors() -> None:
    assert parse_cursor(None) is None
    assert parse_cursor(OID) == ObjectId(OID)
    with pytest.raises(ApiError) as raised:
        parse_cursor("page-2")
    assert raised.value.status == 422
    assert [error.field for error in raised.value.errors] == ["cursor"]


@pytest.mark.parametrize(
    ("header", "version"),
    [(None, None), ("*", None), (' "3" ', 3), ("3", 3), ('W/"12"', 0), (etag(7), 7)],
)
def test_if_match(header: str | None, version: int | None) -> None:
    # A weak ETag never matches (strong comparison): it asks for version 0, which no job has.
    assert parse_if_match(header) == version


@pytest.mark.parametrize("header", ['"1", "2"', "abc", '"-1"', '"1" OR 1=1', '"' + "9" * 30 + '"'])
def test_unusable_if_match_is_400(header: str) -> None:
    with pytest.raises(ApiError) as raised:
        parse_if_match(header)
    assert raised.value.status == 400
