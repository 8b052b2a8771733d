"""Invalidations Redis did not take (it was down, slow, or the breaker open), kept to be replayed when it is back.

Without them, a write made while this process could not reach Redis would leave the old value there (and in other
processes) until its TTL ran out, if Redis kept its data through the outage. Bounded: past `limit` keys the newest
are dropped and counted (statemgr_cache_invalidations_dropped_total); see docs/caching.md for what that means.
"""

from __future__ import annotations

from collections.abc import Iterable


class PendingInvalidations:
    """Key texts grouped by tenant prefix (one Lua call per tenant: its keys share a Cluster slot)."""

    __slots__ = ("_by_tenant", "_count", "_limit", "dropped")

    def __init__(self, limit: int) -> None:
        self._by_tenant: dict[str, set[str]] = {}
        self._count = 0
        self._limit = limit
        self.dropped = 0

    def add(self, tenant_prefix: str, texts: Iterable[str]) -> int:
        """Remembers `texts`; answers how many were dropped for lack of room."""
        bucket = self._by_tenant.setdefault(tenant_prefix, set())
        dropped = 0
        for text in texts:
            if text in bucket:
                continue
            if self._count >= self._limit:
                dropped += 1
                continue
            bucket.add(text)
            self._count += 1
        if not bucket:
            del self._by_tenant[tenant_prefix]
        self.dropped += dropped
        return dropped

    def snapshot(self) -> list[tuple[str, list[str]]]:
        """Everything pending, by tenant prefix; it stays pending until `done` is told it went through."""
        return [(tenant, sorted(texts)) for tenant, texts in self._by_tenant.items()]

    def done(self, tenant_prefix: str, texts: Iterable[str]) -> None:
        bucket = self._by_tenant.get(tenant_prefix)
        if bucket is None:
            return
        for text in texts:
            if text in bucket:
                bucket.discard(text)
                self._count -= 1
        if not bucket:
            del self._by_tenant[tenant_prefix]

    def __len__(self) -> int:
        return self._count
