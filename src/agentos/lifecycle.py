"""Version lifecycle of versioned definitions (agents now, workflows later).

    draft ──publish──▶ published ──deprecate──▶ deprecated ──archive──▶ archived
                           ▲                          │
                           └────────publish───────────┘

A draft may change and be deleted; from ``published`` on, the document is
immutable and only its status moves, along the table below.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Self

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


@dataclass(frozen=True)
class StoredVersion:
    """One stored version of a versioned definition (an agent, a workflow): its
    document and where it stands in the lifecycle. Each kind adds what its summary
    shows of the document (``described``) and how it parses it."""

    name: str
    version: str
    status: Status
    definition: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None

    @classmethod
    def from_row(cls, row: Any) -> Self:
        return cls(row.name, row.version, Status(row.status), row.definition,
                   row.created_at, row.updated_at, row.published_at)

    def described(self) -> dict[str, Any]:
        """The fields of the document a summary shows."""
        return {}

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "status": self.status.value,
                **self.described(),
                "created_at": self.created_at.isoformat(),
                "updated_at": self.updated_at.isoformat(),
                "published_at": self.published_at.isoformat() if self.published_at else None}

    def to_dict(self) -> dict[str, Any]:
        return {**self.summary(), "definition": self.definition}


def is_mutable(status: Status) -> bool:
    return status is Status.DRAFT


UNCHANGED = "unchanged"  # an import's result for a version identical to the stored one


def differing(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The top-level fields of two definitions whose values differ."""
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


def unchanged(name: str, version: str, stored: tuple[str, dict[str, Any]] | None,
              document: dict[str, Any], *, publish: bool, kind: str = "") -> bool:
    """Whether importing ``document`` as ``name`` ``version`` leaves the stored version
    (its status and definition; None when there is none) as it is: identical, and not
    a draft asked to be published. A stored version that cannot change and differs is
    a 409 ``version_immutable`` naming the top-level fields that differ; otherwise
    (False) the import saves it. Agents and workflow definitions (``kind``
    "workflow ") both import so."""
    if stored is None:
        return False
    status, definition = Status(stored[0]), stored[1]
    same = definition == document
    if same and (not is_mutable(status) or not publish):
        return True
    if not same and not is_mutable(status):
        fields = differing(definition, document)
        raise Conflict(f"{kind}{name} {version} is {status.value} and differs in "
                       f"{', '.join(fields)}: publish a new version instead",
                       code="version_immutable",
                       details={"name": name, "version": version, "status": status.value,
                                "fields": fields})
    return False
