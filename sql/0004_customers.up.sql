-- Customers: one per WhatsApp id and tenant. Phone numbers are stored in E.164 (statemgr.domain.phones).
-- name_search is the name folded for search (lower case, accents removed) by statemgr.domain.customers.search_key:
-- PostgreSQL's unaccent() is not IMMUTABLE, so the folding happens in Python, on write and on query alike.
-- pg_trgm and btree_gin are trusted contrib extensions: a database owner may create them.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS btree_gin;

CREATE TABLE customers (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id uuid NOT NULL,
    whatsapp_id text NOT NULL,
    phone_number text,
    name text NOT NULL DEFAULT '',
    name_search text NOT NULL DEFAULT '',
    profile_picture_url text NOT NULL DEFAULT '',
    preferences jsonb NOT NULL DEFAULT '{}',
    metadata jsonb NOT NULL DEFAULT '{}',
    version bigint NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT customers_whatsapp_id_key UNIQUE (tenant_id, whatsapp_id),
    CONSTRAINT customers_phone_e164 CHECK (phone_number ~ '^\+[1-9][0-9]{1,14}$')
);

-- Lookups by phone number (equality) and searches by its start (LIKE '+4420%').
CREATE INDEX customers_phone ON customers (tenant_id, phone_number text_pattern_ops);
-- Partial, case- and accent-insensitive name search (LIKE '%query%' on the folded name), within one tenant.
CREATE INDEX customers_name_search ON customers USING gin (tenant_id, name_search gin_trgm_ops);

ALTER TABLE customers ENABLE ROW LEVEL SECURITY;
ALTER TABLE customers FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON customers
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

GRANT SELECT, INSERT, UPDATE ON customers TO statemgr_app;

ALTER TABLE conversations
    ADD CONSTRAINT conversations_customer_fkey FOREIGN KEY (tenant_id, customer_id) REFERENCES customers (tenant_id, id);
CREATE INDEX IF NOT EXISTS conversations_customer ON conversations (tenant_id, customer_id, created_at DESC, id DESC);
