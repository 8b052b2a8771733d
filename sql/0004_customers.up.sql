-- Customers: one per WhatsApp id and tenant. Phone numbers are stored in E.164 (statemgr.domain.phones).
--
-- Name search. name_search is the name folded by statemgr.domain.customers.search_key (lower case, accents and
-- apostrophes removed, other punctuation as spaces): PostgreSQL's unaccent() is not IMMUTABLE, so the folding is
-- done in Python, on write and on query alike. A pg_trgm index on name_search would be useless here: row-level
-- security is forced, so the planner may use a query's condition in an index scan only if its operator is
-- LEAKPROOF, and LIKE (textlike), like pg_trgm's operators, is not; only a superuser could mark it so. Text
-- comparisons are leakproof, so the search is a btree range over customer_name_terms: each word start of the
-- folded name with the rest of the name ("zoe astrom", "astrom"), kept by a trigger. A query matches the start
-- of any word, or of a run of words ("zoe ast"), as the range term >= query AND term < query-with-last-char+1.
CREATE TABLE customers (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id uuid NOT NULL,
    whatsapp_id text NOT NULL,
    phone_number text COLLATE "C",  -- E.164 is ASCII: C order serves equality, prefix ranges and sorting alike
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

-- Lookups by phone number (equality) and searches by its start, as a range ('+4420' <= n < '+4421') that a
-- generic plan can use too (LIKE $1 cannot), in the order of the page (phone_number, id).
CREATE INDEX customers_phone ON customers (tenant_id, phone_number, id);

CREATE TABLE customer_name_terms (
    tenant_id uuid NOT NULL,
    customer_id uuid NOT NULL,
    term text COLLATE "C" NOT NULL,  -- at most 64 characters
    PRIMARY KEY (tenant_id, term, customer_id),
    FOREIGN KEY (tenant_id, customer_id) REFERENCES customers (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX customer_name_terms_customer ON customer_name_terms (tenant_id, customer_id);

CREATE FUNCTION customer_name_terms_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        DELETE FROM customer_name_terms WHERE tenant_id = OLD.tenant_id AND customer_id = OLD.id;
    END IF;
    INSERT INTO customer_name_terms (tenant_id, customer_id, term)
    SELECT NEW.tenant_id, NEW.id, left(substr(NEW.name_search, p), 64)
    FROM generate_series(1, length(NEW.name_search)) AS p
    WHERE (p = 1 OR substr(NEW.name_search, p - 1, 1) = ' ') AND substr(NEW.name_search, p, 1) <> ' '
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;
CREATE TRIGGER customer_name_terms_insert AFTER INSERT ON customers
    FOR EACH ROW EXECUTE FUNCTION customer_name_terms_sync();
CREATE TRIGGER customer_name_terms_update AFTER UPDATE OF name_search ON customers
    FOR EACH ROW WHEN (OLD.name_search IS DISTINCT FROM NEW.name_search) EXECUTE FUNCTION customer_name_terms_sync();

ALTER TABLE customers ENABLE ROW LEVEL SECURITY;
ALTER TABLE customers FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON customers
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

ALTER TABLE customer_name_terms ENABLE ROW LEVEL SECURITY;
ALTER TABLE customer_name_terms FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON customer_name_terms
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

GRANT SELECT, INSERT, UPDATE ON customers TO statemgr_app;
GRANT SELECT, INSERT, DELETE ON customer_name_terms TO statemgr_app;

-- conversations_tenant_customer (0003) serves this key.
ALTER TABLE conversations
    ADD CONSTRAINT conversations_customer_fkey FOREIGN KEY (tenant_id, customer_id) REFERENCES customers (tenant_id, id);
