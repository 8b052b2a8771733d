REVOKE DELETE ON conversation_state_transitions, conversation_assignments, conversation_genesys_ids, messages,
    message_status_history FROM statemgr_lifecycle;
