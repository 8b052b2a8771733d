"""Prometheus metrics of the data lifecycle (default registry, exposed by statemgr.metrics).

The retention job's figures come from the process that runs it (the leader, or an operator's CLI, which exposes
none): take max() across replicas for the gauges.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

ROWS_ARCHIVED = Counter(
    "statemgr_retention_rows_archived", "Rows written to verified archive objects, by table.", ("table",)
)
ROWS_DELETED = Counter(
    "statemgr_retention_rows_deleted", "Rows deleted from the live tables after their archive was verified.", ("table",)
)
ARCHIVE_BYTES = Counter("statemgr_archive_bytes_written", "Bytes of archive objects written (and verified).")
BATCHES = Counter(
    "statemgr_retention_batches",
    "Archive batches by outcome: archived, abandoned (rows changed while archiving; retried), expired.",
    ("outcome",),
)
STORE_ERRORS = Counter(
    "statemgr_archive_store_errors",
    "Archive store failures (unreachable, refused): the tenant's batch stopped with its rows kept; retried next run.",
)
LAST_SUCCESS = Gauge(
    "statemgr_retention_last_success_timestamp_seconds",
    "When the retention job last completed a tenant without error (Unix time).",
    ("tenant_id",),
)
RUN_DURATION = Histogram(
    "statemgr_retention_run_duration_seconds",
    "Duration of retention runs over every tenant.",
    buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600),
)
BATCH_STEP_SECONDS = Histogram(
    "statemgr_retention_batch_step_seconds",
    "Time of each step of an archive batch: claim, read (the rows and their fingerprint), write (Parquet written,"
    " read back and checked), finish (locks, deletes checked against the fingerprint, manifest, commit).",
    ("step",),
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
ERASURES = Counter("statemgr_erasures", "Customers erased (EraseCustomer calls that erased, not repeats).")
