"""API-key authentication: the key decides the tenant. Results are cached briefly so revocation bites in seconds."""

from __future__ import annotations

import hmac
import time

from statemgr.api.principal import Principal
from statemgr.domain import tenants as domain
from statemgr.domain.errors import PermissionDenied, Unauthenticated
from statemgr.store import tenants as store
from statemgr.store.db import Database

ADMIN_SERVICE = "/statemgr.v1.TenantService/"
_MAX_CACHED = 10_000


class Authenticator:
    """Turns the `authorization` metadata value into a Principal, or raises."""

    def __init__(self, db: Database, admin_key: str, cache_seconds: float) -> None:
        self._db = db
        self._admin_key = admin_key.encode()
        self._ttl = cache_seconds
        self._cache: dict[bytes, tuple[float, Principal | None]] = {}

    async def authenticate(self, authorization: str | None, method: str) -> Principal:
        secret = _bearer(authorization)
        is_admin = bool(self._admin_key) and hmac.compare_digest(secret.encode(), self._admin_key)
        if method.startswith(ADMIN_SERVICE):
            return Principal(tenant_id=None) if is_admin else await self._refuse_tenant_key(secret)
        if is_admin:
            raise PermissionDenied("the admin key can only call TenantService; use a tenant API key")
        return await self._tenant(secret)

    async def _refuse_tenant_key(self, secret: str) -> Principal:
        await self._tenant(secret)  # an unknown key is UNAUTHENTICATED here too
        if not self._admin_key:
            raise PermissionDenied("TenantService is disabled: the server has no STATEMGR_ADMIN_KEY")
        raise PermissionDenied("TenantService needs the admin key, not a tenant key")

    async def _tenant(self, secret: str) -> Principal:
        key_hash = domain.hash_secret(secret)
        now = time.monotonic()
        cached = self._cache.get(key_hash)
        if cached is not None and cached[0] > now:
            principal = cached[1]
        else:
            principal = await self._load(secret, key_hash)
            self._remember(key_hash, now + self._ttl, principal)
        if principal is None:
            raise Unauthenticated("the API key is unknown or revoked")
        return principal

    async def _load(self, secret: str, key_hash: bytes) -> Principal | None:
        tenant_id = domain.tenant_of_secret(secret)
        async with self._db.tenant(tenant_id) as conn:
            key = await store.find_api_key(conn, key_hash)
        if key is None or key.revoked_at is not None:
            return None
        return Principal(tenant_id=key.tenant_id, key_id=key.id)

    def _remember(self, key_hash: bytes, expires: float, principal: Principal | None) -> None:
        if len(self._cache) >= _MAX_CACHED:
            self._cache.clear()
        self._cache[key_hash] = (expires, principal)


def _bearer(authorization: str | None) -> str:
    if not authorization:
        raise Unauthenticated("missing metadata 'authorization: Bearer <api key>'")
    scheme, _, secret = authorization.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthenticated("the authorization metadata must be 'Bearer <api key>'")
    return secret.strip()
