import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from statemgr.v1 import conversation_pb2 as _conversation_pb2
from statemgr.v1 import message_pb2 as _message_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVENT_TYPE_UNSPECIFIED: _ClassVar[EventType]
    EVENT_TYPE_CONVERSATION_CREATED: _ClassVar[EventType]
    EVENT_TYPE_CONVERSATION_STATE_CHANGED: _ClassVar[EventType]
    EVENT_TYPE_CONVERSATION_TRANSFERRED: _ClassVar[EventType]
    EVENT_TYPE_CONVERSATION_GENESYS_MAPPING_CHANGED: _ClassVar[EventType]
    EVENT_TYPE_CONVERSATION_CLOSED: _ClassVar[EventType]
    EVENT_TYPE_MESSAGE_RECORDED: _ClassVar[EventType]
    EVENT_TYPE_MESSAGE_STATUS_CHANGED: _ClassVar[EventType]
    EVENT_TYPE_MESSAGE_RETRIED: _ClassVar[EventType]
    EVENT_TYPE_CUSTOMER_CREATED: _ClassVar[EventType]
    EVENT_TYPE_CUSTOMER_UPDATED: _ClassVar[EventType]
    EVENT_TYPE_CUSTOMER_ERASED: _ClassVar[EventType]
EVENT_TYPE_UNSPECIFIED: EventType
EVENT_TYPE_CONVERSATION_CREATED: EventType
EVENT_TYPE_CONVERSATION_STATE_CHANGED: EventType
EVENT_TYPE_CONVERSATION_TRANSFERRED: EventType
EVENT_TYPE_CONVERSATION_GENESYS_MAPPING_CHANGED: EventType
EVENT_TYPE_CONVERSATION_CLOSED: EventType
EVENT_TYPE_MESSAGE_RECORDED: EventType
EVENT_TYPE_MESSAGE_STATUS_CHANGED: EventType
EVENT_TYPE_MESSAGE_RETRIED: EventType
EVENT_TYPE_CUSTOMER_CREATED: EventType
EVENT_TYPE_CUSTOMER_UPDATED: EventType
EVENT_TYPE_CUSTOMER_ERASED: EventType

class Event(_message.Message):
    __slots__ = ("id", "cursor", "type", "tenant_id", "conversation_id", "customer_id", "message_id", "conversation_state", "message_status", "agent_id", "genesys_conversation_id", "create_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_STATE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_STATUS_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    GENESYS_CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    cursor: str
    type: EventType
    tenant_id: str
    conversation_id: str
    customer_id: str
    message_id: str
    conversation_state: _conversation_pb2.ConversationState
    message_status: _message_pb2.MessageStatus
    agent_id: str
    genesys_conversation_id: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., cursor: _Optional[str] = ..., type: _Optional[_Union[EventType, str]] = ..., tenant_id: _Optional[str] = ..., conversation_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., message_id: _Optional[str] = ..., conversation_state: _Optional[_Union[_conversation_pb2.ConversationState, str]] = ..., message_status: _Optional[_Union[_message_pb2.MessageStatus, str]] = ..., agent_id: _Optional[str] = ..., genesys_conversation_id: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
