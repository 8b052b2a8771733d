DROP TABLE message_status_history;
DROP TABLE messages;
DROP FUNCTION message_status_rank(text);
