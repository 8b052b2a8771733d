"""Finding the field of a request body that does not decode (statemgr.api.decoding)."""

from __future__ import annotations

import datetime as dt

import pytest

from statemgr.api import decoding
from statemgr.domain import validation
from statemgr.domain.errors import InvalidArgument
from statemgr.v1 import customer_pb2, customer_service_pb2, message_service_pb2

JUNK = b"\xc3\x28"


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def field(number: int, value: bytes) -> bytes:
    return varint((number << 3) | 2) + varint(len(value)) + value


def test_a_bad_string_at_the_top_is_named() -> None:
    body = field(2, b"ok") + field(1, JUNK)  # UpdateMessageStatusRequest: genesys_message_id ok, whatsapp bad
    assert decoding.locate(body, message_service_pb2.UpdateMessageStatusRequest.DESCRIPTOR) == "whatsapp_message_id"


def test_a_bad_string_inside_a_repeated_message_is_named_with_its_index() -> None:
    good = message_service_pb2.UpdateMessageStatusRequest(whatsapp_message_id="w").SerializeToString()
    body = field(1, good) + field(1, good) + field(1, field(2, JUNK))
    found = decoding.locate(body, message_service_pb2.BatchUpdateMessageStatusRequest.DESCRIPTOR)
    assert found == "requests[2].genesys_message_id"


def test_a_bad_key_inside_a_struct_is_named_down_to_the_struct() -> None:
    entry = field(1, JUNK)  # Struct.FieldsEntry.key
    preferences = customer_pb2.Customer.DESCRIPTOR.fields_by_name["preferences"].number
    customer = field(preferences, field(1, entry))  # Customer.preferences -> Struct.fields
    found = decoding.locate(field(1, customer), customer_service_pb2.UpsertCustomerRequest.DESCRIPTOR)
    assert found == "customer.preferences.fields[0].key"


def test_broken_framing_names_no_field() -> None:
    assert decoding.locate(b"\x0a\x10abc", customer_service_pb2.GetCustomerRequest.DESCRIPTOR) == ""
    assert decoding.locate(b"\xff\xff\xff", customer_service_pb2.GetCustomerRequest.DESCRIPTOR) == ""
    assert decoding.locate(b"\x0b", customer_service_pb2.GetCustomerRequest.DESCRIPTOR) == ""  # a group


def test_the_safe_deserializer_returns_messages_and_undecodables() -> None:
    decode = decoding.safe(customer_service_pb2.GetCustomerRequest.FromString)
    assert decode is not None
    assert decode(customer_service_pb2.GetCustomerRequest(customer_id="x").SerializeToString()).customer_id == "x"
    undecodable = decode(field(1, JUNK))
    assert isinstance(undecodable, decoding.Undecodable)
    assert undecodable.error().field == "customer_id"
    assert decoding.safe(None) is None


@pytest.mark.parametrize(
    ("seconds", "nanos"),
    [(0, -1), (0, 1_000_000_000), (253_402_300_800, 0), (-62_135_596_801, 0)],
)
def test_timestamps_out_of_range_are_refused(seconds: int, nanos: int) -> None:
    with pytest.raises(InvalidArgument) as refused:
        validation.timestamp(seconds, nanos, "send_time")
    assert refused.value.field == "send_time"


def test_timestamps_at_the_ends_of_the_range_convert() -> None:
    assert validation.timestamp(-62_135_596_800, 0, "t") == dt.datetime(1, 1, 1, tzinfo=dt.UTC)
    end = validation.timestamp(253_402_300_799, 999_999_999, "t")
    assert end == dt.datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=dt.UTC)
    assert validation.timestamp(1, 500_000_000, "t") == dt.datetime(1970, 1, 1, 0, 0, 1, 500_000, tzinfo=dt.UTC)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_a_struct_with_nan_or_infinity_is_refused(value: float) -> None:
    with pytest.raises(InvalidArgument) as refused:
        validation.bounded_struct({"a": [1, {"b": value}]}, "metadata")
    assert refused.value.field == "metadata"


def test_deep_nesting_and_huge_bodies_are_walked_within_bounds() -> None:
    body = b""
    for _ in range(1_000):  # Struct.fields -> entry.value -> Value.struct_value -> ... far past protobuf's depth limit
        body = field(1, field(2, field(5, body)))
    entry = customer_pb2.Customer.DESCRIPTOR.fields_by_name["preferences"].message_type
    found = decoding.locate(body, entry)
    assert found.startswith("fields[0].value.struct_value.fields[0]")
    many = b"\x08\x01" * 200_000  # unknown-to-Struct varint fields: the walk gives up rather than run long
    assert decoding.locate(many, entry) == ""


@pytest.mark.parametrize(("seconds", "nanos"), [(2**63 - 1, 0), (-(2**63), 0), (1, -5), (-1, 5), (0, 1_000_000_000)])
def test_durations_out_of_range_are_refused(seconds: int, nanos: int) -> None:
    with pytest.raises(InvalidArgument) as refused:
        validation.duration(seconds, nanos, "retention_policy.event_retention")
    assert refused.value.field == "retention_policy.event_retention"


def test_durations_in_range_convert() -> None:
    assert validation.duration(86_400, 500_000_000, "d") == dt.timedelta(days=1, milliseconds=500)
    assert validation.duration(-1, -500_000_000, "d") == -dt.timedelta(seconds=1, milliseconds=500)
    assert validation.duration(315_576_000_000, 0, "d") == dt.timedelta(seconds=315_576_000_000)
