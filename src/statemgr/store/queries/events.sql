-- The event log (outbox). Readers and the relay; statemgr/events/cursor.py explains the (tx_id, seq) order.

-- name: append
-- tx_id: see the function event_tx_id (sql/0010) and statemgr/events/outbox.py.
INSERT INTO events (tenant_id, id, type, conversation_id, payload, tx_id)
VALUES (
    %(tenant_id)s, %(id)s, %(type)s, %(conversation_id)s, %(payload)s,
    event_tx_id(%(tenant_id)s, %(conversation_id)s)
)

-- name: read_tenant
-- One page of a tenant's log after a position (and up to a bound), only rows below the snapshot's horizon, with the
-- horizon, whether rows wait above it ("held": committed, or in progress, behind an older open transaction) and the
-- tenant's prune floor: all from one statement, so one snapshot, so they agree.
SELECT h.xmin::text AS horizon, h.held, f.tx_id::text AS floor_tx, f.seq AS floor_seq,
       e.tx_id::text AS tx_id, e.seq, e.id, e.type, e.conversation_id, e.payload, e.created_at
FROM (
    SELECT s.xmin, EXISTS (
        SELECT 1 FROM events x
        WHERE x.tenant_id = %(tenant_id)s AND x.tx_id >= s.xmin
          AND (x.tx_id, x.seq) > (%(after_tx)s::xid8, %(after_seq)s)
    ) AS held
    FROM (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin) AS s
) AS h
LEFT JOIN event_log_floors f ON f.tenant_id = %(tenant_id)s
LEFT JOIN LATERAL (
    SELECT * FROM events
    WHERE tenant_id = %(tenant_id)s
      AND (tx_id, seq) > (%(after_tx)s::xid8, %(after_seq)s)
      AND (tx_id, seq) <= (%(upto_tx)s::xid8, %(upto_seq)s)
      AND tx_id < h.xmin
      AND (cardinality(%(types)s::text[]) = 0 OR type = ANY(%(types)s::text[]))
    ORDER BY tx_id, seq
    LIMIT %(limit)s
) AS e ON true
ORDER BY e.tx_id, e.seq

-- name: read_rooms
-- As read_tenant, for the events of a few conversations ("held" still looks at the whole tenant: it only makes the
-- reader look again sooner).
SELECT h.xmin::text AS horizon, h.held, f.tx_id::text AS floor_tx, f.seq AS floor_seq,
       e.tx_id::text AS tx_id, e.seq, e.id, e.type, e.conversation_id, e.payload, e.created_at
FROM (
    SELECT s.xmin, EXISTS (
        SELECT 1 FROM events x
        WHERE x.tenant_id = %(tenant_id)s AND x.tx_id >= s.xmin
          AND (x.tx_id, x.seq) > (%(after_tx)s::xid8, %(after_seq)s)
    ) AS held
    FROM (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin) AS s
) AS h
LEFT JOIN event_log_floors f ON f.tenant_id = %(tenant_id)s
LEFT JOIN LATERAL (
    SELECT * FROM events
    WHERE tenant_id = %(tenant_id)s
      AND conversation_id = ANY(%(conversation_ids)s::uuid[])
      AND (tx_id, seq) > (%(after_tx)s::xid8, %(after_seq)s)
      AND (tx_id, seq) <= (%(upto_tx)s::xid8, %(upto_seq)s)
      AND tx_id < h.xmin
      AND (cardinality(%(types)s::text[]) = 0 OR type = ANY(%(types)s::text[]))
    ORDER BY tx_id, seq
    LIMIT %(limit)s
) AS e ON true
ORDER BY e.tx_id, e.seq

-- name: now
-- "Now" for a from_now subscription: the horizon, and the tenant's events already visible at or above it (committed
-- before now, but above the horizon because an older transaction is still open somewhere); it skips those.
SELECT s.xmin::text AS horizon,
       ARRAY(SELECT x.seq FROM events x WHERE x.tenant_id = %(tenant_id)s AND x.tx_id >= s.xmin LIMIT 100000) AS visible
FROM (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin) AS s

-- name: unpublished
-- The relay's next batch, every tenant (relay role). In seq order: a conversation's events get their seq while the
-- writer holds the conversation's row lock, so seq order is that conversation's commit order.
SELECT tenant_id, tx_id::text AS tx_id, seq, id, type, conversation_id, payload, created_at
FROM events
WHERE published_at IS NULL AND unroutable_at IS NULL
ORDER BY seq
LIMIT %(limit)s

-- name: unroutable_due
-- The relay's retry pass: events returned as unroutable whose next attempt is due, every tenant (relay role). Events
-- returned together share their retry time, so one conversation's events still go out in seq order among themselves.
SELECT tenant_id, tx_id::text AS tx_id, seq, id, type, conversation_id, payload, created_at
FROM events
WHERE published_at IS NULL AND unroutable_at IS NOT NULL AND unroutable_retry_at <= now()
ORDER BY unroutable_retry_at, seq
LIMIT %(limit)s

-- name: mark_published
-- Also for a retried event that a queue took at last: unroutable_at stays as a record of its wait.
UPDATE events SET published_at = now(), unroutable_retry_at = NULL
WHERE seq = ANY(%(seqs)s::bigint[]) AND published_at IS NULL

-- name: mark_unroutable
-- Returned (again): the next attempt after first_seconds, doubling per attempt, at most max_seconds.
UPDATE events
SET unroutable_at = coalesce(unroutable_at, now()),
    unroutable_attempts = unroutable_attempts + 1,
    unroutable_retry_at = now() + make_interval(
        secs => least(%(max_seconds)s::float8, %(first_seconds)s::float8 * power(2, least(unroutable_attempts, 30)))
    )
WHERE seq = ANY(%(seqs)s::bigint[]) AND published_at IS NULL

-- name: retry_unroutable_now
-- `statemgr events retry-unroutable`: every waiting event (of one tenant, or all) is due at the relay's next round.
UPDATE events SET unroutable_retry_at = now()
WHERE published_at IS NULL AND unroutable_at IS NOT NULL
  AND (%(tenant_id)s::uuid IS NULL OR tenant_id = %(tenant_id)s::uuid)

-- name: backlog
-- Unpublished events (the relay's queue) and the unroutable ones waiting for a retry, each from its partial index.
SELECT (SELECT count(*) FROM events WHERE published_at IS NULL AND unroutable_at IS NULL) AS events,
       (SELECT extract(epoch FROM now() - min(created_at))::float8
        FROM events WHERE published_at IS NULL AND unroutable_at IS NULL) AS oldest_seconds,
       (SELECT count(*) FROM events WHERE published_at IS NULL AND unroutable_at IS NOT NULL) AS unroutable

-- name: retention_periods
-- Each tenant's event retention, capped by the operator's global period (relay role).
SELECT id AS tenant_id, least(event_retention, make_interval(secs => %(cap_seconds)s)) AS retention
FROM tenants

-- name: prune_tenant
-- Deletes the longest prefix (in cursor order, at most `batch` rows) of a tenant's log that is old enough, and
-- raises the tenant's floor to its last position, in one statement. Old enough: published (or found unroutable)
-- longer ago than the retention period; with no relay configured, created that long ago. Only rows below the
-- horizon are candidates, so no transaction still running can later add a row behind the floor.
WITH horizon AS (
    SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin
), head AS (
    SELECT e.tenant_id, e.seq, e.tx_id,
           e.tx_id < horizon.xmin
           AND CASE WHEN %(require_published)s
                    THEN coalesce(e.published_at, e.unroutable_at) < now() - %(retention)s::interval
                    ELSE e.created_at < now() - %(retention)s::interval
               END AS old
    FROM events e, horizon
    WHERE e.tenant_id = %(tenant_id)s
    ORDER BY e.tx_id, e.seq
    LIMIT %(batch)s
), prefix AS (
    SELECT tenant_id, seq, tx_id, bool_and(coalesce(old, false)) OVER (ORDER BY tx_id, seq) AS prunable FROM head
), deleted AS (
    DELETE FROM events e USING prefix p
    WHERE p.prunable AND e.tenant_id = p.tenant_id AND e.seq = p.seq
    RETURNING e.tx_id, e.seq
), floor AS (
    INSERT INTO event_log_floors AS f (tenant_id, tx_id, seq, pruned_at)
    SELECT %(tenant_id)s, tx_id, seq, now() FROM deleted ORDER BY tx_id DESC, seq DESC LIMIT 1
    ON CONFLICT (tenant_id) DO UPDATE SET tx_id = EXCLUDED.tx_id, seq = EXCLUDED.seq, pruned_at = EXCLUDED.pruned_at
    RETURNING 1
)
SELECT (SELECT count(*) FROM deleted) AS deleted, (SELECT count(*) FROM floor) AS floors
