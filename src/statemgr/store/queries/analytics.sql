-- Analytics: the rollup consumer's reads and its one writing statement (relay role, every tenant), then the
-- reads AnalyticsService answers from (service role, one tenant under row-level security).

-- name: pending_tenants
-- Tenants with events past their analytics cursor below the horizon (see statemgr/events/cursor.py), with the
-- cursor and the tenant's prune floor. One index probe per tenant.
SELECT t.id AS tenant_id, c.tenant_id IS NOT NULL AS has_cursor,
       coalesce(c.tx_id, '0')::text AS tx_id, coalesce(c.seq, 0) AS seq, coalesce(c.next_customer, 0) AS next_customer,
       f.tx_id::text AS floor_tx, f.seq AS floor_seq
FROM tenants t
LEFT JOIN analytics_cursors c ON c.tenant_id = t.id
LEFT JOIN event_log_floors f ON f.tenant_id = t.id
WHERE EXISTS (
    SELECT 1 FROM events e
    WHERE e.tenant_id = t.id
      AND (e.tx_id, e.seq) > (coalesce(c.tx_id, '0'), coalesce(c.seq, 0))
      AND e.tx_id < pg_snapshot_xmin(pg_current_snapshot())
)

-- name: add_cursor
INSERT INTO analytics_cursors (tenant_id) VALUES (%(tenant_id)s) ON CONFLICT (tenant_id) DO NOTHING

-- name: read_events
-- The next events of a tenant's log after the cursor, in cursor order, only below the horizon.
SELECT tx_id::text AS tx_id, seq, type, conversation_id, payload
FROM events
WHERE tenant_id = %(tenant_id)s
  AND (tx_id, seq) > (%(after_tx)s::xid8, %(after_seq)s)
  AND tx_id < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY tx_id, seq
LIMIT %(limit)s

-- name: load_conversations
SELECT * FROM analytics_conversations
WHERE tenant_id = %(tenant_id)s AND conversation_id = ANY(%(ids)s::uuid[])

-- name: load_messages
SELECT * FROM analytics_messages WHERE tenant_id = %(tenant_id)s AND message_id = ANY(%(ids)s::uuid[])

-- name: load_customer_numbers
SELECT customer_id, number, last_seen FROM analytics_customer_numbers
WHERE tenant_id = %(tenant_id)s AND customer_id = ANY(%(ids)s::uuid[])

-- name: load_rollups
SELECT r.* FROM analytics_rollups r
JOIN unnest(%(grains)s::"char"[], %(buckets)s::timestamptz[], %(agents)s::uuid[]) AS k(grain, bucket, agent_id)
  ON r.grain = k.grain AND r.bucket = k.bucket AND r.agent_id = k.agent_id
WHERE r.tenant_id = %(tenant_id)s

-- name: load_customer_sets
SELECT s.grain, s.bucket, s.active, s.created FROM analytics_customer_sets s
JOIN unnest(%(grains)s::"char"[], %(buckets)s::timestamptz[]) AS k(grain, bucket)
  ON s.grain = k.grain AND s.bucket = k.bucket
WHERE s.tenant_id = %(tenant_id)s

-- name: write_batch
-- Everything one batch changed, and the cursor past it, in one statement: atomic on its own (the leader's
-- connection is shared by its duties, so no multi-statement transaction), and a no-op unless the cursor is still
-- where the batch began (`moved`), so a batch is never folded twice. Rollup rows, customer sets and state rows are
-- written whole (the consumer read them first); error codes, open conversations and recent messages as deltas.
WITH moved AS (
    UPDATE analytics_cursors
    SET tx_id = %(to_tx)s::xid8, seq = %(to_seq)s, next_customer = %(next_customer)s, updated_at = now(),
        folded_at = greatest(folded_at, %(folded_at)s::timestamptz)
    WHERE tenant_id = %(tenant_id)s AND tx_id = %(from_tx)s::xid8 AND seq = %(from_seq)s
    RETURNING tenant_id
), rollups AS (
    INSERT INTO analytics_rollups
    SELECT r.* FROM jsonb_populate_recordset(NULL::analytics_rollups, %(rollups)s) AS r, moved
    ON CONFLICT (tenant_id, grain, bucket, agent_id) DO UPDATE SET
        opened = excluded.opened,
        closed = excluded.closed,
        closed_inbound = excluded.closed_inbound,
        closed_outbound = excluded.closed_outbound,
        duration_us = excluded.duration_us,
        first_response_n = excluded.first_response_n,
        first_response_us = excluded.first_response_us,
        response_n = excluded.response_n,
        response_us = excluded.response_us,
        inbound = excluded.inbound,
        outbound = excluded.outbound,
        transfers_in = excluded.transfers_in,
        transfers_out = excluded.transfers_out,
        assigned = excluded.assigned,
        late_replies = excluded.late_replies,
        new_customers = excluded.new_customers,
        delivered = excluded.delivered,
        read = excluded.read,
        failed = excluded.failed,
        to_delivered_n = excluded.to_delivered_n,
        to_delivered_us = excluded.to_delivered_us,
        to_read_n = excluded.to_read_n,
        to_read_us = excluded.to_read_us,
        duration_h = excluded.duration_h,
        first_response_h = excluded.first_response_h,
        response_h = excluded.response_h,
        to_delivered_h = excluded.to_delivered_h,
        to_read_h = excluded.to_read_h
), error_codes AS (
    INSERT INTO analytics_error_codes AS a (tenant_id, grain, bucket, error_code, failed)
    SELECT moved.tenant_id, x.grain, x.bucket, x.error_code, x.failed
    FROM jsonb_to_recordset(%(error_codes)s) AS x(grain "char", bucket timestamptz, error_code text, failed bigint), moved
    ON CONFLICT (tenant_id, grain, bucket, error_code) DO UPDATE SET failed = a.failed + excluded.failed
), customer_sets AS (
    INSERT INTO analytics_customer_sets (tenant_id, grain, bucket, active, created)
    SELECT moved.tenant_id, x.grain, x.bucket, decode(x.active, 'base64'), decode(x.created, 'base64')
    FROM jsonb_to_recordset(%(customer_sets)s) AS x(grain "char", bucket timestamptz, active text, created text), moved
    ON CONFLICT (tenant_id, grain, bucket) DO UPDATE SET active = excluded.active, created = excluded.created
), numbers AS (
    INSERT INTO analytics_customer_numbers AS a (tenant_id, customer_id, number, last_seen)
    SELECT moved.tenant_id, x.customer_id, x.number, x.last_seen
    FROM jsonb_to_recordset(%(numbers)s) AS x(customer_id uuid, number integer, last_seen timestamptz), moved
    ON CONFLICT (tenant_id, customer_id) DO UPDATE SET last_seen = greatest(a.last_seen, excluded.last_seen)
), conversations AS (
    INSERT INTO analytics_conversations
    SELECT r.* FROM jsonb_populate_recordset(NULL::analytics_conversations, %(conversations)s) AS r, moved
    ON CONFLICT (tenant_id, conversation_id) DO UPDATE SET
        agent_id = excluded.agent_id, state = excluded.state, state_since = excluded.state_since,
        first_inbound_at = excluded.first_inbound_at, answered = excluded.answered,
        waiting_since = excluded.waiting_since, last_inbound_at = excluded.last_inbound_at,
        inbound = excluded.inbound, outbound = excluded.outbound
), closed AS (
    DELETE FROM analytics_conversations c USING moved
    WHERE c.tenant_id = moved.tenant_id AND c.conversation_id = ANY(%(closed)s::uuid[])
), messages AS (
    INSERT INTO analytics_messages
    SELECT r.* FROM jsonb_populate_recordset(NULL::analytics_messages, %(messages)s) AS r, moved
    ON CONFLICT (tenant_id, message_id) DO UPDATE SET facts = excluded.facts
), open AS (
    INSERT INTO analytics_open AS a (tenant_id, state, conversations)
    SELECT moved.tenant_id, x.state, x.conversations
    FROM jsonb_to_recordset(%(open)s) AS x(state text, conversations bigint), moved
    ON CONFLICT (tenant_id, state) DO UPDATE SET conversations = a.conversations + excluded.conversations
), recent AS (
    INSERT INTO analytics_recent AS a (tenant_id, second, messages)
    SELECT moved.tenant_id, x.second, x.messages
    FROM jsonb_to_recordset(%(recent)s) AS x(second timestamptz, messages bigint), moved
    ON CONFLICT (tenant_id, second) DO UPDATE SET messages = a.messages + excluded.messages
), expired AS (
    DELETE FROM analytics_recent a USING moved
    WHERE a.tenant_id = moved.tenant_id AND a.second < now() - interval '10 minutes'
)
SELECT count(*) AS moved FROM moved

-- name: skip_to
-- Moves the cursor past events that were pruned before they were folded (counted as a gap, logged).
UPDATE analytics_cursors SET tx_id = %(to_tx)s::xid8, seq = %(to_seq)s, updated_at = now()
WHERE tenant_id = %(tenant_id)s AND (tx_id, seq) < (%(to_tx)s::xid8, %(to_seq)s)

-- name: prune_state
-- One bounded step of pruning the consumer's state, every tenant at once (statemgr.analytics.consumer.prune_state):
-- outbound messages recorded, and customer numbers last used, longer before the tenant's folded event time than
-- the bounds. At most `limit` rows of each table; the counts say whether more are waiting.
WITH old_messages AS (
    SELECT m.tenant_id, m.message_id FROM analytics_cursors c
    CROSS JOIN LATERAL (
        SELECT tenant_id, message_id FROM analytics_messages
        WHERE tenant_id = c.tenant_id AND recorded_at < c.folded_at - %(message_bound)s::interval
        LIMIT %(limit)s) AS m
    LIMIT %(limit)s
), old_customers AS (
    SELECT n.tenant_id, n.customer_id FROM analytics_cursors c
    CROSS JOIN LATERAL (
        SELECT tenant_id, customer_id FROM analytics_customer_numbers
        WHERE tenant_id = c.tenant_id AND last_seen < c.folded_at - %(customer_bound)s::interval
        LIMIT %(limit)s) AS n
    LIMIT %(limit)s
), messages AS (
    DELETE FROM analytics_messages m USING old_messages o
    WHERE m.tenant_id = o.tenant_id AND m.message_id = o.message_id
    RETURNING 1
), customers AS (
    DELETE FROM analytics_customer_numbers n USING old_customers o
    WHERE n.tenant_id = o.tenant_id AND n.customer_id = o.customer_id
    RETURNING 1
)
SELECT (SELECT count(*) FROM messages)::int AS messages, (SELECT count(*) FROM customers)::int AS customers

-- name: reset_tenant
-- Forgets everything folded for a tenant, so the consumer replays its log from the start (statemgr.analytics.consumer
-- .reset). One statement, for the same reasons as write_batch.
WITH a AS (DELETE FROM analytics_rollups WHERE tenant_id = %(tenant_id)s),
     b AS (DELETE FROM analytics_error_codes WHERE tenant_id = %(tenant_id)s),
     c AS (DELETE FROM analytics_customer_sets WHERE tenant_id = %(tenant_id)s),
     d AS (DELETE FROM analytics_customer_numbers WHERE tenant_id = %(tenant_id)s),
     e AS (DELETE FROM analytics_conversations WHERE tenant_id = %(tenant_id)s),
     f AS (DELETE FROM analytics_messages WHERE tenant_id = %(tenant_id)s),
     g AS (DELETE FROM analytics_open WHERE tenant_id = %(tenant_id)s),
     h AS (DELETE FROM analytics_recent WHERE tenant_id = %(tenant_id)s)
DELETE FROM analytics_cursors WHERE tenant_id = %(tenant_id)s

-- The reads of AnalyticsService (service role, the caller's tenant). A period in whole hours is read as its pieces
-- (statemgr.analytics.periods.Period.pieces): its whole UTC weeks from the 'w' rows, the whole days around them from
-- the 'd' rows and the hours at its edges from the 'h' rows, so a 90-day period sums about 60 rows, not 2160.

-- name: totals
-- Sums over the period of the tenant's own rows (agent = the nil UUID); histograms as the concatenation of their
-- stored pairs (statemgr.analytics.histogram).
SELECT agent_id,
       sum(opened)::bigint AS opened,
       sum(closed)::bigint AS closed,
       sum(closed_inbound)::bigint AS closed_inbound,
       sum(closed_outbound)::bigint AS closed_outbound,
       sum(duration_us)::bigint AS duration_us,
       sum(first_response_n)::bigint AS first_response_n,
       sum(first_response_us)::bigint AS first_response_us,
       sum(response_n)::bigint AS response_n,
       sum(response_us)::bigint AS response_us,
       sum(inbound)::bigint AS inbound,
       sum(outbound)::bigint AS outbound,
       sum(transfers_in)::bigint AS transfers_in,
       sum(transfers_out)::bigint AS transfers_out,
       sum(assigned)::bigint AS assigned,
       sum(late_replies)::bigint AS late_replies,
       sum(new_customers)::bigint AS new_customers,
       sum(delivered)::bigint AS delivered,
       sum(read)::bigint AS read,
       sum(failed)::bigint AS failed,
       sum(to_delivered_n)::bigint AS to_delivered_n,
       sum(to_delivered_us)::bigint AS to_delivered_us,
       sum(to_read_n)::bigint AS to_read_n,
       sum(to_read_us)::bigint AS to_read_us,
       string_agg(duration_h, ''::bytea) AS duration_h,
       string_agg(first_response_h, ''::bytea) AS first_response_h,
       string_agg(response_h, ''::bytea) AS response_h,
       string_agg(to_delivered_h, ''::bytea) AS to_delivered_h,
       string_agg(to_read_h, ''::bytea) AS to_read_h
FROM analytics_rollups JOIN unnest(%(grains)s::"char"[], %(froms)s::timestamptz[], %(tos)s::timestamptz[])
    AS p (piece, f, t) ON grain = p.piece AND bucket >= p.f AND bucket < p.t
WHERE tenant_id = %(tenant_id)s
  AND agent_id = %(nil)s::uuid
GROUP BY agent_id

-- name: agent_totals
-- As totals, for GetAgentPerformance: only the figures it shows, one row per agent (all, or one).
SELECT agent_id,
       sum(closed)::bigint AS closed,
       sum(outbound)::bigint AS outbound,
       sum(transfers_in)::bigint AS transfers_in,
       sum(transfers_out)::bigint AS transfers_out,
       sum(assigned)::bigint AS assigned,
       sum(late_replies)::bigint AS late_replies,
       sum(first_response_n)::bigint AS first_response_n,
       sum(first_response_us)::bigint AS first_response_us,
       sum(response_n)::bigint AS response_n,
       sum(response_us)::bigint AS response_us,
       string_agg(first_response_h, ''::bytea) AS first_response_h,
       string_agg(response_h, ''::bytea) AS response_h
FROM analytics_rollups JOIN unnest(%(grains)s::"char"[], %(froms)s::timestamptz[], %(tos)s::timestamptz[])
    AS p (piece, f, t) ON grain = p.piece AND bucket >= p.f AND bucket < p.t
WHERE tenant_id = %(tenant_id)s
  AND agent_id <> %(nil)s::uuid AND (%(agent)s::uuid IS NULL OR agent_id = %(agent)s::uuid)
GROUP BY agent_id

-- name: error_codes
SELECT error_code, sum(failed)::bigint AS failed
FROM analytics_error_codes JOIN unnest(%(grains)s::"char"[], %(froms)s::timestamptz[], %(tos)s::timestamptz[])
    AS p (piece, f, t) ON grain = p.piece AND bucket >= p.f AND bucket < p.t
WHERE tenant_id = %(tenant_id)s
GROUP BY error_code
HAVING sum(failed) > 0
ORDER BY sum(failed) DESC, error_code
LIMIT %(limit)s

-- name: customer_sets
SELECT active, created
FROM analytics_customer_sets JOIN unnest(%(grains)s::"char"[], %(froms)s::timestamptz[], %(tos)s::timestamptz[])
    AS p (piece, f, t) ON grain = p.piece AND bucket >= p.f AND bucket < p.t
WHERE tenant_id = %(tenant_id)s

-- name: volume
-- The tenant's hourly rows of the period, summed per bucket: width_bucket numbers them by the bucket starts given.
SELECT width_bucket(bucket, %(bounds)s::timestamptz[]) AS bucket_number,
       sum(opened)::bigint AS opened, sum(closed)::bigint AS closed,
       sum(inbound)::bigint AS inbound, sum(outbound)::bigint AS outbound
FROM analytics_rollups
WHERE tenant_id = %(tenant_id)s AND grain = 'h' AND agent_id = %(nil)s::uuid
  AND bucket >= %(start)s AND bucket < %(end)s
GROUP BY 1
ORDER BY 1

-- name: open_now
SELECT state, conversations FROM analytics_open WHERE tenant_id = %(tenant_id)s AND conversations <> 0

-- name: live
-- The live view: open conversations by state, the longest wait, messages of the last 60 seconds.
SELECT
    (SELECT coalesce(jsonb_object_agg(state, conversations), '{}')
     FROM analytics_open WHERE tenant_id = %(tenant_id)s AND conversations <> 0) AS open,
    (SELECT min(state_since) FROM analytics_conversations
     WHERE tenant_id = %(tenant_id)s AND state = 'waiting') AS oldest_waiting,
    (SELECT coalesce(sum(messages), 0)::bigint FROM analytics_recent
     WHERE tenant_id = %(tenant_id)s AND second > now() - interval '60 seconds') AS last_minute,
    now() AS now

-- name: lag
-- How far the rollups are behind the tenant's log (at most 100000 events counted), and the tenant's events not yet
-- published to RabbitMQ.
SELECT
    (SELECT count(*) FROM (
        SELECT 1 FROM events e
        WHERE e.tenant_id = %(tenant_id)s AND (e.tx_id, e.seq) > (coalesce(c.tx_id, '0'), coalesce(c.seq, 0))
        LIMIT 100000) AS x) AS rollup_backlog,
    (SELECT extract(epoch FROM now() - min(e.created_at))::float8 FROM (
        SELECT e.created_at FROM events e
        WHERE e.tenant_id = %(tenant_id)s AND (e.tx_id, e.seq) > (coalesce(c.tx_id, '0'), coalesce(c.seq, 0))
        ORDER BY e.tx_id, e.seq LIMIT 1) AS e) AS rollup_lag,
    (SELECT count(*) FROM (
        SELECT 1 FROM events e
        WHERE e.tenant_id = %(tenant_id)s AND e.published_at IS NULL AND e.unroutable_at IS NULL
        LIMIT 100000) AS x) AS event_backlog,
    (SELECT extract(epoch FROM now() - e.created_at)::float8 FROM events e
     WHERE e.tenant_id = %(tenant_id)s AND e.published_at IS NULL AND e.unroutable_at IS NULL
     ORDER BY e.seq LIMIT 1) AS publish_lag
FROM (SELECT 1) AS one
LEFT JOIN analytics_cursors c ON c.tenant_id = %(tenant_id)s

-- name: time_zone
SELECT time_zone FROM tenants WHERE id = %(tenant_id)s
