-- Integration (the transformers' one-call resolutions). Every query names the tenant explicitly as well as through
-- row-level security (as conversations.sql).

-- name: claim_conversation
-- Gives an open conversation opened without a customer (CreateConversation) to the customer now writing in it.
UPDATE conversations SET customer_id = %(customer_id)s, version = version + 1
WHERE tenant_id = %(tenant_id)s AND id = %(id)s AND customer_id IS NULL
RETURNING *

-- name: lock_latest_by_whatsapp_id
-- conversations.sql's lookup_by_whatsapp_id (the open conversation of a WhatsApp id, else its latest), locked
-- against other writers until commit: ResolveInbound's fast path reads it in one round trip and records in it in
-- the next.
SELECT * FROM conversations
WHERE tenant_id = %(tenant_id)s AND whatsapp_conversation_id = %(whatsapp_conversation_id)s
ORDER BY state <> 'closed' DESC, created_at DESC, id DESC
LIMIT 1
FOR NO KEY UPDATE

-- name: any_parked
-- Whether reports are parked for a WhatsApp message id (read under the id's lock: see messages.sql's lock_key).
SELECT EXISTS (
    SELECT FROM parked_statuses
    WHERE tenant_id = %(tenant_id)s AND whatsapp_message_id = %(whatsapp_message_id)s
) AS parked

-- name: insert_into_open
-- messages.sql's insert_message with its message.recorded event, only if the conversation is open: no row when it
-- is closed or missing. Run after this transaction locked the conversation (touch_conversation, or a lock before),
-- so that this statement's snapshot sees the previous writer's events, as the tx_id rule of
-- statemgr/events/outbox.py needs.
WITH inserted AS (
    INSERT INTO messages (
        tenant_id, id, conversation_id, whatsapp_message_id, genesys_message_id, direction, status, content,
        media_urls, sent_at
    )
    SELECT
        %(tenant_id)s, %(id)s, c.id, %(whatsapp_message_id)s, %(genesys_message_id)s, %(direction)s, %(status)s,
        %(content)s, %(media_urls)s, %(sent_at)s
    FROM conversations AS c
    WHERE c.tenant_id = %(tenant_id)s AND c.id = %(conversation_id)s AND c.state <> 'closed'
    RETURNING *
), evented AS (
    INSERT INTO events (tenant_id, id, type, conversation_id, payload, tx_id)
    SELECT
        tenant_id, %(event_id)s, %(event_type)s, conversation_id, %(event_payload)s,
        greatest(
            pg_current_xact_id(),
            (SELECT e.tx_id FROM events e
             WHERE e.tenant_id = %(tenant_id)s AND e.conversation_id = %(conversation_id)s
             ORDER BY e.tx_id DESC LIMIT 1)
        )
    FROM inserted
)
SELECT * FROM inserted
