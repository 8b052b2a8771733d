"""Prometheus metrics of the event log, relay and subscriptions (default registry, exposed by statemgr.metrics).

Backlog and lag are reported by the process that currently leads (relays); the others report 0, so take max()
across replicas, not sum().
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

BACKLOG = Gauge("statemgr_events_backlog", "Events waiting to be published to RabbitMQ (reported by the leader).")
PUBLISH_LAG = Gauge(
    "statemgr_events_publish_lag_seconds", "Age of the oldest event not yet published (reported by the leader)."
)
LEADER = Gauge("statemgr_events_leader", "1 while this process holds the relay/pruning leadership, else 0.")
PUBLISHED = Counter("statemgr_events_published", "Events published to RabbitMQ and confirmed by the broker.")
UNROUTABLE = Counter(
    "statemgr_events_unroutable", "Events the broker returned because no queue was bound for their routing key."
)
UNROUTABLE_WAITING = Gauge(
    "statemgr_events_unroutable_waiting",
    "Events returned as unroutable, waiting for a queue to be bound and their next retry (reported by the leader).",
)
UNROUTABLE_DELIVERED = Counter(
    "statemgr_events_unroutable_delivered", "Events first returned as unroutable, then taken by a queue on a retry."
)
PUBLISH_FAILURES = Counter(
    "statemgr_events_publish_failures", "Events sent but not confirmed (nacked or connection lost); retried."
)
PRUNED = Counter("statemgr_events_pruned", "Events deleted from the log after their retention period.")
SUBSCRIBERS = Gauge("statemgr_event_subscribers", "Open Subscribe streams on this process.")
SUBSCRIBER_OVERFLOWS = Counter(
    "statemgr_event_subscriber_overflows", "Subscribers failed with RESOURCE_EXHAUSTED for falling too far behind."
)
DELIVERED = Counter("statemgr_events_delivered", "Events sent to Subscribe streams.")
