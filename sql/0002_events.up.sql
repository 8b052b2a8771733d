-- The outbox / event log. A state change and its event commit in one transaction.
-- tx_id records the writing transaction so readers can tell which rows may still be joined by slower transactions
-- (see statemgr/events for how the cursor uses it). Events carry ids and states only, never personal data.
CREATE TABLE events (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    seq bigserial NOT NULL,
    id uuid NOT NULL,
    tx_id xid8 NOT NULL DEFAULT pg_current_xact_id(),
    type text NOT NULL,
    conversation_id uuid,
    payload jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz,
    PRIMARY KEY (tenant_id, seq),
    CONSTRAINT events_id_key UNIQUE (tenant_id, id)
);
CREATE INDEX events_tenant_tx_seq ON events (tenant_id, tx_id, seq);
CREATE INDEX events_unpublished ON events (seq) WHERE published_at IS NULL;

ALTER TABLE events ENABLE ROW LEVEL SECURITY;
ALTER TABLE events FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON events
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

GRANT SELECT, INSERT ON events TO statemgr_app;
GRANT USAGE ON SEQUENCE events_seq_seq TO statemgr_app;
