"""Semantic versions (semver 2.0.0): parsing, precedence, ranges, sort keys.

Pure functions; the registry stores ``sort_key(v)`` so the database can order
versions by precedence with a plain string comparison.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

from agentos.errors import InvalidInput

_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)
_PARTIAL = re.compile(r"^(0|[1-9]\d*|[xX*])(?:\.(0|[1-9]\d*|[xX*]))?(?:\.(0|[1-9]\d*|[xX*]))?"
                      r"(?:-([0-9A-Za-z.-]+))?$")
_COMPARATOR = re.compile(r"^(>=|<=|>|<|=|\^|~)?\s*(\S+)$")


class SemverError(InvalidInput, ValueError):
    """Raised for a string that is not a version or a version range."""

    default_code = "bad_version"


@total_ordering
@dataclass(frozen=True)
class Version:
    major: int
    minor: int
    patch: int
    prerelease: tuple[str, ...] = ()
    build: str = ""

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += "-" + ".".join(self.prerelease)
        if self.build:
            text += "+" + self.build
        return text

    def _key(self) -> tuple[object, ...]:
        # A release outranks its prereleases; numeric identifiers rank below
        # alphanumeric ones and compare as numbers (semver §11).
        pre = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in self.prerelease)
        return (self.major, self.minor, self.patch, not self.prerelease, pre)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() < other._key()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())


MAX_NUMBER = 2**63 - 1  # the largest number in a version (a signed 64-bit integer)
MAX_LENGTH = 128  # characters of a version (its sort key must fit its column)


def parse(text: str) -> Version:
    if len(text) > MAX_LENGTH:
        raise SemverError(f"a version has at most {MAX_LENGTH} characters")
    match = _SEMVER.match(text)
    if match is None:
        raise SemverError(f"{text!r} is not a semantic version (like 1.2.3 or 1.2.3-rc.1)")
    major, minor, patch, pre, build = match.groups()
    prerelease = tuple(pre.split(".")) if pre else ()
    _bounded(text, [major, minor, patch, *(p for p in prerelease if p.isdigit())])
    return Version(int(major), int(minor), int(patch), prerelease, build or "")


def _bounded(text: str, numbers: list[str]) -> None:
    # compared as text first: int() of a huge run of digits is itself slow
    if any(len(n) > 19 or int(n) > MAX_NUMBER for n in numbers):
        raise SemverError(f"{text[:64]!r} has a number over {MAX_NUMBER} (64 bits)")


def is_valid(text: str) -> bool:
    return _SEMVER.match(text) is not None


def _encode_number(n: int) -> str:
    digits = str(n)
    return f"{len(digits):02d}{digits}"


def sort_key(version: Version | str) -> str:
    """A string whose byte order is the versions' precedence order.

    Numbers carry their length first so "10" sorts after "9"; a release ends
    in "~", which sorts after the "-" that starts a prerelease; identifiers are
    joined by a space, which sorts below every identifier character, so a
    shorter identifier list ranks first (semver §11.4.4). Compare with a
    binary collation (``COLLATE "C"`` on PostgreSQL).
    """
    v = parse(version) if isinstance(version, str) else version
    key = _encode_number(v.major) + _encode_number(v.minor) + _encode_number(v.patch)
    if not v.prerelease:
        return key + "~"
    parts = ["0" + _encode_number(int(p)) if p.isdigit() else "1" + p for p in v.prerelease]
    return key + "-" + " ".join(parts)


@dataclass(frozen=True)
class Range:
    """A version range such as ``>=1.0.0``, ``^1.2``, ``~1.2.3``, ``1.x`` or ``>=1.0.0, <2``.

    Comparators separated by commas or spaces must all hold; ``*`` (or an empty
    range) matches every release. Prereleases match only when a comparator
    names a prerelease of the same major.minor.patch (npm's rule).
    """

    text: str
    bounds: tuple[tuple[str, Version], ...]

    def matches(self, version: Version | str) -> bool:
        v = parse(version) if isinstance(version, str) else version
        if v.prerelease and not any(
            b.prerelease and (b.major, b.minor, b.patch) == (v.major, v.minor, v.patch)
            for _, b in self.bounds
        ):
            return False
        return all(_holds(v, op, bound) for op, bound in self.bounds)

    def __str__(self) -> str:
        return self.text


def _holds(v: Version, op: str, bound: Version) -> bool:
    if op == ">=":
        return v >= bound
    if op == ">":
        return v > bound
    if op == "<=":
        return v <= bound
    if op == "<":
        return v < bound
    return v == bound


def parse_range(text: str) -> Range:
    stripped = text.strip()
    if stripped in ("", "*", "x", "X"):
        return Range(text, ())
    # "op version" written with a space is one comparator, not two
    joined = re.sub(r"(>=|<=|>|<|=|\^|~)\s+", r"\1", stripped)
    bounds: list[tuple[str, Version]] = []
    for token in re.split(r"[,\s]+", joined):
        bounds.extend(_comparator(token, text))
    return Range(text, tuple(bounds))


def _comparator(token: str, whole: str) -> list[tuple[str, Version]]:
    match = _COMPARATOR.match(token)
    partial = _PARTIAL.match(match.group(2)) if match else None
    if match is None or partial is None:
        raise SemverError(f"{whole!r} is not a version range (like >=1.0.0, ^1.2 or 1.x)")
    op = match.group(1) or "="
    raw = partial.groups()[:3]
    pre = tuple(partial.group(4).split(".")) if partial.group(4) else ()
    _bounded(whole, [p for p in raw if p is not None and p not in "xX*"])
    nums = [None if p is None or p in "xX*" else int(p) for p in raw]
    # the fixed parts: 1.x.5 is not a range anyone means
    fixed = 0
    while fixed < 3 and nums[fixed] is not None:
        fixed += 1
    if any(n is not None for n in nums[fixed:]):
        raise SemverError(f"{whole!r} is not a version range: wildcards must come last")
    if fixed == 0:
        if op in ("<", ">"):
            raise SemverError(f"{whole!r} matches nothing")
        return []
    major, minor, patch = (n or 0 for n in nums)
    low = Version(major, minor, patch, pre)
    if fixed < 3 or op in ("^", "~"):
        high = _upper(low, fixed, op)
        if op in ("=", "^", "~"):
            return [(">=", low), ("<", high)]
        if op == ">":
            return [(">=", high)]
        if op == "<=":
            return [("<", high)]
        return [(op, low)]
    return [(op, low)]


def _upper(low: Version, fixed: int, op: str) -> Version:
    """The exclusive upper bound of a caret, tilde or partial comparator."""
    if op == "^":
        if low.major > 0 or fixed == 1:
            return Version(low.major + 1, 0, 0, ("0",))
        if low.minor > 0 or fixed == 2:
            return Version(0, low.minor + 1, 0, ("0",))
        return Version(0, 0, low.patch + 1, ("0",))
    if op == "~" and fixed >= 2:
        return Version(low.major, low.minor + 1, 0, ("0",))
    if fixed == 1 or op == "~":
        return Version(low.major + 1, 0, 0, ("0",))
    if fixed == 2:
        return Version(low.major, low.minor + 1, 0, ("0",))
    return Version(low.major, low.minor, low.patch + 1, ("0",))
