"""Cache keys: namespaced and hash-tagged by tenant, so one tenant's keys share a Redis Cluster slot.

    sm:{<tenant_id>}:conv:id:<uuid>       a conversation by id
    sm:{<tenant_id>}:conv:wa:<id>         the open conversation of a WhatsApp conversation id
    sm:{<tenant_id>}:conv:gen:<id>        a conversation by (current or superseded) Genesys conversation id
    sm:{<tenant_id>}:cust:id:<uuid>       a customer by id
    sm:{<tenant_id>}:cust:wa:<id>         a customer by WhatsApp id
    sm:{<tenant_id>}:cust:phone:<e164>    a customer by phone number
    sm:{<tenant_id>}:map:gen:<id>         ResolveOutbound's Genesys-to-WhatsApp route

Each value key has a generation key, `sm:{<tenant_id>}:g:<rest>`, that invalidation increments (see redis_tier).
Keys carry phone numbers and ids: never log them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import ClassVar, Final, final

CHANNEL: Final = "sm:invalidate"
"""The pub/sub channel every server process listens on for other processes' invalidations."""

_MAX_PREFIXES = 100_000
_prefixes: dict[uuid.UUID, str] = {}  # str(UUID) costs about a microsecond; the hot path builds a key per call


@final
class Kind:
    """What a key holds; decides its TTL and its metrics label (`cache=`).

    A plain class, not an Enum: the hot path looks stats up by kind, and an Enum's hash is a Python-level call.
    """

    __slots__ = ("label",)
    CONVERSATION: ClassVar[Kind]
    CUSTOMER: ClassVar[Kind]
    MAPPING: ClassVar[Kind]
    ALL: ClassVar[tuple[Kind, ...]]

    def __init__(self, label: str) -> None:
        self.label = label

    def __repr__(self) -> str:
        return f"Kind({self.label})"


Kind.CONVERSATION = Kind("conversation")
Kind.CUSTOMER = Kind("customer")
Kind.MAPPING = Kind("mapping")
Kind.ALL = (Kind.CONVERSATION, Kind.CUSTOMER, Kind.MAPPING)


class Key:
    """One cache key: its kind and its full Redis key text."""

    __slots__ = ("kind", "text")

    def __init__(self, kind: Kind, text: str) -> None:
        self.kind = kind
        self.text = text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Key) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return f"Key({self.kind.label}, <{len(self.text)} chars>)"  # never the text: it may hold a phone number


def tenant_prefix(tenant_id: uuid.UUID) -> str:
    """The prefix every key of `tenant_id` starts with; `{...}` is the Redis Cluster hash tag."""
    prefix = _prefixes.get(tenant_id)
    if prefix is None:
        if len(_prefixes) >= _MAX_PREFIXES:
            _prefixes.clear()
        prefix = _prefixes[tenant_id] = f"sm:{{{tenant_id}}}:"
    return prefix


# Ids that are UUIDs are taken as uuid.UUID, never as text: str(UUID) is the one canonical spelling, so a read and
# the invalidation of a write always name the same key.


def conversation(tenant_id: uuid.UUID, conversation_id: uuid.UUID) -> Key:
    return Key(Kind.CONVERSATION, f"{tenant_prefix(tenant_id)}conv:id:{conversation_id}")


def conversation_by_whatsapp(tenant_id: uuid.UUID, whatsapp_conversation_id: str) -> Key:
    return Key(Kind.CONVERSATION, f"{tenant_prefix(tenant_id)}conv:wa:{whatsapp_conversation_id}")


def conversation_by_genesys(tenant_id: uuid.UUID, genesys_conversation_id: str) -> Key:
    return Key(Kind.CONVERSATION, f"{tenant_prefix(tenant_id)}conv:gen:{genesys_conversation_id}")


def customer(tenant_id: uuid.UUID, customer_id: uuid.UUID) -> Key:
    return Key(Kind.CUSTOMER, f"{tenant_prefix(tenant_id)}cust:id:{customer_id}")


def customer_by_whatsapp(tenant_id: uuid.UUID, whatsapp_id: str) -> Key:
    return Key(Kind.CUSTOMER, f"{tenant_prefix(tenant_id)}cust:wa:{whatsapp_id}")


def customer_by_phone(tenant_id: uuid.UUID, e164: str) -> Key:
    return Key(Kind.CUSTOMER, f"{tenant_prefix(tenant_id)}cust:phone:{e164}")


def outbound_route(tenant_id: uuid.UUID, genesys_conversation_id: str) -> Key:
    """ResolveOutbound's mapping from a Genesys conversation id to what addresses the WhatsApp customer."""
    return Key(Kind.MAPPING, f"{tenant_prefix(tenant_id)}map:gen:{genesys_conversation_id}")


def conversation_keys(
    tenant_id: uuid.UUID,
    conversation_id: uuid.UUID,
    whatsapp_conversation_id: str = "",
    genesys_conversation_ids: Iterable[str] = (),
) -> list[Key]:
    """Every key that can hold a conversation: what a write to that conversation invalidates.

    Pass every Genesys id the write touches (the old and the new one when the mapping changes).
    """
    out = [conversation(tenant_id, conversation_id)]
    if whatsapp_conversation_id:
        out.append(conversation_by_whatsapp(tenant_id, whatsapp_conversation_id))
    for genesys_id in genesys_conversation_ids:
        if genesys_id:
            out.append(conversation_by_genesys(tenant_id, genesys_id))
            out.append(outbound_route(tenant_id, genesys_id))
    return out


def customer_keys(
    tenant_id: uuid.UUID, customer_id: uuid.UUID, whatsapp_id: str = "", phones: Iterable[str] = ()
) -> list[Key]:
    """Every key that can hold a customer: what a write to (or the erasure of) that customer invalidates.

    Pass the old and the new phone number when it changes.
    """
    out = [customer(tenant_id, customer_id)]
    if whatsapp_id:
        out.append(customer_by_whatsapp(tenant_id, whatsapp_id))
    out.extend(customer_by_phone(tenant_id, phone) for phone in phones if phone)
    return out


def generation(text: str) -> str:
    """The generation key of a value key: same hash tag, a namespace (`g:`) no value key uses."""
    cut = text.index("}:") + 2
    return f"{text[:cut]}g:{text[cut:]}"
