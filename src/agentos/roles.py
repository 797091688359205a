"""Roles: each one can do what the one below it can, and more."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    VIEWER = "viewer"  # reads everything but users, keys and the audit log
    OPERATOR = "operator"  # also emits events, runs tasks and workflows, holds locks, approves
    ADMIN = "admin"  # also publishes agents, manages users, keys, schedules; force-releases

    @property
    def rank(self) -> int:
        return _RANK[self]

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}
