"""Who is calling: set once per call by the interceptor, read by the servicers."""

from __future__ import annotations

import contextvars
import dataclasses
import uuid

from statemgr.domain.errors import PermissionDenied


@dataclasses.dataclass(frozen=True, slots=True)
class Principal:
    """A tenant's API key, or the admin key (tenant_id None)."""

    tenant_id: uuid.UUID | None
    key_id: uuid.UUID | None = None

    @property
    def is_admin(self) -> bool:
        return self.tenant_id is None


current: contextvars.ContextVar[Principal] = contextvars.ContextVar("statemgr_principal")


def tenant_id() -> uuid.UUID:
    """The calling tenant; the auth interceptor guarantees one on tenant-scoped services."""
    tenant = current.get().tenant_id
    if tenant is None:
        raise PermissionDenied("this method needs a tenant API key, not the admin key")
    return tenant
