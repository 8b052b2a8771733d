"""Positions in a tenant's event log, and the opaque cursors that carry them to clients.

Why a position is (tx_id, seq) and not seq alone
------------------------------------------------
`seq` is a bigserial: values are handed out when rows are inserted, but rows become visible when their transactions
commit, and transactions commit in any order. A reader that saw seq 7 and resumes "after 7" silently skips seq 6
if 6's transaction commits a moment later. So the log is ordered by the writing transaction's id first:

- every row records `tx_id` (the writing transaction's xid8; see outbox.append for the one refinement), and
- readers return only rows with tx_id < pg_snapshot_xmin(pg_current_snapshot()), in (tx_id, seq) order.

Every transaction whose id is below the snapshot's xmin has ended, and every transaction still running (or not yet
begun) has an id at or above it. So once a reader has returned everything below xmin, no row can later appear
before the position it reached: nothing committed is ever skipped, and resuming after a position never repeats.

The cost: delivery waits for the oldest running transaction of the whole PostgreSQL cluster (xids are
cluster-wide). A transaction left open for a minute, in any database of the cluster, holds every subscriber back
for that minute (the relay to RabbitMQ does not wait: it does not need a cursor). Keep transactions short.

Positions of the form (xmin, 0) are horizons: "everything before this transaction id has been seen". Heartbeats
and `from_now` subscriptions use them; they are valid cursors like any event's own position.
"""

from __future__ import annotations

import base64
import binascii
import struct
import uuid
from typing import NamedTuple

from statemgr.domain.errors import InvalidArgument

_VERSION = 1
_LAYOUT = struct.Struct(">B16sQQ")  # version, tenant id, tx_id, seq
_MAX_XID8 = 2**64 - 1


class Position(NamedTuple):
    """A point in one tenant's log; tuples order the way the log does."""

    tx_id: int
    seq: int

    @classmethod
    def horizon(cls, xmin: int) -> Position:
        """The position just before the first row transaction `xmin` (or a later one) could write."""
        return cls(xmin, 0)


START = Position(0, 0)
END = Position(_MAX_XID8, 2**63 - 1)


def encode(tenant_id: uuid.UUID, position: Position) -> str:
    """An opaque, URL-safe cursor naming the tenant and the position."""
    raw = _LAYOUT.pack(_VERSION, tenant_id.bytes, position.tx_id, position.seq)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode(cursor: str, tenant_id: uuid.UUID, field: str = "after_cursor") -> Position:
    """The position of `cursor`; INVALID_ARGUMENT if it is malformed or belongs to another tenant."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        version, tenant, tx_id, seq = _LAYOUT.unpack(raw)
    except (binascii.Error, ValueError, struct.error):
        raise InvalidArgument(field, "is not a cursor this service issued") from None
    if version != _VERSION:
        raise InvalidArgument(field, "is not a cursor this service issued")
    if tenant != tenant_id.bytes:
        raise InvalidArgument(field, "belongs to another tenant")
    return Position(tx_id, seq)
