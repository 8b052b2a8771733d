-- Data lifecycle: the retention job's archive bookkeeping, erasure audits, and the role both run as.
--
-- The service role (statemgr_app) appends and updates; it deletes no conversation and rewrites no history. The
-- retention job, archive restores and EraseCustomer need a little more: delete archived conversations (their rows
-- cascade), re-insert restored ones, blank free text in history rows, strip event payloads, and list every
-- tenant's retention periods. They get it from statemgr_lifecycle (NOLOGIN, NOBYPASSRLS, member of nothing), which
-- the service role takes with SET LOCAL ROLE for one transaction at a time (statemgr.store.lifecycle). Row-level
-- security still applies to it: apart from reading the tenants' retention periods, it sees the one tenant the
-- transaction names, like the service role.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'statemgr_lifecycle') THEN
        CREATE ROLE statemgr_lifecycle NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;  -- another database of this cluster created it at the same moment
END
$$;

DO $$
BEGIN
    IF NOT pg_has_role('statemgr_app', 'statemgr_lifecycle', 'MEMBER') THEN
        GRANT statemgr_lifecycle TO statemgr_app;
    END IF;
EXCEPTION WHEN unique_violation THEN
    NULL;  -- granted by a concurrent migration of another database
END
$$;

GRANT USAGE ON SCHEMA public TO statemgr_lifecycle;

-- One run of the job archives a tenant's conversations in batches. A batch is claimed (state 'pending', its
-- conversations listed in archived_conversations), written to the object store, read back and checked, then its
-- rows are deleted and it becomes 'archived' in one transaction. A batch whose rows changed meanwhile is
-- 'abandoned' (its objects deleted, its conversations free for a later batch); one past archive_retention is
-- 'expired' (its objects deleted).
CREATE TABLE archive_batches (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id uuid NOT NULL,
    state text NOT NULL DEFAULT 'pending',
    archive_date date NOT NULL,  -- the day the batch was claimed (UTC): its objects' date in the layout
    conversations integer NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    archived_at timestamptz,
    expired_at timestamptz,
    rewritten_at timestamptz,  -- last rewritten by an erasure
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT archive_batches_state_check CHECK (state IN ('pending', 'archived', 'abandoned', 'expired'))
);
CREATE INDEX archive_batches_state ON archive_batches (tenant_id, state, archived_at);

-- The manifest: one object per archived table per batch, with what was verified before the rows were deleted.
CREATE TABLE archive_objects (
    tenant_id uuid NOT NULL,
    batch_id uuid NOT NULL,
    table_name text NOT NULL,
    object_key text NOT NULL,
    row_count integer NOT NULL,
    byte_count bigint NOT NULL,
    sha256 text NOT NULL,
    written_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, batch_id, table_name),
    FOREIGN KEY (tenant_id, batch_id) REFERENCES archive_batches (tenant_id, id) ON DELETE CASCADE
);

-- Where each archived conversation is. At most one live claim per conversation (a batch pending or archived and
-- not restored): a conversation is never archived twice, whichever process runs the job.
CREATE TABLE archived_conversations (
    tenant_id uuid NOT NULL,
    batch_id uuid NOT NULL,
    conversation_id uuid NOT NULL,
    customer_id uuid,
    restored_at timestamptz,
    PRIMARY KEY (tenant_id, batch_id, conversation_id),
    FOREIGN KEY (tenant_id, batch_id) REFERENCES archive_batches (tenant_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX archived_conversations_one_claim ON archived_conversations (tenant_id, conversation_id)
    WHERE restored_at IS NULL;
CREATE INDEX archived_conversations_customer ON archived_conversations (tenant_id, customer_id)
    WHERE customer_id IS NOT NULL;

-- One row per erased customer: who asked (the API key's id), when, and what was removed, as counts. No personal
-- data. The unique key makes EraseCustomer idempotent: a second call finds this row and answers its id.
CREATE TABLE erasure_audits (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id uuid NOT NULL,
    customer_id uuid NOT NULL,
    api_key_id uuid,
    requested_at timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,  -- set once every archive object holding the customer's rows is rewritten
    counts jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT erasure_audits_customer_key UNIQUE (tenant_id, customer_id)
);
CREATE INDEX erasure_audits_incomplete ON erasure_audits (tenant_id) WHERE completed_at IS NULL;

ALTER TABLE archive_batches ENABLE ROW LEVEL SECURITY;
ALTER TABLE archive_batches FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON archive_batches
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);
ALTER TABLE archive_objects ENABLE ROW LEVEL SECURITY;
ALTER TABLE archive_objects FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON archive_objects
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);
ALTER TABLE archived_conversations ENABLE ROW LEVEL SECURITY;
ALTER TABLE archived_conversations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON archived_conversations
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);
ALTER TABLE erasure_audits ENABLE ROW LEVEL SECURITY;
ALTER TABLE erasure_audits FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON erasure_audits
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

-- The service role reads the lifecycle tables (GetConversation of an archived id, the audit of an erasure).
GRANT SELECT ON archive_batches, archive_objects, archived_conversations, erasure_audits TO statemgr_app;

-- The lifecycle role: the bookkeeping, and the live tables' rows it moves, restores or anonymises.
GRANT SELECT, INSERT, UPDATE, DELETE ON archive_batches, archive_objects, archived_conversations TO statemgr_lifecycle;
GRANT SELECT, INSERT, UPDATE ON erasure_audits TO statemgr_lifecycle;
GRANT SELECT, INSERT, UPDATE, DELETE ON conversations TO statemgr_lifecycle;
GRANT SELECT, INSERT, UPDATE ON conversation_state_transitions, conversation_assignments, conversation_genesys_ids
    TO statemgr_lifecycle;
GRANT SELECT, INSERT, UPDATE ON messages TO statemgr_lifecycle;
GRANT SELECT, INSERT ON message_status_history TO statemgr_lifecycle;
GRANT SELECT, INSERT, DELETE ON parked_statuses TO statemgr_lifecycle;
GRANT SELECT, UPDATE ON customers TO statemgr_lifecycle;
GRANT SELECT, INSERT, DELETE ON customer_name_terms TO statemgr_lifecycle;
GRANT SELECT, INSERT ON events TO statemgr_lifecycle;
GRANT UPDATE (payload) ON events TO statemgr_lifecycle;
GRANT USAGE ON SEQUENCE events_seq_seq, message_status_history_id_seq, parked_statuses_id_seq TO statemgr_lifecycle;

-- Listing the tenants and their periods is the job's one read across tenants.
GRANT SELECT (id, closed_conversation_retention, archive_retention, default_region) ON tenants TO statemgr_lifecycle;
CREATE POLICY lifecycle_read ON tenants FOR SELECT TO statemgr_lifecycle USING (true);

-- The job's scan: a tenant's closed conversations, oldest closure first.
CREATE INDEX conversations_tenant_closed ON conversations (tenant_id, closed_at, id) WHERE state = 'closed';
-- Deleting a message cascades to its status history by (tenant_id, message_id): without this index each deleted
-- message would scan the whole history table.
CREATE INDEX message_status_history_message ON message_status_history (tenant_id, message_id);
