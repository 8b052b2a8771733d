import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from statemgr.v1 import conversation_pb2 as _conversation_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BucketSize(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BUCKET_SIZE_UNSPECIFIED: _ClassVar[BucketSize]
    BUCKET_SIZE_HOUR: _ClassVar[BucketSize]
    BUCKET_SIZE_DAY: _ClassVar[BucketSize]
    BUCKET_SIZE_WEEK: _ClassVar[BucketSize]
BUCKET_SIZE_UNSPECIFIED: BucketSize
BUCKET_SIZE_HOUR: BucketSize
BUCKET_SIZE_DAY: BucketSize
BUCKET_SIZE_WEEK: BucketSize

class DurationStats(_message.Message):
    __slots__ = ("count", "average", "p50", "p90", "p99")
    COUNT_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_FIELD_NUMBER: _ClassVar[int]
    P50_FIELD_NUMBER: _ClassVar[int]
    P90_FIELD_NUMBER: _ClassVar[int]
    P99_FIELD_NUMBER: _ClassVar[int]
    count: int
    average: _duration_pb2.Duration
    p50: _duration_pb2.Duration
    p90: _duration_pb2.Duration
    p99: _duration_pb2.Duration
    def __init__(self, count: _Optional[int] = ..., average: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., p50: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., p90: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., p99: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class ErrorCodeCount(_message.Message):
    __slots__ = ("error_code", "count")
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    error_code: str
    count: int
    def __init__(self, error_code: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class DeliveryFunnel(_message.Message):
    __slots__ = ("sent", "delivered", "read", "failed", "top_error_codes", "time_to_delivered", "time_to_read")
    SENT_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_FIELD_NUMBER: _ClassVar[int]
    READ_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    TOP_ERROR_CODES_FIELD_NUMBER: _ClassVar[int]
    TIME_TO_DELIVERED_FIELD_NUMBER: _ClassVar[int]
    TIME_TO_READ_FIELD_NUMBER: _ClassVar[int]
    sent: int
    delivered: int
    read: int
    failed: int
    top_error_codes: _containers.RepeatedCompositeFieldContainer[ErrorCodeCount]
    time_to_delivered: DurationStats
    time_to_read: DurationStats
    def __init__(self, sent: _Optional[int] = ..., delivered: _Optional[int] = ..., read: _Optional[int] = ..., failed: _Optional[int] = ..., top_error_codes: _Optional[_Iterable[_Union[ErrorCodeCount, _Mapping]]] = ..., time_to_delivered: _Optional[_Union[DurationStats, _Mapping]] = ..., time_to_read: _Optional[_Union[DurationStats, _Mapping]] = ...) -> None: ...

class TimeRange(_message.Message):
    __slots__ = ("start_time", "end_time")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetConversationMetricsRequest(_message.Message):
    __slots__ = ("range", "time_zone")
    RANGE_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    range: TimeRange
    time_zone: str
    def __init__(self, range: _Optional[_Union[TimeRange, _Mapping]] = ..., time_zone: _Optional[str] = ...) -> None: ...

class GetConversationMetricsResponse(_message.Message):
    __slots__ = ("closed_conversations", "average_duration", "average_first_response", "average_response", "average_messages", "range", "opened_conversations", "open_conversations", "duration", "first_response", "response", "average_inbound_messages", "average_outbound_messages", "delivery", "replies_after_window", "time_zone")
    CLOSED_CONVERSATIONS_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_DURATION_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_FIRST_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_MESSAGES_FIELD_NUMBER: _ClassVar[int]
    RANGE_FIELD_NUMBER: _ClassVar[int]
    OPENED_CONVERSATIONS_FIELD_NUMBER: _ClassVar[int]
    OPEN_CONVERSATIONS_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    FIRST_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_INBOUND_MESSAGES_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_OUTBOUND_MESSAGES_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_FIELD_NUMBER: _ClassVar[int]
    REPLIES_AFTER_WINDOW_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    closed_conversations: int
    average_duration: _duration_pb2.Duration
    average_first_response: _duration_pb2.Duration
    average_response: _duration_pb2.Duration
    average_messages: float
    range: TimeRange
    opened_conversations: int
    open_conversations: int
    duration: DurationStats
    first_response: DurationStats
    response: DurationStats
    average_inbound_messages: float
    average_outbound_messages: float
    delivery: DeliveryFunnel
    replies_after_window: int
    time_zone: str
    def __init__(self, closed_conversations: _Optional[int] = ..., average_duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., average_first_response: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., average_response: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., average_messages: _Optional[float] = ..., range: _Optional[_Union[TimeRange, _Mapping]] = ..., opened_conversations: _Optional[int] = ..., open_conversations: _Optional[int] = ..., duration: _Optional[_Union[DurationStats, _Mapping]] = ..., first_response: _Optional[_Union[DurationStats, _Mapping]] = ..., response: _Optional[_Union[DurationStats, _Mapping]] = ..., average_inbound_messages: _Optional[float] = ..., average_outbound_messages: _Optional[float] = ..., delivery: _Optional[_Union[DeliveryFunnel, _Mapping]] = ..., replies_after_window: _Optional[int] = ..., time_zone: _Optional[str] = ...) -> None: ...

class GetConversationVolumeRequest(_message.Message):
    __slots__ = ("range", "interval", "bucket_size", "time_zone")
    RANGE_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    BUCKET_SIZE_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    range: TimeRange
    interval: _duration_pb2.Duration
    bucket_size: BucketSize
    time_zone: str
    def __init__(self, range: _Optional[_Union[TimeRange, _Mapping]] = ..., interval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., bucket_size: _Optional[_Union[BucketSize, str]] = ..., time_zone: _Optional[str] = ...) -> None: ...

class VolumeBucket(_message.Message):
    __slots__ = ("start_time", "opened", "closed", "end_time", "inbound_messages", "outbound_messages")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    OPENED_FIELD_NUMBER: _ClassVar[int]
    CLOSED_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    INBOUND_MESSAGES_FIELD_NUMBER: _ClassVar[int]
    OUTBOUND_MESSAGES_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    opened: int
    closed: int
    end_time: _timestamp_pb2.Timestamp
    inbound_messages: int
    outbound_messages: int
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., opened: _Optional[int] = ..., closed: _Optional[int] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., inbound_messages: _Optional[int] = ..., outbound_messages: _Optional[int] = ...) -> None: ...

class GetConversationVolumeResponse(_message.Message):
    __slots__ = ("buckets", "range", "time_zone")
    BUCKETS_FIELD_NUMBER: _ClassVar[int]
    RANGE_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    buckets: _containers.RepeatedCompositeFieldContainer[VolumeBucket]
    range: TimeRange
    time_zone: str
    def __init__(self, buckets: _Optional[_Iterable[_Union[VolumeBucket, _Mapping]]] = ..., range: _Optional[_Union[TimeRange, _Mapping]] = ..., time_zone: _Optional[str] = ...) -> None: ...

class GetAgentPerformanceRequest(_message.Message):
    __slots__ = ("range", "agent_id", "time_zone")
    RANGE_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    range: TimeRange
    agent_id: str
    time_zone: str
    def __init__(self, range: _Optional[_Union[TimeRange, _Mapping]] = ..., agent_id: _Optional[str] = ..., time_zone: _Optional[str] = ...) -> None: ...

class AgentPerformance(_message.Message):
    __slots__ = ("agent_id", "conversations", "messages_sent", "average_first_response", "transfers_in", "transfers_out", "assigned", "first_response", "response", "replies_after_window")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATIONS_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_SENT_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_FIRST_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    TRANSFERS_IN_FIELD_NUMBER: _ClassVar[int]
    TRANSFERS_OUT_FIELD_NUMBER: _ClassVar[int]
    ASSIGNED_FIELD_NUMBER: _ClassVar[int]
    FIRST_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    REPLIES_AFTER_WINDOW_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    conversations: int
    messages_sent: int
    average_first_response: _duration_pb2.Duration
    transfers_in: int
    transfers_out: int
    assigned: int
    first_response: DurationStats
    response: DurationStats
    replies_after_window: int
    def __init__(self, agent_id: _Optional[str] = ..., conversations: _Optional[int] = ..., messages_sent: _Optional[int] = ..., average_first_response: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., transfers_in: _Optional[int] = ..., transfers_out: _Optional[int] = ..., assigned: _Optional[int] = ..., first_response: _Optional[_Union[DurationStats, _Mapping]] = ..., response: _Optional[_Union[DurationStats, _Mapping]] = ..., replies_after_window: _Optional[int] = ...) -> None: ...

class GetAgentPerformanceResponse(_message.Message):
    __slots__ = ("agents", "range")
    AGENTS_FIELD_NUMBER: _ClassVar[int]
    RANGE_FIELD_NUMBER: _ClassVar[int]
    agents: _containers.RepeatedCompositeFieldContainer[AgentPerformance]
    range: TimeRange
    def __init__(self, agents: _Optional[_Iterable[_Union[AgentPerformance, _Mapping]]] = ..., range: _Optional[_Union[TimeRange, _Mapping]] = ...) -> None: ...

class GetCustomerEngagementRequest(_message.Message):
    __slots__ = ("range", "time_zone")
    RANGE_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    range: TimeRange
    time_zone: str
    def __init__(self, range: _Optional[_Union[TimeRange, _Mapping]] = ..., time_zone: _Optional[str] = ...) -> None: ...

class GetCustomerEngagementResponse(_message.Message):
    __slots__ = ("active_customers", "new_customers", "inbound_messages", "read_rate", "returning_customers", "range", "outbound_messages")
    ACTIVE_CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    NEW_CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    INBOUND_MESSAGES_FIELD_NUMBER: _ClassVar[int]
    READ_RATE_FIELD_NUMBER: _ClassVar[int]
    RETURNING_CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    RANGE_FIELD_NUMBER: _ClassVar[int]
    OUTBOUND_MESSAGES_FIELD_NUMBER: _ClassVar[int]
    active_customers: int
    new_customers: int
    inbound_messages: int
    read_rate: float
    returning_customers: int
    range: TimeRange
    outbound_messages: int
    def __init__(self, active_customers: _Optional[int] = ..., new_customers: _Optional[int] = ..., inbound_messages: _Optional[int] = ..., read_rate: _Optional[float] = ..., returning_customers: _Optional[int] = ..., range: _Optional[_Union[TimeRange, _Mapping]] = ..., outbound_messages: _Optional[int] = ...) -> None: ...

class GetSystemHealthRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetSystemHealthResponse(_message.Message):
    __slots__ = ("database_ok", "cache_ok", "broker_ok", "event_backlog", "publish_lag", "rollup_lag", "rollup_backlog", "leader")
    DATABASE_OK_FIELD_NUMBER: _ClassVar[int]
    CACHE_OK_FIELD_NUMBER: _ClassVar[int]
    BROKER_OK_FIELD_NUMBER: _ClassVar[int]
    EVENT_BACKLOG_FIELD_NUMBER: _ClassVar[int]
    PUBLISH_LAG_FIELD_NUMBER: _ClassVar[int]
    ROLLUP_LAG_FIELD_NUMBER: _ClassVar[int]
    ROLLUP_BACKLOG_FIELD_NUMBER: _ClassVar[int]
    LEADER_FIELD_NUMBER: _ClassVar[int]
    database_ok: bool
    cache_ok: bool
    broker_ok: bool
    event_backlog: int
    publish_lag: _duration_pb2.Duration
    rollup_lag: _duration_pb2.Duration
    rollup_backlog: int
    leader: bool
    def __init__(self, database_ok: _Optional[bool] = ..., cache_ok: _Optional[bool] = ..., broker_ok: _Optional[bool] = ..., event_backlog: _Optional[int] = ..., publish_lag: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., rollup_lag: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., rollup_backlog: _Optional[int] = ..., leader: _Optional[bool] = ...) -> None: ...

class StreamLiveViewRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class StateCount(_message.Message):
    __slots__ = ("state", "count")
    STATE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    state: _conversation_pb2.ConversationState
    count: int
    def __init__(self, state: _Optional[_Union[_conversation_pb2.ConversationState, str]] = ..., count: _Optional[int] = ...) -> None: ...

class StreamLiveViewResponse(_message.Message):
    __slots__ = ("time", "open_conversations", "waiting", "oldest_waiting_age", "messages_last_minute")
    TIME_FIELD_NUMBER: _ClassVar[int]
    OPEN_CONVERSATIONS_FIELD_NUMBER: _ClassVar[int]
    WAITING_FIELD_NUMBER: _ClassVar[int]
    OLDEST_WAITING_AGE_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_LAST_MINUTE_FIELD_NUMBER: _ClassVar[int]
    time: _timestamp_pb2.Timestamp
    open_conversations: _containers.RepeatedCompositeFieldContainer[StateCount]
    waiting: int
    oldest_waiting_age: _duration_pb2.Duration
    messages_last_minute: int
    def __init__(self, time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., open_conversations: _Optional[_Iterable[_Union[StateCount, _Mapping]]] = ..., waiting: _Optional[int] = ..., oldest_waiting_age: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., messages_last_minute: _Optional[int] = ...) -> None: ...
