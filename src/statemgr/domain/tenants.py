"""Tenants, API keys and retention periods."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import secrets
import uuid
import zoneinfo

from statemgr.domain.errors import InvalidArgument, Unauthenticated

KEY_PREFIX = "sm"
_PREFIX_SHOWN = 12
MIN_RETENTION = dt.timedelta(days=1)
MAX_RETENTION = dt.timedelta(days=36525)  # 100 years


@dataclasses.dataclass(frozen=True, slots=True)
class Tenant:
    id: uuid.UUID
    display_name: str
    default_region: str
    created_at: dt.datetime
    time_zone: str = "UTC"


@dataclasses.dataclass(frozen=True, slots=True)
class ApiKey:
    id: uuid.UUID
    tenant_id: uuid.UUID
    display_name: str
    key_prefix: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None


@dataclasses.dataclass(frozen=True, slots=True)
class RetentionPolicy:
    tenant_id: uuid.UUID
    closed_conversation_retention: dt.timedelta
    archive_retention: dt.timedelta
    event_retention: dt.timedelta
    updated_at: dt.datetime


def new_secret(tenant_id: uuid.UUID) -> str:
    """A random key that names its tenant: sm_<tenant hex>_<256 random bits>.

    The tenant part lets the server look the key up inside that tenant's row-level-security scope; a forged tenant
    part finds no matching hash there.
    """
    return f"{KEY_PREFIX}_{tenant_id.hex}_{secrets.token_urlsafe(32)}"


def hash_secret(secret: str) -> bytes:
    # A 256-bit random secret needs no slow hash: brute force is out of reach either way.
    return hashlib.sha256(secret.encode()).digest()


def shown_prefix(secret: str) -> str:
    return secret[: len(KEY_PREFIX) + 1 + _PREFIX_SHOWN]


def tenant_of_secret(secret: str) -> uuid.UUID:
    """The tenant a key claims to belong to; Unauthenticated when it is not a statemgr key."""
    parts = secret.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX:
        raise Unauthenticated("the API key is not valid")
    try:
        return uuid.UUID(hex=parts[1])
    except ValueError:
        raise Unauthenticated("the API key is not valid") from None


def check_retention(value: dt.timedelta, field: str) -> dt.timedelta:
    if not MIN_RETENTION <= value <= MAX_RETENTION:
        raise InvalidArgument(field, "must be between 1 day and 100 years")
    return value


def check_time_zone(value: str, field: str) -> str:
    """An IANA time zone name ("Europe/Berlin", "UTC"); INVALID_ARGUMENT otherwise."""
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise InvalidArgument(field, f"{value[:64]!r} is not an IANA time zone name") from None
    return value
