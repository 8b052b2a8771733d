-- The data lifecycle (statemgr.jobs): archive batches, restores and erasures. Every query runs in a transaction
-- that took the statemgr_lifecycle role (become_lifecycle) and, but for retention_policies, names one tenant.

-- name: become_lifecycle
SET LOCAL ROLE statemgr_lifecycle

-- name: retention_policies
SELECT id AS tenant_id, closed_conversation_retention, archive_retention FROM tenants
WHERE %(tenant_id)s::uuid IS NULL OR id = %(tenant_id)s::uuid
ORDER BY id

-- name: count_due
-- What a run would archive now (a dry run's figure): closed conversations past retention with no claim on them.
SELECT count(*) AS conversations FROM conversations c
WHERE c.tenant_id = %(tenant_id)s AND c.state = 'closed' AND c.closed_at < now() - %(retention)s::interval
  AND NOT EXISTS (
      SELECT FROM archived_conversations a
      WHERE a.tenant_id = c.tenant_id AND a.conversation_id = c.id
        AND (a.restored_at IS NULL OR a.restored_at > now() - %(retention)s::interval)
  )

-- name: claim_batch
-- Claims due conversations for a new pending batch (none: no batch is created): at most `limit` of them, and no
-- more than `max_messages` messages in all, so a batch's transactions stay short however long its conversations
-- are (the first conversation is taken whatever its size: a batch of one). A conversation restored within the last
-- retention period stays live for that long. Only the conversations taken are locked; SKIP LOCKED: one being
-- written is left for the next batch.
WITH candidates AS (
    SELECT c.id, c.closed_at FROM conversations c
    WHERE c.tenant_id = %(tenant_id)s AND c.state = 'closed' AND c.closed_at < now() - %(retention)s::interval
      AND NOT EXISTS (
          SELECT FROM archived_conversations a
          WHERE a.tenant_id = c.tenant_id AND a.conversation_id = c.id
            AND (a.restored_at IS NULL OR a.restored_at > now() - %(retention)s::interval)
      )
    ORDER BY c.closed_at, c.id
    LIMIT %(limit)s
), sized AS (
    SELECT c.id, row_number() OVER w AS position, sum(m.messages) OVER w AS messages_so_far
    FROM candidates c
    CROSS JOIN LATERAL (
        SELECT count(*) AS messages FROM messages
        WHERE tenant_id = %(tenant_id)s AND conversation_id = c.id
    ) m
    WINDOW w AS (ORDER BY c.closed_at, c.id)
), due AS (
    SELECT c.id, c.customer_id FROM conversations c
    JOIN sized ON c.id = sized.id
    WHERE c.tenant_id = %(tenant_id)s AND (sized.position = 1 OR sized.messages_so_far <= %(max_messages)s)
      -- again here: a row changed since the statement began is checked anew when locked, by this level's conditions
      AND c.state = 'closed' AND c.closed_at < now() - %(retention)s::interval
    FOR UPDATE OF c SKIP LOCKED
), batch AS (
    INSERT INTO archive_batches (tenant_id, id, archive_date, conversations)
    SELECT %(tenant_id)s, %(batch_id)s, %(archive_date)s, count(*) FROM due HAVING count(*) > 0
    RETURNING id
)
INSERT INTO archived_conversations (tenant_id, batch_id, conversation_id, customer_id)
SELECT %(tenant_id)s, batch.id, due.id, due.customer_id FROM due CROSS JOIN batch
RETURNING conversation_id

-- name: pending_batches
SELECT id, archive_date FROM archive_batches
WHERE tenant_id = %(tenant_id)s AND state = 'pending'
ORDER BY created_at, id

-- name: batch_conversations
SELECT conversation_id FROM archived_conversations
WHERE tenant_id = %(tenant_id)s AND batch_id = %(batch_id)s
ORDER BY conversation_id

-- The archive_* queries read a batch's rows, each with its row version (xmin) last: the job sums the versions and
-- counts the rows per table (the batch's fingerprint), and compares them with what the purge_* queries delete under
-- the conversations' locks: any insert, update or delete of a batch's row in between changes them (an update gives
-- the row a newer xmin), and the batch is abandoned instead.

-- name: archive_conversations
SELECT *, xmin::text::bigint AS row_version FROM conversations
WHERE tenant_id = %(tenant_id)s AND id = ANY(%(conversation_ids)s::uuid[])
ORDER BY id

-- name: archive_conversation_state_transitions
SELECT *, xmin::text::bigint AS row_version FROM conversation_state_transitions
WHERE tenant_id = %(tenant_id)s AND conversation_id = ANY(%(conversation_ids)s::uuid[])
ORDER BY conversation_id, changed_at, id

-- name: archive_conversation_assignments
SELECT *, xmin::text::bigint AS row_version FROM conversation_assignments
WHERE tenant_id = %(tenant_id)s AND conversation_id = ANY(%(conversation_ids)s::uuid[])
ORDER BY conversation_id, assigned_at, id

-- name: archive_conversation_genesys_ids
SELECT *, xmin::text::bigint AS row_version FROM conversation_genesys_ids
WHERE tenant_id = %(tenant_id)s AND conversation_id = ANY(%(conversation_ids)s::uuid[])
ORDER BY conversation_id, mapped_at, id

-- name: archive_messages
SELECT *, xmin::text::bigint AS row_version FROM messages
WHERE tenant_id = %(tenant_id)s AND conversation_id = ANY(%(conversation_ids)s::uuid[])
ORDER BY conversation_id, created_at, id

-- name: archive_message_status_history
SELECT *, xmin::text::bigint AS row_version FROM message_status_history
WHERE tenant_id = %(tenant_id)s AND conversation_id = ANY(%(conversation_ids)s::uuid[])
ORDER BY id

-- name: archive_parked_statuses
-- Reports parked under a provider id of one of the batch's messages (one that arrived after the message lost the
-- id, or for its other id).
SELECT p.*, p.xmin::text::bigint AS row_version FROM parked_statuses p
WHERE p.tenant_id = %(tenant_id)s
  AND (p.whatsapp_message_id IN (
           SELECT whatsapp_message_id FROM messages
           WHERE tenant_id = %(tenant_id)s AND conversation_id = ANY(%(conversation_ids)s::uuid[]))
       OR p.genesys_message_id IN (
           SELECT genesys_message_id FROM messages
           WHERE tenant_id = %(tenant_id)s AND conversation_id = ANY(%(conversation_ids)s::uuid[])))
ORDER BY p.id

-- name: lock_batch
-- The batch row, so one process at a time works on it (finishing, abandoning, expiring, rewriting, restoring).
SELECT id, state, archive_date FROM archive_batches
WHERE tenant_id = %(tenant_id)s AND id = %(batch_id)s
FOR UPDATE

-- name: lock_conversations
SELECT id FROM conversations
WHERE tenant_id = %(tenant_id)s AND id = ANY(%(conversation_ids)s::uuid[])
ORDER BY id
FOR UPDATE

-- name: record_object
INSERT INTO archive_objects (tenant_id, batch_id, table_name, object_key, row_count, byte_count, sha256)
VALUES (%(tenant_id)s, %(batch_id)s, %(table_name)s, %(object_key)s, %(row_count)s, %(byte_count)s, %(sha256)s)
ON CONFLICT (tenant_id, batch_id, table_name) DO UPDATE SET
    object_key = excluded.object_key, row_count = excluded.row_count, byte_count = excluded.byte_count,
    sha256 = excluded.sha256, written_at = now()

-- The purge_* queries delete a batch's rows, children first (so no ON DELETE CASCADE has rows left to find), each
-- returning the count and version sum of what it deleted, to be compared with what was read (see archive_*).

-- name: purge_parked_statuses
-- Before the messages: reports are matched by their provider ids (EraseCustomer deletes a customer's this way too).
WITH gone AS (
    DELETE FROM parked_statuses p
    WHERE p.tenant_id = %(tenant_id)s
      AND (p.whatsapp_message_id IN (
               SELECT whatsapp_message_id FROM messages
               WHERE tenant_id = %(tenant_id)s AND conversation_id = ANY(%(conversation_ids)s::uuid[]))
           OR p.genesys_message_id IN (
               SELECT genesys_message_id FROM messages
               WHERE tenant_id = %(tenant_id)s AND conversation_id = ANY(%(conversation_ids)s::uuid[])))
    RETURNING p.xmin
)
SELECT count(*) AS row_count, coalesce(sum(xmin::text::bigint), 0) AS version_sum FROM gone

-- name: purge_message_status_history
WITH gone AS (
    DELETE FROM message_status_history WHERE tenant_id = %(tenant_id)s AND conversation_id = ANY(%(conversation_ids)s::uuid[])
    RETURNING xmin
)
SELECT count(*) AS row_count, coalesce(sum(xmin::text::bigint), 0) AS version_sum FROM gone

-- name: purge_messages
WITH gone AS (
    DELETE FROM messages WHERE tenant_id = %(tenant_id)s AND conversation_id = ANY(%(conversation_ids)s::uuid[])
    RETURNING xmin
)
SELECT count(*) AS row_count, coalesce(sum(xmin::text::bigint), 0) AS version_sum FROM gone

-- name: purge_conversation_genesys_ids
WITH gone AS (
    DELETE FROM conversation_genesys_ids WHERE tenant_id = %(tenant_id)s AND conversation_id = ANY(%(conversation_ids)s::uuid[])
    RETURNING xmin
)
SELECT count(*) AS row_count, coalesce(sum(xmin::text::bigint), 0) AS version_sum FROM gone

-- name: purge_conversation_assignments
WITH gone AS (
    DELETE FROM conversation_assignments WHERE tenant_id = %(tenant_id)s AND conversation_id = ANY(%(conversation_ids)s::uuid[])
    RETURNING xmin
)
SELECT count(*) AS row_count, coalesce(sum(xmin::text::bigint), 0) AS version_sum FROM gone

-- name: purge_conversation_state_transitions
WITH gone AS (
    DELETE FROM conversation_state_transitions WHERE tenant_id = %(tenant_id)s AND conversation_id = ANY(%(conversation_ids)s::uuid[])
    RETURNING xmin
)
SELECT count(*) AS row_count, coalesce(sum(xmin::text::bigint), 0) AS version_sum FROM gone

-- name: purge_conversations
WITH gone AS (
    DELETE FROM conversations WHERE tenant_id = %(tenant_id)s AND id = ANY(%(conversation_ids)s::uuid[])
    RETURNING xmin
)
SELECT count(*) AS row_count, coalesce(sum(xmin::text::bigint), 0) AS version_sum FROM gone

-- name: mark_archived
UPDATE archive_batches SET state = 'archived', archived_at = now()
WHERE tenant_id = %(tenant_id)s AND id = %(batch_id)s AND state = 'pending'

-- name: abandon_batch
-- The batch's rows changed after they were read: its objects are gone already; its conversations are free again.
WITH freed AS (
    DELETE FROM archived_conversations WHERE tenant_id = %(tenant_id)s AND batch_id = %(batch_id)s
)
UPDATE archive_batches SET state = 'abandoned'
WHERE tenant_id = %(tenant_id)s AND id = %(batch_id)s AND state = 'pending'

-- name: batch_objects
SELECT table_name, object_key, row_count, byte_count, sha256 FROM archive_objects
WHERE tenant_id = %(tenant_id)s AND batch_id = %(batch_id)s
ORDER BY table_name

-- name: expired_batches
SELECT id, archive_date FROM archive_batches
WHERE tenant_id = %(tenant_id)s AND state = 'archived' AND archived_at < now() - %(archive_retention)s::interval
ORDER BY archived_at, id
LIMIT %(limit)s

-- name: count_expired
SELECT count(*) AS batches FROM archive_batches
WHERE tenant_id = %(tenant_id)s AND state = 'archived' AND archived_at < now() - %(archive_retention)s::interval

-- name: expire_batch
-- Its objects are deleted already; the manifest and the conversations' places go, the batch row stays as a record.
WITH objects AS (
    DELETE FROM archive_objects WHERE tenant_id = %(tenant_id)s AND batch_id = %(batch_id)s
), places AS (
    DELETE FROM archived_conversations WHERE tenant_id = %(tenant_id)s AND batch_id = %(batch_id)s
)
UPDATE archive_batches SET state = 'expired', expired_at = now()
WHERE tenant_id = %(tenant_id)s AND id = %(batch_id)s AND state = 'archived'

-- name: find_archived
-- The archived batch that holds a conversation (not restored since).
SELECT a.batch_id FROM archived_conversations a
JOIN archive_batches b ON b.tenant_id = a.tenant_id AND b.id = a.batch_id
WHERE a.tenant_id = %(tenant_id)s AND a.conversation_id = %(conversation_id)s AND a.restored_at IS NULL
  AND b.state = 'archived'

-- name: conversation_exists
SELECT EXISTS (SELECT FROM conversations WHERE tenant_id = %(tenant_id)s AND id = %(conversation_id)s) AS live

-- name: mark_restored
UPDATE archived_conversations SET restored_at = now()
WHERE tenant_id = %(tenant_id)s AND batch_id = %(batch_id)s AND conversation_id = %(conversation_id)s

-- name: restore_conversations
INSERT INTO conversations SELECT * FROM jsonb_populate_recordset(NULL::conversations, %(rows)s)

-- name: restore_conversation_state_transitions
INSERT INTO conversation_state_transitions
SELECT * FROM jsonb_populate_recordset(NULL::conversation_state_transitions, %(rows)s)

-- name: restore_conversation_assignments
INSERT INTO conversation_assignments SELECT * FROM jsonb_populate_recordset(NULL::conversation_assignments, %(rows)s)

-- name: restore_conversation_genesys_ids
INSERT INTO conversation_genesys_ids SELECT * FROM jsonb_populate_recordset(NULL::conversation_genesys_ids, %(rows)s)

-- name: restore_messages
INSERT INTO messages SELECT * FROM jsonb_populate_recordset(NULL::messages, %(rows)s)

-- name: restore_message_status_history
INSERT INTO message_status_history SELECT * FROM jsonb_populate_recordset(NULL::message_status_history, %(rows)s)

-- name: restore_parked_statuses
INSERT INTO parked_statuses SELECT * FROM jsonb_populate_recordset(NULL::parked_statuses, %(rows)s)
ON CONFLICT DO NOTHING

-- name: find_audit
SELECT id, completed_at FROM erasure_audits WHERE tenant_id = %(tenant_id)s AND customer_id = %(customer_id)s

-- name: incomplete_audits
SELECT id, customer_id FROM erasure_audits WHERE tenant_id = %(tenant_id)s AND completed_at IS NULL ORDER BY id

-- name: lock_customer
SELECT id, whatsapp_id, phone_number FROM customers
WHERE tenant_id = %(tenant_id)s AND id = %(customer_id)s
FOR UPDATE

-- name: lock_customer_conversations
SELECT id, state, whatsapp_conversation_id, genesys_conversation_id, previous_genesys_conversation_ids
FROM conversations
WHERE tenant_id = %(tenant_id)s AND customer_id = %(customer_id)s
ORDER BY id
FOR UPDATE

-- name: erase_conversations
-- Anonymous records stay: the WhatsApp conversation id (the customer's number, often) and the metadata go, and an
-- open conversation is closed, so the next inbound message from that number opens a new one.
UPDATE conversations SET
    whatsapp_conversation_id = 'erased:' || id,
    metadata = '{}',
    state = 'closed',
    closed_at = coalesce(closed_at, clock_timestamp()),
    version = version + 1
WHERE tenant_id = %(tenant_id)s AND id = ANY(%(conversation_ids)s::uuid[])

-- name: record_erasure_closes
INSERT INTO conversation_state_transitions (tenant_id, id, conversation_id, from_state, to_state, reason)
SELECT %(tenant_id)s, gen_random_uuid(), closed.id, closed.state, 'closed', 'customer erased'
FROM unnest(%(conversation_ids)s::uuid[], %(states)s::text[]) AS closed (id, state)

-- name: erase_transition_reasons
UPDATE conversation_state_transitions SET reason = ''
WHERE tenant_id = %(tenant_id)s AND conversation_id = ANY(%(conversation_ids)s::uuid[]) AND reason <> ''

-- name: erase_assignment_reasons
UPDATE conversation_assignments SET reason = ''
WHERE tenant_id = %(tenant_id)s AND conversation_id = ANY(%(conversation_ids)s::uuid[]) AND reason <> ''

-- name: erase_messages
-- Contents, media and error texts go; a WhatsApp message id (which encodes the number) becomes a placeholder.
UPDATE messages SET
    content = '',
    media_urls = '{}',
    whatsapp_message_id = CASE WHEN whatsapp_message_id IS NULL THEN NULL ELSE 'erased:' || id END,
    error_message = CASE WHEN error_message IS NULL THEN NULL ELSE '' END,
    updated_at = clock_timestamp()
WHERE tenant_id = %(tenant_id)s AND conversation_id = ANY(%(conversation_ids)s::uuid[])

-- name: erase_customer
UPDATE customers SET
    whatsapp_id = 'erased:' || id,
    phone_number = NULL,
    name = '',
    name_search = '',
    profile_picture_url = '',
    preferences = '{}',
    metadata = '{}',
    version = version + 1,
    updated_at = now()
WHERE tenant_id = %(tenant_id)s AND id = %(customer_id)s

-- name: erase_event_payloads
-- Events carry ids and states only; the Genesys conversation id is the one that points at another system's copy.
UPDATE events SET payload = payload - 'genesys_conversation_id'
WHERE tenant_id = %(tenant_id)s AND conversation_id = ANY(%(conversation_ids)s::uuid[])
  AND payload ? 'genesys_conversation_id'

-- name: insert_audit
INSERT INTO erasure_audits (tenant_id, id, customer_id, api_key_id, counts)
VALUES (%(tenant_id)s, %(id)s, %(customer_id)s, %(api_key_id)s, %(counts)s)

-- name: customer_batches
-- The archived batches holding the customer's conversations, with those conversations' ids.
SELECT a.batch_id, b.archive_date, array_agg(a.conversation_id ORDER BY a.conversation_id) AS conversation_ids
FROM archived_conversations a
JOIN archive_batches b ON b.tenant_id = a.tenant_id AND b.id = a.batch_id
WHERE a.tenant_id = %(tenant_id)s AND a.customer_id = %(customer_id)s AND b.state = 'archived'
GROUP BY a.batch_id, b.archive_date
ORDER BY a.batch_id

-- name: mark_rewritten
UPDATE archive_batches SET rewritten_at = now() WHERE tenant_id = %(tenant_id)s AND id = %(batch_id)s

-- name: complete_audit
UPDATE erasure_audits SET completed_at = now(), counts = counts || %(counts)s
WHERE tenant_id = %(tenant_id)s AND id = %(id)s

-- name: try_run_lock
-- One retention run at a time in the cluster, whoever starts it (the leader's job, an operator's CLI).
SELECT pg_try_advisory_lock(%(key)s) AS taken
