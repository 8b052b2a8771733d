from __future__ import annotations

import grpc
from google.rpc import code_pb2, error_details_pb2

from statemgr.api import status
from statemgr.domain import errors


def test_invalid_argument_carries_the_field() -> None:
    proto = status.to_status_proto(errors.InvalidArgument("conversation.whatsapp_conversation_id", "is required"))
    assert proto.code == code_pb2.INVALID_ARGUMENT
    bad = error_details_pb2.BadRequest()
    assert proto.details[0].Unpack(bad)
    assert bad.field_violations[0].field == "conversation.whatsapp_conversation_id"


def test_already_exists_names_the_existing_resource() -> None:
    proto = status.to_status_proto(errors.AlreadyExists("conversation", "open already", existing_id="abc"), "req-1")
    info = error_details_pb2.ErrorInfo()
    assert proto.details[0].Unpack(info)
    assert info.metadata["existing_id"] == "abc" and info.metadata["request_id"] == "req-1"
    assert status.grpc_code(proto.code) == grpc.StatusCode.ALREADY_EXISTS


def test_every_domain_error_has_a_code_other_than_internal() -> None:
    for cls in errors.StatemgrError.__subclasses__():
        exc = cls.__new__(cls)
        assert status.code_of(exc) != code_pb2.INTERNAL, cls
