"""UUIDv7 identifiers: valid RFC 9562 version 7, unique, ordered by their clock."""

import time
import uuid

from agentos import ids


def test_uuid7_is_version_7_with_the_rfc_variant() -> None:
    for text in [ids.uuid7(), *ids.uuid7_many(2000)]:
        value = uuid.UUID(text)
        assert value.version == 7 and value.variant == uuid.RFC_4122 and str(value) == text


def test_uuid7_many_are_unique_and_carry_the_clock() -> None:
    before = time.time_ns() // 1_000_000
    batch = ids.uuid7_many(10_000)
    after = time.time_ns() // 1_000_000
    assert len(set(batch)) == len(batch)
    stamps = {uuid.UUID(t).int >> 80 for t in batch}
    assert len(stamps) == 1 and before <= stamps.pop() <= after
    # the variant's two free bits are random too
    assert {t[19] for t in batch} == {"8", "9", "a", "b"}


def test_later_ids_sort_after_earlier_ones() -> None:
    first = ids.uuid7()
    time.sleep(0.002)
    assert ids.uuid7() > first
