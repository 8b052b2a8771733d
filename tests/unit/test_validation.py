from __future__ import annotations

import uuid

import pytest

from statemgr.domain import validation
from statemgr.domain.errors import InvalidArgument


def test_uuid() -> None:
    value = uuid.uuid4()
    assert validation.parse_uuid(str(value), "id") == value
    assert validation.optional_uuid("", "id") is None
    for bad in ("", "nope", "123"):
        with pytest.raises(InvalidArgument) as caught:
            validation.parse_uuid(bad, "conversation_id")
        assert caught.value.field == "conversation_id"


def test_text_limits() -> None:
    assert validation.required_text("abc", "f") == "abc"
    with pytest.raises(InvalidArgument, match="is required"):
        validation.required_text("   ", "f")
    with pytest.raises(InvalidArgument, match="limit is 256"):
        validation.required_text("x" * 257, "f")
    with pytest.raises(InvalidArgument, match="NUL"):
        validation.bounded_text("a\x00b", "f", 10)


def test_struct_limits() -> None:
    assert validation.bounded_struct({"a": [1, {"b": "c"}]}, "metadata") == {"a": [1, {"b": "c"}]}
    with pytest.raises(InvalidArgument, match="16384 bytes"):
        validation.bounded_struct({"a": "x" * 17_000}, "metadata")
    deep: dict[str, object] = {}
    node = deep
    for _ in range(12):
        node["n"] = {}
        node = node["n"]  # type: ignore[assignment]
    with pytest.raises(InvalidArgument, match="nested deeper"):
        validation.bounded_struct(deep, "metadata")


def test_page_size() -> None:
    assert validation.page_size(0) == 50
    assert validation.page_size(10) == 10
    assert validation.page_size(10_000) == 500
    with pytest.raises(InvalidArgument, match="negative"):
        validation.page_size(-1)


def test_mask_paths_and_etags() -> None:
    assert validation.mask_paths(["b", "a", "b"], ("a", "b")) == ["b", "a"]
    for paths in ([], ["a", "c"]):
        with pytest.raises(InvalidArgument) as caught:
            validation.mask_paths(paths, ("a", "b"))
        assert caught.value.field == "update_mask"
    assert validation.parse_etag("", "etag") is None and validation.parse_etag('"12"', "etag") == 12
    for never_issued in ("W/x", "v1", "0", "-3", "99999999999999999999"):  # match no version: ABORTED, not refused
        assert validation.parse_etag(never_issued, "customer.etag") == validation.UNKNOWN_VERSION
