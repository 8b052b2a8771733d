-- The retention job deletes a batch's rows table by table, children first, each delete returning what it removed
-- (the batch's fingerprint, compared with what was archived; statemgr/jobs/retention.py). Until now only the
-- conversations could be deleted and their rows went by ON DELETE CASCADE, which gives no such account and runs one
-- query per deleted message. The role keeps to what the job deletes: nothing of customers or events.
GRANT DELETE ON conversation_state_transitions, conversation_assignments, conversation_genesys_ids, messages,
    message_status_history TO statemgr_lifecycle;
