"""The domain's errors. One root; the api layer maps each to a gRPC status in one place."""

from __future__ import annotations


class StatemgrError(Exception):
    """Something the caller should hear about."""

    reason = "STATEMGR_ERROR"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or self.reason).strip())


class InvalidArgument(StatemgrError):
    """A request field is missing or wrong."""

    reason = "INVALID_ARGUMENT"

    def __init__(self, field: str, description: str) -> None:
        self.field = field
        self.description = description
        super().__init__(f"{field}: {description}" if field else description)


class NotFound(StatemgrError):
    """The resource does not exist (or belongs to another tenant: the answer is the same)."""

    reason = "NOT_FOUND"

    def __init__(self, resource: str, key: str) -> None:
        self.resource = resource
        self.key = key
        super().__init__(f"{resource} {key} not found")


class AlreadyExists(StatemgrError):
    """A resource with this key exists already."""

    reason = "ALREADY_EXISTS"

    def __init__(self, resource: str, message: str, existing_id: str = "") -> None:
        self.resource = resource
        self.existing_id = existing_id
        super().__init__(message)


class FailedPrecondition(StatemgrError):
    """The resource is not in a state that allows this."""

    reason = "FAILED_PRECONDITION"

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


class Aborted(StatemgrError):
    """A concurrent change won; read again and retry."""

    reason = "ABORTED"


class CommitOutcomeUnknown(Aborted):
    """The connection to the database was lost while the write was committing: it may or may not have taken effect.
    Read the state back, or repeat the call if it is idempotent (request_id, provider message ids, status reports),
    before doing it again."""

    reason = "COMMIT_OUTCOME_UNKNOWN"


class Unauthenticated(StatemgrError):
    """Missing, unknown or revoked API key."""

    reason = "UNAUTHENTICATED"


class PermissionDenied(StatemgrError):
    """The key is valid but may not call this."""

    reason = "PERMISSION_DENIED"


class Unavailable(StatemgrError):
    """A dependency is down or the feature is switched off; retry later."""

    reason = "UNAVAILABLE"


class OutOfRange(StatemgrError):
    """The position asked for is outside what is kept."""

    reason = "OUT_OF_RANGE"

    def __init__(self, message: str | None = None, details: dict[str, str] | None = None) -> None:
        self.details = details or {}  # what the client needs to recover (ErrorInfo metadata)
        super().__init__(message)


class ResourceExhausted(StatemgrError):
    """A limit was reached."""

    reason = "RESOURCE_EXHAUSTED"
