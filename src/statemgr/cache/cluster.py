"""Redis Cluster: a `redis+cluster://host:port[,host:port...]` URL makes the cache use redis-py's RedisCluster.

Every key of a tenant carries the tenant's hash tag (`sm:{<tenant id>}:...`, statemgr.cache.keys), so a tenant's
values, their generation keys and the Lua scripts that touch several of them all live in one slot: MGET and the
scripts never cross slots.

Invalidations use classic pub/sub on one channel, not sharded pub/sub. A cluster forwards a classic PUBLISH to
every node, so a process subscribed on any one node hears every invalidation, whichever node the writing tenant's
slot (and so the script's PUBLISH) lives on. Sharded pub/sub (SPUBLISH) stays within the slot's shard: to hear
every tenant a process would have to subscribe in every shard to a channel per slot, and follow slot migrations.
Classic pub/sub costs one cluster-bus message per node per invalidation, which invalidation rates (one per write)
afford. The subscriber's node is the one owning the channel's slot (redis-py's ClusterPubSub); while that node is
down the process counts pub/sub as down and bypasses its local tier, as with a single Redis down.

The client fails open like the single-node one: no retries of its own (a call waits at most the cache's timeout),
and `require_full_coverage` off, so the slots of the nodes still up keep serving while one is away.
"""

from __future__ import annotations

import urllib.parse
from typing import Any, Final

import redis.asyncio as aredis
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

SCHEME: Final = "redis+cluster"
_DEFAULT_PORT: Final = 6379


def is_cluster(url: str) -> bool:
    return url.startswith(SCHEME + "://")


def startup_nodes(url: str) -> list[tuple[str, int]]:
    """The `host:port` pairs of a cluster URL (any one reachable node is enough; list several)."""
    netloc = urllib.parse.urlsplit(url).netloc.rpartition("@")[2]
    nodes = []
    for address in filter(None, netloc.split(",")):
        host, _, port = address.rpartition(":") if address.count(":") == 1 else (address, "", "")
        nodes.append((host or address, int(port) if port else _DEFAULT_PORT))
    if not nodes:
        raise ValueError("a redis+cluster:// URL needs at least one host:port")
    return nodes


def client(url: str, max_connections: int, **options: Any) -> aredis.RedisCluster:
    """A RedisCluster client over the URL's nodes, with its user and password, without retries."""
    parts = urllib.parse.urlsplit(url)
    return aredis.RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in startup_nodes(url)],
        username=parts.username,
        password=parts.password,
        max_connections=max_connections,
        retry=Retry(NoBackoff(), 0),
        require_full_coverage=False,
        **options,
    )
