DROP TABLE conversation_genesys_ids;
DROP TABLE conversation_assignments;
DROP TABLE conversation_state_transitions;
DROP TABLE conversations;
DROP EXTENSION IF EXISTS btree_gin;
