"""The one place where domain errors become gRPC statuses (google.rpc.Status with details, AIP-193)."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from statemgr.domain import errors

DOMAIN = "statemgr.v1"

_CODES: dict[type[errors.StatemgrError], int] = {
    errors.InvalidArgument: code_pb2.INVALID_ARGUMENT,
    errors.NotFound: code_pb2.NOT_FOUND,
    errors.AlreadyExists: code_pb2.ALREADY_EXISTS,
    errors.FailedPrecondition: code_pb2.FAILED_PRECONDITION,
    errors.Aborted: code_pb2.ABORTED,
    errors.Unauthenticated: code_pb2.UNAUTHENTICATED,
    errors.PermissionDenied: code_pb2.PERMISSION_DENIED,
    errors.Unavailable: code_pb2.UNAVAILABLE,
    errors.OutOfRange: code_pb2.OUT_OF_RANGE,
    errors.ResourceExhausted: code_pb2.RESOURCE_EXHAUSTED,
}


def code_of(exc: errors.StatemgrError) -> int:
    """The google.rpc.Code of a domain error."""
    for cls in type(exc).__mro__:
        if cls in _CODES:
            return _CODES[cls]
    return int(code_pb2.INTERNAL)


def to_status_proto(exc: errors.StatemgrError, request_id: str = "") -> status_pb2.Status:
    """A google.rpc.Status with a BadRequest (for a field) or an ErrorInfo detail."""
    detail = any_pb2.Any()
    if isinstance(exc, errors.InvalidArgument):
        violation = error_details_pb2.BadRequest.FieldViolation(field=exc.field, description=exc.description)
        detail.Pack(error_details_pb2.BadRequest(field_violations=[violation]))
    else:
        detail.Pack(error_details_pb2.ErrorInfo(reason=exc.reason, domain=DOMAIN, metadata=_metadata(exc, request_id)))
    return status_pb2.Status(code=code_of(exc), message=str(exc), details=[detail])


def to_grpc_status(exc: errors.StatemgrError, request_id: str = "") -> grpc.Status:
    return rpc_status.to_status(to_status_proto(exc, request_id))


def grpc_code(code: int) -> grpc.StatusCode:
    """The grpc.StatusCode of a google.rpc.Code number."""
    return _BY_NUMBER[code]


_BY_NUMBER = {status.value[0]: status for status in grpc.StatusCode}


def _metadata(exc: errors.StatemgrError, request_id: str) -> dict[str, str]:
    metadata = {"request_id": request_id} if request_id else {}
    if isinstance(exc, errors.AlreadyExists) and exc.existing_id:
        metadata["existing_id"] = exc.existing_id
    if isinstance(exc, errors.NotFound):
        metadata["resource"] = exc.resource
    if isinstance(exc, errors.OutOfRange):
        metadata.update(exc.details)
    return metadata
