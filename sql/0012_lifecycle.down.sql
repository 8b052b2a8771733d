-- The role statemgr_lifecycle and its membership are shared by every database of the cluster, so they stay.
DROP INDEX message_status_history_message;
DROP INDEX conversations_tenant_closed;
DROP POLICY lifecycle_read ON tenants;
REVOKE SELECT (id, closed_conversation_retention, archive_retention, default_region) ON tenants FROM statemgr_lifecycle;
REVOKE USAGE ON SEQUENCE events_seq_seq, message_status_history_id_seq, parked_statuses_id_seq FROM statemgr_lifecycle;
REVOKE UPDATE (payload) ON events FROM statemgr_lifecycle;
REVOKE ALL ON conversations, conversation_state_transitions, conversation_assignments, conversation_genesys_ids,
    messages, message_status_history, parked_statuses, customers, customer_name_terms, events FROM statemgr_lifecycle;
DROP TABLE erasure_audits;
DROP TABLE archived_conversations;
DROP TABLE archive_objects;
DROP TABLE archive_batches;
REVOKE USAGE ON SCHEMA public FROM statemgr_lifecycle;
