"""Approvals (SPEC §2.8): a person's decision that a workflow step, or a handler
(``ctx.approval``), waits for.

    pending ──approve──▶ approved
       │  └──reject───▶ rejected
       ├────expire────▶ expired     (its timeout passed: on_timeout says what it means)
       └────cancel────▶ cancelled   (its run was cancelled)

Only a user whose role is the approval's ``role`` or higher may decide (403
otherwise, audited as denied); each decision is audited with its actor and
appends ``approval.approved`` or ``approval.rejected`` in its transaction; there
is one decision only (the second gets 409, as does deciding an expired one). The
timer (``expire_due``) ends lapsed ones with ``approval.expired``. What a decision
means to its step, ``{approved, by, comment, at}``, is ``outcome``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from agentos import audit, events, ids
from agentos.aio import wait_wakeup
from agentos.errors import Conflict, Forbidden, InvalidInput, NotFound
from agentos.events import Draft
from agentos.roles import Role
from agentos.store import Store
from agentos.store import approvals as store_approvals

MAX_PAGE = 500
POLL_INTERVAL = 1.0  # seconds between looks of a waiting handler (a local commit wakes it)
SOURCE = "approvals"


class Status(StrEnum):
    PENDING = "pending"  # requested
    APPROVED = "approved"  # approve
    REJECTED = "rejected"  # reject
    EXPIRED = "expired"  # expire: the timeout passed first
    CANCELLED = "cancelled"  # cancel: the run it belongs to was cancelled


# action -> (from, to)
TRANSITIONS: dict[str, tuple[frozenset[Status], Status]] = {
    "approve": (frozenset({Status.PENDING}), Status.APPROVED),
    "reject": (frozenset({Status.PENDING}), Status.REJECTED),
    "expire": (frozenset({Status.PENDING}), Status.EXPIRED),
    "cancel": (frozenset({Status.PENDING}), Status.CANCELLED),
}


def transition(current: Status, action: str, approval_id: str) -> Status:
    sources, target = TRANSITIONS[action]
    if current is Status.EXPIRED:
        raise _expired(approval_id, action)
    if current not in sources:
        raise Conflict(f"cannot {action} approval {approval_id}: it is {current.value}",
                       code="approval_decided",
                       details={"approval_id": approval_id, "status": current.value})
    return target


def _expired(approval_id: str, action: str) -> Conflict:
    return Conflict(f"cannot {action} approval {approval_id}: its timeout has passed",
                    code="approval_expired",
                    details={"approval_id": approval_id, "status": Status.EXPIRED.value})


@dataclass(frozen=True)
class Approval:
    id: str
    status: Status
    title: str
    details: dict[str, Any]
    role: Role
    on_timeout: str
    expires_at: datetime | None
    run_id: str | None
    step: str | None
    task_id: str | None
    correlation_id: str
    decided_by: str | None
    comment: str | None
    created_at: datetime
    decided_at: datetime | None

    @classmethod
    def from_row(cls, r: Any) -> Approval:
        return cls(r.id, Status(r.status), r.title, r.details, Role(r.role), r.on_timeout,
                   r.expires_at, r.run_id, r.step, r.task_id, r.correlation_id, r.decided_by,
                   r.comment, r.created_at, r.decided_at)

    def to_dict(self) -> dict[str, Any]:
        def iso(moment: datetime | None) -> str | None:
            return moment.isoformat() if moment else None

        return {"id": self.id, "status": self.status.value, "title": self.title,
                "details": self.details, "role": self.role.value,
                "on_timeout": self.on_timeout, "expires_at": iso(self.expires_at),
                "run_id": self.run_id, "step": self.step, "task_id": self.task_id,
                "correlation_id": self.correlation_id, "decided_by": self.decided_by,
                "comment": self.comment, "created_at": iso(self.created_at),
                "decided_at": iso(self.decided_at), "outcome": outcome(self)}


def outcome(approval: Approval) -> dict[str, Any] | None:
    """What the decision means to whoever waits for it: ``{approved, by, comment, at}``
    (an expiry decides by ``on_timeout``: approve or reject; ``fail`` gives
    ``approved: None``); None while it is pending."""
    at = approval.decided_at.isoformat() if approval.decided_at else None
    if approval.status is Status.PENDING:
        return None
    if approval.status is Status.EXPIRED:
        approved = {"approve": True, "reject": False}.get(approval.on_timeout)
        return {"approved": approved, "by": "timeout", "comment": None, "at": at,
                "expired": True}
    return {"approved": approval.status is Status.APPROVED, "by": approval.decided_by,
            "comment": approval.comment, "at": at}


# -------------------------------------------------------------------- requests


@dataclass(frozen=True)
class Request:
    """An approval to ask for."""

    title: str
    details: dict[str, Any]
    role: Role
    timeout_s: float | None
    on_timeout: str  # approve | reject | fail
    correlation_id: str
    run_id: str | None = None
    step: str | None = None
    task_id: str | None = None
    request_key: str | None = None


def check(request: Request) -> None:
    if not 1 <= len(request.title) <= 500:
        raise InvalidInput("an approval's title is 1-500 characters", code="bad_approval")
    if request.on_timeout not in ("approve", "reject", "fail"):
        raise InvalidInput("on_timeout is approve, reject or fail", code="bad_approval")
    if request.timeout_s is not None and not 0 < request.timeout_s <= 366 * 86_400:
        raise InvalidInput("timeout_s is over 0 and at most a year", code="bad_approval")


def row_of(request: Request, now: datetime) -> tuple[dict[str, Any], Draft]:
    """The approval's row and its ``approval.requested`` event (``request_in`` and the
    workflow engine write many at once)."""
    approval_id = ids.uuid7()
    expires = now + timedelta(seconds=request.timeout_s) if request.timeout_s else None
    row = {"id": approval_id, "status": Status.PENDING.value, "title": request.title,
           "details": request.details, "role": request.role.value,
           "on_timeout": request.on_timeout, "expires_at": expires, "run_id": request.run_id,
           "step": request.step, "task_id": request.task_id,
           "request_key": request.request_key, "correlation_id": request.correlation_id}
    return row, _event("requested", row, title=request.title, role=request.role.value,
                       task_id=request.task_id,
                       expires_at=expires.isoformat() if expires else None)


def _event(verb: str, row: Any, **payload: Any) -> Draft:
    get = row.get if isinstance(row, dict) else row._mapping.get
    return Draft(f"approval.{verb}", SOURCE,
                 {"approval_id": get("id"), "run_id": get("run_id"), "step": get("step"),
                  **payload},
                 correlation_id=get("correlation_id"),
                 causation_id=get("run_id") or get("task_id"), run_id=get("run_id"))


async def request(store: Store, req: Request) -> Approval:
    """Ask for an approval (``ctx.approval``); one with the same ``request_key`` asked
    before (a retried handler) is returned instead of a second one."""
    check(req)
    async with store.write() as conn:
        if req.request_key is not None:
            found = await store_approvals.by_request_key(conn, req.request_key)
            if found is not None:
                store.nothing_changed(conn)
                return Approval.from_row(found)
        now = await _now(store, conn)
        row, draft = row_of(req, now)
        await store_approvals.insert_many(conn, [row])
        await events.append_in(store, conn, [draft])
        found = await store_approvals.get(conn, row["id"])
    return Approval.from_row(found)


async def _now(store: Store, conn: AsyncConnection) -> datetime:
    return await store.tasks.now(conn)


# ------------------------------------------------------------------- decisions


async def decide(store: Store, approval_id: str, approve: bool, comment: str | None, *,
                 actor: str, role: Role) -> Approval:
    """Approve or reject; 403 below the approval's role (recorded as denied), 409 once
    it was decided or cancelled, 409 ``approval_expired`` once its timeout has passed
    (by the database's clock, whether or not the timer has expired it yet), 404 when
    there is none."""
    if comment is not None and len(comment) > 10_000:
        raise InvalidInput("a comment is at most 10,000 characters", code="bad_comment")
    action = "approve" if approve else "reject"
    async with store.read() as conn:
        row = await store_approvals.get(conn, approval_id)
    if row is None:
        raise NotFound(f"no approval {approval_id}", code="approval_not_found")
    needed = Role(row.role)
    if not role.allows(needed):
        entry = audit.pending()
        if entry is not None:
            entry.outcome = audit.Outcome.DENIED
            entry.details["needs"] = needed.value
            await audit.record_pending(store)
        raise Forbidden(f"approval {approval_id} needs the {needed.value} role to {action}; "
                        f"{actor} is {role.value}", code="approval_role",
                        details={"needs": needed.value, "role": role.value})
    target = transition(Status(row.status), action, approval_id)
    async with store.write() as conn:
        decided = await store_approvals.decide(conn, approval_id, target.value, actor, comment)
        if decided is None:  # decided meanwhile, or past its timeout (the timer may lag)
            standing = await store_approvals.standing(conn, approval_id)
            status, lapsed = standing or (Status.CANCELLED.value, False)
            if status == Status.PENDING.value and lapsed:
                raise _expired(approval_id, action)
            transition(Status(status), action, approval_id)
            raise AssertionError("unreachable: transition refused a decided approval")
        await events.append_in(store, conn, [_event(target.value, decided, by=actor,
                                                    comment=comment)])
    return Approval.from_row(decided)


EXPIRE_BATCH = 100


async def expire_due(store: Store) -> int:
    """End the pending approvals whose timeout passed (``approval.expired``), up to
    ``EXPIRE_BATCH`` in one statement."""
    async with store.write() as conn:
        rows = await store_approvals.expire_lapsed(conn, EXPIRE_BATCH)
        if not rows:
            store.nothing_changed(conn)
            return 0
        await events.append_in(store, conn, [_event("expired", r, on_timeout=r.on_timeout)
                                             for r in rows])
    return len(rows)


def cancelled_events(rows: list[Any]) -> list[Draft]:
    return [_event("cancelled", r) for r in rows]


# ----------------------------------------------------------------------- reads


async def get(store: Store, approval_id: str) -> Approval:
    async with store.read() as conn:
        row = await store_approvals.get(conn, approval_id)
    if row is None:
        raise NotFound(f"no approval {approval_id}", code="approval_not_found")
    return Approval.from_row(row)


async def page(store: Store, *, status: Status | None = None, run_id: str | None = None,
               before: str | None = None, limit: int = 100
               ) -> tuple[list[Approval], str | None]:
    """Approvals newest first; ``before``: the previous page's ``next_before``."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}", code="bad_limit")
    async with store.read() as conn:
        rows = await store_approvals.page(conn, status=status.value if status else None,
                                          run_id=run_id, before=before, limit=limit + 1)
    found = [Approval.from_row(r) for r in rows[:limit]]
    return found, (found[-1].id if len(rows) > limit else None)


async def wait(store: Store, approval_id: str) -> Approval:
    """Until the approval is no longer pending (every decision appends an event, which
    wakes this process at once; others' within ``POLL_INTERVAL``)."""
    wakeup = store.wakeup(events.CHANNEL)
    try:
        while True:
            wakeup.clear()
            found = await get(store, approval_id)
            if found.status is not Status.PENDING:
                return found
            await wait_wakeup(wakeup, POLL_INTERVAL)
    finally:
        store.forget_wakeup(events.CHANNEL, wakeup)
