"""Warm-up: storing many entries in Redis at start, bounded in items and time, never holding up the server.

Entries are written only where nothing is cached and nothing was invalidated within the generation TTL: the rows
were read before they are written, and a write may have landed in between (see redis_tier's _SET_IF_UNTOUCHED).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterable, AsyncIterator

import structlog

from statemgr.cache.keys import Key
from statemgr.cache.options import CacheOptions
from statemgr.cache.redis_tier import RedisTier

log = structlog.get_logger("statemgr.cache")

WarmItem = tuple[Key, bytes, float]
"""(key, value, TTL in seconds)."""

_BATCH = 200  # entries per pipeline
_FLUSH_SECONDS = 0.05  # a slow source still gets its rows stored as they come


@dataclasses.dataclass
class WarmReport:
    """What one warm-up did. `stopped`: exhausted | max_items | deadline | redis_unavailable | source_failed."""

    stored: int = 0
    skipped: int = 0  # already cached, or invalidated lately (the row may be older than the write)
    stopped: str = "exhausted"
    seconds: float = 0.0


async def run(redis: RedisTier, options: CacheOptions, items: AsyncIterable[WarmItem]) -> WarmReport:
    """Stores `items`; at most `warm_max_items` of them, for at most `warm_max_seconds`. Never raises."""
    report = WarmReport()
    started = time.monotonic()
    iterator = aiter(items)
    try:
        async with asyncio.timeout(min(options.warm_max_seconds, options.max_load_seconds)):
            report.stopped = await _Batches(redis, options, report).consume(iterator)
    except TimeoutError:
        report.stopped = "deadline"
    except Exception:
        log.exception("cache_warm_source_failed")
        report.stopped = "source_failed"
    finally:
        await _close(iterator)
    report.seconds = time.monotonic() - started
    log.info("cache_warmed", stored=report.stored, skipped=report.skipped, stopped=report.stopped)
    return report


class _Batches:
    def __init__(self, redis: RedisTier, options: CacheOptions, report: WarmReport) -> None:
        self._redis = redis
        self._options = options
        self._report = report
        self._batch: list[tuple[str, bytes, int]] = []
        self._flush_at = time.monotonic() + _FLUSH_SECONDS

    @property
    def _done(self) -> int:
        return self._report.stored + self._report.skipped

    async def consume(self, iterator: AsyncIterator[WarmItem]) -> str:
        if not self._redis.enabled:
            return "redis_unavailable"
        limit = self._options.warm_max_items
        try:
            async for key, value, ttl in iterator:
                self._batch.append((key.text, value, self._options.jittered_ms(ttl)))
                if not self._due(limit):
                    continue
                if not await self._flush():
                    return "redis_unavailable"
                if self._done >= limit:
                    return "max_items"
        except Exception:
            await self._flush()  # what the source yielded before failing is still good
            raise
        return "exhausted" if await self._flush() else "redis_unavailable"

    def _due(self, limit: int) -> bool:
        size = len(self._batch)
        return size >= _BATCH or self._done + size >= limit or time.monotonic() >= self._flush_at

    async def _flush(self) -> bool:
        batch, self._batch = self._batch, []
        self._flush_at = time.monotonic() + _FLUSH_SECONDS
        if not batch:
            return True
        results = await self._redis.warm(batch)
        if results is None:
            return False
        stored = sum(results)
        self._report.stored += stored
        self._report.skipped += len(results) - stored
        return True


async def _close(iterator: AsyncIterator[WarmItem]) -> None:
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        with contextlib.suppress(Exception):
            await aclose()
