"""The in-process tier: bounded LRU, per-entry expiry, cached "not found" distinct from a miss."""

from __future__ import annotations

from statemgr.cache.local import MISS, LocalTier


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_hit_miss_and_expiry() -> None:
    clock = Clock()
    tier = LocalTier(10, ttl=3.0, clock=clock)
    assert tier.get("a") is MISS
    tier.put("a", b"1")
    tier.put("absent", None)
    assert tier.get("a") == b"1" and tier.get("absent") is None
    clock.now += 2.9
    assert tier.get("a") == b"1"
    clock.now += 0.2
    assert tier.get("a") is MISS and tier.get("absent") is MISS and len(tier) == 0


def test_a_shorter_ttl_is_kept_and_a_longer_one_capped() -> None:
    clock = Clock()
    tier = LocalTier(10, ttl=3.0, clock=clock)
    tier.put("short", None, ttl=1.0)
    tier.put("long", b"x", ttl=60.0)
    clock.now += 1.5
    assert tier.get("short") is MISS and tier.get("long") == b"x"
    clock.now += 2.0
    assert tier.get("long") is MISS


def test_least_recently_used_is_evicted() -> None:
    tier = LocalTier(3, ttl=60.0)
    for key in "abc":
        tier.put(key, key.encode())
    assert tier.get("a") == b"a"  # a is now the most recent
    tier.put("d", b"d")
    assert tier.get("b") is MISS
    assert [tier.get(k) for k in "acd"] == [b"a", b"c", b"d"] and len(tier) == 3


def test_delete_flush_and_disabled() -> None:
    tier = LocalTier(10, ttl=60.0)
    for key in "abc":
        tier.put(key, b"v")
    tier.delete(["a", "zz"])
    assert tier.get("a") is MISS and tier.get("b") == b"v"
    tier.flush()
    assert len(tier) == 0
    off = LocalTier(0, ttl=60.0)
    off.put("a", b"v")
    assert off.get("a") is MISS
