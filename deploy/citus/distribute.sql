-- statemgr on Citus: the distribution plan, run once on the coordinator after `statemgr migrate up` (as the owner).
-- docs/scaling.md explains it and when to move; tests/integration/test_citus_ready.py checks it against the schema:
-- every table is named here, and every key, index and foreign key of a distributed table leads with (or maps) its
-- distribution column.
--
-- One colocation group, by tenant: `tenants` is distributed by its id and every other table by tenant_id, colocated
-- with it, so all of a tenant's rows (its own row included) live on one worker and each call's transaction touches
-- one node. No reference tables: nothing the service reads is shared by all tenants.
-- Local (coordinator only): schema_migrations, the migration runner's own bookkeeping.

SELECT create_distributed_table('tenants', 'id');
SELECT create_distributed_table('api_keys', 'tenant_id', colocate_with => 'tenants');
SELECT create_distributed_table('customers', 'tenant_id', colocate_with => 'tenants');
SELECT create_distributed_table('customer_name_terms', 'tenant_id', colocate_with => 'tenants');
SELECT create_distributed_table('conversations', 'tenant_id', colocate_with => 'tenants');
SELECT create_distributed_table('conversation_state_transitions', 'tenant_id', colocate_with => 'tenants');
SELECT create_distributed_table('conversation_assignments', 'tenant_id', colocate_with => 'tenants');
SELECT create_distributed_table('conversation_genesys_ids', 'tenant_id', colocate_with => 'tenants');
SELECT create_distributed_table('messages', 'tenant_id', colocate_with => 'tenants');
SELECT create_distributed_table('message_status_history', 'tenant_id', colocate_with => 'tenants');
SELECT create_distributed_table('parked_statuses', 'tenant_id', colocate_with => 'tenants');
SELECT create_distributed_table('events', 'tenant_id', colocate_with => 'tenants');
SELECT create_distributed_table('event_log_floors', 'tenant_id', colocate_with => 'tenants');
SELECT create_distributed_table('analytics_cursors', 'tenant_id', colocate_with => 'tenants');
SELECT create_distributed_table('analytics_rollups', 'tenant_id', colocate_with => 'tenants');
SELECT create_distributed_table('analytics_error_codes', 'tenant_id', colocate_with => 'tenants');
SELECT create_distributed_table('analytics_customer_sets', 'tenant_id', colocate_with => 'tenants');
SELECT create_distributed_table('analytics_customer_numbers', 'tenant_id', colocate_with => 'tenants');
SELECT create_distributed_table('analytics_conversations', 'tenant_id', colocate_with => 'tenants');
SELECT create_distributed_table('analytics_messages', 'tenant_id', colocate_with => 'tenants');
SELECT create_distributed_table('analytics_open', 'tenant_id', colocate_with => 'tenants');
SELECT create_distributed_table('analytics_recent', 'tenant_id', colocate_with => 'tenants');
SELECT create_distributed_table('archive_batches', 'tenant_id', colocate_with => 'tenants');
SELECT create_distributed_table('archive_objects', 'tenant_id', colocate_with => 'tenants');
SELECT create_distributed_table('archived_conversations', 'tenant_id', colocate_with => 'tenants');
SELECT create_distributed_table('erasure_audits', 'tenant_id', colocate_with => 'tenants');
