-- Integration (the transformers' one-call resolutions). Every query names the tenant explicitly as well as through
-- row-level security (as conversations.sql).

-- name: claim_conversation
-- Gives an open conversation opened without a customer (CreateConversation) to the customer now writing in it.
UPDATE conversations SET customer_id = %(customer_id)s, version = version + 1
WHERE tenant_id = %(tenant_id)s AND id = %(id)s AND customer_id IS NULL
RETURNING *
