-- Tenancy: tenants, their API keys and retention periods; the service role; row-level security.
-- The service role owns nothing and has no BYPASSRLS; every tenant table has RLS enabled and forced, and its
-- policy reads the tenant set per transaction with set_config('app.tenant_id', ..., true).

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'statemgr_app') THEN
        CREATE ROLE statemgr_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;  -- another database of this cluster created it at the same moment
END
$$;

GRANT USAGE ON SCHEMA public TO statemgr_app;

CREATE TABLE tenants (
    id uuid PRIMARY KEY,
    display_name text NOT NULL,
    default_region text NOT NULL DEFAULT 'US',
    closed_conversation_retention interval NOT NULL DEFAULT '90 days',
    archive_retention interval NOT NULL DEFAULT '365 days',
    event_retention interval NOT NULL DEFAULT '7 days',
    retention_updated_at timestamptz NOT NULL DEFAULT now(),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id uuid NOT NULL,
    display_name text NOT NULL DEFAULT '',
    key_hash bytea NOT NULL,
    key_prefix text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz,
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT api_keys_hash_key UNIQUE (tenant_id, key_hash)
);

ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenants
    USING (id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON api_keys
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

GRANT SELECT, INSERT, UPDATE ON tenants, api_keys TO statemgr_app;
