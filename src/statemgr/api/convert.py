"""Small proto <-> Python conversions shared by the servicers."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from google.protobuf import struct_pb2, timestamp_pb2

from statemgr.domain import validation

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def timestamp(value: dt.datetime | None) -> timestamp_pb2.Timestamp | None:
    """A Timestamp, or None (leaves the field unset) for None; naive datetimes are UTC, as in FromDatetime.

    Computed here rather than with Timestamp.FromDatetime, which goes through a time tuple and costs several times
    as much: a customer context converts over a hundred timestamps.
    """
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    since = value - _EPOCH
    return timestamp_pb2.Timestamp(seconds=since.days * 86_400 + since.seconds, nanos=value.microsecond * 1_000)


def datetime(ts: timestamp_pb2.Timestamp, field: str) -> dt.datetime:
    """An aware UTC datetime from a Timestamp; INVALID_ARGUMENT naming `field` when it is out of range."""
    return validation.timestamp(ts.seconds, ts.nanos, field)


def optional_datetime(message: Any, field: str, path: str | None = None) -> dt.datetime | None:
    """The datetime of a Timestamp field, or None when the field is unset; errors name `path` (default `field`)."""
    return datetime(getattr(message, field), path or field) if message.HasField(field) else None


def struct(value: dict[str, Any] | None) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    if value:
        out.update(value)
    return out


def struct_dict(value: struct_pb2.Struct) -> dict[str, Any]:
    """The Struct as plain Python values, as MessageToDict gives them but without raising: NaN and Infinity stay
    floats, for the domain's validation to refuse with the field's name (json_format raises a bare ValueError)."""
    return {key: _plain(item) for key, item in value.fields.items()}


def _plain(value: struct_pb2.Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "struct_value":
        return struct_dict(value.struct_value)
    if kind == "list_value":
        return [_plain(item) for item in value.list_value.values]
    if kind is None or kind == "null_value":
        return None
    return getattr(value, kind)


def id_str(value: uuid.UUID | None) -> str:
    return "" if value is None else str(value)
