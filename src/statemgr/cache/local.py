"""The in-process tier: a small LRU of recently read values that live a few seconds.

It answers the hottest lookups without an await. It is only as fresh as the invalidations this process hears, so
the cache consults it only while the pub/sub subscription is up, and flushes it whenever that changes.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Final, final


@final
class _Miss:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISS"


MISS: Final = _Miss()
"""What `LocalTier.get` answers for an absent or expired key (None is a cached "not found")."""


class LocalTier:
    """Key text -> value (bytes, or None for a cached "not found"), at most `max_entries`, each for `ttl` seconds."""

    __slots__ = ("_clock", "_data", "_max", "ttl")

    def __init__(self, max_entries: int, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._data: OrderedDict[str, tuple[bytes | None, float]] = OrderedDict()
        self._max = max_entries
        self._clock = clock
        self.ttl = ttl

    def get(self, key: str) -> bytes | _Miss | None:
        entry = self._data.get(key)
        if entry is None:
            return MISS
        if entry[1] <= self._clock():
            del self._data[key]
            return MISS
        self._data.move_to_end(key)
        return entry[0]

    def put(self, key: str, value: bytes | None, ttl: float | None = None) -> None:
        """Keeps `value` for `ttl` seconds (at most the tier's own TTL), evicting the least recently used."""
        if self._max <= 0:
            return
        lifetime = self.ttl if ttl is None or ttl > self.ttl else ttl
        data = self._data
        data[key] = (value, self._clock() + lifetime)
        data.move_to_end(key)
        if len(data) > self._max:
            data.popitem(last=False)

    def delete(self, keys: Iterable[str]) -> None:
        pop = self._data.pop
        for key in keys:
            pop(key, None)

    def flush(self) -> None:
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)
