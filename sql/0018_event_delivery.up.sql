-- Event delivery (issue 8): unroutable events retried until a queue takes them, and event times on the change's clock.
-- Events RabbitMQ returned as unroutable (no queue bound for their routing key) are retried with backoff until a
-- queue takes them or retention prunes them (statemgr/events/relay.py); `statemgr events retry-unroutable` makes the
-- waiting ones due at once, for an operator who has just bound a queue.
ALTER TABLE events
    ADD COLUMN unroutable_attempts integer NOT NULL DEFAULT 0,
    ADD COLUMN unroutable_retry_at timestamptz;

-- The relay's retry pass: the waiting events that are due, soonest first.
CREATE INDEX events_unroutable_waiting ON events (unroutable_retry_at, seq)
    WHERE published_at IS NULL AND unroutable_at IS NOT NULL;

GRANT UPDATE (unroutable_attempts, unroutable_retry_at) ON events TO statemgr_relay;

-- Events found unroutable before this migration were never to be retried; now they are, from the next relay round.
UPDATE events SET unroutable_retry_at = now() WHERE published_at IS NULL AND unroutable_at IS NOT NULL;

-- An event's time (Event.create_time) is when its change was written, on the clock the tables' own history rows use
-- (sql/0003: clock_timestamp(), so a transaction that waited for a row lock does not date its change before the
-- change it waited for); it was the transaction's start (now()).
ALTER TABLE events ALTER COLUMN created_at SET DEFAULT clock_timestamp();
