"""Analytics: rollups folded from the event log by one consumer, and the reads AnalyticsService answers from them."""
