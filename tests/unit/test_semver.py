import random

import pytest

from agentos import semver

ORDERED = ["0.0.1", "0.1.0", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta",
           "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.9.0", "1.10.0",
           "2.0.0", "10.0.0", "123456789012.0.0"]


def test_precedence_follows_the_semver_spec() -> None:
    shuffled = random.Random(7).sample(ORDERED, len(ORDERED))
    assert [str(v) for v in sorted(semver.parse(v) for v in shuffled)] == ORDERED


def test_sort_key_orders_like_precedence() -> None:
    shuffled = random.Random(11).sample(ORDERED, len(ORDERED))
    assert sorted(shuffled, key=semver.sort_key) == ORDERED


@pytest.mark.parametrize(
    "bad", ["1.0", "1", "v1.0.0", "01.0.0", "1.0.0-", "1.0.0-01", "", "1.0.0 "])
def test_bad_versions_are_refused(bad: str) -> None:
    assert not semver.is_valid(bad)
    with pytest.raises(semver.SemverError):
        semver.parse(bad)


@pytest.mark.parametrize(("spec", "yes", "no"), [
    (">=1.0.0", ["1.0.0", "3.2.1"], ["0.9.9", "1.0.0-rc.1"]),
    ("^1.2", ["1.2.0", "1.9.9"], ["1.1.9", "2.0.0"]),
    ("^0.2.3", ["0.2.3", "0.2.9"], ["0.3.0"]),
    ("~1.2.3", ["1.2.3", "1.2.9"], ["1.3.0"]),
    ("1.x", ["1.0.0", "1.99.0"], ["2.0.0", "0.9.0"]),
    (">=1.0.0, <2", ["1.5.0"], ["2.0.0"]),
    ("*", ["0.0.1", "9.9.9"], ["1.0.0-beta"]),
    ("=1.2.3", ["1.2.3"], ["1.2.4"]),
    (">=1.0.0-rc.1", ["1.0.0-rc.2", "1.0.0"], ["1.0.0-beta", "1.1.0-rc.1"]),
])
def test_ranges(spec: str, yes: list[str], no: list[str]) -> None:
    r = semver.parse_range(spec)
    assert all(r.matches(v) for v in yes)
    assert not any(r.matches(v) for v in no)


@pytest.mark.parametrize("bad", ["abc", ">>1", "1.x.5", ">=1.0.0.0", "<*"])
def test_bad_ranges_are_refused(bad: str) -> None:
    with pytest.raises(semver.SemverError):
        semver.parse_range(bad)
