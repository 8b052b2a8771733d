"""Input checks shared by every service. Each raises InvalidArgument naming the field.

Limits (documented in the README):
- ids from the platforms (WhatsApp/Genesys conversation and message ids): 1-256 characters
- reasons: up to 1,000 characters; display names: up to 200
- metadata and preferences: at most 16 KiB as compact JSON, nesting at most 10 deep, no NaN or Infinity
- timestamps: years 1 to 9999, nanos 0 to 999,999,999 (google.protobuf.Timestamp's own range)
- page_size: 0 means the method's default, larger values are clamped, negative is refused
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from statemgr.domain.errors import InvalidArgument

MAX_EXTERNAL_ID = 256
MAX_REASON = 1_000
MAX_NAME = 200
MAX_URL = 2_048
MAX_STRUCT_BYTES = 16 * 1024
MAX_STRUCT_DEPTH = 10

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MIN_SECONDS = -62_135_596_800  # 0001-01-01T00:00:00Z
_MAX_SECONDS = 253_402_300_799  # 9999-12-31T23:59:59Z
_MAX_DURATION_SECONDS = 315_576_000_000  # google.protobuf.Duration's bound


def parse_uuid(value: str, field: str) -> uuid.UUID:
    """A required UUID."""
    if not value:
        raise InvalidArgument(field, "is required")
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidArgument(field, f"is not a valid UUID: {value[:64]!r}") from None


def optional_uuid(value: str, field: str) -> uuid.UUID | None:
    """A UUID, or None when empty."""
    return parse_uuid(value, field) if value else None


def required_text(value: str, field: str, max_length: int = MAX_EXTERNAL_ID) -> str:
    """A non-blank string of at most max_length characters."""
    if not value or not value.strip():
        raise InvalidArgument(field, "is required")
    return bounded_text(value, field, max_length)


def bounded_text(value: str, field: str, max_length: int) -> str:
    """A string of at most max_length characters, possibly empty."""
    if len(value) > max_length:
        raise InvalidArgument(field, f"is {len(value)} characters long; the limit is {max_length}")
    if "\x00" in value:
        raise InvalidArgument(field, "contains a NUL character")
    return value


def bounded_struct(value: Mapping[str, Any], field: str) -> dict[str, Any]:
    """A JSON object within the size and depth limits."""
    data = dict(value)
    try:
        encoded = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError:
        raise InvalidArgument(field, "holds NaN or Infinity, which JSON cannot carry") from None
    if len(encoded.encode()) > MAX_STRUCT_BYTES:
        raise InvalidArgument(field, f"is larger than {MAX_STRUCT_BYTES} bytes as JSON")
    if _depth(data) > MAX_STRUCT_DEPTH:
        raise InvalidArgument(field, f"is nested deeper than {MAX_STRUCT_DEPTH} levels")
    if "\\u0000" in encoded:
        raise InvalidArgument(field, "contains a NUL character")
    return data


def timestamp(seconds: int, nanos: int, field: str) -> dt.datetime:
    """An aware UTC datetime from a protobuf Timestamp's parts, which must be in its range (years 1 to 9999)."""
    if not 0 <= nanos < 1_000_000_000:
        raise InvalidArgument(field, f"has nanos {nanos}; they must be 0 to 999,999,999")
    if not _MIN_SECONDS <= seconds <= _MAX_SECONDS:
        raise InvalidArgument(field, "is outside the years 1 to 9999")
    return _EPOCH + dt.timedelta(seconds=seconds, microseconds=nanos // 1000)


UNKNOWN_VERSION = -1
"""What an etag this server never issued stands for: no resource ever has it, so the write answers ABORTED, like
any etag that no longer matches (AIP-154), and the client reads again for a current one."""


def duration(seconds: int, nanos: int, field: str) -> dt.timedelta:
    """A timedelta from a protobuf Duration's parts, which must be in its range (about 10,000 years either way, nanos
    of the seconds' sign)."""
    if not -_MAX_DURATION_SECONDS <= seconds <= _MAX_DURATION_SECONDS:
        raise InvalidArgument(field, "is outside a Duration's range of 10,000 years")
    if not -1_000_000_000 < nanos < 1_000_000_000 or (seconds and nanos and (seconds < 0) != (nanos < 0)):
        raise InvalidArgument(field, f"has nanos {nanos}, out of range or of the other sign than its seconds")
    return dt.timedelta(seconds=seconds, microseconds=nanos // 1000 if nanos >= 0 else -((-nanos) // 1000))


def parse_etag(value: str, field: str) -> int | None:
    """The version an etag stands for; None for no etag; UNKNOWN_VERSION for one this server never issued."""
    if not value:
        return None
    try:
        version = int(value.strip('"'))
    except ValueError:
        return UNKNOWN_VERSION
    return version if 0 < version < 2**63 else UNKNOWN_VERSION  # versions are positive bigints


def mask_paths(paths: Sequence[str], allowed: Sequence[str], field: str = "update_mask") -> list[str]:
    """The fields an update mask names, each once; INVALID_ARGUMENT for none or one not in `allowed`."""
    if not paths:
        raise InvalidArgument(field, "names no field; use " + ", ".join(allowed))
    for path in paths:
        if path not in allowed:
            raise InvalidArgument(field, f"cannot update {path[:64]!r}; allowed: " + ", ".join(allowed))
    return list(dict.fromkeys(paths))


def page_size(value: int, field: str = "page_size", default: int = 50, maximum: int = 500) -> int:
    """AIP-158: 0 means the default, larger than the maximum is clamped, negative is refused."""
    if value < 0:
        raise InvalidArgument(field, "must not be negative")
    return default if value == 0 else min(value, maximum)


def _depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0
