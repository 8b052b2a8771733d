from __future__ import annotations

import uuid

import pytest

from statemgr.domain import tenants
from statemgr.domain.errors import Unauthenticated


def test_secret_names_its_tenant_and_is_random() -> None:
    tenant_id = uuid.uuid4()
    first, second = tenants.new_secret(tenant_id), tenants.new_secret(tenant_id)
    assert first != second
    assert tenants.tenant_of_secret(first) == tenant_id
    assert tenants.hash_secret(first) != tenants.hash_secret(second)
    assert first.startswith(tenants.shown_prefix(first)) and len(tenants.shown_prefix(first)) < len(first) // 3


@pytest.mark.parametrize("secret", ["", "abc", "sm_nothex_x", "xx_" + "0" * 32 + "_y"])
def test_malformed_secrets_are_unauthenticated(secret: str) -> None:
    with pytest.raises(Unauthenticated):
        tenants.tenant_of_secret(secret)
