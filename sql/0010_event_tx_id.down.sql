DROP FUNCTION event_tx_id(uuid, uuid);
