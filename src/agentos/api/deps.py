"""Dependencies shared by the routes, as ``Annotated`` aliases.

They are ``async def`` on purpose: FastAPI runs a plain ``def`` dependency in a
thread pool, a hop that cost ~10% of a registry GET.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from agentos import paging
from agentos.bus import Bus
from agentos.config import Settings
from agentos.projections import Projection
from agentos.store import Store


async def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _bus(request: Request) -> Bus:
    bus: Bus = request.app.state.bus
    return bus


async def _projections(request: Request) -> dict[str, Projection]:
    found: dict[str, Projection] = request.app.state.projections
    return found


StoreDep = Annotated[Store, Depends(_store)]
ProjectionsDep = Annotated[dict[str, Projection], Depends(_projections)]
BusDep = Annotated[Bus, Depends(_bus)]
SettingsDep = Annotated[Settings, Depends(_settings)]
# the page size of a list route
Limit = Annotated[int, Query(ge=1, le=paging.MAX_LIMIT, description="Items per page.")]
