-- Pruning the rollup consumer's own state (statemgr/analytics/consumer.py, docs/analytics.md "The consumer's state"):
-- how far in event time each tenant's log is folded, when each customer number was last used, and the indexes the
-- pruning reads in bounded batches. The rollups themselves are figures and are never pruned.

-- The latest event time (payload `at`) folded for the tenant: the clock pruning measures its bounds on, so a
-- consumer catching up after a stop never loses state that the events it has yet to fold still need.
ALTER TABLE analytics_cursors ADD COLUMN folded_at timestamptz;

-- When the customer's number was last used (created, or an inbound message), kept to within a day. Rows from before
-- this migration count as used now: pruned no earlier than the bound after it.
ALTER TABLE analytics_customer_numbers ADD COLUMN last_seen timestamptz NOT NULL DEFAULT now();

CREATE INDEX analytics_customer_numbers_seen ON analytics_customer_numbers (tenant_id, last_seen);
CREATE INDEX analytics_messages_recorded ON analytics_messages (tenant_id, recorded_at);

-- Room on each page for the consumer's rewrites of a row to stay HOT (no index entry, less WAL): a current hour's
-- rollup rows and an open conversation's state are rewritten by every batch that touches them. Pages written from
-- now on get the room.
ALTER TABLE analytics_rollups SET (fillfactor = 70);
ALTER TABLE analytics_customer_sets SET (fillfactor = 70);
ALTER TABLE analytics_conversations SET (fillfactor = 70);
ALTER TABLE analytics_messages SET (fillfactor = 90);
