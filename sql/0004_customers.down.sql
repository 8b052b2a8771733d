ALTER TABLE conversations DROP CONSTRAINT conversations_customer_fkey;
DROP TABLE customer_name_terms;
DROP TABLE customers;
DROP FUNCTION customer_name_terms_sync();
