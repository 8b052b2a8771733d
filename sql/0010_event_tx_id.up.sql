-- The tx_id of an event appended now (statemgr/events/outbox.py explains the rule): this transaction's id, raised
-- to the latest tx_id of the same conversation's events when that is higher. One definition for every statement
-- that appends events (events.sql's append, messages.sql's append_status_event and insert_into_open).
-- greatest() ignores the NULL of "no earlier event" (and of events without a conversation). VOLATILE: it takes the
-- transaction's id; it runs as its caller, so row-level security shows it the caller's tenant only.
CREATE FUNCTION event_tx_id(tenant uuid, conversation uuid) RETURNS xid8
LANGUAGE sql VOLATILE
AS $$
    SELECT greatest(
        pg_current_xact_id(),
        (SELECT e.tx_id FROM events e
         WHERE e.tenant_id = tenant AND e.conversation_id = conversation
         ORDER BY e.tx_id DESC LIMIT 1)
    )
$$;
