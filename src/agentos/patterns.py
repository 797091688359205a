"""Glob patterns over event types and resource ids.

One grammar serves triggers, subscriptions, permissions and queries: ``*``
matches any run of characters (dots and colons included, as in Redis
PSUBSCRIBE), ``?`` matches one character, everything else matches itself.
Pure functions; ``to_like`` lets SQL pre-filter with the same meaning.
"""

from __future__ import annotations

import re
from functools import lru_cache

from agentos.errors import InvalidInput

# event types: dotted words, e.g. "alert.cpu.high", "plan_generated"
EVENT_TYPE = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
EVENT_GLOB = re.compile(r"^[A-Za-z0-9_*?-]+(\.[A-Za-z0-9_*?-]+)*$")
# resource ids: TYPE:NAME, e.g. "device:pixel-7", "account:acme/prod"
RESOURCE_ID = re.compile(r"^[a-z][a-z0-9_-]{0,62}:[A-Za-z0-9_.:/@+=-]{1,200}$")
RESOURCE_GLOB = re.compile(r"^(\*|[a-z*?][a-z0-9_*?-]{0,62}:[A-Za-z0-9_.:/@+=*?-]{1,200})$")


_EVENT_TYPE_PROBLEM = "{!r} is not an event type (dotted words of letters, digits, '_' or '-')"
# a model may check an event type in pydantic-core (``Field(pattern=EVENT_TYPE.pattern)``,
# no Python call per value); ``mismatch`` then words its error like ``check_event_type``
_MISMATCH = {EVENT_TYPE.pattern: _EVENT_TYPE_PROBLEM}


def mismatch(pattern: str, value: object) -> str | None:
    """Our wording for ``value`` not matching one of the patterns above, if it is one."""
    problem = _MISMATCH.get(pattern)
    return problem.format(value) if problem else None


class PatternError(InvalidInput, ValueError):
    """Raised for a string that is not a valid pattern of its kind."""

    default_code = "bad_pattern"


def check_event_type(text: str) -> str:
    if not EVENT_TYPE.fullmatch(text):
        raise PatternError(_EVENT_TYPE_PROBLEM.format(text))
    return text


def check_event_glob(text: str) -> str:
    if not EVENT_GLOB.fullmatch(text):
        raise PatternError(
            f"{text!r} is not an event type glob (dotted words; '*' and '?' as wildcards)"
        )
    return text


def check_resource_glob(text: str) -> str:
    if not RESOURCE_GLOB.fullmatch(text):
        raise PatternError(
            f"{text!r} is not a resource pattern (TYPE:NAME, e.g. 'device:*')"
        )
    return text


@lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern[str]:
    parts = (".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.compile("".join(parts) + r"\Z", re.DOTALL)


def matches(pattern: str, text: str) -> bool:
    """True when ``text`` matches the glob ``pattern`` as a whole."""
    return _compiled(pattern).match(text) is not None


def to_like(pattern: str, escape: str = "\\") -> str:
    """The SQL LIKE pattern (with ``escape``) that matches exactly what ``pattern`` does."""
    out = []
    for ch in pattern:
        if ch == "*":
            out.append("%")
        elif ch == "?":
            out.append("_")
        elif ch in ("%", "_", escape):
            out.append(escape + ch)
        else:
            out.append(ch)
    return "".join(out)
