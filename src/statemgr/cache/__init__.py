"""Read-through caching of serialized lookups: an in-process tier, Redis, then PostgreSQL (docs/caching.md).

Servicers use `Cache` (app.cache) with keys from `statemgr.cache.keys`.
"""

from __future__ import annotations

from statemgr.cache.cache import NEGATIVE, Cache, Loader
from statemgr.cache.keys import Key, Kind
from statemgr.cache.warm import WarmItem, WarmReport

__all__ = ["NEGATIVE", "Cache", "Key", "Kind", "Loader", "WarmItem", "WarmReport"]
