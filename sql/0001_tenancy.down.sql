-- The role statemgr_app is shared by every database of the cluster, so it stays; its grants here go with the tables.
DROP TABLE api_keys;
DROP TABLE tenants;
REVOKE USAGE ON SCHEMA public FROM statemgr_app;
