"""Fuzzing the whole contract: every RPC of every service the server registers (found through its reflection, so a
new service is fuzzed without touching this file), called with generated, mutated and undecodable bodies
(tests/integration/fuzzing.py) through a generic channel call that sends bytes as they are, from a tenant's key,
no key, a bogus key and the admin key. The server (a real `statemgr serve` process) must never answer INTERNAL or
UNKNOWN, never let a unary call hang, never log an unexpected error, and still be serving at the end.

Bounded: STATEMGR_FUZZ_EXAMPLES calls (default 6,000, about half a minute here).
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import os
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor, descriptor_pool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statemgr.v1 import integration_service_pb2 as ins
from statemgr.v1 import integration_service_pb2_grpc, tenant_pb2, tenant_service_pb2, tenant_service_pb2_grpc
from tests.integration import fuzz_seeds, fuzzing
from tests.integration.processes import ServeProcess

EXAMPLES = int(os.environ.get("STATEMGR_FUZZ_EXAMPLES", "6000"))
ADMIN_KEY = "fuzz-admin-" + uuid.uuid4().hex
UNARY_TIMEOUT = 15.0
STREAM_TIMEOUT = 2.0
NEVER = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}


@dataclasses.dataclass(frozen=True)
class Method:
    path: str
    input: descriptor.Descriptor
    client_streaming: bool
    server_streaming: bool


@pytest.fixture
def serve(database_url: str) -> Iterator[ServeProcess]:
    env = {
        "STATEMGR_DATABASE_URL": database_url,
        "STATEMGR_ADMIN_KEY": ADMIN_KEY,
        "STATEMGR_REDIS_URL": "",
        "STATEMGR_AMQP_URL": "",
        "STATEMGR_EVENT_HEARTBEAT_SECONDS": "0.2",
        "STATEMGR_LOG_LEVEL": "warning",
    }
    process = ServeProcess(env)
    asyncio.run(process.start())
    yield process
    process.kill()


def test_no_request_makes_the_server_answer_internal_or_unknown(serve: ServeProcess) -> None:
    with grpc.insecure_channel(serve.target) as channel:
        tenant_key, known, valid = _seed(channel)
        methods = _methods(channel)
        assert {m.path.split("/")[1] for m in methods} >= {
            "statemgr.v1.TenantService",
            "statemgr.v1.ConversationService",
            "statemgr.v1.CustomerService",
            "statemgr.v1.MessageService",
            "statemgr.v1.IntegrationService",
            "statemgr.v1.EventService",
            "grpc.health.v1.Health",
        }
        callers = {
            "tenant": (("authorization", f"Bearer {tenant_key}"),),
            "none": (),
            "bogus": (("authorization", "Bearer sm_" + uuid.uuid4().hex),),
            "malformed": (("authorization", "Basic Zm9vOmJhcg=="),),
            "admin": (("authorization", f"Bearer {ADMIN_KEY}"),),
        }
        bodies = {m.path: fuzzing.request_bodies(m.input, known, valid.get(m.path, ())) for m in methods}
        seen: collections.Counter[tuple[str, str]] = collections.Counter()

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
        )
        @given(data=st.data())
        def call_anything(data: st.DataObject) -> None:
            method = data.draw(st.sampled_from(methods), label="method")
            body = data.draw(bodies[method.path], label="body")
            own = "admin" if method.path.startswith("/statemgr.v1.TenantService/") else "tenant"
            caller = data.draw(st.sampled_from([own, own, own, *sorted(callers)]), label="caller")
            code = _call(channel, method, body, callers[caller])
            seen[(method.path, code.name)] += 1
            assert code not in NEVER, f"{method.path} answered {code.name} to {body!r} from {caller}"
            if not method.server_streaming:
                assert code != grpc.StatusCode.DEADLINE_EXCEEDED, f"{method.path} hung on {body!r} from {caller}"

        call_anything()
        _report(seen)
    assert serve.proc is not None and serve.proc.poll() is None, "the server exited"
    assert asyncio.run(serve.health()) == health_pb2.HealthCheckResponse.SERVING
    logged = serve.stderr()
    assert "rpc_failed" not in logged and "Unexpected" not in logged, logged


def _seed(channel: grpc.Channel) -> tuple[str, list[str], dict[str, list[Any]]]:
    """A tenant with a key, a customer, a conversation and a message; their ids, to make requests that reach
    beyond "not found", and valid requests about them to vary."""
    admin = (("authorization", f"Bearer {ADMIN_KEY}"),)
    tenants = tenant_service_pb2_grpc.TenantServiceStub(channel)
    tenant = tenants.CreateTenant(
        tenant_service_pb2.CreateTenantRequest(tenant=tenant_pb2.Tenant(display_name="Fuzz", default_region="GB")),
        metadata=admin,
    ).tenant
    key = tenants.CreateApiKey(tenant_service_pb2.CreateApiKeyRequest(tenant_id=tenant.id), metadata=admin)
    inbound = integration_service_pb2_grpc.IntegrationServiceStub(channel).ResolveInbound(
        ins.ResolveInboundRequest(whatsapp_id="447400123456", whatsapp_message_id="wamid.FUZZ", content="hi"),
        metadata=(("authorization", f"Bearer {key.secret}"),),
    )
    conversation = inbound.conversation
    known = [
        tenant.id,
        key.api_key.id,
        inbound.context.customer.id,
        conversation.id,
        conversation.etag,
        inbound.message.id,
        "wamid.FUZZ",
        "447400123456",
    ]
    valid = fuzz_seeds.seeds(tenant.id, conversation.id, inbound.context.customer.id, inbound.message.id)
    return key.secret, [k for k in known if k], valid


def _methods(channel: grpc.Channel) -> list[Method]:
    """Every method of every service the server lists through reflection."""
    database = ProtoReflectionDescriptorDatabase(channel)
    pool = descriptor_pool.DescriptorPool(database)
    methods = []
    for name in database.get_services():
        for m in pool.FindServiceByName(name).methods:
            methods.append(Method(f"/{name}/{m.name}", m.input_type, m.client_streaming, m.server_streaming))
    return methods


def _call(channel: grpc.Channel, method: Method, body: bytes, metadata: tuple[tuple[str, str], ...]) -> grpc.StatusCode:
    """Sends `body` as it is (no serializer) and returns the status code."""
    try:
        if method.client_streaming:
            replies = channel.stream_stream(method.path)(iter([body]), timeout=STREAM_TIMEOUT, metadata=metadata)
            collections.deque(replies, maxlen=0)
        elif method.server_streaming:
            stream = channel.unary_stream(method.path)(body, timeout=STREAM_TIMEOUT, metadata=metadata)
            next(stream, None)  # the first item shows it served the call; a live stream never ends by itself
            stream.cancel()
        else:
            channel.unary_unary(method.path)(body, timeout=UNARY_TIMEOUT, metadata=metadata)
    except grpc.RpcError as exc:
        code: grpc.StatusCode = exc.code()
        return grpc.StatusCode.OK if code == grpc.StatusCode.CANCELLED and method.server_streaming else code
    return grpc.StatusCode.OK


def _report(seen: collections.Counter[tuple[str, str]]) -> None:
    by_method: dict[str, list[str]] = collections.defaultdict(list)
    for (path, code), count in sorted(seen.items()):
        by_method[path].append(f"{code}={count}")
    for path, codes in by_method.items():
        print(f"{path}: {' '.join(codes)}")


def test_health_answers_after_garbage(serve: ServeProcess) -> None:
    with grpc.insecure_channel(serve.target) as channel:
        check = channel.unary_unary("/grpc.health.v1.Health/Check")
        with pytest.raises(grpc.RpcError) as refused:
            check(b"\x0a\x02\xff\xfe", timeout=5)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
