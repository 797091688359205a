"""Version lifecycle of versioned definitions (agents now, workflows later).

    draft ──publish──▶ published ──deprecate──▶ deprecated ──archive──▶ archived
                           ▲                          │
                           └────────publish───────────┘

A draft may change and be deleted; from ``published`` on, the document is
immutable and only its status moves, along the table below.
"""

from __future__ import annotations

from enum import StrEnum

from agentos.errors import Conflict


class Status(StrEnum):
    DRAFT = "draft"  # created or replaced; editable, deletable, never routed
    PUBLISHED = "published"  # publish: frozen; the highest one is "latest"
    DEPRECATED = "deprecated"  # deprecate: still readable, no longer latest or routed
    ARCHIVED = "archived"  # archive: kept for history only


# action -> (from states, to state)
TRANSITIONS: dict[str, tuple[frozenset[Status], Status]] = {
    "publish": (frozenset({Status.DRAFT, Status.DEPRECATED}), Status.PUBLISHED),
    "deprecate": (frozenset({Status.PUBLISHED}), Status.DEPRECATED),
    "archive": (frozenset({Status.DEPRECATED}), Status.ARCHIVED),
}


def transition(current: Status, action: str, what: str) -> Status:
    """The status after ``action``, or ``Conflict`` if it is not allowed from ``current``."""
    sources, target = TRANSITIONS[action]
    if current not in sources:
        allowed = " or ".join(sorted(s.value for s in sources))
        raise Conflict(
            f"cannot {action} {what}: it is {current.value}, and only a {allowed} "
            f"version can be {target.value}",
            code="invalid_transition",
            details={"status": current.value, "action": action},
        )
    return target


def is_mutable(status: Status) -> bool:
    return status is Status.DRAFT
