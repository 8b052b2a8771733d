"""Assertions on gRPC errors: the code and, for INVALID_ARGUMENT, the field named in the BadRequest detail."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status


async def expect(call: Awaitable[Any], code: grpc.StatusCode, field: str | None = None) -> grpc.aio.AioRpcError:
    """Awaits `call`, which must fail with `code` (and name `field` in a BadRequest detail, when given)."""
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        assert exc.code() == code, f"expected {code.name}, got {exc.code().name}: {exc.details()}"
        if field is not None:
            assert field in violated_fields(exc), f"expected field {field!r} in {violated_fields(exc)}: {exc.details()}"
        return exc
    raise AssertionError(f"expected {code.name}, but the call succeeded")


def violated_fields(exc: grpc.aio.AioRpcError) -> list[str]:
    status = rpc_status.from_call(exc)
    if status is None:
        return []
    fields: list[str] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields.extend(v.field for v in bad.field_violations)
    return fields


def error_info(exc: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo | None:
    status = rpc_status.from_call(exc)
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    return None
