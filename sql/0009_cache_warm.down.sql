-- The role statemgr_cache_warm and its memberships are shared by every database of the cluster, so they stay.
DROP FUNCTION cache_warm_conversations(timestamptz, integer);
DROP POLICY cache_warm_read ON conversations;
DROP POLICY cache_warm_read ON tenants;
REVOKE SELECT ON conversations FROM statemgr_cache_warm;
REVOKE SELECT (id) ON tenants FROM statemgr_cache_warm;
REVOKE USAGE ON SCHEMA public FROM statemgr_cache_warm;
