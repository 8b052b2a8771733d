-- Conversations, their state changes, agent assignments and Genesys id mappings.
-- Every table is keyed by tenant first and guarded by row-level security, like 0001. Times of history rows come
-- from clock_timestamp(), not now(): a transaction that waited for a row lock must not date its change before the
-- change it waited for.

-- btree_gin lets the metadata index lead with tenant_id (a GIN index over uuid needs it). Trusted since PG 13.
CREATE EXTENSION IF NOT EXISTS btree_gin;

CREATE TABLE conversations (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id uuid NOT NULL,
    whatsapp_conversation_id text NOT NULL,
    genesys_conversation_id text,
    -- Superseded Genesys ids, oldest first; a copy of conversation_genesys_ids kept on the row so reads are one row.
    previous_genesys_conversation_ids text[] NOT NULL DEFAULT '{}',
    customer_id uuid,  -- 0004 adds the foreign key to customers
    agent_id uuid,
    state text NOT NULL DEFAULT 'active',
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    closed_at timestamptz,
    last_activity timestamptz NOT NULL DEFAULT clock_timestamp(),
    metadata jsonb NOT NULL DEFAULT '{}',
    version bigint NOT NULL DEFAULT 1,  -- the etag: bumped by every write
    window_expires_at timestamptz,  -- end of WhatsApp's 24-hour reply window, set on inbound messages
    request_id uuid,  -- the creator's idempotency key
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT conversations_request_id_key UNIQUE (tenant_id, request_id),
    CONSTRAINT conversations_state_check CHECK (state IN ('active', 'waiting', 'error', 'closed')),
    CONSTRAINT conversations_closed_at_check CHECK ((state = 'closed') = (closed_at IS NOT NULL)),
    CONSTRAINT conversations_metadata_check CHECK (jsonb_typeof(metadata) = 'object')
);

-- One open conversation per WhatsApp conversation id and tenant: two replicas racing on a first message make one.
CREATE UNIQUE INDEX conversations_one_open ON conversations (tenant_id, whatsapp_conversation_id)
    WHERE state <> 'closed';
-- One open conversation per Genesys conversation id, so an outbound message resolves to one WhatsApp conversation.
CREATE UNIQUE INDEX conversations_genesys_open ON conversations (tenant_id, genesys_conversation_id)
    WHERE state <> 'closed' AND genesys_conversation_id IS NOT NULL;
-- Listing newest first (keyset on created_at, id), alone or by state, agent or customer; lookups by WhatsApp id.
CREATE INDEX conversations_tenant_created ON conversations (tenant_id, created_at DESC, id DESC);
CREATE INDEX conversations_tenant_state ON conversations (tenant_id, state, created_at DESC, id DESC);
CREATE INDEX conversations_tenant_agent ON conversations (tenant_id, agent_id, created_at DESC, id DESC)
    WHERE agent_id IS NOT NULL;
CREATE INDEX conversations_tenant_customer ON conversations (tenant_id, customer_id, created_at DESC, id DESC)
    WHERE customer_id IS NOT NULL;
CREATE INDEX conversations_tenant_whatsapp ON conversations (tenant_id, whatsapp_conversation_id, created_at DESC);
CREATE INDEX conversations_tenant_activity ON conversations (tenant_id, last_activity);
CREATE INDEX conversations_tenant_metadata ON conversations USING gin (tenant_id, metadata jsonb_path_ops);

-- Every state change, with the caller's reason. Creation is not a change: it is conversations.created_at.
CREATE TABLE conversation_state_transitions (
    tenant_id uuid NOT NULL,
    id uuid NOT NULL,
    conversation_id uuid NOT NULL,
    from_state text NOT NULL,
    to_state text NOT NULL,
    reason text NOT NULL DEFAULT '',
    changed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX conversation_state_transitions_conversation
    ON conversation_state_transitions (tenant_id, conversation_id, changed_at);

-- Every assignment to an agent (the first one has no from_agent_id).
CREATE TABLE conversation_assignments (
    tenant_id uuid NOT NULL,
    id uuid NOT NULL,
    conversation_id uuid NOT NULL,
    from_agent_id uuid,
    to_agent_id uuid NOT NULL,
    reason text NOT NULL DEFAULT '',
    assigned_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX conversation_assignments_conversation ON conversation_assignments (tenant_id, conversation_id, assigned_at);
CREATE INDEX conversation_assignments_agent ON conversation_assignments (tenant_id, to_agent_id, assigned_at);

-- Every Genesys id a conversation was mapped to, one row per change: lookups by superseded ids and the history.
-- A Genesys id may appear for several conversations over time (only one open at once: conversations_genesys_open).
CREATE TABLE conversation_genesys_ids (
    tenant_id uuid NOT NULL,
    id uuid NOT NULL,
    conversation_id uuid NOT NULL,
    genesys_conversation_id text NOT NULL,
    previous_genesys_conversation_id text,
    mapped_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX conversation_genesys_ids_lookup
    ON conversation_genesys_ids (tenant_id, genesys_conversation_id, mapped_at DESC);
CREATE INDEX conversation_genesys_ids_conversation ON conversation_genesys_ids (tenant_id, conversation_id, mapped_at);

ALTER TABLE conversations ENABLE ROW LEVEL SECURITY;
ALTER TABLE conversations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON conversations
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

ALTER TABLE conversation_state_transitions ENABLE ROW LEVEL SECURITY;
ALTER TABLE conversation_state_transitions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON conversation_state_transitions
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

ALTER TABLE conversation_assignments ENABLE ROW LEVEL SECURITY;
ALTER TABLE conversation_assignments FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON conversation_assignments
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

ALTER TABLE conversation_genesys_ids ENABLE ROW LEVEL SECURITY;
ALTER TABLE conversation_genesys_ids FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON conversation_genesys_ids
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

-- History rows are append-only for the service; retention deletes conversations (cascading) as the owner.
GRANT SELECT, INSERT, UPDATE ON conversations TO statemgr_app;
GRANT SELECT, INSERT ON conversation_state_transitions, conversation_assignments, conversation_genesys_ids
    TO statemgr_app;
