"""Request bodies that do not decode answer INVALID_ARGUMENT naming the field, not UNKNOWN.

grpc.aio deserializes a request before any handler or interceptor code runs, and answers UNKNOWN when the
deserializer raises. So the interceptor gives each method a deserializer that never raises: on a DecodeError it
returns an `Undecodable` in place of the request, and the call's wrapper raises its InvalidArgument once the caller
is authenticated (an unauthenticated caller learns nothing about the body).

protobuf's own error names the message type, not the field ("String field had bad UTF-8"), so `locate` walks the
wire format alongside the descriptor to find the first field that is not valid: a string that is not UTF-8, or a
nested message that does not decode. The walk runs only for a body that failed to decode.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from google.protobuf import descriptor, message

from statemgr.api import status
from statemgr.domain.errors import InvalidArgument

Deserializer = Callable[[bytes], Any]

_VARINT, _FIXED64, _LENGTH_DELIMITED, _FIXED32 = 0, 1, 2, 5


class Undecodable:
    """Stands for a request body that is not a valid message of its type."""

    __slots__ = ("data", "message_type")

    def __init__(self, data: bytes, message_type: descriptor.Descriptor) -> None:
        self.data = data
        self.message_type = message_type

    def error(self) -> InvalidArgument:
        field = locate(self.data, self.message_type)
        if field:
            return InvalidArgument(field, "does not decode: not valid UTF-8 or not a valid message")
        return InvalidArgument("", f"the request body is not a valid {self.message_type.full_name} message")


def safe(deserializer: Deserializer | None) -> Deserializer | None:
    """`deserializer` (a generated Message.FromString), made to return an Undecodable instead of raising."""
    message_class = getattr(deserializer, "__self__", None)
    if deserializer is None or not isinstance(getattr(message_class, "DESCRIPTOR", None), descriptor.Descriptor):
        return deserializer
    parse = deserializer
    message_type: descriptor.Descriptor = message_class.DESCRIPTOR  # type: ignore[union-attr]

    def deserialize(data: bytes) -> Any:
        try:
            return parse(data)
        except message.DecodeError:
            return Undecodable(data, message_type)

    return deserialize


def checked(handler: Any, decode: Deserializer | None) -> Any:
    """`handler` (of a service that needs no key: health, reflection) with `decode` as its deserializer and
    INVALID_ARGUMENT for a request that does not decode."""
    serialize = handler.response_serializer
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(_unary(handler.unary_unary), decode, serialize)
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(_unary(handler.unary_stream), decode, serialize)
    if handler.stream_stream is not None:
        return grpc.stream_stream_rpc_method_handler(_streaming(handler.stream_stream), decode, serialize)
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(_streaming(handler.stream_unary), decode, serialize)
    return handler


async def _refuse(request: Any, context: grpc.aio.ServicerContext) -> Any:
    """The request, or an abort with INVALID_ARGUMENT if it did not decode."""
    if type(request) is Undecodable:
        await context.abort_with_status(status.to_grpc_status(request.error()))
    return request


async def _requests(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
    async for request in requests:
        yield await _refuse(request, context)


def _unary(inner: Any) -> Any:
    """A behaviour that takes one request; `inner` may answer, write with context.write, or yield."""
    if inspect.isasyncgenfunction(inner):

        async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            async for item in inner(await _refuse(request, context), context):
                yield item

        return stream

    async def behavior(request: Any, context: grpc.aio.ServicerContext) -> Any:
        return await inner(await _refuse(request, context), context)

    return behavior


def _streaming(inner: Any) -> Any:
    """A behaviour that takes a stream of requests."""
    if inspect.isasyncgenfunction(inner):

        async def stream(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            async for item in inner(_requests(requests, context), context):
                yield item

        return stream

    async def behavior(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> Any:
        return await inner(_requests(requests, context), context)

    return behavior


class _Broken(Exception):
    """The bytes end inside a field, or use a wire type protobuf 3 does not have."""


def locate(data: bytes, message_type: descriptor.Descriptor, prefix: str = "") -> str:
    """The path of the first field of `data` that does not decode ("" when the message's own framing is broken or
    nothing specific is found): "customer.name", "requests[2].whatsapp_message_id".

    Bounded like protobuf's own parser: nesting deeper than MAX_DEPTH names the field where it goes too deep, and
    the walk gives up (naming no field) after MAX_FIELDS fields; values are viewed, never copied.
    """
    try:
        return _walk(memoryview(data), message_type, prefix, 0, [MAX_FIELDS]) or prefix
    except _Broken:
        return prefix


MAX_DEPTH = 100
MAX_FIELDS = 100_000


def _walk(
    data: memoryview, message_type: descriptor.Descriptor, prefix: str, depth: int, budget: list[int]
) -> str | None:
    if depth > MAX_DEPTH:
        return prefix
    seen: dict[int, int] = {}
    pos = 0
    while pos < len(data):
        budget[0] -= 1
        if budget[0] < 0:
            raise _Broken
        tag, pos = _varint(data, pos)
        field = message_type.fields_by_number.get(tag >> 3)
        pos, chunk = _skip(data, pos, tag & 7)
        if field is None or chunk is None:
            continue
        index = seen[field.number] = seen.get(field.number, -1) + 1
        path = _path(prefix, field, index)
        if field.type == descriptor.FieldDescriptor.TYPE_STRING and not _utf8(chunk):
            return path
        if field.message_type is not None:
            try:
                found = _walk(chunk, field.message_type, path, depth + 1, budget)
            except _Broken:
                return path
            if found is not None:
                return found
    return None


def _skip(data: memoryview, pos: int, wire_type: int) -> tuple[int, memoryview | None]:
    """The position after the field's value, and the value itself for length-delimited fields."""
    if wire_type == _VARINT:
        return _varint(data, pos)[1], None
    if wire_type in (_FIXED64, _FIXED32):
        end = pos + (8 if wire_type == _FIXED64 else 4)
    elif wire_type == _LENGTH_DELIMITED:
        length, pos = _varint(data, pos)
        end = pos + length
    else:
        raise _Broken
    if end > len(data):
        raise _Broken
    return end, data[pos:end] if wire_type == _LENGTH_DELIMITED else None


def _varint(data: memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    while pos < len(data) and shift < 64:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
    raise _Broken


def _path(prefix: str, field: descriptor.FieldDescriptor, index: int) -> str:
    name = f"{prefix}.{field.name}" if prefix else field.name
    return f"{name}[{index}]" if field.is_repeated else name


def _utf8(chunk: memoryview) -> bool:
    try:
        str(chunk, "utf-8")
    except UnicodeDecodeError:
        return False
    return True
