"""/api/v1/subscriptions: named durable subscriptions with a cursor in the database."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status
from pydantic import BaseModel, ConfigDict, StrictBool

from agentos import events, inputs, paging, subscriptions
from agentos.api import access
from agentos.api.deps import Limit, SettingsDep, StoreDep
from agentos.api.schemas.events import EventList
from agentos.api.schemas.subscriptions import Subscription, SubscriptionPage

router = APIRouter(prefix="/api/v1/subscriptions", tags=["subscriptions"])


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    type: str = "*"
    from_start: StrictBool = False  # read the whole log instead of starting at its head


class AckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seq: inputs.Seq


@router.post("", status_code=status.HTTP_201_CREATED, response_model=Subscription)
async def create(store: StoreDep, body: SubscriptionIn) -> dict[str, Any]:
    sub = await subscriptions.create(store, body.name, body.type, from_start=body.from_start)
    return sub.to_dict()


@router.get("", response_model=SubscriptionPage)
async def list_subscriptions(store: StoreDep, after: str | None = None,
                             limit: Limit = paging.DEFAULT_LIMIT) -> dict[str, Any]:
    """Subscriptions by name, each with the log's head; page with ``after``."""
    head = await events.head_seq(store)
    found, next_after = await subscriptions.page(store, after, limit)
    return {"subscriptions": [s.to_dict(head) for s in found], "next_after": next_after}


@router.get("/{name}", response_model=Subscription)
async def get(store: StoreDep, name: str) -> dict[str, Any]:
    return (await subscriptions.get(store, name)).to_dict(await events.head_seq(store))


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def delete(store: StoreDep, name: str) -> None:
    await subscriptions.delete_one(store, name)


@router.get("/{name}/events", response_model=EventList)
async def pending(store: StoreDep, settings: SettingsDep, request: Request, name: str,
                  limit: Annotated[int, Query(ge=1, le=events.MAX_PAGE)] = 100,
                  wait_s: Annotated[float, Query(ge=0, le=subscriptions.MAX_WAIT)] = 0.0,
                  ) -> dict[str, Any]:
    """The next events after the cursor; ack the last ``seq`` you handled. With
    ``wait_s``, an empty answer waits up to that long for the next event (checking the
    caller's credential again every AGENTOS_AUTH_CACHE_S meanwhile: 401 once revoked)."""
    deadline = time.monotonic() + wait_s
    while True:  # the wait in slices, each ended by a look at the credential
        left = max(0.0, deadline - time.monotonic())
        found = await subscriptions.pending(store, name, limit,
                                            min(left, max(settings.auth_cache_s, 0.5)))
        if found or left <= 0 or time.monotonic() >= deadline:
            return {"events": [e.to_dict() for e in found]}
        await access.recheck(request)


@router.post("/{name}/ack", response_model=Subscription)
async def ack(store: StoreDep, name: str, body: AckIn) -> dict[str, Any]:
    """Move the cursor to ``seq``: those events will not be delivered again."""
    return (await subscriptions.ack(store, name, body.seq)).to_dict()
