"""Services: one per resource, between the api servicers and the store. A service owns the transaction, so a
state change and its outbox event commit together."""
