"""Cross-process invalidation: the message other server processes publish, and the subscriber that hears them.

The subscriber owns one pub/sub connection. It reports `live` only between the server's confirmation of the
subscription and the first sign of trouble: an error, or a PING not answered within `ping_seconds`. Each change
of `live` is reported (the cache flushes its in-process tier on both edges), so an invalidation missed while the
connection was down or hung cannot leave a stale local entry behind once it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

import redis.asyncio as aredis
import structlog

from statemgr import tasks
from statemgr.cache import keys, redis_tier

log = structlog.get_logger("statemgr.cache")

_MIN_BACKOFF = 0.05
_MAX_BACKOFF = 2.0


def encode(origin: str, texts: list[str]) -> bytes:
    """The published message: who invalidated (so it can ignore its own echo) and which keys."""
    return json.dumps({"o": origin, "k": texts}, separators=(",", ":")).encode()


def decode(data: bytes) -> tuple[str, list[str]] | None:
    try:
        message = json.loads(data)
        origin, texts = message["o"], message["k"]
    except (ValueError, TypeError, KeyError):
        return None
    if not isinstance(origin, str) or not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        return None
    return origin, texts


class Subscriber:
    """Listens on keys.CHANNEL; calls `on_keys(texts)` for other processes' invalidations, `on_live(bool)` on change."""

    def __init__(
        self,
        url: str,
        origin: str,
        ping_seconds: float,
        on_keys: Callable[[list[str]], None],
        on_live: Callable[[bool], None],
    ) -> None:
        self.live = False
        self.subscriptions = 0  # confirmed subscriptions: the first, then one per reconnection
        self._was_up = False
        self._url = url
        self._origin = origin
        self._ping = ping_seconds
        self._on_keys = on_keys
        self._on_live = on_live
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="statemgr-cache-subscriber")

    async def stop(self) -> None:
        await tasks.cancel_and_wait(self._task)
        self._task = None
        self._set_live(False)

    async def _run(self) -> None:
        client = redis_tier.client(
            self._url, 1, socket_connect_timeout=self._ping, client_name=f"statemgr-cache-sub-{self._origin}"
        )
        backoff = _MIN_BACKOFF
        try:
            while True:
                self._was_up = False
                try:
                    await self._session(client)
                except redis_tier.FAILURES as exc:
                    if self.live:
                        log.warning("cache_pubsub_lost", error=type(exc).__name__)
                except Exception:  # a bug must not end the listener: the local tier would stay off for good
                    log.exception("cache_pubsub_failed")
                self._set_live(False)
                backoff = _MIN_BACKOFF if self._was_up else min(backoff * 2, _MAX_BACKOFF)
                await asyncio.sleep(backoff)
        finally:
            await redis_tier.close_client(client)

    async def _session(self, client: redis_tier.Client) -> None:
        pubsub = client.pubsub()
        try:
            async with asyncio.timeout(self._ping):
                await pubsub.subscribe(keys.CHANNEL)
            await self._listen(pubsub)
        finally:
            with contextlib.suppress(*redis_tier.FAILURES):
                async with asyncio.timeout(self._ping):
                    await pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]  # typed from redis 8.2

    async def _listen(self, pubsub: aredis.client.PubSub) -> None:
        """Reads messages; pings when idle; a subscription or ping unanswered for `ping_seconds` is a failure."""
        now = time.monotonic()
        awaiting_since: float | None = now  # the subscription's confirmation is the first awaited reply
        next_ping = now + self._ping
        while True:
            message = await pubsub.get_message(timeout=self._ping / 4)
            now = time.monotonic()
            if message is not None and self._handle(message):
                awaiting_since = None
            if awaiting_since is not None and now - awaiting_since > self._ping:
                raise TimeoutError("redis pub/sub did not answer")
            if awaiting_since is None and now >= next_ping:
                async with asyncio.timeout(self._ping):
                    await pubsub.ping()
                awaiting_since = now
                next_ping = now + self._ping

    def _handle(self, message: dict[str, Any]) -> bool:
        """Acts on one pub/sub message; True if it is the reply that was awaited."""
        kind = message["type"]
        if kind == "message":
            decoded = decode(message["data"])
            if decoded is None:
                log.warning("cache_invalidation_malformed")
            elif decoded[0] != self._origin:
                self._on_keys(decoded[1])
            return False
        if kind == "subscribe":
            self._was_up = True
            self.subscriptions += 1
            self._set_live(True)
        return kind in ("subscribe", "pong")

    def _set_live(self, live: bool) -> None:
        if live != self.live:
            self.live = live
            self._on_live(live)
