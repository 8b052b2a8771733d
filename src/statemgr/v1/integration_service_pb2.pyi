import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from statemgr.v1 import conversation_pb2 as _conversation_pb2
from statemgr.v1 import customer_pb2 as _customer_pb2
from statemgr.v1 import message_pb2 as _message_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ResolveInboundRequest(_message.Message):
    __slots__ = ("whatsapp_id", "phone_number", "customer_name", "whatsapp_conversation_id", "whatsapp_message_id", "content", "media_urls", "send_time")
    WHATSAPP_ID_FIELD_NUMBER: _ClassVar[int]
    PHONE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_NAME_FIELD_NUMBER: _ClassVar[int]
    WHATSAPP_CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    WHATSAPP_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    MEDIA_URLS_FIELD_NUMBER: _ClassVar[int]
    SEND_TIME_FIELD_NUMBER: _ClassVar[int]
    whatsapp_id: str
    phone_number: str
    customer_name: str
    whatsapp_conversation_id: str
    whatsapp_message_id: str
    content: str
    media_urls: _containers.RepeatedScalarFieldContainer[str]
    send_time: _timestamp_pb2.Timestamp
    def __init__(self, whatsapp_id: _Optional[str] = ..., phone_number: _Optional[str] = ..., customer_name: _Optional[str] = ..., whatsapp_conversation_id: _Optional[str] = ..., whatsapp_message_id: _Optional[str] = ..., content: _Optional[str] = ..., media_urls: _Optional[_Iterable[str]] = ..., send_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ResolveInboundResponse(_message.Message):
    __slots__ = ("context", "conversation", "message", "customer_created", "conversation_created", "message_created")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_CREATED_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_CREATED_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_CREATED_FIELD_NUMBER: _ClassVar[int]
    context: _customer_pb2.CustomerContext
    conversation: _conversation_pb2.Conversation
    message: _message_pb2.Message
    customer_created: bool
    conversation_created: bool
    message_created: bool
    def __init__(self, context: _Optional[_Union[_customer_pb2.CustomerContext, _Mapping]] = ..., conversation: _Optional[_Union[_conversation_pb2.Conversation, _Mapping]] = ..., message: _Optional[_Union[_message_pb2.Message, _Mapping]] = ..., customer_created: _Optional[bool] = ..., conversation_created: _Optional[bool] = ..., message_created: _Optional[bool] = ...) -> None: ...

class ResolveOutboundRequest(_message.Message):
    __slots__ = ("genesys_conversation_id", "genesys_message_id", "content", "media_urls", "send_time")
    GENESYS_CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    GENESYS_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    MEDIA_URLS_FIELD_NUMBER: _ClassVar[int]
    SEND_TIME_FIELD_NUMBER: _ClassVar[int]
    genesys_conversation_id: str
    genesys_message_id: str
    content: str
    media_urls: _containers.RepeatedScalarFieldContainer[str]
    send_time: _timestamp_pb2.Timestamp
    def __init__(self, genesys_conversation_id: _Optional[str] = ..., genesys_message_id: _Optional[str] = ..., content: _Optional[str] = ..., media_urls: _Optional[_Iterable[str]] = ..., send_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ResolveOutboundResponse(_message.Message):
    __slots__ = ("whatsapp_id", "phone_number", "reply_window_open", "conversation", "message", "message_created")
    WHATSAPP_ID_FIELD_NUMBER: _ClassVar[int]
    PHONE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    REPLY_WINDOW_OPEN_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_CREATED_FIELD_NUMBER: _ClassVar[int]
    whatsapp_id: str
    phone_number: str
    reply_window_open: bool
    conversation: _conversation_pb2.Conversation
    message: _message_pb2.Message
    message_created: bool
    def __init__(self, whatsapp_id: _Optional[str] = ..., phone_number: _Optional[str] = ..., reply_window_open: _Optional[bool] = ..., conversation: _Optional[_Union[_conversation_pb2.Conversation, _Mapping]] = ..., message: _Optional[_Union[_message_pb2.Message, _Mapping]] = ..., message_created: _Optional[bool] = ...) -> None: ...
