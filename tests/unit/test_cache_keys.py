"""Cache keys: the documented layout, one Redis Cluster slot per tenant, no collisions between namespaces."""

from __future__ import annotations

import uuid

from redis.crc import key_slot

from statemgr.cache import keys
from statemgr.cache.keys import Kind

TENANT = uuid.UUID("7b0c9d3e-2a41-4f6b-9c1d-5e8f7a6b4c3d")
CONV = uuid.UUID("0b6f1b7e-93c4-4a55-8f0e-2d4b6a8c9e01")


def test_layout_and_kinds() -> None:
    t = f"sm:{{{TENANT}}}"
    expected = [
        (keys.conversation(TENANT, CONV), f"{t}:conv:id:{CONV}", Kind.CONVERSATION),
        (keys.conversation_by_whatsapp(TENANT, "wa1"), f"{t}:conv:wa:wa1", Kind.CONVERSATION),
        (keys.conversation_by_genesys(TENANT, "g1"), f"{t}:conv:gen:g1", Kind.CONVERSATION),
        (keys.customer(TENANT, CONV), f"{t}:cust:id:{CONV}", Kind.CUSTOMER),
        (keys.customer_by_whatsapp(TENANT, "447400123456"), f"{t}:cust:wa:447400123456", Kind.CUSTOMER),
        (keys.customer_by_phone(TENANT, "+447400123456"), f"{t}:cust:phone:+447400123456", Kind.CUSTOMER),
        (keys.outbound_route(TENANT, "g1"), f"{t}:map:gen:g1", Kind.MAPPING),
    ]
    for key, text, kind in expected:
        assert (key.text, key.kind) == (text, kind)
        assert key.text.startswith(keys.tenant_prefix(TENANT))


def test_a_tenants_keys_and_generations_share_one_cluster_slot() -> None:
    written = keys.conversation_keys(TENANT, CONV, "wa{1}", ["g:1", "g}2"]) + keys.customer_keys(
        TENANT, CONV, "4474", ["+4474", "+1201"]
    )
    texts = [k.text for k in written] + [keys.generation(k.text) for k in written]
    assert len({key_slot(text.encode()) for text in texts}) == 1
    assert key_slot(keys.tenant_prefix(TENANT).encode()) == key_slot(str(TENANT).encode())


def test_generation_keys_never_collide_with_value_keys() -> None:
    value = keys.conversation_by_whatsapp(TENANT, "x")
    tricky = keys.conversation_by_whatsapp(TENANT, "x:g")
    generation = keys.generation(value.text)
    assert generation == f"sm:{{{TENANT}}}:g:conv:wa:x"
    assert generation not in {value.text, tricky.text}
    assert keys.generation(tricky.text) != generation


def test_write_paths_name_every_key_that_can_hold_the_entity() -> None:
    conversation = keys.conversation_keys(TENANT, CONV, "wa1", ["gen-old", "gen-new", ""])
    assert conversation == [
        keys.conversation(TENANT, CONV),
        keys.conversation_by_whatsapp(TENANT, "wa1"),
        keys.conversation_by_genesys(TENANT, "gen-old"),
        keys.outbound_route(TENANT, "gen-old"),
        keys.conversation_by_genesys(TENANT, "gen-new"),
        keys.outbound_route(TENANT, "gen-new"),
    ]
    assert keys.customer_keys(TENANT, CONV, "", ["+44", ""]) == [
        keys.customer(TENANT, CONV),
        keys.customer_by_phone(TENANT, "+44"),
    ]


def test_a_key_never_shows_its_text() -> None:
    key = keys.customer_by_phone(TENANT, "+447400123456")
    assert "+44" not in repr(key) and "customer" in repr(key)
    assert key == keys.customer_by_phone(TENANT, "+447400123456") and len({key, key}) == 1
