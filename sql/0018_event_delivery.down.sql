ALTER TABLE events ALTER COLUMN created_at SET DEFAULT now();
REVOKE UPDATE (unroutable_attempts, unroutable_retry_at) ON events FROM statemgr_relay;
DROP INDEX events_unroutable_waiting;
ALTER TABLE events DROP COLUMN unroutable_retry_at, DROP COLUMN unroutable_attempts;
