"""What /proc says about the processes under test: CPU time, resident memory, children, sockets (Linux only).

Processes that are gone read as zero CPU and no memory: a probe never fails a run.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterable

import psycopg

_PROC = pathlib.Path("/proc")
_TICKS = os.sysconf("SC_CLK_TCK")
_LISTEN = "0A"


def cpu_seconds(pids: Iterable[int]) -> float:
    """User plus system CPU time of ``pids`` so far (not of their children), in seconds."""
    total = 0
    for pid in pids:
        try:
            stat = (_PROC / str(pid) / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # the command name may hold spaces; fields resume after ")"
        total += int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of stat(5)
    return total / _TICKS


def machine_busy_seconds() -> float | None:
    """CPU time the whole machine has spent busy (every core, every process, the kernel), from /proc/stat."""
    try:
        first = (_PROC / "stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in first[1:9])
    return (user + nice + system + irq + softirq + steal) / _TICKS


def rss_mb(pid: int) -> float | None:
    """VmRSS of ``pid`` in MiB, or None if it is gone."""
    try:
        for line in (_PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def command(pid: int) -> str:
    """The command name of ``pid`` ("" if there is none here)."""
    try:
        return (_PROC / str(pid) / "comm").read_text().strip()
    except OSError:
        return ""


def children(pid: int) -> list[int]:
    """The direct children of ``pid`` (from every thread's ``children`` list)."""
    found: list[int] = []
    for task in sorted((_PROC / str(pid) / "task").glob("*")):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _tcp_table() -> list[list[str]]:
    rows: list[list[str]] = []
    for name in ("tcp", "tcp6"):
        try:
            rows += [line.split() for line in (_PROC / "net" / name).read_text().splitlines()[1:]]
        except OSError:
            continue
    return rows


def listeners(port: int) -> int:
    """How many sockets listen on ``port`` (with SO_REUSEPORT, one per server process)."""
    return sum(1 for row in _tcp_table() if int(row[1].rsplit(":", 1)[1], 16) == port and row[3] == _LISTEN)


def accepted(port: int) -> set[int]:
    """The socket inodes of connections accepted on local ``port`` (0: still in the accept queue)."""
    return {
        int(row[9])
        for row in _tcp_table()
        if int(row[1].rsplit(":", 1)[1], 16) == port and row[3] != _LISTEN and int(row[9]) != 0
    }


def socket_inodes(pid: int) -> set[int]:
    """The inodes of the sockets ``pid`` holds open."""
    found: set[int] = set()
    try:
        entries = list((_PROC / str(pid) / "fd").iterdir())
    except OSError:
        return found
    for entry in entries:
        try:
            target = os.readlink(entry)
        except OSError:
            continue
        if target.startswith("socket:["):
            found.add(int(target[8:-1]))
    return found


async def backend_pids(conn: psycopg.AsyncConnection[tuple[object, ...]], database: str) -> list[int]:
    """The PostgreSQL backends connected to ``database`` (their CPU is the database's share of a call)."""
    cur = await conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (database,))
    return [int(str(row[0])) for row in await cur.fetchall()]
