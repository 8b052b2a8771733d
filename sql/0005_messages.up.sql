-- Messages of conversations and the history of their delivery statuses.
-- A message is idempotent per tenant on each provider id (partial unique indexes below).
-- Times come from clock_timestamp(), as in 0003: a transaction that waited for a lock must not date its row before
-- the row it waited for, or "the order recorded" would lie.
-- Status rank (DESIGN.md): pending < sent < failed < delivered < read; an update only moves it up.

CREATE FUNCTION message_status_rank(status text) RETURNS integer
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN array_position(ARRAY['pending', 'sent', 'failed', 'delivered', 'read'], status);

-- No foreign key to tenants where a composite one implies it: each would take a KEY SHARE lock on the tenant's row
-- in every writing transaction, and all of a tenant's writers would share that one row's lock.
CREATE TABLE messages (
    tenant_id uuid NOT NULL,
    id uuid NOT NULL,
    conversation_id uuid NOT NULL,
    whatsapp_message_id text,
    genesys_message_id text,
    direction text NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    status text NOT NULL CHECK (message_status_rank(status) IS NOT NULL),
    content text NOT NULL DEFAULT '',
    media_urls text[] NOT NULL DEFAULT '{}',
    sent_at timestamptz,
    delivered_at timestamptz,
    read_at timestamptz,
    failed_at timestamptz,
    error_code text,
    error_message text,
    retry_count integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (tenant_id, id),
    -- Retention deletes conversations as the owner; their messages go with them.
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT messages_has_provider_id CHECK (whatsapp_message_id IS NOT NULL OR genesys_message_id IS NOT NULL)
) WITH (fillfactor = 90);  -- room on each page for the few status updates of a message to stay HOT

CREATE UNIQUE INDEX messages_whatsapp_message_id_key ON messages (tenant_id, whatsapp_message_id)
    WHERE whatsapp_message_id IS NOT NULL;
CREATE UNIQUE INDEX messages_genesys_message_id_key ON messages (tenant_id, genesys_message_id)
    WHERE genesys_message_id IS NOT NULL;
CREATE INDEX messages_conversation ON messages (tenant_id, conversation_id, created_at, id);

-- One row per report that changed a message (and per retry), for conversation timelines.
CREATE TABLE message_status_history (
    tenant_id uuid NOT NULL,
    id bigserial NOT NULL,
    message_id uuid NOT NULL,
    conversation_id uuid NOT NULL,
    status text NOT NULL,
    status_changed boolean NOT NULL,
    status_time timestamptz,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, message_id) REFERENCES messages (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX message_status_history_conversation ON message_status_history (tenant_id, conversation_id, created_at, id);

ALTER TABLE messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE messages FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON messages
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

ALTER TABLE message_status_history ENABLE ROW LEVEL SECURITY;
ALTER TABLE message_status_history FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON message_status_history
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

GRANT SELECT, INSERT, UPDATE ON messages TO statemgr_app;
GRANT SELECT, INSERT ON message_status_history TO statemgr_app;
GRANT USAGE ON SEQUENCE message_status_history_id_seq TO statemgr_app;
