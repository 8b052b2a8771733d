-- Conversations. Every query names the tenant explicitly as well as through row-level security: the policy is the
-- guard, the explicit key lets a distributed (Citus) planner route the query to one shard.

-- name: insert_conversation
-- Creates the conversation with its first Genesys mapping, its first assignment and its conversation.created event,
-- in one statement. On any unique conflict (request_id, one open conversation per WhatsApp or Genesys id) it writes
-- nothing and returns no row: see find_conflict. The event's tx_id is the transaction's own id: a new conversation
-- has no earlier events to sort after (see statemgr/events/outbox.py); its time is the conversation's created_at,
-- also in the payload as "at" (what analytics folds).
WITH created AS (
    INSERT INTO conversations (tenant_id, id, whatsapp_conversation_id, genesys_conversation_id, customer_id,
                               agent_id, metadata, request_id)
    VALUES (%(tenant_id)s, %(id)s, %(whatsapp_conversation_id)s, %(genesys_conversation_id)s, %(customer_id)s,
            %(agent_id)s, %(metadata)s, %(request_id)s)
    ON CONFLICT DO NOTHING
    RETURNING *
), mapped AS (
    INSERT INTO conversation_genesys_ids (tenant_id, id, conversation_id, genesys_conversation_id, mapped_at)
    SELECT tenant_id, gen_random_uuid(), id, genesys_conversation_id, created_at
    FROM created WHERE genesys_conversation_id IS NOT NULL
), assigned AS (
    INSERT INTO conversation_assignments (tenant_id, id, conversation_id, to_agent_id, assigned_at)
    SELECT tenant_id, gen_random_uuid(), id, agent_id, created_at
    FROM created WHERE agent_id IS NOT NULL
), evented AS (
    INSERT INTO events (tenant_id, id, type, conversation_id, payload, tx_id, created_at)
    SELECT tenant_id, %(event_id)s, %(event_type)s, id, %(event_payload)s || jsonb_build_object('at', created_at),
           pg_current_xact_id(), created_at
    FROM created
)
SELECT * FROM created

-- name: find_conflict
-- The conversation an insert_conversation collided with: the same request_id first, then the open one for the
-- WhatsApp id, then the open one for the Genesys id. `conflict` says which.
SELECT *,
       CASE WHEN request_id = %(request_id)s THEN 'request_id'
            WHEN whatsapp_conversation_id = %(whatsapp_conversation_id)s THEN 'whatsapp_conversation_id'
            ELSE 'genesys_conversation_id' END AS conflict
FROM conversations
WHERE tenant_id = %(tenant_id)s
  AND (request_id = %(request_id)s
       OR (state <> 'closed' AND whatsapp_conversation_id = %(whatsapp_conversation_id)s)
       OR (state <> 'closed' AND genesys_conversation_id = %(genesys_conversation_id)s))
ORDER BY request_id = %(request_id)s DESC NULLS LAST,
         whatsapp_conversation_id = %(whatsapp_conversation_id)s DESC
LIMIT 1

-- name: get_conversation
SELECT * FROM conversations WHERE tenant_id = %(tenant_id)s AND id = %(id)s

-- name: lock_conversation
-- FOR NO KEY UPDATE: writers of one conversation queue here, while inserts referencing it (messages) go on.
SELECT * FROM conversations WHERE tenant_id = %(tenant_id)s AND id = %(id)s FOR NO KEY UPDATE

-- name: lookup_by_whatsapp_id
-- The open conversation of a WhatsApp id, else its latest.
SELECT * FROM conversations
WHERE tenant_id = %(tenant_id)s AND whatsapp_conversation_id = %(whatsapp_conversation_id)s
ORDER BY state <> 'closed' DESC, created_at DESC, id DESC
LIMIT 1

-- name: lookup_by_genesys_id
-- The open conversation currently mapped to a Genesys id, else the one mapped to it most recently.
SELECT c.* FROM conversation_genesys_ids g
JOIN conversations c ON c.tenant_id = g.tenant_id AND c.id = g.conversation_id
WHERE g.tenant_id = %(tenant_id)s AND g.genesys_conversation_id = %(genesys_conversation_id)s
ORDER BY (c.state <> 'closed' AND c.genesys_conversation_id IS NOT DISTINCT FROM %(genesys_conversation_id)s) DESC,
         g.mapped_at DESC
LIMIT 1

-- name: list_conversations
-- Newest first; keyset pagination after (after_created, after_id). NULL filters match everything.
SELECT * FROM conversations
WHERE tenant_id = %(tenant_id)s
  AND (%(state)s::text IS NULL OR state = %(state)s::text)
  AND (%(agent_id)s::uuid IS NULL OR agent_id = %(agent_id)s::uuid)
  AND (%(customer_id)s::uuid IS NULL OR customer_id = %(customer_id)s::uuid)
  AND (%(active_from)s::timestamptz IS NULL OR last_activity >= %(active_from)s::timestamptz)
  AND (%(active_to)s::timestamptz IS NULL OR last_activity < %(active_to)s::timestamptz)
  AND (%(after_created)s::timestamptz IS NULL
       OR (created_at, id) < (%(after_created)s::timestamptz, %(after_id)s::uuid))
ORDER BY created_at DESC, id DESC
LIMIT %(limit)s

-- name: search_conversations
-- Like list_conversations, with search criteria. Customers are matched by their E.164 phone number or by a word
-- start of their folded name: the range [name_low, name_high) of customer_name_terms, as customers.sql's
-- search_by_name does (a LIKE on name_search could not use an index under forced row-level security: sql/0004).
SELECT * FROM conversations c
WHERE c.tenant_id = %(tenant_id)s
  AND (%(whatsapp_conversation_id)s::text IS NULL
       OR c.whatsapp_conversation_id = %(whatsapp_conversation_id)s::text)
  AND (%(genesys_conversation_id)s::text IS NULL OR c.id IN (
       SELECT g.conversation_id FROM conversation_genesys_ids g
       WHERE g.tenant_id = %(tenant_id)s AND g.genesys_conversation_id = %(genesys_conversation_id)s::text))
  AND (%(metadata)s::jsonb IS NULL OR c.metadata @> %(metadata)s::jsonb)
  AND (%(phone_number)s::text IS NULL OR c.customer_id IN (
       SELECT cu.id FROM customers cu
       WHERE cu.tenant_id = %(tenant_id)s AND cu.phone_number = %(phone_number)s::text))
  AND (%(name_low)s::text IS NULL OR c.customer_id IN (
       SELECT t.customer_id FROM customer_name_terms t
       WHERE t.tenant_id = %(tenant_id)s AND t.term >= %(name_low)s AND t.term < %(name_high)s))
  AND (%(after_created)s::timestamptz IS NULL
       OR (c.created_at, c.id) < (%(after_created)s::timestamptz, %(after_id)s::uuid))
ORDER BY c.created_at DESC, c.id DESC
LIMIT %(limit)s

-- name: set_state
-- Moves the (locked) conversation to to_state and records the change.
WITH changed AS (
    UPDATE conversations
    SET state = %(to_state)s,
        closed_at = CASE WHEN %(to_state)s = 'closed' THEN clock_timestamp() END,
        last_activity = clock_timestamp(),
        version = version + 1
    WHERE tenant_id = %(tenant_id)s AND id = %(id)s
    RETURNING *
), recorded AS (
    INSERT INTO conversation_state_transitions (tenant_id, id, conversation_id, from_state, to_state, reason,
                                                changed_at)
    SELECT tenant_id, gen_random_uuid(), id, %(from_state)s, state, %(reason)s, last_activity FROM changed
)
SELECT * FROM changed

-- name: assign_agent
-- Assigns the (locked) conversation to to_agent_id and records the assignment.
WITH changed AS (
    UPDATE conversations
    SET agent_id = %(to_agent_id)s, last_activity = clock_timestamp(), version = version + 1
    WHERE tenant_id = %(tenant_id)s AND id = %(id)s
    RETURNING *
), recorded AS (
    INSERT INTO conversation_assignments (tenant_id, id, conversation_id, from_agent_id, to_agent_id, reason,
                                          assigned_at)
    SELECT tenant_id, gen_random_uuid(), id, %(from_agent_id)s, agent_id, %(reason)s, last_activity FROM changed
)
SELECT * FROM changed

-- name: update_conversation
-- Replaces the metadata and/or the Genesys mapping of the (locked) conversation. A NULL parameter keeps the value;
-- a new Genesys id moves the current one to previous_genesys_conversation_ids and records the change.
WITH changed AS (
    UPDATE conversations
    SET metadata = coalesce(%(metadata)s::jsonb, metadata),
        genesys_conversation_id = coalesce(%(genesys_conversation_id)s::text, genesys_conversation_id),
        previous_genesys_conversation_ids = CASE
            WHEN %(genesys_conversation_id)s::text IS NULL OR genesys_conversation_id IS NULL
                THEN previous_genesys_conversation_ids
            ELSE array_append(array_remove(previous_genesys_conversation_ids, %(genesys_conversation_id)s::text),
                              genesys_conversation_id)
            END,
        last_activity = clock_timestamp(),
        version = version + 1
    WHERE tenant_id = %(tenant_id)s AND id = %(id)s
    RETURNING *
), mapped AS (
    INSERT INTO conversation_genesys_ids (tenant_id, id, conversation_id, genesys_conversation_id,
                                          previous_genesys_conversation_id, mapped_at)
    SELECT tenant_id, gen_random_uuid(), id, genesys_conversation_id, %(previous_genesys_conversation_id)s,
           last_activity
    FROM changed WHERE %(genesys_conversation_id)s::text IS NOT NULL
)
SELECT * FROM changed

-- name: history
-- A conversation's timeline, oldest first, keyset-paginated on (at, rank, entry_id).
-- Each branch is one history source and yields (at, rank, entry_id, kind, data): `kind` is the name of the
-- HistoryEntry proto's oneof field and `data` holds that message's fields by their proto names (see
-- statemgr.api.conversations). `rank` orders entries of one instant: created 0, genesys_mapping_change 1,
-- assignment 2, state_change 3; message sources take message_recorded 4 and message_status_change 5.
-- SEAM: message entries are added here as two more UNION ALL branches (messages, message_status_history) of the
-- same shape; the api layer already converts kinds message_recorded (message_id, direction) and
-- message_status_change (message_id, status, changed).
SELECT at, rank, entry_id, kind, data FROM (
    SELECT c.created_at AS at, 0 AS rank, c.id::text AS entry_id, 'created' AS kind,
           jsonb_build_object('id', c.id, 'whatsapp_conversation_id', c.whatsapp_conversation_id,
                              'customer_id', c.customer_id) AS data
    FROM conversations c
    WHERE c.tenant_id = %(tenant_id)s AND c.id = %(conversation_id)s
    UNION ALL
    SELECT g.mapped_at, 1, g.id::text, 'genesys_mapping_change',
           jsonb_build_object('from_genesys_conversation_id', g.previous_genesys_conversation_id,
                              'to_genesys_conversation_id', g.genesys_conversation_id)
    FROM conversation_genesys_ids g
    WHERE g.tenant_id = %(tenant_id)s AND g.conversation_id = %(conversation_id)s
    UNION ALL
    SELECT a.assigned_at, 2, a.id::text, 'assignment',
           jsonb_build_object('from_agent_id', a.from_agent_id, 'to_agent_id', a.to_agent_id, 'reason', a.reason)
    FROM conversation_assignments a
    WHERE a.tenant_id = %(tenant_id)s AND a.conversation_id = %(conversation_id)s
    UNION ALL
    SELECT t.changed_at, 3, t.id::text, 'state_change',
           jsonb_build_object('from_state', t.from_state, 'to_state', t.to_state, 'reason', t.reason)
    FROM conversation_state_transitions t
    WHERE t.tenant_id = %(tenant_id)s AND t.conversation_id = %(conversation_id)s
    UNION ALL
    SELECT m.created_at, 4, m.id::text, 'message_recorded',
           jsonb_build_object('message_id', m.id, 'direction', m.direction)
    FROM messages m
    WHERE m.tenant_id = %(tenant_id)s AND m.conversation_id = %(conversation_id)s
    UNION ALL
    SELECT h.created_at, 5, lpad(h.id::text, 20, '0'), 'message_status_change',
           jsonb_build_object('message_id', h.message_id, 'status', h.status, 'changed', h.status_changed)
    FROM message_status_history h
    WHERE h.tenant_id = %(tenant_id)s AND h.conversation_id = %(conversation_id)s
) AS entries
WHERE %(after_at)s::timestamptz IS NULL
   OR (at, rank, entry_id) > (%(after_at)s::timestamptz, %(after_rank)s::integer, %(after_id)s::text)
ORDER BY at, rank, entry_id
LIMIT %(limit)s

-- name: cache_warm
-- Every tenant's open conversations active since `since`, newest activity first, at most `limit`: the cache
-- warm-up's read across tenants, through sql/0009's SECURITY DEFINER function (run with no tenant set).
SELECT * FROM cache_warm_conversations(%(since)s, %(limit)s)
