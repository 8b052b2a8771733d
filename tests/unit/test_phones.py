"""Phone number normalisation: many countries, many spellings, one E.164 form; refusals with their reason."""

from __future__ import annotations

import pytest

from statemgr.domain.phones import (
    InvalidPhoneNumber,
    from_whatsapp_id,
    is_valid_region,
    normalize,
    normalize_prefix,
)

# region, E.164, then spellings each read with (region): international, 00-prefixed, national, messy.
COUNTRIES: list[tuple[str, str, list[str]]] = [
    ("GB", "+447400123456", ["+44 7400 123456", "0044 7400 123456", "07400 123456", " tel:+44 (0)7400-123.456 "]),
    ("GB", "+442079460958", ["+44 20 7946 0958", "0044 20 7946 0958", "020 7946 0958", "(020) 7946-0958\n"]),
    ("US", "+12015550123", ["+1 201-555-0123", "001 201 555 0123", "(201) 555-0123", "tel:+1.201.555.0123"]),
    ("DE", "+4915123456789", ["+49 1512 3456789", "0049 1512 3456789", "01512 3456789", "+49 (0)1512 / 345 67 89"]),
    ("FR", "+33612345678", ["+33 6 12 34 56 78", "0033 6 12 34 56 78", "06 12 34 56 78", "\t06.12.34.56.78 "]),
    ("IN", "+918123456789", ["+91 81234 56789", "0091 81234 56789", "081234 56789", "+91-81234-56789"]),
    ("BR", "+5511961234567", ["+55 11 96123-4567", "0055 11 96123 4567", "(11) 96123-4567", "tel:+55(11)96123-4567"]),
    ("NG", "+2348021234567", ["+234 802 123 4567", "00234 802 123 4567", "0802 123 4567", " 0802-123-4567 "]),
    ("ZA", "+27711234567", ["+27 71 123 4567", "0027 71 123 4567", "071 123 4567", "(071) 123.4567"]),
    ("AU", "+61412345678", ["+61 412 345 678", "0061 412 345 678", "0412 345 678", "TEL:0412-345-678"]),
    ("JP", "+819012345678", ["+81 90-1234-5678", "0081 90 1234 5678", "090-1234-5678", "(090) 1234 5678"]),
    ("MX", "+522221234567", ["+52 222 123 4567", "0052 222 123 4567", "222 123 4567", "(222) 123-4567"]),
    ("ES", "+34612345678", ["+34 612 34 56 78", "0034 612 34 56 78", "612 34 56 78", "612-345-678"]),
    ("IT", "+393123456789", ["+39 312 345 6789", "0039 312 345 6789", "312 345 6789", "312.345.6789"]),
]


def _spellings() -> list[pytest.ParameterSet]:
    cases = []
    for region, expected, spellings in COUNTRIES:
        for kind, raw in zip(["international", "00", "national", "messy"], spellings, strict=True):
            cases.append(pytest.param(raw, region, expected, id=f"{region}-{expected}-{kind}"))
    return cases


def _region_free_spellings() -> list[pytest.ParameterSet]:
    cases = []
    for region, expected, spellings in COUNTRIES:
        for kind, raw in zip(["international", "00"], spellings[:2], strict=True):
            cases.append(pytest.param(raw, expected, id=f"{region}-{expected}-{kind}"))
    return cases


@pytest.mark.parametrize(("raw", "region", "expected"), _spellings())
def test_every_spelling_normalizes_to_e164(raw: str, region: str, expected: str) -> None:
    assert normalize(raw, region) == expected


@pytest.mark.parametrize(("raw", "expected"), _region_free_spellings())
def test_international_and_00_spellings_need_no_region(raw: str, expected: str) -> None:
    assert normalize(raw, None) == expected


@pytest.mark.parametrize("region", ["US", "JP", "AU", "BR", "NG", "GB"])
def test_00_prefix_works_whatever_the_regions_own_prefix(region: str) -> None:
    assert normalize("0044 20 7946 0958", region) == "+442079460958"


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        pytest.param("011 44 20 7946 0958", "US", "+442079460958", id="US-011"),
        pytest.param("010 81 90 1234 5678", "JP", "+819012345678", id="JP-010"),
        pytest.param("0011 61 412 345 678", "AU", "+61412345678", id="AU-0011"),
        pytest.param("009 234 802 123 4567", "NG", "+2348021234567", id="NG-009"),
        pytest.param("0021 44 20 7946 0958", "BR", "+442079460958", id="BR-carrier-21"),
    ],
)
def test_a_regions_own_international_prefix(raw: str, region: str, expected: str) -> None:
    assert normalize(raw, region) == expected


def test_an_international_number_ignores_the_default_region() -> None:
    assert normalize("+1 201 555 0123", "GB") == "+12015550123"


def test_an_empty_region_is_no_region() -> None:
    assert normalize("+44 20 7946 0958", "") == "+442079460958"
    with pytest.raises(InvalidPhoneNumber) as caught:
        normalize("020 7946 0958", "")
    assert caught.value.reason == "a national number needs a default region"


@pytest.mark.parametrize(
    ("raw", "region", "reason"),
    [
        pytest.param("+44 12", None, "too short", id="too-short"),
        pytest.param("12", "GB", "too short", id="too-short-national"),
        pytest.param("+44 1", None, "too short", id="too-short-nsn"),
        pytest.param("+44 7400 1234567", None, "too long", id="too-long-for-country"),
        pytest.param("+44 20 7946 0958 0958 0958 0958", None, "too long", id="too-long-for-any-country"),
        pytest.param("1" * 65, "GB", "too long", id="over-64-characters"),
        pytest.param(" " * 60 + "+44 20 7946 0958", None, "too long", id="over-64-with-padding"),
        pytest.param("+999 1234567", None, "unknown country code", id="unknown-country-code"),
        pytest.param("00999 1234567", None, "unknown country code", id="unknown-country-code-00"),
        pytest.param("00999 1234567", "GB", "unknown country code", id="unknown-country-code-00-region"),
        pytest.param("abcdef", "GB", "not a phone number", id="letters-only"),
        pytest.param("call me", None, "not a phone number", id="letters-only-no-region"),
        pytest.param("+", None, "not a phone number", id="plus-only"),
        pytest.param("", "GB", "empty", id="empty"),
        pytest.param("   ", "GB", "empty", id="blank"),
        pytest.param(" tel: ", None, "empty", id="scheme-only"),
        pytest.param("020 7946 0958", None, "a national number needs a default region", id="national-no-region"),
        pytest.param("+1 200 555 0123", None, "not a valid number for its region", id="invalid-area-code"),
        pytest.param("7946 0958", "GB", "missing its area code", id="local-only"),
        pytest.param("+44 20 7946 0958", "XX", "unknown default region", id="unknown-region"),
        pytest.param("+44 20 7946 0958", "gb", "unknown default region", id="lower-case-region"),
    ],
)
def test_invalid_numbers_say_why(raw: str, region: str | None, reason: str) -> None:
    with pytest.raises(InvalidPhoneNumber) as caught:
        normalize(raw, region)
    assert caught.value.reason == reason


def test_invalid_phone_number_is_a_value_error_that_does_not_repeat_the_number() -> None:
    with pytest.raises(ValueError, match="invalid phone number: too short") as caught:
        normalize("+44 12", None)
    assert "44" not in str(caught.value)


@pytest.mark.parametrize(
    ("wa_id", "expected"),
    [
        pytest.param("447400123456", "+447400123456", id="GB"),
        pytest.param("12015550123", "+12015550123", id="US"),
        pytest.param("919812345678", "+919812345678", id="IN"),
        pytest.param("2348021234567", "+2348021234567", id="NG"),
        pytest.param("5511961234567", "+5511961234567", id="BR"),
        pytest.param("525512345678", "+525512345678", id="MX"),
        pytest.param("5215512345678", "+525512345678", id="MX-legacy-1"),
        pytest.param("551187654321", "+5511987654321", id="BR-legacy-8-digit-mobile"),
        pytest.param(" 447400123456\n", "+447400123456", id="surrounding-whitespace"),
    ],
)
def test_from_whatsapp_id(wa_id: str, expected: str) -> None:
    assert from_whatsapp_id(wa_id) == expected


@pytest.mark.parametrize(
    ("wa_id", "reason"),
    [
        pytest.param("", "empty", id="empty"),
        pytest.param("+447400123456", "a WhatsApp id is digits only", id="plus"),
        pytest.param("44 7400 123456", "a WhatsApp id is digits only", id="spaces"),
        pytest.param("4412", "too short", id="too-short"),
        pytest.param("9991234567", "unknown country code", id="unknown-country-code"),
        pytest.param("551123456789" + "1", "not a valid number for its region", id="BR-landline-not-legacy"),
        pytest.param("1" * 65, "too long", id="over-64-characters"),
    ],
)
def test_from_whatsapp_id_refuses(wa_id: str, reason: str) -> None:
    with pytest.raises(InvalidPhoneNumber) as caught:
        from_whatsapp_id(wa_id)
    assert caught.value.reason == reason


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("+44", "+44", id="country-code"),
        pytest.param("+44 20", "+4420", id="spaced"),
        pytest.param("0044 20 79", "+442079", id="00"),
        pytest.param(" tel:+1 (201) 555-", "+1201555", id="messy"),
        pytest.param("+44.20.7946.0958", "+442079460958", id="whole-number"),
    ],
)
def test_normalize_prefix(raw: str, expected: str) -> None:
    assert normalize_prefix(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        pytest.param("", "empty", id="empty"),
        pytest.param(" - ", "empty", id="separators-only"),
        pytest.param("+4", "too short", id="one-digit"),
        pytest.param("+", "too short", id="plus-only"),
        pytest.param("00", "too short", id="00-only"),
        pytest.param("020 79", "a prefix starts with + or 00 and a country code", id="national"),
        pytest.param("44 20", "a prefix starts with + or 00 and a country code", id="no-plus"),
        pytest.param("+44 2x", "not a phone number", id="letter"),
        pytest.param("+1234567890123456", "too long", id="16-digits"),
        pytest.param("+" + "1" * 64, "too long", id="over-64-characters"),
    ],
)
def test_normalize_prefix_refuses(raw: str, reason: str) -> None:
    with pytest.raises(InvalidPhoneNumber) as caught:
        normalize_prefix(raw)
    assert caught.value.reason == reason


@pytest.mark.parametrize(("region", "valid"), [("GB", True), ("US", True), ("BR", True), ("XX", False), ("gb", False)])
def test_is_valid_region(region: str, valid: bool) -> None:
    assert is_valid_region(region) is valid
