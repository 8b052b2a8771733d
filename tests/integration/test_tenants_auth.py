"""TenantService and API-key authentication, through the generated stubs."""

from __future__ import annotations

import asyncio

import grpc
from google.protobuf import duration_pb2, field_mask_pb2

from statemgr.v1 import conversation_service_pb2 as cs
from statemgr.v1 import tenant_pb2
from statemgr.v1 import tenant_service_pb2 as ts
from tests.integration.conftest import Clients
from tests.integration.errors import expect


async def test_admin_creates_tenant_and_key(clients: Clients) -> None:
    admin = clients.admin()
    created = (
        await admin.tenants.CreateTenant(ts.CreateTenantRequest(tenant=tenant_pb2.Tenant(display_name="Acme")))
    ).tenant
    assert created.display_name == "Acme" and created.default_region == "US"
    fetched = (await admin.tenants.GetTenant(ts.GetTenantRequest(tenant_id=created.id))).tenant
    assert fetched == created
    key = await admin.tenants.CreateApiKey(ts.CreateApiKeyRequest(tenant_id=created.id, display_name="inbound"))
    assert key.secret.startswith("sm_") and key.api_key.key_prefix and key.secret.startswith(key.api_key.key_prefix)
    assert not key.api_key.HasField("revoke_time")


async def test_calls_without_a_valid_key_are_unauthenticated(clients: Clients) -> None:
    request = cs.GetConversationRequest(conversation_id="00000000-0000-0000-0000-000000000001")
    tenant = await clients.new_tenant()
    for client in (clients.with_key(""), clients.with_key("sm_nonsense"), clients.with_key("sm_" + "0" * 32 + "_x")):
        await expect(client.conversations.GetConversation(request), grpc.StatusCode.UNAUTHENTICATED)
    forged = tenant.api_key[:-4] + "AAAA"
    await expect(clients.with_key(forged).conversations.GetConversation(request), grpc.StatusCode.UNAUTHENTICATED)


async def test_revoked_key_is_refused_within_seconds(clients: Clients) -> None:
    admin = clients.admin()
    tenant_id = (
        await admin.tenants.CreateTenant(ts.CreateTenantRequest(tenant=tenant_pb2.Tenant(display_name="T")))
    ).tenant.id
    key = await admin.tenants.CreateApiKey(ts.CreateApiKeyRequest(tenant_id=tenant_id))
    client = clients.with_key(key.secret, tenant_id)
    request = cs.ListConversationsRequest()
    await client.conversations.ListConversations(request)
    revoked = await admin.tenants.RevokeApiKey(ts.RevokeApiKeyRequest(tenant_id=tenant_id, api_key_id=key.api_key.id))
    assert revoked.api_key.HasField("revoke_time")
    await asyncio.sleep(1.2)  # the test server caches key lookups for 1 s (STATEMGR_AUTH_CACHE_SECONDS)
    await expect(client.conversations.ListConversations(request), grpc.StatusCode.UNAUTHENTICATED)


async def test_tenant_key_on_tenant_service_is_permission_denied(clients: Clients) -> None:
    tenant = await clients.new_tenant()
    await expect(
        tenant.tenants.GetTenant(ts.GetTenantRequest(tenant_id=tenant.tenant_id)), grpc.StatusCode.PERMISSION_DENIED
    )
    await expect(
        tenant.tenants.CreateApiKey(ts.CreateApiKeyRequest(tenant_id=tenant.tenant_id)),
        grpc.StatusCode.PERMISSION_DENIED,
    )


async def test_admin_key_has_no_tenant(clients: Clients) -> None:
    await expect(
        clients.admin().conversations.ListConversations(cs.ListConversationsRequest()),
        grpc.StatusCode.PERMISSION_DENIED,
    )


async def test_unknown_tenant_is_not_found(clients: Clients) -> None:
    missing = "7d0c1a2e-0000-4000-8000-000000000000"
    admin = clients.admin()
    await expect(admin.tenants.GetTenant(ts.GetTenantRequest(tenant_id=missing)), grpc.StatusCode.NOT_FOUND)
    await expect(admin.tenants.CreateApiKey(ts.CreateApiKeyRequest(tenant_id=missing)), grpc.StatusCode.NOT_FOUND)


async def test_bad_tenant_input_names_the_field(clients: Clients) -> None:
    admin = clients.admin()
    bad = grpc.StatusCode.INVALID_ARGUMENT
    await expect(admin.tenants.CreateTenant(ts.CreateTenantRequest()), bad, "tenant.display_name")
    await expect(
        admin.tenants.CreateTenant(ts.CreateTenantRequest(tenant=tenant_pb2.Tenant(display_name="x" * 201))),
        bad,
        "tenant.display_name",
    )
    await expect(
        admin.tenants.CreateTenant(
            ts.CreateTenantRequest(tenant=tenant_pb2.Tenant(display_name="x", default_region="ZZ"))
        ),
        bad,
        "tenant.default_region",
    )
    await expect(admin.tenants.GetTenant(ts.GetTenantRequest(tenant_id="not-a-uuid")), bad, "tenant_id")


async def test_retention_policy_round_trip(clients: Clients) -> None:
    admin = clients.admin()
    tenant = await clients.new_tenant()
    policy = (
        await admin.tenants.GetRetentionPolicy(ts.GetRetentionPolicyRequest(tenant_id=tenant.tenant_id))
    ).retention_policy
    assert policy.closed_conversation_retention.seconds == 90 * 86400
    updated = (
        await admin.tenants.UpdateRetentionPolicy(
            ts.UpdateRetentionPolicyRequest(
                retention_policy=tenant_pb2.RetentionPolicy(
                    tenant_id=tenant.tenant_id, archive_retention=duration_pb2.Duration(seconds=30 * 86400)
                ),
                update_mask=field_mask_pb2.FieldMask(paths=["archive_retention"]),
            )
        )
    ).retention_policy
    assert updated.archive_retention.seconds == 30 * 86400
    assert updated.closed_conversation_retention == policy.closed_conversation_retention
    await expect(
        admin.tenants.UpdateRetentionPolicy(
            ts.UpdateRetentionPolicyRequest(
                retention_policy=tenant_pb2.RetentionPolicy(tenant_id=tenant.tenant_id),
                update_mask=field_mask_pb2.FieldMask(paths=["event_retention"]),
            )
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "retention_policy.event_retention",
    )


async def test_unknown_key_on_tenant_service_is_unauthenticated(clients: Clients) -> None:
    for client in (clients.with_key(""), clients.with_key("wrong-admin-key")):
        await expect(client.tenants.CreateTenant(ts.CreateTenantRequest()), grpc.StatusCode.UNAUTHENTICATED)


async def test_streams_authenticate_like_unary_calls(clients: Clients) -> None:
    from statemgr.v1 import event_service_pb2 as es

    tenant = await clients.new_tenant()
    stream = tenant.events.Subscribe(es.SubscribeRequest(from_now=True))
    first = await stream.read()
    assert first.HasField("heartbeat") or first.HasField("event")
    stream.cancel()
    anonymous = clients.with_key("").events.Subscribe(es.SubscribeRequest(from_now=True))
    await expect(anonymous.read(), grpc.StatusCode.UNAUTHENTICATED)
