from __future__ import annotations

import pytest

from statemgr.domain import paging
from statemgr.domain.errors import InvalidArgument

TENANT = "6f1c1c3e-0000-4000-8000-000000000001"
OTHER = "6f1c1c3e-0000-4000-8000-000000000002"


def test_round_trip() -> None:
    query = paging.fingerprint("list", state="active")
    token = paging.encode(TENANT, query, ["2026-01-01T00:00:00+00:00", "abc"])
    assert paging.decode(token, TENANT, query) == ["2026-01-01T00:00:00+00:00", "abc"]


def test_empty_token_is_first_page() -> None:
    assert paging.decode("", TENANT, "q") is None


def test_fingerprint_depends_on_filters() -> None:
    assert paging.fingerprint("list", state="active") != paging.fingerprint("list", state="waiting")
    assert paging.fingerprint("list", a=1, b=2) == paging.fingerprint("list", b=2, a=1)


@pytest.mark.parametrize(
    ("token", "tenant", "query", "message"),
    [
        (paging.encode(TENANT, "q1", [1]), OTHER, "q1", "another tenant"),
        (paging.encode(TENANT, "q1", [1]), TENANT, "q2", "another query"),
        ("not base64 at all!!", TENANT, "q1", "malformed"),
        ("eyJ2IjoyfQ", TENANT, "q1", "malformed"),  # {"v":2}
    ],
)
def test_foreign_or_broken_tokens_are_refused(token: str, tenant: str, query: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        paging.decode(token, tenant, query)
    assert caught.value.field == "page_token"
    assert message in caught.value.description


def test_page_of_gives_a_token_only_when_the_query_returned_more() -> None:
    full = paging.page_of([1, 2, 3], 2, TENANT, "q", lambda n: [n])
    assert full.items == [1, 2] and paging.decode(full.next_page_token, TENANT, "q") == [2]
    last = paging.page_of([1, 2], 2, TENANT, "q", lambda n: [n])
    assert last.items == [1, 2] and last.next_page_token == ""
    assert paging.page_of([], 2, TENANT, "q", lambda n: [n]) == paging.Page([], "")
