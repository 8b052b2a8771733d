"""Cursors: opaque, tenant-bound, ordered like the log."""

from __future__ import annotations

import uuid

import pytest

from statemgr.domain.errors import InvalidArgument
from statemgr.events import cursor
from statemgr.events.cursor import END, START, Position

TENANT = uuid.UUID("0b6c3c1e-3a51-4f8e-9a43-0d1d2c3b4a59")


def test_round_trip() -> None:
    for position in (START, Position(1, 0), Position(2**40 + 7, 123456789), Position(2**64 - 1, 2**63 - 1)):
        encoded = cursor.encode(TENANT, position)
        assert cursor.decode(encoded, TENANT) == position
        assert encoded.isascii() and "=" not in encoded and "/" not in encoded and "+" not in encoded


def test_another_tenants_cursor_is_refused() -> None:
    encoded = cursor.encode(uuid.uuid4(), Position(5, 6))
    with pytest.raises(InvalidArgument, match="another tenant") as refused:
        cursor.decode(encoded, TENANT)
    assert refused.value.field == "after_cursor"


@pytest.mark.parametrize("garbage", ["", "x", "not a cursor", "é" * 44, cursor.encode(TENANT, Position(1, 1))[:-2]])
def test_garbage_is_invalid(garbage: str) -> None:
    with pytest.raises(InvalidArgument, match="not a cursor"):
        cursor.decode(garbage, TENANT)


def test_positions_order_by_transaction_then_sequence() -> None:
    assert Position(5, 900) < Position(6, 1) < Position(6, 2)
    assert Position.horizon(6) < Position(6, 1)  # a horizon precedes every row of its transaction id
    assert Position(5, 2**62) < Position.horizon(6)
    assert START < Position(1, 0) < END
