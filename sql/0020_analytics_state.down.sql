DROP INDEX analytics_messages_recorded;
DROP INDEX analytics_customer_numbers_seen;
ALTER TABLE analytics_customer_numbers DROP COLUMN last_seen;
ALTER TABLE analytics_cursors DROP COLUMN folded_at;
