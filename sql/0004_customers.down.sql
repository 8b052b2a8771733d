-- The extensions stay: other objects of the database may use them, and creating them again is harmless.
DROP INDEX IF EXISTS conversations_customer;
ALTER TABLE conversations DROP CONSTRAINT conversations_customer_fkey;
DROP TABLE customers;
