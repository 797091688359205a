"""/api/v1/locks: acquire (long-polling), release, renew, force-release, inspect."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from agentos import inputs, locks, paging
from agentos.api.access import PrincipalDep
from agentos.api.deps import Limit, SettingsDep, StoreDep
from agentos.api.schemas import locks as schemas
from agentos.config import Settings

router = APIRouter(prefix="/api/v1/locks", tags=["locks"])

Owner = Annotated[str, Field(min_length=1, max_length=255)]


class AcquireIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    owner: Owner
    priority: inputs.Int64 = locks.DEFAULT_PRIORITY  # 1..10, checked with the rest
    ttl_s: float = locks.DEFAULT_TTL
    wait_s: float = 0  # 0: try once; > 0: wait in the queue up to this long
    metadata: dict[str, Any] | None = None

    def claim(self) -> locks.Claim:
        return locks.Claim(self.owner, self.priority, self.ttl_s, self.metadata)


class AcquireManyIn(AcquireIn):
    resources: Annotated[list[str], Field(min_length=1, max_length=locks.MAX_RESOURCES)]


class AcquireAnyIn(AcquireIn):
    resources: Annotated[list[str] | None, Field(
        max_length=locks.MAX_RESOURCES, description="The pool, in order of preference.")] = None
    prefix: Annotated[str | None, Field(max_length=264, description=(
        "Or every resource ever locked whose id starts with this, e.g. 'device:'."))] = None


class HeldIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    owner: Owner
    token: Annotated[int, Field(ge=1, le=inputs.INT64_MAX)]


class RenewIn(HeldIn):
    ttl_s: float = locks.DEFAULT_TTL


def _check(settings: Settings, resources: Sequence[str | None], body: AcquireIn | RenewIn,
           wait_s: float = 0) -> None:
    claim = body.claim() if isinstance(body, AcquireIn) else locks.Claim(
        body.owner, ttl_s=body.ttl_s)
    for resource in resources:
        locks.validate(resource, claim, wait_s, max_ttl_s=settings.lock_max_ttl_s,
                       max_wait_s=settings.lock_max_wait_s)


@router.get("", response_model=schemas.LockPage)
async def list_locks(store: StoreDep, type: Annotated[str | None, Query(
        max_length=63, description="Only resources of this type (the TYPE of TYPE:NAME).")]
        = None, after: str | None = None,
        limit: Limit = paging.DEFAULT_LIMIT) -> dict[str, Any]:
    """Held locks and locks with waiters: holder and queue of each, by resource; page
    with ``after`` = the previous ``next_after``."""
    found, next_after = await locks.page(store, type, after, limit)
    return {"locks": found, "next_after": next_after}


@router.post("/acquire-many", response_model=schemas.Acquired,
             response_model_exclude_none=True)
async def acquire_many(store: StoreDep, settings: SettingsDep, body: AcquireManyIn
                       ) -> dict[str, Any]:
    """All of ``resources`` or none, deadlock-free; the same terms as one acquire."""
    _check(settings, body.resources, body, body.wait_s)
    result = await locks.acquire_many(store, body.resources, body.claim(), body.wait_s)
    return result.to_dict(many=True)


@router.post("/acquire-any")
async def acquire_any(store: StoreDep, settings: SettingsDep, body: AcquireAnyIn
                      ) -> dict[str, Any]:
    """The first free resource of ``resources`` (in that order) or of those under
    ``prefix`` (in id order): ``{"granted": true, "resource", "token", "expires_at"}``;
    with ``wait_s``, the first any of them grants in their queues, or after the wait
    ``{"granted": false, "position", "resource"}`` (the best place it had)."""
    pool = locks.pool(body.resources, body.prefix)
    _check(settings, [*pool.names] or [None], body, body.wait_s)
    return (await locks.acquire_any(store, pool, body.claim(), body.wait_s)).to_dict()


@router.get("/{resource:path}", response_model=schemas.Lock)
async def get(store: StoreDep, resource: str) -> dict[str, Any]:
    """The holder (with its lease and token) and the queue, in the order it is served."""
    return await locks.get(store, resource)


@router.post("/{resource:path}/acquire", response_model=schemas.Acquired,
             response_model_exclude_none=True)
async def acquire(store: StoreDep, settings: SettingsDep, resource: str, body: AcquireIn
                  ) -> dict[str, Any]:
    """Take the lock: ``{"granted": true, "token", "expires_at"}``, or after ``wait_s``
    ``{"granted": false, "position"}`` (the waiter has left the queue)."""
    _check(settings, [resource], body, body.wait_s)
    return (await locks.acquire(store, resource, body.claim(), body.wait_s)).to_dict()


@router.post("/{resource:path}/release", response_model=schemas.Released)
async def release(store: StoreDep, resource: str, body: HeldIn) -> dict[str, Any]:
    """Give the lock up (409 unless ``owner`` holds it with ``token``)."""
    await locks.release(store, resource, body.owner, body.token)
    return {"released": True, "resource": resource, "token": body.token}


@router.post("/{resource:path}/renew", response_model=schemas.LockGrant)
async def renew(store: StoreDep, settings: SettingsDep, resource: str, body: RenewIn
                ) -> dict[str, Any]:
    """Extend the lease to ``ttl_s`` from now (409 unless ``owner`` holds it with ``token``)."""
    _check(settings, [resource], body)
    return (await locks.renew(store, resource, body.owner, body.token, body.ttl_s)).to_dict()


@router.post("/{resource:path}/force-release", response_model=schemas.ForceReleased)
async def force_release(store: StoreDep, principal: PrincipalDep,
                        resource: str) -> dict[str, Any]:
    """Take the lock from its holder (admins; audited by the access rules, and the
    ``lock.force_released`` event names who did it)."""
    released = await locks.force_release(store, resource, actor=principal.actor)
    return {"force_released": True, **released}
