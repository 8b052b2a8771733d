-- Integration (ResolveInbound's own statements). Every query names the tenant explicitly as well as through
-- row-level security (as conversations.sql).

-- name: claim_conversation
-- Gives an open conversation opened without a customer (CreateConversation) to the customer now writing in it.
UPDATE conversations SET customer_id = %(customer_id)s, version = version + 1
WHERE tenant_id = %(tenant_id)s AND id = %(id)s AND customer_id IS NULL
RETURNING *

-- name: lock_latest_by_whatsapp_id
-- conversations.sql's lookup_by_whatsapp_id (the open conversation of a WhatsApp id, else its latest), locked
-- against other writers until commit: ResolveInbound reads it in one round trip and records in it in the next.
SELECT * FROM conversations
WHERE tenant_id = %(tenant_id)s AND whatsapp_conversation_id = %(whatsapp_conversation_id)s
ORDER BY state <> 'closed' DESC, created_at DESC, id DESC
LIMIT 1
FOR NO KEY UPDATE

-- name: open_conversation
-- The conversation an inbound message opens (its customer; no Genesys id, agent, metadata or request id yet) with
-- its conversation.created event: conversations.sql's insert_conversation WITHOUT its ON CONFLICT, so that a
-- conversation another caller opened for the WhatsApp id meanwhile fails this transaction with a unique violation
-- on conversations_one_open, which ResolveInbound answers by starting again (services/inbound.py).
WITH created AS (
    INSERT INTO conversations (tenant_id, id, whatsapp_conversation_id, customer_id)
    VALUES (%(tenant_id)s, %(id)s, %(whatsapp_conversation_id)s, %(customer_id)s)
    RETURNING *
)
INSERT INTO events (tenant_id, id, type, conversation_id, payload, tx_id, created_at)
SELECT tenant_id, %(event_id)s, %(event_type)s, id, %(event_payload)s || jsonb_build_object('at', created_at),
       pg_current_xact_id(), created_at
FROM created
