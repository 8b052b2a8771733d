"""Valid requests for the fuzz test to vary field by field, built around the records _seed made."""

from __future__ import annotations

from typing import Any

from google.protobuf import duration_pb2, field_mask_pb2, struct_pb2, timestamp_pb2

from statemgr.v1 import conversation_pb2, customer_pb2, message_pb2, tenant_pb2
from statemgr.v1 import conversation_service_pb2 as cs
from statemgr.v1 import customer_service_pb2 as cus
from statemgr.v1 import event_service_pb2 as es
from statemgr.v1 import integration_service_pb2 as ins
from statemgr.v1 import message_service_pb2 as ms
from statemgr.v1 import tenant_service_pb2 as ts


def seeds(tenant_id: str, conversation_id: str, customer_id: str, message_id: str) -> dict[str, list[Any]]:
    """Method path -> valid requests."""
    when = timestamp_pb2.Timestamp(seconds=1_790_000_000)
    meta = struct_pb2.Struct()
    meta.update({"queue": "billing", "priority": 2})
    mask = field_mask_pb2.FieldMask
    status = ms.UpdateMessageStatusRequest(
        whatsapp_message_id="wamid.FUZZ", status=message_pb2.MESSAGE_STATUS_DELIVERED, status_time=when
    )
    conv, cust, msg, integ = (
        "/statemgr.v1.ConversationService/",
        "/statemgr.v1.CustomerService/",
        "/statemgr.v1.MessageService/",
        "/statemgr.v1.IntegrationService/",
    )
    return {
        integ + "ResolveInbound": [
            ins.ResolveInboundRequest(
                whatsapp_id="447400123456",
                customer_name="Zoë",
                whatsapp_message_id="wamid.FUZZ2",
                content="hello",
                media_urls=["https://example.com/a.jpg"],
                send_time=when,
            )
        ],
        integ + "ResolveOutbound": [
            ins.ResolveOutboundRequest(genesys_conversation_id="gen-fuzz", genesys_message_id="gm-1", content="hi")
        ],
        conv + "CreateConversation": [
            cs.CreateConversationRequest(
                conversation=conversation_pb2.Conversation(whatsapp_conversation_id="wa-fuzz", metadata=meta)
            )
        ],
        conv + "UpdateConversation": [
            cs.UpdateConversationRequest(
                conversation=conversation_pb2.Conversation(
                    id=conversation_id, genesys_conversation_id="gen-fuzz", metadata=meta
                ),
                update_mask=mask(paths=["genesys_conversation_id", "metadata"]),
            )
        ],
        conv + "TransitionConversation": [
            cs.TransitionConversationRequest(
                conversation_id=conversation_id, state=conversation_pb2.CONVERSATION_STATE_WAITING, reason="queued"
            )
        ],
        conv + "ListConversations": [
            cs.ListConversationsRequest(page_size=5, last_activity_start_time=when, last_activity_end_time=when)
        ],
        conv + "SearchConversations": [cs.SearchConversationsRequest(metadata=meta, customer_name="zoe")],
        conv + "GetConversationHistory": [cs.GetConversationHistoryRequest(conversation_id=conversation_id)],
        cust + "UpsertCustomer": [
            cus.UpsertCustomerRequest(
                customer=customer_pb2.Customer(whatsapp_id="447400123457", name="Ann", preferences=meta)
            )
        ],
        cust + "UpdateCustomer": [
            cus.UpdateCustomerRequest(
                customer=customer_pb2.Customer(id=customer_id, name="Ann", metadata=meta, phone_number="+447400123456"),
                update_mask=mask(paths=["name", "metadata", "phone_number"]),
            )
        ],
        cust + "GetCustomerContext": [cus.GetCustomerContextRequest(customer_id=customer_id)],
        msg + "RecordMessage": [
            ms.RecordMessageRequest(
                message=message_pb2.Message(
                    conversation_id=conversation_id,
                    whatsapp_message_id="wamid.FUZZ3",
                    direction=message_pb2.MESSAGE_DIRECTION_OUTBOUND,
                    content="x",
                    send_time=when,
                )
            )
        ],
        msg + "UpdateMessageStatus": [status],
        msg + "BatchUpdateMessageStatus": [ms.BatchUpdateMessageStatusRequest(requests=[status, status])],
        msg + "RetryMessage": [ms.RetryMessageRequest(message_id=message_id)],
        "/statemgr.v1.EventService/Subscribe": [
            es.SubscribeRequest(conversation_ids=[conversation_id], from_now=True),
            es.SubscribeRequest(),
        ],
        "/statemgr.v1.TenantService/UpdateRetentionPolicy": [
            ts.UpdateRetentionPolicyRequest(
                retention_policy=tenant_pb2.RetentionPolicy(
                    tenant_id=tenant_id, event_retention=duration_pb2.Duration(seconds=86_400)
                ),
                update_mask=mask(paths=["event_retention"]),
            )
        ],
        "/statemgr.v1.TenantService/CreateTenant": [
            ts.CreateTenantRequest(tenant=tenant_pb2.Tenant(display_name="T", default_region="US"))
        ],
    }
