import datetime

from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from statemgr.v1 import message_pb2 as _message_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RecordMessageRequest(_message.Message):
    __slots__ = ("message",)
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message: _message_pb2.Message
    def __init__(self, message: _Optional[_Union[_message_pb2.Message, _Mapping]] = ...) -> None: ...

class RecordMessageResponse(_message.Message):
    __slots__ = ("message", "created")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    message: _message_pb2.Message
    created: bool
    def __init__(self, message: _Optional[_Union[_message_pb2.Message, _Mapping]] = ..., created: _Optional[bool] = ...) -> None: ...

class GetMessageRequest(_message.Message):
    __slots__ = ("message_id",)
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    def __init__(self, message_id: _Optional[str] = ...) -> None: ...

class GetMessageResponse(_message.Message):
    __slots__ = ("message",)
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message: _message_pb2.Message
    def __init__(self, message: _Optional[_Union[_message_pb2.Message, _Mapping]] = ...) -> None: ...

class LookupMessageRequest(_message.Message):
    __slots__ = ("whatsapp_message_id", "genesys_message_id")
    WHATSAPP_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    GENESYS_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    whatsapp_message_id: str
    genesys_message_id: str
    def __init__(self, whatsapp_message_id: _Optional[str] = ..., genesys_message_id: _Optional[str] = ...) -> None: ...

class LookupMessageResponse(_message.Message):
    __slots__ = ("message",)
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message: _message_pb2.Message
    def __init__(self, message: _Optional[_Union[_message_pb2.Message, _Mapping]] = ...) -> None: ...

class ListMessagesRequest(_message.Message):
    __slots__ = ("conversation_id", "page_size", "page_token")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    page_size: int
    page_token: str
    def __init__(self, conversation_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListMessagesResponse(_message.Message):
    __slots__ = ("messages", "next_page_token")
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[_message_pb2.Message]
    next_page_token: str
    def __init__(self, messages: _Optional[_Iterable[_Union[_message_pb2.Message, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateMessageRequest(_message.Message):
    __slots__ = ("message", "update_mask")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    message: _message_pb2.Message
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, message: _Optional[_Union[_message_pb2.Message, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateMessageResponse(_message.Message):
    __slots__ = ("message",)
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message: _message_pb2.Message
    def __init__(self, message: _Optional[_Union[_message_pb2.Message, _Mapping]] = ...) -> None: ...

class UpdateMessageStatusRequest(_message.Message):
    __slots__ = ("whatsapp_message_id", "genesys_message_id", "status", "status_time", "error_code", "error_message")
    WHATSAPP_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    GENESYS_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STATUS_TIME_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    whatsapp_message_id: str
    genesys_message_id: str
    status: _message_pb2.MessageStatus
    status_time: _timestamp_pb2.Timestamp
    error_code: str
    error_message: str
    def __init__(self, whatsapp_message_id: _Optional[str] = ..., genesys_message_id: _Optional[str] = ..., status: _Optional[_Union[_message_pb2.MessageStatus, str]] = ..., status_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., error_code: _Optional[str] = ..., error_message: _Optional[str] = ...) -> None: ...

class UpdateMessageStatusResponse(_message.Message):
    __slots__ = ("message", "changed", "parked")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    PARKED_FIELD_NUMBER: _ClassVar[int]
    message: _message_pb2.Message
    changed: bool
    parked: bool
    def __init__(self, message: _Optional[_Union[_message_pb2.Message, _Mapping]] = ..., changed: _Optional[bool] = ..., parked: _Optional[bool] = ...) -> None: ...

class BatchUpdateMessageStatusRequest(_message.Message):
    __slots__ = ("requests",)
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[UpdateMessageStatusRequest]
    def __init__(self, requests: _Optional[_Iterable[_Union[UpdateMessageStatusRequest, _Mapping]]] = ...) -> None: ...

class BatchUpdateMessageStatusResult(_message.Message):
    __slots__ = ("code", "changed", "parked", "message_id", "error_message", "field")
    CODE_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    PARKED_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    code: int
    changed: bool
    parked: bool
    message_id: str
    error_message: str
    field: str
    def __init__(self, code: _Optional[int] = ..., changed: _Optional[bool] = ..., parked: _Optional[bool] = ..., message_id: _Optional[str] = ..., error_message: _Optional[str] = ..., field: _Optional[str] = ...) -> None: ...

class BatchUpdateMessageStatusResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[BatchUpdateMessageStatusResult]
    def __init__(self, results: _Optional[_Iterable[_Union[BatchUpdateMessageStatusResult, _Mapping]]] = ...) -> None: ...

class RetryMessageRequest(_message.Message):
    __slots__ = ("message_id",)
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    def __init__(self, message_id: _Optional[str] = ...) -> None: ...

class RetryMessageResponse(_message.Message):
    __slots__ = ("message",)
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message: _message_pb2.Message
    def __init__(self, message: _Optional[_Union[_message_pb2.Message, _Mapping]] = ...) -> None: ...
