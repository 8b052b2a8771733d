"""Every analytics figure recomputed by plain SQL over the raw tables (conversations, assignments, messages,
customers): the definitions of docs/analytics.md written a second way, to check the rollups against."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import psycopg

_MESSAGES = """
WITH m AS (
    SELECT m.conversation_id, m.id, m.direction, m.status, m.created_at, m.delivered_at, m.read_at, m.error_code,
           count(*) FILTER (WHERE m.direction = 'outbound') OVER before AS outs_before,
           max(m.created_at) FILTER (WHERE m.direction = 'inbound') OVER before AS last_in_before,
           min(m.created_at) FILTER (WHERE m.direction = 'inbound') OVER (PARTITION BY m.conversation_id) AS first_in,
           (SELECT a.to_agent_id FROM conversation_assignments a
            WHERE a.tenant_id = m.tenant_id AND a.conversation_id = m.conversation_id AND a.assigned_at <= m.created_at
            ORDER BY a.assigned_at DESC LIMIT 1) AS agent
    FROM messages m WHERE m.tenant_id = %(t)s
    WINDOW before AS (PARTITION BY m.conversation_id ORDER BY m.created_at, m.id
                      ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
), waits AS (
    SELECT conversation_id, outs_before AS k, min(created_at) AS since FROM m WHERE direction = 'inbound' GROUP BY 1, 2
), firsts AS (
    SELECT DISTINCT ON (conversation_id) conversation_id, created_at, first_in, agent
    FROM m WHERE direction = 'outbound' AND created_at > first_in ORDER BY conversation_id, created_at
)
"""

_US = "greatest(0, (extract(epoch FROM {}) * 1000000)::bigint)"

SAMPLES = (
    _MESSAGES
    + f""", samples AS (
    SELECT 'duration' AS metric, c.agent_id AS agent, c.closed_at AS at,
           {_US.format("c.closed_at - c.created_at")} AS us
    FROM conversations c WHERE c.tenant_id = %(t)s AND c.closed_at IS NOT NULL
    UNION ALL
    SELECT 'first_response', agent, created_at, {_US.format("created_at - first_in")} FROM firsts
    UNION ALL
    SELECT 'response', o.agent, o.created_at, {_US.format("o.created_at - w.since")}
    FROM m o JOIN waits w ON w.conversation_id = o.conversation_id AND w.k = o.outs_before
    WHERE o.direction = 'outbound'
    UNION ALL
    SELECT 'to_delivered', agent, created_at, {_US.format("delivered_at - created_at")}
    FROM m WHERE direction = 'outbound' AND delivered_at IS NOT NULL
    UNION ALL
    SELECT 'to_read', agent, created_at, {_US.format("read_at - created_at")}
    FROM m WHERE direction = 'outbound' AND read_at IS NOT NULL
)
SELECT metric, agent, grouping(agent) = 1 AS tenant, count(*) AS n, sum(us) AS total_us,
       percentile_disc(0.5) WITHIN GROUP (ORDER BY us) AS p50,
       percentile_disc(0.9) WITHIN GROUP (ORDER BY us) AS p90,
       percentile_disc(0.99) WITHIN GROUP (ORDER BY us) AS p99
FROM samples WHERE at >= %(s)s AND at < %(e)s
GROUP BY GROUPING SETS ((metric), (metric, agent))
"""
)

COUNTS = (
    _MESSAGES
    + """, closed AS (
    SELECT c.id, c.agent_id, c.closed_at FROM conversations c
    WHERE c.tenant_id = %(t)s AND c.closed_at >= %(s)s AND c.closed_at < %(e)s
), facts AS (
    SELECT 'opened' AS kind, NULL::uuid AS agent, created_at AS at, 1 AS n FROM conversations WHERE tenant_id = %(t)s
    UNION ALL SELECT 'closed', agent_id, closed_at, 1 FROM closed
    UNION ALL SELECT 'closed_' || m.direction, c.agent_id, c.closed_at, 1
        FROM closed c JOIN m ON m.conversation_id = c.id
    UNION ALL SELECT direction, CASE WHEN direction = 'outbound' THEN agent END, created_at, 1 FROM m
    UNION ALL SELECT 'late_replies', agent, created_at, 1 FROM m
        WHERE direction = 'outbound' AND created_at > last_in_before + interval '24 hours'
    UNION ALL SELECT 'delivered', agent, created_at, 1 FROM m WHERE direction = 'outbound'
        AND (delivered_at IS NOT NULL OR read_at IS NOT NULL OR status IN ('delivered', 'read'))
    UNION ALL SELECT 'read', agent, created_at, 1 FROM m WHERE direction = 'outbound'
        AND (read_at IS NOT NULL OR status = 'read')
    UNION ALL SELECT 'failed', agent, created_at, 1 FROM m WHERE direction = 'outbound' AND status = 'failed'
    UNION ALL SELECT 'assigned', to_agent_id, assigned_at, 1 FROM conversation_assignments WHERE tenant_id = %(t)s
    UNION ALL SELECT 'transfers_in', to_agent_id, assigned_at, 1 FROM conversation_assignments
        WHERE tenant_id = %(t)s AND from_agent_id IS NOT NULL
    UNION ALL SELECT 'transfers_out', from_agent_id, assigned_at, 1 FROM conversation_assignments
        WHERE tenant_id = %(t)s AND from_agent_id IS NOT NULL
    UNION ALL SELECT 'new_customers', NULL, created_at, 1 FROM customers WHERE tenant_id = %(t)s
)
SELECT kind, agent, grouping(agent) = 1 AS tenant, sum(n)::bigint AS n
FROM facts WHERE at >= %(s)s AND at < %(e)s
GROUP BY GROUPING SETS ((kind), (kind, agent))
"""
)

ERROR_CODES = """
SELECT coalesce(error_code, '') AS code, count(*) AS n FROM messages
WHERE tenant_id = %(t)s AND direction = 'outbound' AND status = 'failed' AND created_at >= %(s)s AND created_at < %(e)s
GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10
"""

CUSTOMERS = """
WITH active AS (
    SELECT DISTINCT c.customer_id
    FROM messages m JOIN conversations c ON c.tenant_id = m.tenant_id AND c.id = m.conversation_id
    WHERE m.tenant_id = %(t)s AND m.direction = 'inbound' AND m.created_at >= %(s)s AND m.created_at < %(e)s
      AND c.customer_id IS NOT NULL
)
SELECT (SELECT count(*) FROM active) AS active,
       (SELECT count(*) FROM customers WHERE tenant_id = %(t)s AND created_at >= %(s)s AND created_at < %(e)s) AS new,
       (SELECT count(*) FROM active a JOIN customers cu ON cu.tenant_id = %(t)s AND cu.id = a.customer_id
        WHERE cu.created_at < %(s)s) AS returning
"""

VOLUME = """
SELECT count(*) FILTER (WHERE created_at >= %(s)s AND created_at < %(e)s) AS opened,
       count(*) FILTER (WHERE closed_at >= %(s)s AND closed_at < %(e)s) AS closed
FROM conversations WHERE tenant_id = %(t)s
"""


@dataclasses.dataclass
class Stats:
    n: int
    total_us: int
    p50: int | None
    p90: int | None
    p99: int | None


@dataclasses.dataclass
class Figures:
    counts: dict[str, int]
    agent_counts: dict[str, dict[str, int]]
    stats: dict[str, Stats]
    agent_stats: dict[str, dict[str, Stats]]
    error_codes: list[tuple[str, int]]
    customers: tuple[int, int, int]


def figures(database_url: str, tenant_id: str, start: dt.datetime, end: dt.datetime) -> Figures:
    params = {"t": tenant_id, "s": start, "e": end}
    with psycopg.connect(database_url) as conn:
        counts: dict[str, int] = {}
        agent_counts: dict[str, dict[str, int]] = {}
        for kind, agent, tenant, n in conn.execute(COUNTS, params):  # type: ignore[arg-type]
            if tenant:
                counts[kind] = int(n)
            elif agent is not None:
                agent_counts.setdefault(str(agent), {})[kind] = int(n)
        stats: dict[str, Stats] = {}
        agent_stats: dict[str, dict[str, Stats]] = {}
        for metric, agent, tenant, *values in conn.execute(SAMPLES, params):  # type: ignore[arg-type]
            found = Stats(*(None if v is None else int(v) for v in values))  # type: ignore[arg-type]
            if tenant:
                stats[metric] = found
            elif agent is not None:
                agent_stats.setdefault(str(agent), {})[metric] = found
        codes = [(code, int(n)) for code, n in conn.execute(ERROR_CODES, params)]  # type: ignore[arg-type]
        row: Any = conn.execute(CUSTOMERS, params).fetchone()  # type: ignore[arg-type]
    return Figures(counts, agent_counts, stats, agent_stats, codes, (row[0], row[1], row[2]))


def volume(database_url: str, tenant_id: str, start: dt.datetime, end: dt.datetime) -> tuple[int, int]:
    with psycopg.connect(database_url) as conn:
        row: Any = conn.execute(VOLUME, {"t": tenant_id, "s": start, "e": end}).fetchone()  # type: ignore[arg-type]
    return int(row[0]), int(row[1])
