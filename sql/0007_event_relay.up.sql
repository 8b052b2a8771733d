-- The relay's view of the event log. The relay publishes every tenant's events, so it needs to read past the tenant
-- policy; the service role must still have no BYPASSRLS. So a separate role, statemgr_relay (NOLOGIN, NOBYPASSRLS),
-- gets policies that let it read every row, mark rows published (or unroutable) and prune old ones, and nothing
-- else; the service's login role reaches it with SET ROLE on one dedicated connection (statemgr.events.leader).
-- statemgr_app keeps NOINHERIT, so its own queries never gain these rights.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'statemgr_relay') THEN
        CREATE ROLE statemgr_relay NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;  -- another database of this cluster created it at the same moment
END
$$;

DO $$
BEGIN
    IF NOT pg_has_role('statemgr_app', 'statemgr_relay', 'MEMBER') THEN
        GRANT statemgr_relay TO statemgr_app;
    END IF;
EXCEPTION WHEN unique_violation THEN
    NULL;  -- granted by a concurrent migration of another database
END
$$;

GRANT USAGE ON SCHEMA public TO statemgr_relay;

-- An event the broker returned (mandatory flag, no queue bound for its routing key) is settled, not published:
-- retrying would only bounce again until someone binds a queue. See statemgr/events/relay.py.
ALTER TABLE events ADD COLUMN unroutable_at timestamptz;
DROP INDEX events_unpublished;
CREATE INDEX events_unpublished ON events (seq) WHERE published_at IS NULL AND unroutable_at IS NULL;

GRANT SELECT, DELETE ON events TO statemgr_relay;
GRANT UPDATE (published_at, unroutable_at) ON events TO statemgr_relay;
CREATE POLICY relay_read ON events FOR SELECT TO statemgr_relay USING (true);
CREATE POLICY relay_mark ON events FOR UPDATE TO statemgr_relay USING (true) WITH CHECK (true);
CREATE POLICY relay_prune ON events FOR DELETE TO statemgr_relay USING (true);

-- Pruning honours each tenant's event_retention.
GRANT SELECT (id, event_retention) ON tenants TO statemgr_relay;
CREATE POLICY relay_read ON tenants FOR SELECT TO statemgr_relay USING (true);
