DROP TABLE parked_statuses;
