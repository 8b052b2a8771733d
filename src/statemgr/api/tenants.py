"""TenantService: tenant administration with the admin key."""

from __future__ import annotations

import datetime as dt
import uuid

import grpc
import phonenumbers
from google.protobuf import duration_pb2

from statemgr.api import convert
from statemgr.domain import tenants as domain
from statemgr.domain import validation
from statemgr.domain.errors import InvalidArgument, NotFound
from statemgr.store import tenants as store
from statemgr.store.db import Database
from statemgr.v1 import tenant_pb2 as pb
from statemgr.v1 import tenant_service_pb2 as svc
from statemgr.v1 import tenant_service_pb2_grpc as svc_grpc

_RETENTION_FIELDS = ("closed_conversation_retention", "archive_retention", "event_retention")


class TenantServicer(svc_grpc.TenantServiceServicer):
    def __init__(self, db: Database) -> None:
        self._db = db

    async def CreateTenant(
        self, request: svc.CreateTenantRequest, context: grpc.aio.ServicerContext
    ) -> svc.CreateTenantResponse:
        name = validation.required_text(request.tenant.display_name, "tenant.display_name", validation.MAX_NAME)
        region = _region(request.tenant.default_region or "US")
        time_zone = domain.check_time_zone(request.tenant.time_zone or "UTC", "tenant.time_zone")
        tenant_id = uuid.uuid4()
        async with self._db.tenant(tenant_id) as conn:
            tenant = await store.insert_tenant(conn, tenant_id, name, region, time_zone)
        return svc.CreateTenantResponse(tenant=_tenant(tenant))

    async def GetTenant(
        self, request: svc.GetTenantRequest, context: grpc.aio.ServicerContext
    ) -> svc.GetTenantResponse:
        tenant_id = validation.parse_uuid(request.tenant_id, "tenant_id")
        async with self._db.tenant(tenant_id) as conn:
            tenant = await store.get_tenant(conn)
        if tenant is None:
            raise NotFound("tenant", str(tenant_id))
        return svc.GetTenantResponse(tenant=_tenant(tenant))

    async def UpdateTenant(
        self, request: svc.UpdateTenantRequest, context: grpc.aio.ServicerContext
    ) -> svc.UpdateTenantResponse:
        tenant_id = validation.parse_uuid(request.tenant.id, "tenant.id")
        paths = list(request.update_mask.paths)
        if not paths or any(path != "time_zone" for path in paths):
            raise InvalidArgument("update_mask", "must name time_zone, the one field UpdateTenant changes")
        time_zone = domain.check_time_zone(request.tenant.time_zone, "tenant.time_zone")
        async with self._db.tenant(tenant_id) as conn:
            tenant = await store.update_tenant(conn, time_zone)
        if tenant is None:
            raise NotFound("tenant", str(tenant_id))
        return svc.UpdateTenantResponse(tenant=_tenant(tenant))

    async def CreateApiKey(
        self, request: svc.CreateApiKeyRequest, context: grpc.aio.ServicerContext
    ) -> svc.CreateApiKeyResponse:
        tenant_id = validation.parse_uuid(request.tenant_id, "tenant_id")
        name = validation.bounded_text(request.display_name, "display_name", validation.MAX_NAME)
        secret = domain.new_secret(tenant_id)
        async with self._db.tenant(tenant_id) as conn:
            if await store.get_tenant(conn) is None:
                raise NotFound("tenant", str(tenant_id))
            key = await store.insert_api_key(
                conn, tenant_id, name, domain.hash_secret(secret), domain.shown_prefix(secret)
            )
        return svc.CreateApiKeyResponse(api_key=_api_key(key), secret=secret)

    async def RevokeApiKey(
        self, request: svc.RevokeApiKeyRequest, context: grpc.aio.ServicerContext
    ) -> svc.RevokeApiKeyResponse:
        tenant_id = validation.parse_uuid(request.tenant_id, "tenant_id")
        key_id = validation.parse_uuid(request.api_key_id, "api_key_id")
        async with self._db.tenant(tenant_id) as conn:
            key = await store.revoke_api_key(conn, key_id)
        if key is None:
            raise NotFound("api key", str(key_id))
        return svc.RevokeApiKeyResponse(api_key=_api_key(key))

    async def GetRetentionPolicy(
        self, request: svc.GetRetentionPolicyRequest, context: grpc.aio.ServicerContext
    ) -> svc.GetRetentionPolicyResponse:
        tenant_id = validation.parse_uuid(request.tenant_id, "tenant_id")
        async with self._db.tenant(tenant_id) as conn:
            policy = await store.get_retention(conn)
        if policy is None:
            raise NotFound("tenant", str(tenant_id))
        return svc.GetRetentionPolicyResponse(retention_policy=_policy(policy))

    async def UpdateRetentionPolicy(
        self, request: svc.UpdateRetentionPolicyRequest, context: grpc.aio.ServicerContext
    ) -> svc.UpdateRetentionPolicyResponse:
        tenant_id = validation.parse_uuid(request.retention_policy.tenant_id, "retention_policy.tenant_id")
        changes = _retention_changes(request)
        async with self._db.tenant(tenant_id) as conn:
            policy = await store.update_retention(conn, changes)
        if policy is None:
            raise NotFound("tenant", str(tenant_id))
        return svc.UpdateRetentionPolicyResponse(retention_policy=_policy(policy))


def _retention_changes(request: svc.UpdateRetentionPolicyRequest) -> dict[str, dt.timedelta]:
    paths = list(request.update_mask.paths)
    if not paths:
        raise InvalidArgument("update_mask", "names no field; use " + ", ".join(_RETENTION_FIELDS))
    changes: dict[str, dt.timedelta] = {}
    for path in paths:
        if path not in _RETENTION_FIELDS:
            raise InvalidArgument("update_mask", f"cannot update {path!r}; allowed: " + ", ".join(_RETENTION_FIELDS))
        value: duration_pb2.Duration = getattr(request.retention_policy, path)
        field = f"retention_policy.{path}"
        changes[path] = domain.check_retention(validation.duration(value.seconds, value.nanos, field), field)
    return changes


def _region(region: str) -> str:
    region = region.upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise InvalidArgument("tenant.default_region", f"{region[:8]!r} is not an ISO 3166 region with phone numbers")
    return region


def _tenant(tenant: domain.Tenant) -> pb.Tenant:
    return pb.Tenant(
        id=str(tenant.id),
        display_name=tenant.display_name,
        default_region=tenant.default_region,
        create_time=convert.timestamp(tenant.created_at),
        time_zone=tenant.time_zone,
    )


def _api_key(key: domain.ApiKey) -> pb.ApiKey:
    return pb.ApiKey(
        id=str(key.id),
        tenant_id=str(key.tenant_id),
        display_name=key.display_name,
        key_prefix=key.key_prefix,
        create_time=convert.timestamp(key.created_at),
        revoke_time=convert.timestamp(key.revoked_at),
    )


def _policy(policy: domain.RetentionPolicy) -> pb.RetentionPolicy:
    def duration(value: dt.timedelta) -> duration_pb2.Duration:
        out = duration_pb2.Duration()
        out.FromTimedelta(value)
        return out

    return pb.RetentionPolicy(
        tenant_id=str(policy.tenant_id),
        closed_conversation_retention=duration(policy.closed_conversation_retention),
        archive_retention=duration(policy.archive_retention),
        event_retention=duration(policy.event_retention),
        update_time=convert.timestamp(policy.updated_at),
    )
