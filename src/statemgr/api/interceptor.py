"""The server's interceptor: authentication and tenant, request id, one log line per RPC, error mapping.

These concerns share one wrapper rather than a chain of interceptors: each grpc.aio interceptor re-wraps the
handler on every call, and the hot lookups are meant to cost well under a millisecond.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import psycopg
import psycopg_pool
import structlog

from statemgr import metrics
from statemgr.api import decoding, principal, status
from statemgr.api.admission import Admission
from statemgr.api.auth import Authenticator
from statemgr.domain import errors

log = structlog.get_logger("statemgr.rpc")

_UNAUTHENTICATED_PREFIXES = ("/grpc.health.", "/grpc.reflection.")
_DEPENDENCY_ERRORS = (psycopg.OperationalError, psycopg_pool.PoolTimeout)
Handler = Any  # grpc.RpcMethodHandler: its fields are untyped in grpcio's stubs


class ServiceInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, authenticator: Authenticator, admission: Admission | None = None) -> None:
        self._auth = authenticator
        self._admission = admission or Admission()
        self._decoders: dict[str, decoding.Deserializer | None] = {}

    async def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler]], details: grpc.HandlerCallDetails
    ) -> Handler:
        handler = await continuation(details)
        if handler is None:
            return handler
        decode = self._decoder(details.method, handler.request_deserializer)
        if details.method.startswith(_UNAUTHENTICATED_PREFIXES):
            return decoding.checked(handler, decode)
        call = _Call(self._auth, self._admission, details)
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                call.wrap_unary(handler.unary_unary),
                request_deserializer=decode,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                call.wrap_stream(handler.unary_stream),
                request_deserializer=decode,
                response_serializer=handler.response_serializer,
            )
        return handler

    def _decoder(self, method: str, deserializer: decoding.Deserializer | None) -> decoding.Deserializer | None:
        """The method's never-raising deserializer, built once per method."""
        decode = self._decoders.get(method)
        if decode is None:
            decode = self._decoders[method] = decoding.safe(deserializer)
        return decode


class _Call:
    """One RPC's bookkeeping."""

    def __init__(self, auth: Authenticator, admission: Admission, details: grpc.HandlerCallDetails) -> None:
        self.auth = auth
        self.admission = admission
        self.method = details.method
        self.metadata = dict(details.invocation_metadata or ())
        self.request_id = str(self.metadata.get("x-request-id") or uuid.uuid4().hex)
        self.tenant = ""
        self.code = grpc.StatusCode.OK

    def wrap_unary(self, inner: Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]) -> Any:
        async def behavior(request: Any, context: grpc.aio.ServicerContext) -> Any:
            start = time.perf_counter()
            try:
                with self.admission:
                    await self._enter()
                    if type(request) is decoding.Undecodable:
                        raise request.error()
                    return await inner(request, context)
            except BaseException as exc:
                await self._fail(exc, context)
            finally:
                self._log(start)

        return behavior

    def wrap_stream(self, inner: Callable[[Any, grpc.aio.ServicerContext], AsyncIterator[Any]]) -> Any:
        async def behavior(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            start = time.perf_counter()
            try:
                with self.admission:
                    await self._enter()
                    if type(request) is decoding.Undecodable:
                        raise request.error()
                    async for item in inner(request, context):
                        yield item
            except BaseException as exc:
                await self._fail(exc, context)
            finally:
                self._log(start)

        return behavior

    async def _enter(self) -> None:
        who = await self.auth.authenticate(_text(self.metadata.get("authorization")), self.method)
        self.tenant = "" if who.tenant_id is None else str(who.tenant_id)
        principal.current.set(who)

    async def _fail(self, exc: BaseException, context: grpc.aio.ServicerContext) -> None:
        if isinstance(exc, _DEPENDENCY_ERRORS):
            exc = errors.Unavailable("the database is unavailable; retry later")
        if isinstance(exc, errors.StatemgrError):
            self.code = status.grpc_code(status.code_of(exc))
            await context.abort_with_status(status.to_grpc_status(exc, self.request_id))
        if isinstance(exc, grpc.aio.AbortError | GeneratorExit):
            self.code = context.code() or self.code
            raise exc
        if isinstance(exc, NotImplementedError):  # the generated base servicer's answer for an RPC not written
            self.code = grpc.StatusCode.UNIMPLEMENTED
            await context.abort(self.code, f"{self.method} is not implemented by this server")
        if isinstance(exc, Exception):
            self.code = grpc.StatusCode.INTERNAL
            log.exception("rpc_failed", method=self.method, request_id=self.request_id)
            await context.abort(grpc.StatusCode.INTERNAL, f"internal error (request id {self.request_id})")
        self.code = grpc.StatusCode.CANCELLED
        raise exc

    def _log(self, start: float) -> None:
        seconds = time.perf_counter() - start
        metrics.observe_rpc(self.method, self.code.name, seconds)
        log.info(
            "rpc",
            method=self.method,
            code=self.code.name,
            duration_ms=round(seconds * 1000, 3),
            request_id=self.request_id,
            tenant_id=self.tenant,
        )


def _text(value: str | bytes | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value
