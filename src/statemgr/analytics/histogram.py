"""Mergeable histograms of durations: fixed log-scale bins, so any set of them adds up to the histogram of the union.

Bins (in milliseconds): bin 0 holds [0, 1 ms); bin k >= 1 holds [1.1^(k-1), 1.1^k) ms; the last bin also holds
everything longer (bin 256 starts near 1.2 years). A percentile is answered with the geometric middle of the bin
that holds it, so it is within 4.9 % of the exact value (sqrt(1.1) - 1), or within 0.5 ms below 1 ms: "exact to
the bin". The rank is the nearest rank, ceil(p * n), as PostgreSQL's percentile_disc.

Stored form: the non-zero bins as little-endian (uint16 bin, uint32 count) pairs, 6 bytes each (a bucket holds
far fewer than 4 billion durations); pairs may repeat a bin (sums of several rows are concatenations), and `totals`
adds them up in 64 bits.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Iterable

import numpy as np

RATIO = 1.1
BINS = 257
RELATIVE_ERROR = math.sqrt(RATIO) - 1
_LOG_RATIO = math.log(RATIO)
PAIR = np.dtype([("bin", "<u2"), ("count", "<u4")])


def bin_of(microseconds: int) -> int:
    """The bin of a duration (negative durations count as 0)."""
    ms = microseconds / 1000
    if ms < 1:
        return 0
    return min(BINS - 1, math.floor(math.log(ms) / _LOG_RATIO) + 1)


def bin_value(index: int) -> float:
    """The value a bin stands for, in microseconds: its geometric middle (0.5 ms for bin 0)."""
    if index == 0:
        return 500.0
    return float(1000.0 * RATIO ** (index - 0.5))


def encode(counts: collections.Counter[int]) -> bytes:
    pairs = np.array(sorted((b, n) for b, n in counts.items() if n > 0), dtype=PAIR)
    return pairs.tobytes()


def decode(blob: bytes) -> collections.Counter[int]:
    counts: collections.Counter[int] = collections.Counter()
    for index, count in np.frombuffer(blob, dtype=PAIR).tolist():
        counts[int(index)] += int(count)
    return counts


def totals(blobs: Iterable[bytes]) -> np.ndarray:
    """The per-bin counts of all the stored histograms given (or of their concatenation)."""
    pairs = np.frombuffer(b"".join(blobs), dtype=PAIR)
    return np.bincount(pairs["bin"], weights=pairs["count"], minlength=BINS).astype(np.int64)


def percentile(counts: np.ndarray, p: float) -> float | None:
    """The p-quantile (0 < p <= 1) in microseconds, by nearest rank; None for an empty histogram."""
    n = int(counts.sum())
    if n <= 0:
        return None
    rank = max(1, math.ceil(p * n - 1e-9))
    index = int(np.searchsorted(np.cumsum(counts), rank))
    return bin_value(min(index, BINS - 1))
