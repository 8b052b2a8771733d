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
