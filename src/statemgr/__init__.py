"""statemgr: multi-tenant conversation state between WhatsApp and Genesys Cloud, over gRPC."""
