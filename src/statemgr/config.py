"""Settings from STATEMGR_* environment variables, each with a default that works on a developer machine."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    """Every setting of the service; the README's configuration table lists the same names."""

    database_url: str = "postgresql://localhost/statemgr"
    db_role: str = "statemgr_app"
    db_pool_min: int = 2
    db_pool_max: int = 10
    redis_url: str = "redis://localhost:6379/0"
    amqp_url: str = "amqp://guest:guest@localhost:5672/%2F"
    listen: str = "[::]:50051"
    metrics_listen: str = "127.0.0.1:9464"
    admin_key: str = ""
    log_level: str = "info"
    shutdown_grace_seconds: float = 10.0
    auth_cache_seconds: float = 5.0
    max_message_retries: int = 5
    parked_status_ttl_seconds: int = 7 * 24 * 3600
    streaming_enabled: bool = True
    event_retention_seconds: int = 7 * 24 * 3600


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
