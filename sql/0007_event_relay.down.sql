-- The role statemgr_relay and its membership are shared by every database of the cluster, so they stay.
DROP POLICY relay_read ON tenants;
REVOKE SELECT (id, event_retention) ON tenants FROM statemgr_relay;
DROP POLICY relay_prune ON events;
DROP POLICY relay_mark ON events;
DROP POLICY relay_read ON events;
REVOKE UPDATE (published_at, unroutable_at) ON events FROM statemgr_relay;
REVOKE SELECT, DELETE ON events FROM statemgr_relay;
DROP INDEX events_unpublished;
ALTER TABLE events DROP COLUMN unroutable_at;
CREATE INDEX events_unpublished ON events (seq) WHERE published_at IS NULL;
REVOKE USAGE ON SCHEMA public FROM statemgr_relay;
