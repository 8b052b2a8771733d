-- Messages. Every query names the tenant explicitly as well as through row-level security (as conversations.sql).

-- name: lock_key
-- Serialises everything about one provider message id in this tenant until commit: recording it, attaching it to a
-- message, and parking a status for it. Without it a status parked while the message is being recorded would wait
-- for a record that already happened.
SELECT pg_advisory_xact_lock(hashtextextended(%(lock)s, 0))

-- name: find_by_keys
SELECT * FROM messages
WHERE tenant_id = %(tenant_id)s
  AND (whatsapp_message_id = %(whatsapp_message_id)s OR genesys_message_id = %(genesys_message_id)s)

-- name: any_parked
-- Whether reports are parked for a message's provider ids (read under the ids' locks: see lock_key).
SELECT EXISTS (
    SELECT FROM parked_statuses
    WHERE tenant_id = %(tenant_id)s
      AND (whatsapp_message_id = %(whatsapp_message_id)s OR genesys_message_id = %(genesys_message_id)s)
) AS parked

-- name: insert_into_open
-- A new message with its message.recorded event, only if the conversation is open: no row when it
-- is closed or missing. Run after this transaction locked the conversation (touch_conversation, or a lock before),
-- so that this statement's snapshot sees the previous writer's events, as the tx_id rule of
-- statemgr/events/outbox.py needs. The event's "at" is the message's created_at (clock_timestamp(): see sql/0005).
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
        tenant_id, %(event_id)s, %(event_type)s, conversation_id,
        %(event_payload)s || jsonb_build_object('at', created_at),
        event_tx_id(tenant_id, conversation_id)
    FROM inserted
)
SELECT * FROM inserted

-- name: get_message
SELECT * FROM messages WHERE tenant_id = %(tenant_id)s AND id = %(id)s

-- name: list_messages
SELECT * FROM messages
WHERE tenant_id = %(tenant_id)s AND conversation_id = %(conversation_id)s
  AND (%(after_id)s::uuid IS NULL OR (created_at, id) > (%(after_time)s::timestamptz, %(after_id)s::uuid))
ORDER BY created_at, id
LIMIT %(limit)s

-- name: last_messages
-- The last `limit` messages of a conversation, oldest first.
SELECT * FROM (
    SELECT * FROM messages
    WHERE tenant_id = %(tenant_id)s AND conversation_id = %(conversation_id)s
    ORDER BY created_at DESC, id DESC
    LIMIT %(limit)s
) AS last
ORDER BY created_at, id

-- name: apply_status
-- One provider report, in one statement so concurrent reports for a message serialise on its row lock and none is
-- lost. `target` locks the row and reads its latest version; `merged` computes the delivery after the report
-- (statemgr.domain.messages.merge is the same rule); `updated` writes only when that differs; `history` keeps the
-- change. The result is the message with `changed` and `old_status`; no row when the message is not recorded.
WITH target AS (
    SELECT *, message_status_rank(%(status)s::text) > message_status_rank(status) AS moves_up
    FROM messages
    WHERE tenant_id = %(tenant_id)s
      AND (whatsapp_message_id = %(whatsapp_message_id)s OR genesys_message_id = %(genesys_message_id)s)
    FOR UPDATE
), merged AS (
    SELECT
        t.tenant_id, t.id, t.status AS old_status,
        CASE WHEN t.moves_up THEN %(status)s::text ELSE t.status END AS status,
        CASE WHEN %(status)s::text = 'sent' AND (t.moves_up OR t.sent_at IS NULL)
            THEN %(time)s::timestamptz ELSE t.sent_at END AS sent_at,
        CASE WHEN %(status)s::text = 'delivered' AND (t.moves_up OR t.delivered_at IS NULL)
            THEN %(time)s::timestamptz ELSE t.delivered_at END AS delivered_at,
        CASE WHEN %(status)s::text = 'read' AND (t.moves_up OR t.read_at IS NULL)
            THEN %(time)s::timestamptz ELSE t.read_at END AS read_at,
        CASE WHEN %(status)s::text = 'failed' AND (t.moves_up OR t.failed_at IS NULL)
            THEN %(time)s::timestamptz ELSE t.failed_at END AS failed_at,
        CASE WHEN %(status)s::text <> 'failed' THEN t.error_code
            WHEN t.moves_up THEN coalesce(nullif(%(error_code)s::text, ''), t.error_code)
            ELSE coalesce(t.error_code, nullif(%(error_code)s::text, '')) END AS error_code,
        CASE WHEN %(status)s::text <> 'failed' THEN t.error_message
            WHEN t.moves_up THEN coalesce(nullif(%(error_message)s::text, ''), t.error_message)
            ELSE coalesce(t.error_message, nullif(%(error_message)s::text, '')) END AS error_message
    FROM target AS t
), updated AS (
    UPDATE messages AS m SET
        status = n.status, sent_at = n.sent_at, delivered_at = n.delivered_at, read_at = n.read_at,
        failed_at = n.failed_at, error_code = n.error_code, error_message = n.error_message,
        updated_at = clock_timestamp()
    FROM merged AS n
    WHERE m.tenant_id = n.tenant_id AND m.id = n.id
      AND (m.status, m.sent_at, m.delivered_at, m.read_at, m.failed_at, m.error_code, m.error_message)
          IS DISTINCT FROM (n.status, n.sent_at, n.delivered_at, n.read_at, n.failed_at, n.error_code, n.error_message)
    RETURNING m.*, n.old_status
), history AS (
    INSERT INTO message_status_history (tenant_id, message_id, conversation_id, status, status_changed, status_time)
    SELECT tenant_id, id, conversation_id, %(status)s::text, status <> old_status, %(time)s::timestamptz
    FROM updated
)
SELECT *, true AS changed FROM updated
UNION ALL
SELECT
    tenant_id, id, conversation_id, whatsapp_message_id, genesys_message_id, direction, status, content, media_urls,
    sent_at, delivered_at, read_at, failed_at, error_code, error_message, retry_count, created_at, updated_at,
    status AS old_status, false AS changed
FROM target
WHERE NOT EXISTS (SELECT FROM updated)

-- name: append_status_event
-- The message.status_changed event of the apply_status that ran just before in this transaction, if that changed
-- the message: the row's xmin is then this transaction's id (Database.once runs no savepoints, whose writes would
-- carry another). A statement of its own, not a CTE of apply_status, so that its snapshot is taken after
-- apply_status got the row lock: the tx_id rule of statemgr/events/outbox.py must see the previous writer's event.
-- The payload is statemgr.domain.events.Event.payload() of the message's event (services.messages._message_event).
INSERT INTO events (tenant_id, id, type, conversation_id, payload, tx_id)
SELECT
    m.tenant_id, gen_random_uuid(), %(event_type)s, m.conversation_id,
    jsonb_strip_nulls(jsonb_build_object(
        'conversation_id', m.conversation_id::text, 'message_id', m.id::text, 'message_status', m.status,
        'direction', m.direction, 'at', m.created_at, 'delivered_at', m.delivered_at, 'read_at', m.read_at,
        'error_code', nullif(m.error_code, '')
    )),
    event_tx_id(m.tenant_id, m.conversation_id)
FROM messages AS m
WHERE m.tenant_id = %(tenant_id)s
  AND (m.whatsapp_message_id = %(whatsapp_message_id)s OR m.genesys_message_id = %(genesys_message_id)s)
  AND m.xmin = pg_current_xact_id_if_assigned()::xid

-- name: park_status
-- Parks a report for a message not recorded yet (see take_parked); it expires after ttl_seconds.
INSERT INTO parked_statuses (
    tenant_id, whatsapp_message_id, genesys_message_id, status, status_time, error_code, error_message, expires_at
)
VALUES (
    %(tenant_id)s, %(whatsapp_message_id)s, %(genesys_message_id)s, %(status)s, %(time)s, %(error_code)s,
    %(error_message)s, now() + make_interval(secs => %(ttl_seconds)s)
)

-- name: take_parked
-- Removes the reports parked for a message's ids; the caller applies the unexpired ones (oldest report first).
WITH taken AS (
    DELETE FROM parked_statuses
    WHERE tenant_id = %(tenant_id)s
      AND (whatsapp_message_id = %(whatsapp_message_id)s OR genesys_message_id = %(genesys_message_id)s)
    RETURNING *
)
SELECT *, expires_at <= now() AS expired FROM taken ORDER BY status_time, id

-- name: prune_parked
-- Deletes a bounded batch of the tenant's expired parked reports (skipping any another pruner holds).
WITH expired AS (
    DELETE FROM parked_statuses
    WHERE tenant_id = %(tenant_id)s AND id IN (
        SELECT id FROM parked_statuses
        WHERE tenant_id = %(tenant_id)s AND expires_at <= now()
        ORDER BY expires_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED
    )
    RETURNING 1
)
SELECT count(*) AS expired FROM expired

-- name: count_parked
SELECT count(*) FILTER (WHERE expires_at > now()) AS waiting, count(*) FILTER (WHERE expires_at <= now()) AS expired
FROM parked_statuses WHERE tenant_id = %(tenant_id)s

-- name: retry_message
-- FAILED -> PENDING, counting the attempt, while under the limit; no row otherwise (read the message to say why).
WITH updated AS (
    UPDATE messages SET status = 'pending', retry_count = retry_count + 1, updated_at = clock_timestamp()
    WHERE tenant_id = %(tenant_id)s AND id = %(id)s AND status = 'failed' AND retry_count < %(max_retries)s
    RETURNING *
), history AS (
    INSERT INTO message_status_history (tenant_id, message_id, conversation_id, status, status_changed, status_time)
    SELECT tenant_id, id, conversation_id, 'pending', true, updated_at FROM updated
)
SELECT * FROM updated

-- name: set_provider_id
-- Attaches a provider id that the message does not have yet (no row when it has one already).
UPDATE messages SET
    whatsapp_message_id = coalesce(whatsapp_message_id, %(whatsapp_message_id)s),
    genesys_message_id = coalesce(genesys_message_id, %(genesys_message_id)s),
    updated_at = clock_timestamp()
WHERE tenant_id = %(tenant_id)s AND id = %(id)s
  AND ((%(whatsapp_message_id)s::text IS NOT NULL AND whatsapp_message_id IS NULL)
    OR (%(genesys_message_id)s::text IS NOT NULL AND genesys_message_id IS NULL))
RETURNING *

-- name: touch_conversation
-- A new message is activity; an inbound one (re)opens the 24-hour reply window, never moving its end backwards.
-- Returns the conversation; no row when it is missing or closed.
UPDATE conversations SET
    last_activity = greatest(last_activity, %(time)s::timestamptz),
    window_expires_at = CASE WHEN %(inbound)s::boolean
        THEN greatest(window_expires_at, %(time)s::timestamptz + interval '24 hours')
        ELSE window_expires_at END,
    version = version + 1
WHERE tenant_id = %(tenant_id)s AND id = %(conversation_id)s AND state <> 'closed'
RETURNING *
