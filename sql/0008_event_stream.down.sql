DROP TABLE event_log_floors;
DROP TRIGGER events_notify ON events;
DROP FUNCTION events_notify();
DROP INDEX events_conversation;
