"""Customers: the WhatsApp people a tenant talks to, their profile, and how they are found.

Pure: no I/O. Phone numbers go through statemgr.domain.phones; names are folded by :func:`search_key` for
case- and accent-insensitive search (the same folding on write and on query).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import re
import unicodedata
import uuid
from typing import Any

from statemgr.domain import conversations, messages, phones, validation
from statemgr.domain.errors import InvalidArgument

MAX_WHATSAPP_ID = 64
MIN_NAME_QUERY = 2
TERM_LENGTH = 64
UPDATABLE_FIELDS = ("phone_number", "name", "profile_picture_url", "preferences", "metadata")

_TEL_SCHEME = re.compile(r"^\s*tel:", re.IGNORECASE)
# Letters that Unicode does not decompose into a base letter plus accents.
_FOLDS = str.maketrans(
    {"ø": "o", "đ": "d", "ð": "d", "ł": "l", "ħ": "h", "\u0131": "i", "þ": "th", "æ": "ae", "œ": "oe"}
)


@dataclasses.dataclass(frozen=True, slots=True)
class Customer:
    id: uuid.UUID
    tenant_id: uuid.UUID
    whatsapp_id: str
    phone_number: str | None
    name: str
    profile_picture_url: str
    preferences: dict[str, Any]
    metadata: dict[str, Any]
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Customer:
        return cls(**{field.name: row[field.name] for field in dataclasses.fields(cls)})

    @property
    def etag(self) -> str:
        return str(self.version)


@dataclasses.dataclass(frozen=True, slots=True)
class Assignment:
    """One assignment of a conversation to an agent."""

    from_agent_id: uuid.UUID | None
    to_agent_id: uuid.UUID
    reason: str
    assigned_at: dt.datetime

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Assignment:
        return cls(row["from_agent_id"], row["to_agent_id"], row["reason"], row["assigned_at"])


@dataclasses.dataclass(frozen=True, slots=True)
class HistoryEntry:
    """A conversation of the customer's history with its assignments, oldest first."""

    conversation: conversations.Conversation
    assignments: list[Assignment]


@dataclasses.dataclass(frozen=True, slots=True)
class Context:
    """What an agent or the inbound transformer needs about a customer in one answer."""

    customer: Customer
    open_conversation: conversations.Conversation | None
    recent_conversations: list[conversations.Conversation]
    recent_messages: list[messages.Message]


@dataclasses.dataclass(frozen=True, slots=True)
class CustomerInput:
    """What UpsertCustomer (or ResolveInbound) says about a customer; None keeps the stored value.

    ``phone_number`` is raw text until :func:`with_phone` has normalised it.
    """

    whatsapp_id: str
    phone_number: str | None = None
    name: str | None = None
    profile_picture_url: str | None = None
    preferences: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None


def search_key(text: str) -> str:
    """``text`` folded for search: compatibility-decomposed, accents and apostrophes dropped, case-folded, other
    punctuation read as spaces, spaces collapsed. "Zoë  ÅSTRÖM-Smith" -> "zoe astrom smith", "O'Brien" -> "obrien".
    """
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    letters = (char for char in decomposed.translate(_FOLDS) if not unicodedata.combining(char) and char not in "'’")
    return " ".join("".join(char if char.isalnum() else " " for char in letters).split())


def name_range(key: str) -> tuple[str, str]:
    """The range of customer_name_terms holding the names ``key`` (a folded query) starts a word of.

    Terms are at most TERM_LENGTH characters (sql/0004): a longer query is matched on its first TERM_LENGTH.
    """
    low = key[:TERM_LENGTH]
    return low, low[:-1] + chr(ord(low[-1]) + 1)


def whatsapp_id(value: str, field: str) -> str:
    """A required WhatsApp id (wa_id) of 1-64 characters, surrounding spaces removed."""
    return validation.required_text(value.strip(), field, MAX_WHATSAPP_ID)


def phone_number(raw: str, region: str | None, field: str) -> str:
    """``raw`` in E.164, or INVALID_ARGUMENT on ``field`` with the reason the number was refused."""
    try:
        return phones.normalize(raw, region)
    except phones.InvalidPhoneNumber as exc:
        raise InvalidArgument(field, exc.reason) from None


def needs_region(raw: str) -> bool:
    """Whether reading ``raw`` may need the tenant's default region (it is not in + form)."""
    return not _TEL_SCHEME.sub("", raw, count=1).lstrip().startswith("+")


@functools.lru_cache(maxsize=4096)  # parsing costs more than the rest of a customer upsert; a customer writes often
def phone_from_whatsapp_id(wa_id: str) -> str | None:
    """The E.164 number a WhatsApp id stands for, or None when it is not a valid number."""
    try:
        return phones.from_whatsapp_id(wa_id)
    except phones.InvalidPhoneNumber:
        return None


def name_query(value: str, field: str) -> str:
    """A search query's folded form, at least MIN_NAME_QUERY characters."""
    text = validation.bounded_text(value, field, validation.MAX_NAME)
    key = search_key(text)
    if len(key) < MIN_NAME_QUERY:
        raise InvalidArgument(field, f"needs at least {MIN_NAME_QUERY} characters")
    return key


def update_paths(paths: list[str], field: str = "update_mask") -> list[str]:
    """The fields an UpdateCustomer mask names; INVALID_ARGUMENT for none or an unknown one."""
    return validation.mask_paths(paths, UPDATABLE_FIELDS, field)
