"""Identifiers: UUIDv7 (RFC 9562), time-ordered so B-tree inserts stay local."""

from __future__ import annotations

import os
import time

# the variant nibble: binary 10xx, its two low bits random
_VARIANT = {f"{n:x}": f"{8 | n & 3:x}" for n in range(16)}


def uuid7() -> str:
    """A version-7 UUID: 48 bits of Unix milliseconds, then 74 random bits."""
    return uuid7_many(1)[0]


def uuid7_many(n: int) -> list[str]:
    """``n`` version-7 UUIDs from one clock reading and one read of random bytes."""
    clock = f"{time.time_ns() // 1_000_000:012x}"
    head = f"{clock[:8]}-{clock[8:]}-7"
    noise = os.urandom(10 * n).hex()  # 20 hex digits an id, 19 used
    return [f"{head}{noise[k:k + 3]}-{_VARIANT[noise[k + 3]]}{noise[k + 4:k + 7]}-"
            f"{noise[k + 7:k + 19]}" for k in range(0, 20 * n, 20)]
