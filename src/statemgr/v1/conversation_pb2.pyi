import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ConversationState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONVERSATION_STATE_UNSPECIFIED: _ClassVar[ConversationState]
    CONVERSATION_STATE_ACTIVE: _ClassVar[ConversationState]
    CONVERSATION_STATE_WAITING: _ClassVar[ConversationState]
    CONVERSATION_STATE_ERROR: _ClassVar[ConversationState]
    CONVERSATION_STATE_CLOSED: _ClassVar[ConversationState]
CONVERSATION_STATE_UNSPECIFIED: ConversationState
CONVERSATION_STATE_ACTIVE: ConversationState
CONVERSATION_STATE_WAITING: ConversationState
CONVERSATION_STATE_ERROR: ConversationState
CONVERSATION_STATE_CLOSED: ConversationState

class Conversation(_message.Message):
    __slots__ = ("id", "whatsapp_conversation_id", "genesys_conversation_id", "previous_genesys_conversation_ids", "customer_id", "agent_id", "state", "create_time", "close_time", "last_activity_time", "metadata", "etag", "reply_window_expire_time", "reply_window_open")
    ID_FIELD_NUMBER: _ClassVar[int]
    WHATSAPP_CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    GENESYS_CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_GENESYS_CONVERSATION_IDS_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    CLOSE_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_ACTIVITY_TIME_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    REPLY_WINDOW_EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    REPLY_WINDOW_OPEN_FIELD_NUMBER: _ClassVar[int]
    id: str
    whatsapp_conversation_id: str
    genesys_conversation_id: str
    previous_genesys_conversation_ids: _containers.RepeatedScalarFieldContainer[str]
    customer_id: str
    agent_id: str
    state: ConversationState
    create_time: _timestamp_pb2.Timestamp
    close_time: _timestamp_pb2.Timestamp
    last_activity_time: _timestamp_pb2.Timestamp
    metadata: _struct_pb2.Struct
    etag: str
    reply_window_expire_time: _timestamp_pb2.Timestamp
    reply_window_open: bool
    def __init__(self, id: _Optional[str] = ..., whatsapp_conversation_id: _Optional[str] = ..., genesys_conversation_id: _Optional[str] = ..., previous_genesys_conversation_ids: _Optional[_Iterable[str]] = ..., customer_id: _Optional[str] = ..., agent_id: _Optional[str] = ..., state: _Optional[_Union[ConversationState, str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., close_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_activity_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., etag: _Optional[str] = ..., reply_window_expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reply_window_open: _Optional[bool] = ...) -> None: ...

class StateChange(_message.Message):
    __slots__ = ("from_state", "to_state", "reason")
    FROM_STATE_FIELD_NUMBER: _ClassVar[int]
    TO_STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    from_state: ConversationState
    to_state: ConversationState
    reason: str
    def __init__(self, from_state: _Optional[_Union[ConversationState, str]] = ..., to_state: _Optional[_Union[ConversationState, str]] = ..., reason: _Optional[str] = ...) -> None: ...

class AgentAssignment(_message.Message):
    __slots__ = ("from_agent_id", "to_agent_id", "reason", "assign_time")
    FROM_AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    TO_AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ASSIGN_TIME_FIELD_NUMBER: _ClassVar[int]
    from_agent_id: str
    to_agent_id: str
    reason: str
    assign_time: _timestamp_pb2.Timestamp
    def __init__(self, from_agent_id: _Optional[str] = ..., to_agent_id: _Optional[str] = ..., reason: _Optional[str] = ..., assign_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GenesysMappingChange(_message.Message):
    __slots__ = ("from_genesys_conversation_id", "to_genesys_conversation_id")
    FROM_GENESYS_CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    TO_GENESYS_CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    from_genesys_conversation_id: str
    to_genesys_conversation_id: str
    def __init__(self, from_genesys_conversation_id: _Optional[str] = ..., to_genesys_conversation_id: _Optional[str] = ...) -> None: ...

class MessageStatusChange(_message.Message):
    __slots__ = ("message_id", "status", "changed")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    status: str
    changed: bool
    def __init__(self, message_id: _Optional[str] = ..., status: _Optional[str] = ..., changed: _Optional[bool] = ...) -> None: ...

class MessageRecorded(_message.Message):
    __slots__ = ("message_id", "direction")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    direction: str
    def __init__(self, message_id: _Optional[str] = ..., direction: _Optional[str] = ...) -> None: ...

class HistoryEntry(_message.Message):
    __slots__ = ("time", "created", "state_change", "assignment", "genesys_mapping_change", "message_recorded", "message_status_change")
    TIME_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    STATE_CHANGE_FIELD_NUMBER: _ClassVar[int]
    ASSIGNMENT_FIELD_NUMBER: _ClassVar[int]
    GENESYS_MAPPING_CHANGE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_RECORDED_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_STATUS_CHANGE_FIELD_NUMBER: _ClassVar[int]
    time: _timestamp_pb2.Timestamp
    created: Conversation
    state_change: StateChange
    assignment: AgentAssignment
    genesys_mapping_change: GenesysMappingChange
    message_recorded: MessageRecorded
    message_status_change: MessageStatusChange
    def __init__(self, time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created: _Optional[_Union[Conversation, _Mapping]] = ..., state_change: _Optional[_Union[StateChange, _Mapping]] = ..., assignment: _Optional[_Union[AgentAssignment, _Mapping]] = ..., genesys_mapping_change: _Optional[_Union[GenesysMappingChange, _Mapping]] = ..., message_recorded: _Optional[_Union[MessageRecorded, _Mapping]] = ..., message_status_change: _Optional[_Union[MessageStatusChange, _Mapping]] = ...) -> None: ...
