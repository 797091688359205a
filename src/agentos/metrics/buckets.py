"""Fixed log-scale histogram buckets: mergeable by adding counts, so percentiles over any
range and any set of series come from the sum of their rollups' bucket counts.

Bucket ``i`` holds the values in [g^i, g^(i+1)) with g = 2^(1/8): a value is placed
within 4.4 % (half a bucket, relatively), whatever its scale. Zero and negative
values share ``ZERO``. A percentile is the geometric middle of the bucket the rank
falls in, kept within the range's observed min and max.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

PER_OCTAVE = 8  # buckets per doubling
ZERO = -32768  # the bucket of zero and negative values
LOWEST, HIGHEST = -32000, 32000  # indexes kept within a SMALLINT


def index(value: float) -> int:
    """The bucket of ``value``."""
    if value <= 0 or math.isnan(value):
        return ZERO
    if math.isinf(value):
        return HIGHEST
    i = math.floor(math.log2(value) * PER_OCTAVE)
    return min(max(i, LOWEST), HIGHEST)


def middle(i: int) -> float:
    """A bucket's representative value (its geometric middle)."""
    if i == ZERO:
        return 0.0
    return float(2 ** ((i + 0.5) / PER_OCTAVE))


def percentile(counts: Iterable[tuple[int, int]], q: float, low: float | None = None,
               high: float | None = None) -> float | None:
    """The ``q`` quantile (0..1) of bucket counts ``(index, count)``; None when empty.
    ``low``/``high``: the observed min and max, which bound the answer."""
    merged: dict[int, int] = {}
    for i, n in counts:
        merged[i] = merged.get(i, 0) + n
    total = sum(merged.values())
    if total <= 0:
        return None
    rank = q * total
    seen = 0
    value = 0.0
    for i in sorted(merged):
        seen += merged[i]
        if seen >= rank:
            value = middle(i)
            break
    if low is not None:
        value = max(value, low)
    if high is not None:
        value = min(value, high)
    return value
