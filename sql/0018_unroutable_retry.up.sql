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
