"""What every value from outside must respect before it reaches a handler or the database.

One walker serves the API's edge (every JSON body, query and path) and the
document parser (YAML): JSON nested at most ``MAX_DEPTH`` levels, no NUL
character in any string or key (PostgreSQL cannot store one in text or jsonb,
so both backends refuse it alike), integers within the signed 64-bit range the
databases store, and finite numbers only. ``problems`` returns each offence with
the path of the field, as the other validation errors do.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, Field

MAX_DEPTH = 64  # levels of nested objects and arrays in one document
MAX_PROBLEMS = 20  # offences reported at most (the walk stops there)
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INT32_MAX = 2**31 - 1

# integer types for the fields that reach a database column
Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]
Seq = Annotated[int, Field(ge=0, le=INT64_MAX)]  # an event, task or audit sequence number
Count = Annotated[int, Field(ge=0, le=INT64_MAX)]  # e.g. tokens an LLM call used
Attempt = Annotated[int, Field(ge=1, le=INT32_MAX)]  # an attempt number (a 32-bit column)

# raw JSON that may hold a value ``problems`` refuses: a NUL escape, a number of 19+
# digits (may be past 64 bits) or with a three-digit exponent (may be infinite). Looked
# for in the text with every digit read as 0 and E as e: plain substring searches, a
# fifth of one regular expression's time (a batch of 1,000 events: 1.4 ms, was 7)
_AS_ZEROS = bytes.maketrans(b"123456789E", b"000000000e")
_NUL = b"\\u0000"
_SUSPECT_NUMBERS = (b"0" * 19, b"e000", b"e+000")


MAX_AHEAD = timedelta(days=3653)  # the furthest ahead a moment given to the API may be


def representable(moment: datetime | None) -> datetime | None:
    """A moment that exists in UTC (year 1 at +01:00 does not: it would fail later)."""
    if moment is not None and moment.tzinfo is not None:
        try:
            moment.astimezone(UTC)
        except OverflowError:
            raise ValueError("out of the range of dates") from None
    return moment


def not_too_far(moment: datetime | None) -> datetime | None:
    """A moment at most ``MAX_AHEAD`` from now (a task's run_at in year 9999 was taken)."""
    moment = representable(moment)
    if moment is not None and moment.tzinfo is not None and \
            moment - datetime.now(UTC) > MAX_AHEAD:
        raise ValueError(f"must be within {MAX_AHEAD.days} days from now")
    return moment


def in_the_future(moment: datetime | None) -> datetime | None:
    """A moment still to come, and ``not_too_far``."""
    moment = not_too_far(moment)
    if moment is not None and moment.tzinfo is not None and moment <= datetime.now(UTC):
        raise ValueError("must be in the future")
    return moment


SKEW = timedelta(seconds=60)  # how far behind our clock a client's "now" may be


def not_past(moment: datetime | None) -> datetime | None:
    """A moment to act at: not behind us by more than ``SKEW`` (a moment just past, by
    a client's clock, means now), and ``not_too_far``."""
    moment = not_too_far(moment)
    if moment is not None and moment.tzinfo is not None and moment < datetime.now(UTC) - SKEW:
        raise ValueError("is in the past")
    return moment


# a moment with a time zone that exists in UTC (a filter's since/until)
Moment = Annotated[AwareDatetime, AfterValidator(representable)]


def format_path(path: Sequence[str | int]) -> str:
    """``("events", 0, "payload")`` as ``events[0].payload``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


def needs_walk(raw: bytes, value: Any) -> bool:
    """Whether ``value``, parsed from the JSON text ``raw``, could break a rule (else
    ``problems`` would find none). Cheap: a search of the text, and a walk of the
    containers only when there are enough of them to nest too deep (a batch of 1,000
    events: ~1.5 ms, twice parsing it)."""
    text = raw.translate(_AS_ZEROS)
    return (any(number in text for number in _SUSPECT_NUMBERS)
            or (_NUL in text and _NUL in raw)  # an escape like \u2019 reads as \u0000 there
            or (raw.count(b"{") + raw.count(b"[") > MAX_DEPTH and _too_deep(value)))


def _too_deep(value: Any) -> bool:
    level, depth = [value], 0
    while level:
        depth += 1
        if depth > MAX_DEPTH:
            return True
        deeper = []
        for container in level:
            for child in container.values() if type(container) is dict else container:
                if type(child) is dict or type(child) is list:
                    deeper.append(child)
        level = deeper
    return False


def problems(value: Any, prefix: Sequence[str | int] = ()) -> list[dict[str, str]]:
    """Every rule ``value`` (parsed JSON or YAML) breaks, with the field's path."""
    return [{"path": format_path(path), "message": message}
            for path, message in offences(value, prefix)]


def offences(value: Any, prefix: Sequence[str | int] = ()
             ) -> list[tuple[tuple[str | int, ...], str]]:
    """``problems`` with each path as a tuple of keys and indexes."""
    found: list[tuple[tuple[str | int, ...], str]] = []

    def walk(item: Any, path: tuple[str | int, ...], depth: int) -> None:
        if len(found) >= MAX_PROBLEMS:
            return
        if isinstance(item, str):
            if "\x00" in item:
                found.append((path, "a NUL character (\\u0000) is not allowed"))
        elif isinstance(item, bool) or item is None:
            pass
        elif isinstance(item, int):
            if not INT64_MIN <= item <= INT64_MAX:
                found.append((path, "integer out of range (signed 64 bits)"))
        elif isinstance(item, float):
            if not math.isfinite(item):
                found.append((path, "not a finite number (NaN and Infinity are not JSON)"))
        elif isinstance(item, dict | list):
            if depth >= MAX_DEPTH:
                found.append((path, f"nested deeper than {MAX_DEPTH} levels"))
                return
            if isinstance(item, dict):
                for key, child in item.items():
                    # a key is shown with its NUL escaped
                    here = (*path, str(key).replace("\x00", "\\u0000"))
                    if isinstance(key, str) and "\x00" in key:
                        found.append((here, "a NUL character (\\u0000) is not allowed in a key"))
                    walk(child, here, depth + 1)
            else:
                for n, child in enumerate(item):
                    walk(child, (*path, n), depth + 1)

    walk(value, tuple(prefix), 0)
    return found[:MAX_PROBLEMS]


def text_problem(text: str, where: str) -> dict[str, str] | None:
    """The NUL rule for one string (a query or path parameter), or None."""
    if "\x00" in text:
        return {"path": where, "message": "a NUL character (\\u0000) is not allowed"}
    return None
