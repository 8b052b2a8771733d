-- Customers. Every query names the tenant explicitly as well as through row-level security (as conversations.sql).

-- name: upsert_customer
-- Inserts, or updates the fields given (NULL keeps the stored value) when that changes anything; no row comes back
-- for a repeat that changes nothing (read it with get_by_whatsapp_id). The conflicting row is locked either way.
INSERT INTO customers AS c (
    tenant_id, id, whatsapp_id, phone_number, name, name_search, profile_picture_url, preferences, metadata
)
VALUES (
    %(tenant_id)s, %(id)s, %(whatsapp_id)s, coalesce(%(phone_number)s::text, %(default_phone_number)s::text),
    coalesce(%(name)s::text, ''), coalesce(%(name_search)s::text, ''), coalesce(%(profile_picture_url)s::text, ''),
    coalesce(%(preferences)s::jsonb, '{}'), coalesce(%(metadata)s::jsonb, '{}')
)
ON CONFLICT (tenant_id, whatsapp_id) DO UPDATE SET
    phone_number = coalesce(%(phone_number)s::text, c.phone_number, %(default_phone_number)s::text),
    name = coalesce(%(name)s::text, c.name),
    name_search = coalesce(%(name_search)s::text, c.name_search),
    profile_picture_url = coalesce(%(profile_picture_url)s::text, c.profile_picture_url),
    preferences = coalesce(%(preferences)s::jsonb, c.preferences),
    metadata = coalesce(%(metadata)s::jsonb, c.metadata),
    version = c.version + 1,
    updated_at = now()
WHERE (c.phone_number, c.name, c.profile_picture_url, c.preferences, c.metadata) IS DISTINCT FROM (
    coalesce(%(phone_number)s::text, c.phone_number, %(default_phone_number)s::text), coalesce(%(name)s::text, c.name),
    coalesce(%(profile_picture_url)s::text, c.profile_picture_url), coalesce(%(preferences)s::jsonb, c.preferences),
    coalesce(%(metadata)s::jsonb, c.metadata)
)
RETURNING *, (xmax = 0) AS created

-- name: open_conversation
-- The customer's open conversation with the latest activity.
SELECT * FROM conversations
WHERE tenant_id = %(tenant_id)s AND customer_id = %(customer_id)s AND state <> 'closed'
ORDER BY last_activity DESC, id
LIMIT 1

-- name: assignments
-- The assignments of some conversations, oldest first.
SELECT conversation_id, from_agent_id, to_agent_id, reason, assigned_at FROM conversation_assignments
WHERE tenant_id = %(tenant_id)s AND conversation_id = ANY(%(conversation_ids)s::uuid[])
ORDER BY conversation_id, assigned_at, id

-- name: get_by_id
SELECT * FROM customers WHERE tenant_id = %(tenant_id)s AND id = %(id)s

-- name: get_by_whatsapp_id
SELECT * FROM customers WHERE tenant_id = %(tenant_id)s AND whatsapp_id = %(whatsapp_id)s

-- name: lock_by_id
-- The customer, locked against other writers until commit: a write reads what it replaces (the old phone number,
-- whose cache key it must invalidate) with no other write in between.
SELECT * FROM customers WHERE tenant_id = %(tenant_id)s AND id = %(id)s FOR NO KEY UPDATE

-- name: lock_by_whatsapp_id
SELECT * FROM customers WHERE tenant_id = %(tenant_id)s AND whatsapp_id = %(whatsapp_id)s FOR NO KEY UPDATE

-- name: get_by_phone_number
-- A number may be shared (a family phone): the most recently active profile answers.
SELECT * FROM customers WHERE tenant_id = %(tenant_id)s AND phone_number = %(phone_number)s::text
ORDER BY updated_at DESC, id LIMIT 1

-- name: search_by_name
-- Names one of whose words starts with the folded query (or the run of words it spans): a range over
-- customer_name_terms (see sql/0004 for why not LIKE), by folded name then id.
SELECT c.* FROM customers c
WHERE c.tenant_id = %(tenant_id)s
  AND c.id IN (
      SELECT t.customer_id FROM customer_name_terms t
      WHERE t.tenant_id = %(tenant_id)s AND t.term >= %(low)s AND t.term < %(high)s
  )
  AND (%(after_id)s::uuid IS NULL OR (c.name_search, c.id) > (%(after_key)s::text, %(after_id)s::uuid))
ORDER BY c.name_search, c.id
LIMIT %(limit)s

-- name: search_by_phone_prefix
SELECT * FROM customers
WHERE tenant_id = %(tenant_id)s AND phone_number >= %(prefix)s AND phone_number < %(prefix_end)s
  AND (%(after_id)s::uuid IS NULL OR (phone_number, id) > (%(after_key)s::text COLLATE "C", %(after_id)s::uuid))
ORDER BY phone_number, id
LIMIT %(limit)s

-- name: update_customer
-- Sets the fields whose set_<field> flag is true; with expected_version, only if the version still matches.
UPDATE customers SET
    phone_number = CASE WHEN %(set_phone_number)s THEN %(phone_number)s::text ELSE phone_number END,
    name = CASE WHEN %(set_name)s THEN %(name)s::text ELSE name END,
    name_search = CASE WHEN %(set_name)s THEN %(name_search)s::text ELSE name_search END,
    profile_picture_url = CASE WHEN %(set_profile_picture_url)s THEN %(profile_picture_url)s::text ELSE profile_picture_url END,
    preferences = CASE WHEN %(set_preferences)s THEN %(preferences)s::jsonb ELSE preferences END,
    metadata = CASE WHEN %(set_metadata)s THEN %(metadata)s::jsonb ELSE metadata END,
    version = version + 1,
    updated_at = now()
WHERE tenant_id = %(tenant_id)s AND id = %(id)s AND (%(expected_version)s::bigint IS NULL OR version = %(expected_version)s::bigint)
RETURNING *
