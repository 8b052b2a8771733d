-- Status reports for messages not recorded yet, applied when the message is recorded (or gets the provider id).
-- Entries expire after STATEMGR_PARKED_STATUS_TTL_SECONDS; expired ones are ignored and pruned in bounded batches.
CREATE TABLE parked_statuses (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id bigserial NOT NULL,
    whatsapp_message_id text,
    genesys_message_id text,
    status text NOT NULL CHECK (message_status_rank(status) IS NOT NULL),
    status_time timestamptz NOT NULL,
    error_code text NOT NULL DEFAULT '',
    error_message text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT parked_statuses_one_key CHECK ((whatsapp_message_id IS NULL) <> (genesys_message_id IS NULL))
);
CREATE INDEX parked_statuses_whatsapp ON parked_statuses (tenant_id, whatsapp_message_id)
    WHERE whatsapp_message_id IS NOT NULL;
CREATE INDEX parked_statuses_genesys ON parked_statuses (tenant_id, genesys_message_id)
    WHERE genesys_message_id IS NOT NULL;
CREATE INDEX parked_statuses_expiry ON parked_statuses (tenant_id, expires_at);

ALTER TABLE parked_statuses ENABLE ROW LEVEL SECURITY;
ALTER TABLE parked_statuses FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON parked_statuses
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

-- UPDATE only for the row locks of pruning (FOR UPDATE SKIP LOCKED); no query updates a parked report.
GRANT SELECT, INSERT, UPDATE, DELETE ON parked_statuses TO statemgr_app;
GRANT USAGE ON SEQUENCE parked_statuses_id_seq TO statemgr_app;
