ALTER TABLE analytics_messages RESET (fillfactor);
ALTER TABLE analytics_conversations RESET (fillfactor);
ALTER TABLE analytics_customer_sets RESET (fillfactor);
ALTER TABLE analytics_rollups RESET (fillfactor);
DROP INDEX analytics_messages_recorded;
DROP INDEX analytics_customer_numbers_seen;
ALTER TABLE analytics_customer_numbers DROP COLUMN last_seen;
ALTER TABLE analytics_cursors DROP COLUMN folded_at;
