import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from statemgr.v1 import conversation_pb2 as _conversation_pb2
from statemgr.v1 import message_pb2 as _message_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Customer(_message.Message):
    __slots__ = ("id", "whatsapp_id", "phone_number", "name", "profile_picture_url", "preferences", "metadata", "create_time", "update_time", "etag")
    ID_FIELD_NUMBER: _ClassVar[int]
    WHATSAPP_ID_FIELD_NUMBER: _ClassVar[int]
    PHONE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROFILE_PICTURE_URL_FIELD_NUMBER: _ClassVar[int]
    PREFERENCES_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    id: str
    whatsapp_id: str
    phone_number: str
    name: str
    profile_picture_url: str
    preferences: _struct_pb2.Struct
    metadata: _struct_pb2.Struct
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    etag: str
    def __init__(self, id: _Optional[str] = ..., whatsapp_id: _Optional[str] = ..., phone_number: _Optional[str] = ..., name: _Optional[str] = ..., profile_picture_url: _Optional[str] = ..., preferences: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...

class CustomerContext(_message.Message):
    __slots__ = ("customer", "open_conversation", "reply_window_open", "recent_conversations", "recent_messages")
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    OPEN_CONVERSATION_FIELD_NUMBER: _ClassVar[int]
    REPLY_WINDOW_OPEN_FIELD_NUMBER: _ClassVar[int]
    RECENT_CONVERSATIONS_FIELD_NUMBER: _ClassVar[int]
    RECENT_MESSAGES_FIELD_NUMBER: _ClassVar[int]
    customer: Customer
    open_conversation: _conversation_pb2.Conversation
    reply_window_open: bool
    recent_conversations: _containers.RepeatedCompositeFieldContainer[_conversation_pb2.Conversation]
    recent_messages: _containers.RepeatedCompositeFieldContainer[_message_pb2.Message]
    def __init__(self, customer: _Optional[_Union[Customer, _Mapping]] = ..., open_conversation: _Optional[_Union[_conversation_pb2.Conversation, _Mapping]] = ..., reply_window_open: _Optional[bool] = ..., recent_conversations: _Optional[_Iterable[_Union[_conversation_pb2.Conversation, _Mapping]]] = ..., recent_messages: _Optional[_Iterable[_Union[_message_pb2.Message, _Mapping]]] = ...) -> None: ...

class CustomerHistoryEntry(_message.Message):
    __slots__ = ("conversation", "assignments")
    CONVERSATION_FIELD_NUMBER: _ClassVar[int]
    ASSIGNMENTS_FIELD_NUMBER: _ClassVar[int]
    conversation: _conversation_pb2.Conversation
    assignments: _containers.RepeatedCompositeFieldContainer[_conversation_pb2.AgentAssignment]
    def __init__(self, conversation: _Optional[_Union[_conversation_pb2.Conversation, _Mapping]] = ..., assignments: _Optional[_Iterable[_Union[_conversation_pb2.AgentAssignment, _Mapping]]] = ...) -> None: ...
