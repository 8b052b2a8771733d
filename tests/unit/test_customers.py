"""Customer domain rules: name folding for search, phone number refusals, update masks."""

from __future__ import annotations

import pytest

from statemgr.domain import customers
from statemgr.domain.errors import InvalidArgument


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("Zoë  ÅSTRÖM", "zoe astrom"),
        ("José Álvarez-Núñez", "jose alvarez nunez"),
        ("O'Brien, Seán", "obrien sean"),
        ("Straße", "strasse"),
        ("Søren Łukasz Þór", "soren lukasz thor"),
        ("Ｆｕｌｌｗｉｄｔｈ", "fullwidth"),
        ("  ", ""),
    ],
)
def test_search_key_folds_case_accents_and_spaces(name: str, key: str) -> None:
    assert customers.search_key(name) == key


def test_name_query_is_folded_and_needs_two_characters() -> None:
    assert customers.name_query("ÅST", "name_query") == "ast"
    with pytest.raises(InvalidArgument) as short:
        customers.name_query(" é ", "name_query")
    assert short.value.field == "name_query"


def test_name_range_covers_exactly_the_terms_starting_with_the_query() -> None:
    low, high = customers.name_range("ast")
    assert [t for t in ("as", "ast", "astrom", "astz", "asu", "zoe astrom") if low <= t < high] == [
        "ast",
        "astrom",
        "astz",
    ]
    long_low, _ = customers.name_range("x" * 100)
    assert long_low == "x" * customers.TERM_LENGTH


@pytest.mark.parametrize(
    ("raw", "needs"),
    [("+44 20 7946 0958", False), (" tel:+1 201", False), ("TEL: +44", False), ("020 7946 0958", True), ("0044", True)],
)
def test_only_numbers_not_in_plus_form_need_the_tenant_region(raw: str, needs: bool) -> None:
    assert customers.needs_region(raw) is needs


@pytest.mark.parametrize(
    ("raw", "region", "reason"),
    [
        ("+49 1", "DE", "too short"),
        ("+999 1234 5678", None, "unknown country code"),
        ("hello", "GB", "not a phone number"),
        ("020 7946 0958", None, "a national number needs a default region"),
        ("+1 200 555 0123", None, "not a valid number for its region"),
    ],
)
def test_an_invalid_phone_number_names_the_field_and_the_reason(raw: str, region: str | None, reason: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        customers.phone_number(raw, region, "customer.phone_number")
    assert (refused.value.field, refused.value.description) == ("customer.phone_number", reason)
    assert raw not in str(refused.value)


def test_phone_from_whatsapp_id_is_none_for_ids_that_are_no_number() -> None:
    assert customers.phone_from_whatsapp_id("447400123456") == "+447400123456"
    assert customers.phone_from_whatsapp_id("wa-test-1") is None


def test_update_paths_are_checked() -> None:
    assert customers.update_paths(["name", "metadata", "name"]) == ["name", "metadata"]
    for bad in ([], ["whatsapp_id"]):
        with pytest.raises(InvalidArgument) as refused:
            customers.update_paths(bad)
        assert refused.value.field == "update_mask"


def test_whatsapp_id_is_trimmed_and_bounded() -> None:
    assert customers.whatsapp_id(" 4474 ", "whatsapp_id") == "4474"
    for bad in ("", "   ", "1" * 65):
        with pytest.raises(InvalidArgument):
            customers.whatsapp_id(bad, "whatsapp_id")
