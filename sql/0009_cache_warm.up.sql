-- The cache warm-up's read (docs/caching.md, "Warm-up"): the one query of the service that spans tenants.
--
-- The service role sees one tenant per transaction, and row-level security is forced on every table, so not even
-- a table owner that is not a superuser sees rows without app.tenant_id. The warm-up at start wants the recently
-- active open conversations of every tenant, in one bounded query. So: a SECURITY DEFINER function owned by a
-- dedicated role, statemgr_cache_warm (NOLOGIN, NOBYPASSRLS, member of nothing), whose only rights are to read
-- tenant ids and open conversations; the service role may EXECUTE the function and nothing more. The function's
-- answer is bounded (at most 100 000 rows, active since the time given) and holds what the cache holds anyway
-- (conversations: ids, state, metadata); no customer or message row is reachable through it.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'statemgr_cache_warm') THEN
        CREATE ROLE statemgr_cache_warm NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;  -- another database of this cluster created it at the same moment
END
$$;

-- Giving the function to the role takes membership of it (a superuser needs none) and, for the moment of the
-- ALTER, CREATE on the schema.
DO $$
BEGIN
    IF NOT pg_has_role(current_user, 'statemgr_cache_warm', 'MEMBER') THEN
        EXECUTE format('GRANT statemgr_cache_warm TO %I', current_user);
    END IF;
EXCEPTION WHEN unique_violation THEN
    NULL;  -- granted by a concurrent migration of another database
END
$$;

GRANT USAGE ON SCHEMA public TO statemgr_cache_warm;
GRANT SELECT (id) ON tenants TO statemgr_cache_warm;
GRANT SELECT ON conversations TO statemgr_cache_warm;
CREATE POLICY cache_warm_read ON tenants FOR SELECT TO statemgr_cache_warm USING (true);
CREATE POLICY cache_warm_read ON conversations FOR SELECT TO statemgr_cache_warm USING (state <> 'closed');

-- Per tenant, the newest activity first through conversations_tenant_activity (tenant_id, last_activity); then the
-- newest of all. A time-bounded warm-up that stops early has stored the hottest conversations.
CREATE FUNCTION cache_warm_conversations(active_since timestamptz, max_rows integer)
RETURNS SETOF conversations
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
    SELECT c.* FROM public.tenants t
    CROSS JOIN LATERAL (
        SELECT * FROM public.conversations c
        WHERE c.tenant_id = t.id AND c.last_activity >= active_since AND c.state <> 'closed'
        ORDER BY c.last_activity DESC
        LIMIT least(max_rows, 100000)
    ) c
    ORDER BY c.last_activity DESC
    LIMIT least(max_rows, 100000)
$$;

GRANT CREATE ON SCHEMA public TO statemgr_cache_warm;
ALTER FUNCTION cache_warm_conversations(timestamptz, integer) OWNER TO statemgr_cache_warm;
REVOKE CREATE ON SCHEMA public FROM statemgr_cache_warm;
REVOKE ALL ON FUNCTION cache_warm_conversations(timestamptz, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION cache_warm_conversations(timestamptz, integer) TO statemgr_app;
