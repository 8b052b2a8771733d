-- What Subscribe needs: room reads, wake-ups, and a record of how far each tenant's log has been pruned.

-- Reads of a few conversations ("rooms") after a cursor, and outbox.append's look-up of a conversation's latest
-- ordering id (see statemgr/events/outbox.py).
CREATE INDEX events_conversation ON events (tenant_id, conversation_id, tx_id, seq) WHERE conversation_id IS NOT NULL;

-- One notification per tenant per writing transaction, sent at commit (PostgreSQL folds duplicates within a
-- transaction). A statement-level trigger costs the writer no extra round trip. The payload is the tenant id only.
CREATE FUNCTION events_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('statemgr_events', t.tenant_id::text) FROM (SELECT DISTINCT tenant_id FROM new_rows) AS t;
    RETURN NULL;
END
$$;

CREATE TRIGGER events_notify AFTER INSERT ON events
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION events_notify();

-- The highest position pruned from each tenant's log: a cursor below it answers OUT_OF_RANGE. Pruning removes a
-- prefix of the log in cursor order, so every event after the floor is still there.
CREATE TABLE event_log_floors (
    tenant_id uuid PRIMARY KEY REFERENCES tenants (id),
    tx_id xid8 NOT NULL,
    seq bigint NOT NULL,
    pruned_at timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE event_log_floors ENABLE ROW LEVEL SECURITY;
ALTER TABLE event_log_floors FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON event_log_floors
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);
CREATE POLICY relay_prune ON event_log_floors TO statemgr_relay USING (true) WITH CHECK (true);

GRANT SELECT ON event_log_floors TO statemgr_app;
GRANT SELECT, INSERT, UPDATE ON event_log_floors TO statemgr_relay;
