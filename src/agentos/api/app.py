"""The FastAPI application: ``create_app(settings)``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from agentos import __version__
from agentos.api import errors as api_errors
from agentos.api.middleware import BodyLimit, RequestLog
from agentos.api.routes import agents, health
from agentos.config import Settings
from agentos.store import Store, open_store


def create_app(settings: Settings | None = None, store: Store | None = None) -> FastAPI:
    """The app; it opens (and closes) its own store unless one is given."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = store is None
        app.state.store = store or open_store(settings.database_url,
                                              pool_size=settings.db_pool_size)
        try:
            yield
        finally:
            if own:
                await app.state.store.close()

    app = FastAPI(
        title="AgentOS",
        version=__version__,
        description="The durable backbone for fleets of cooperating AI agents.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    if store is not None:
        app.state.store = store
    api_errors.install(app)
    app.include_router(health.router)
    app.include_router(agents.router)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestLog)
    return app


def from_env() -> FastAPI:
    """The app configured from the environment (``uvicorn --factory agentos.api.app:from_env``)."""
    return create_app(Settings())
