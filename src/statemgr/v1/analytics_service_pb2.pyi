import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TimeRange(_message.Message):
    __slots__ = ("start_time", "end_time")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetConversationMetricsRequest(_message.Message):
    __slots__ = ("range",)
    RANGE_FIELD_NUMBER: _ClassVar[int]
    range: TimeRange
    def __init__(self, range: _Optional[_Union[TimeRange, _Mapping]] = ...) -> None: ...

class GetConversationMetricsResponse(_message.Message):
    __slots__ = ("closed_conversations", "average_duration", "average_first_response", "average_response", "average_messages")
    CLOSED_CONVERSATIONS_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_DURATION_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_FIRST_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_MESSAGES_FIELD_NUMBER: _ClassVar[int]
    closed_conversations: int
    average_duration: _duration_pb2.Duration
    average_first_response: _duration_pb2.Duration
    average_response: _duration_pb2.Duration
    average_messages: float
    def __init__(self, closed_conversations: _Optional[int] = ..., average_duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., average_first_response: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., average_response: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., average_messages: _Optional[float] = ...) -> None: ...

class GetConversationVolumeRequest(_message.Message):
    __slots__ = ("range", "interval")
    RANGE_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    range: TimeRange
    interval: _duration_pb2.Duration
    def __init__(self, range: _Optional[_Union[TimeRange, _Mapping]] = ..., interval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class VolumeBucket(_message.Message):
    __slots__ = ("start_time", "opened", "closed")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    OPENED_FIELD_NUMBER: _ClassVar[int]
    CLOSED_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    opened: int
    closed: int
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., opened: _Optional[int] = ..., closed: _Optional[int] = ...) -> None: ...

class GetConversationVolumeResponse(_message.Message):
    __slots__ = ("buckets",)
    BUCKETS_FIELD_NUMBER: _ClassVar[int]
    buckets: _containers.RepeatedCompositeFieldContainer[VolumeBucket]
    def __init__(self, buckets: _Optional[_Iterable[_Union[VolumeBucket, _Mapping]]] = ...) -> None: ...

class GetAgentPerformanceRequest(_message.Message):
    __slots__ = ("range", "agent_id")
    RANGE_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    range: TimeRange
    agent_id: str
    def __init__(self, range: _Optional[_Union[TimeRange, _Mapping]] = ..., agent_id: _Optional[str] = ...) -> None: ...

class AgentPerformance(_message.Message):
    __slots__ = ("agent_id", "conversations", "messages_sent", "average_first_response")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATIONS_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_SENT_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_FIRST_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    conversations: int
    messages_sent: int
    average_first_response: _duration_pb2.Duration
    def __init__(self, agent_id: _Optional[str] = ..., conversations: _Optional[int] = ..., messages_sent: _Optional[int] = ..., average_first_response: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class GetAgentPerformanceResponse(_message.Message):
    __slots__ = ("agents",)
    AGENTS_FIELD_NUMBER: _ClassVar[int]
    agents: _containers.RepeatedCompositeFieldContainer[AgentPerformance]
    def __init__(self, agents: _Optional[_Iterable[_Union[AgentPerformance, _Mapping]]] = ...) -> None: ...

class GetCustomerEngagementRequest(_message.Message):
    __slots__ = ("range",)
    RANGE_FIELD_NUMBER: _ClassVar[int]
    range: TimeRange
    def __init__(self, range: _Optional[_Union[TimeRange, _Mapping]] = ...) -> None: ...

class GetCustomerEngagementResponse(_message.Message):
    __slots__ = ("active_customers", "new_customers", "inbound_messages", "read_rate")
    ACTIVE_CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    NEW_CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    INBOUND_MESSAGES_FIELD_NUMBER: _ClassVar[int]
    READ_RATE_FIELD_NUMBER: _ClassVar[int]
    active_customers: int
    new_customers: int
    inbound_messages: int
    read_rate: float
    def __init__(self, active_customers: _Optional[int] = ..., new_customers: _Optional[int] = ..., inbound_messages: _Optional[int] = ..., read_rate: _Optional[float] = ...) -> None: ...

class GetSystemHealthRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetSystemHealthResponse(_message.Message):
    __slots__ = ("database_ok", "cache_ok", "broker_ok", "event_backlog", "publish_lag")
    DATABASE_OK_FIELD_NUMBER: _ClassVar[int]
    CACHE_OK_FIELD_NUMBER: _ClassVar[int]
    BROKER_OK_FIELD_NUMBER: _ClassVar[int]
    EVENT_BACKLOG_FIELD_NUMBER: _ClassVar[int]
    PUBLISH_LAG_FIELD_NUMBER: _ClassVar[int]
    database_ok: bool
    cache_ok: bool
    broker_ok: bool
    event_backlog: int
    publish_lag: _duration_pb2.Duration
    def __init__(self, database_ok: _Optional[bool] = ..., cache_ok: _Optional[bool] = ..., broker_ok: _Optional[bool] = ..., event_backlog: _Optional[int] = ..., publish_lag: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...
