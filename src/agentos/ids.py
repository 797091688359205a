"""Identifiers: UUIDv7 (RFC 9562), time-ordered so B-tree inserts stay local."""

from __future__ import annotations

import os
import time
import uuid


def uuid7() -> str:
    """A version-7 UUID: 48 bits of Unix milliseconds, then 74 random bits."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    value = value & ~(0xF << 76) | 0x7 << 76  # version
    value = value & ~(0x3 << 62) | 0x2 << 62  # variant
    return str(uuid.UUID(int=value))
