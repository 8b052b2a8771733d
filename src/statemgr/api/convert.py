"""Small proto <-> Python conversions shared by the servicers."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from google.protobuf import json_format, struct_pb2, timestamp_pb2

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


def datetime(ts: timestamp_pb2.Timestamp) -> dt.datetime:
    """An aware UTC datetime from a Timestamp."""
    return ts.ToDatetime(tzinfo=dt.UTC)


def optional_datetime(message: Any, field: str) -> dt.datetime | None:
    """The datetime of a Timestamp field, or None when the field is unset."""
    return datetime(getattr(message, field)) if message.HasField(field) else None


def struct(value: dict[str, Any] | None) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    if value:
        out.update(value)
    return out


def struct_dict(value: struct_pb2.Struct) -> dict[str, Any]:
    result: dict[str, Any] = json_format.MessageToDict(value)
    return result


def id_str(value: uuid.UUID | None) -> str:
    return "" if value is None else str(value)
