"""Opaque page tokens for keyset pagination.

A token carries the tenant and a fingerprint of the query it belongs to, so a token replayed against another query
or by another tenant is refused (INVALID_ARGUMENT) rather than silently returning a wrong page. It is not signed:
the data it could reach is limited to the caller's own tenant by row-level security anyway.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from statemgr.domain.errors import InvalidArgument

_VERSION = 1
T = TypeVar("T")


@dataclasses.dataclass(frozen=True, slots=True)
class PageRequest:
    """A checked page_size and the raw page_token of a request."""

    size: int
    token: str


@dataclasses.dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of results; an empty `next_page_token` is the only end signal."""

    items: list[T]
    next_page_token: str


def page_of(items: Sequence[T], size: int, tenant_id: str, query: str, position: Callable[[T], list[Any]]) -> Page[T]:
    """The first `size` items; a token for the next page when the query returned more (it asks for size + 1)."""
    shown = list(items[:size])
    token = encode(tenant_id, query, position(shown[-1])) if len(items) > size and shown else ""
    return Page(shown, token)


def fingerprint(method: str, **filters: Any) -> str:
    """A short stable digest of a query's method and filters."""
    canonical = json.dumps([method, filters], sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def encode(tenant_id: str, query: str, position: list[Any]) -> str:
    """The token of the page after `position` (the last row's sort key)."""
    payload = {"v": _VERSION, "t": tenant_id, "q": query, "p": position}
    raw = json.dumps(payload, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(token: str, tenant_id: str, query: str, field: str = "page_token") -> list[Any] | None:
    """The position of a token, None for an empty token; INVALID_ARGUMENT for anything else."""
    if not token:
        return None
    payload = _parse(token, field)
    if payload.get("t") != tenant_id:
        raise InvalidArgument(field, "belongs to another tenant")
    if payload.get("q") != query:
        raise InvalidArgument(field, "belongs to another query; keep the filters of the first page")
    position = payload.get("p")
    if not isinstance(position, list):
        raise InvalidArgument(field, "is malformed")
    return position


def _parse(token: str, field: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidArgument(field, "is malformed") from None
    if not isinstance(payload, dict) or payload.get("v") != _VERSION:
        raise InvalidArgument(field, "is malformed")
    return payload
