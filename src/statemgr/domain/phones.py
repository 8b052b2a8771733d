"""Phone numbers: parse what people and platforms send, keep E.164.

Every phone number statemgr stores or looks up goes through :func:`normalize` (or :func:`from_whatsapp_id`
for WhatsApp's plus-less ids), so one customer has one spelling: ``+442079460958``. Searches by the start of
a number use :func:`normalize_prefix`. Parsing and validation are the ``phonenumbers`` library's (Google's
libphonenumber metadata); this module adds the clean-up around it and short reasons for refusals.

Pure: no I/O. Error messages never repeat the number, so they are safe to log.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import phonenumbers
from phonenumbers import NumberParseException, PhoneMetadata, PhoneNumberFormat, ValidationResult

__all__ = [
    "MAX_INPUT_LENGTH",
    "InvalidPhoneNumber",
    "from_whatsapp_id",
    "is_valid_region",
    "normalize",
    "normalize_prefix",
]

MAX_INPUT_LENGTH = 64
"""Longer input is refused before parsing: no real number, however formatted, needs more."""

_MAX_E164_DIGITS = 15
_MIN_PREFIX_DIGITS = 2
_TEL_SCHEME = re.compile(r"^\s*tel:", re.IGNORECASE)
# Separators people type between digits; "/" is common in German and Austrian numbers.
_SEPARATORS = re.compile(r"[\s\-./()\[\]]")
_DIGITS_ONLY = re.compile(r"[0-9]+")
# WhatsApp ids that predate a national numbering change (see _legacy_whatsapp_forms).
_MX_LEGACY_MOBILE = re.compile(r"521([0-9]{10})")
_BR_LEGACY_MOBILE = re.compile(r"55([1-9][0-9])([6-9][0-9]{7})")

_PARSE_REASONS: dict[int, str] = {
    NumberParseException.INVALID_COUNTRY_CODE: "unknown country code",
    NumberParseException.NOT_A_NUMBER: "not a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
    NumberParseException.TOO_SHORT_NSN: "too short",
    NumberParseException.TOO_LONG: "too long",
}
_POSSIBILITY_REASONS: dict[int, str] = {
    ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "missing its area code",
    ValidationResult.INVALID_COUNTRY_CODE: "unknown country code",
    ValidationResult.TOO_SHORT: "too short",
    ValidationResult.INVALID_LENGTH: "not a possible number",
    ValidationResult.TOO_LONG: "too long",
}


class InvalidPhoneNumber(ValueError):
    """The text is not a phone number statemgr can store; ``reason`` says why in a few words."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"invalid phone number: {reason}")
        self.reason = reason


def normalize(raw: str, default_region: str | None) -> str:
    """Return ``raw`` as a valid E.164 number (``"+442079460958"``) or raise :class:`InvalidPhoneNumber`.

    ``raw`` may be international (``"+44 20 7946 0958"``), use the ``00`` international prefix (accepted
    whatever the region), use the region's own international prefix (``"011 44 ..."`` in the US), or be national
    (``"020 7946 0958"``) when ``default_region`` (a CLDR region such as ``"GB"``) says where it belongs.
    Spaces, dashes, dots, slashes, parentheses and a ``tel:`` scheme are ignored. An empty region is no region.
    """
    region = default_region or None
    if region is not None and not is_valid_region(region):
        raise InvalidPhoneNumber("unknown default region")
    text = _compact(raw)
    if not any(char.isdigit() for char in text):
        raise InvalidPhoneNumber("not a phone number")
    errors: list[InvalidPhoneNumber] = []
    for candidate, candidate_region in _readings(text, region):
        try:
            return _parse_valid(candidate, candidate_region)
        except InvalidPhoneNumber as exc:
            errors.append(exc)
    raise errors[0]  # the most likely reading's reason


def from_whatsapp_id(wa_id: str) -> str:
    """Return the E.164 number of a WhatsApp id (country code and number, digits only, no ``+``).

    Some ids predate a national numbering change and are not valid numbers as they stand: Mexican mobiles with
    the old ``1`` after ``52``, Brazilian mobiles without the ninth digit. When the id as given is not valid,
    the current form of such an id is tried before giving up.
    """
    wa_id = wa_id.strip()
    if not wa_id:
        raise InvalidPhoneNumber("empty")
    if len(wa_id) > MAX_INPUT_LENGTH:
        raise InvalidPhoneNumber("too long")
    if not _DIGITS_ONLY.fullmatch(wa_id):
        raise InvalidPhoneNumber("a WhatsApp id is digits only")
    try:
        return normalize("+" + wa_id, None)
    except InvalidPhoneNumber:
        for legacy in _legacy_whatsapp_forms(wa_id):
            try:
                return normalize("+" + legacy, None)
            except InvalidPhoneNumber:
                continue
        raise


def normalize_prefix(raw: str) -> str:
    """Return the start of an international number for prefix searches: ``"+44 20"`` -> ``"+4420"``.

    Formatting is ignored and ``00`` stands for ``+``; what remains must be ``+`` and 2 to 15 digits.
    """
    text = _compact(raw)
    if text.startswith("00"):
        text = "+" + text[2:]
    if not text.startswith("+"):
        raise InvalidPhoneNumber("a prefix starts with + or 00 and a country code")
    digits = text[1:]
    if digits and not _DIGITS_ONLY.fullmatch(digits):
        raise InvalidPhoneNumber("not a phone number")
    if len(digits) < _MIN_PREFIX_DIGITS:
        raise InvalidPhoneNumber("too short")
    if len(digits) > _MAX_E164_DIGITS:
        raise InvalidPhoneNumber("too long")
    return text


def is_valid_region(region: str) -> bool:
    """Whether ``region`` is a region code phone numbers can be parsed for (upper case, e.g. ``"GB"``)."""
    return region in phonenumbers.SUPPORTED_REGIONS


def _compact(raw: str) -> str:
    """Return ``raw`` without its ``tel:`` scheme and separators, refusing overlong or empty input."""
    if len(raw) > MAX_INPUT_LENGTH:
        raise InvalidPhoneNumber("too long")
    text = _SEPARATORS.sub("", _TEL_SCHEME.sub("", raw, count=1))
    if not text:
        raise InvalidPhoneNumber("empty")
    return text


def _readings(text: str, region: str | None) -> list[tuple[str, str | None]]:
    """Return the ways to read ``text``, most likely first, as (text, region) pairs for ``phonenumbers.parse``.

    libphonenumber strips an international prefix only when it is the region's own, so ``"0044..."`` is read as
    ``"+44..."`` unless the region dials abroad with a prefix ``"00..."`` starts with. Even then ``"+..."`` is
    tried second: Brazil's prefixes embed a carrier code (``0055`` is one), which can swallow the country code.
    """
    if text.startswith("+"):
        return [(text, region)]
    if text.startswith("00"):
        as_plus: tuple[str, str | None] = ("+" + text[2:], None)
        if region is not None and _dials_abroad_with(text, region):
            return [(text, region), as_plus]
        return [as_plus]
    if region is None:
        raise InvalidPhoneNumber("a national number needs a default region")
    return [(text, region)]


def _dials_abroad_with(text: str, region: str) -> bool:
    """Whether ``text`` starts with ``region``'s international (IDD) prefix."""
    metadata = PhoneMetadata.metadata_for_region(region)
    if metadata is None or metadata.international_prefix is None:
        return False
    return re.match(metadata.international_prefix, text) is not None


def _parse_valid(text: str, region: str | None) -> str:
    """Parse ``text`` and return it in E.164 if libphonenumber deems it a valid number."""
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException as exc:
        raise InvalidPhoneNumber(_PARSE_REASONS.get(exc.error_type, "not a phone number")) from exc
    possibility = phonenumbers.is_possible_number_with_reason(number)
    if possibility != ValidationResult.IS_POSSIBLE:
        raise InvalidPhoneNumber(_POSSIBILITY_REASONS.get(possibility, "not a possible number"))
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhoneNumber("not a valid number for its region")
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def _legacy_whatsapp_forms(wa_id: str) -> Iterator[str]:
    """Yield today's form of a WhatsApp id written before its country renumbered mobiles.

    Mexico dropped the ``1`` between ``52`` and a mobile number in 2019; Brazil added a leading ``9`` to
    8-digit mobiles (which start with 6-9) by 2016. WhatsApp still reports some ids the old way.
    """
    if mexican := _MX_LEGACY_MOBILE.fullmatch(wa_id):
        yield "52" + mexican.group(1)
    if brazilian := _BR_LEGACY_MOBILE.fullmatch(wa_id):
        yield "55" + brazilian.group(1) + "9" + brazilian.group(2)
