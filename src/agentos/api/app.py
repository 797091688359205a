"""The HTTP application: ``create_app(settings)``: routes, middleware, the access
guard, and the state its requests share (store, credential resolver, event bus).
The server process around it, with its background loops, is ``agentos.server``."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import Depends, FastAPI

from agentos import __version__, audit, cache, projections, tokens, traces, users
from agentos.api import access, hot_routes, openapi
from agentos.api import errors as api_errors
from agentos.api.middleware import AuditScope, BodyLimit, InputGuard, RequestLog
from agentos.api.routes import (
    agents,
    api_keys,
    auth,
    events,
    health,
    knowledge,
    models,
    subscriptions,
    tasks,
)
from agentos.api.routes import approvals as approval_routes
from agentos.api.routes import audit as audit_routes
from agentos.api.routes import explain as explain_routes
from agentos.api.routes import locks as lock_routes
from agentos.api.routes import metrics as metric_routes
from agentos.api.routes import operating as operating_routes
from agentos.api.routes import projections as projection_routes
from agentos.api.routes import schedules as schedule_routes
from agentos.api.routes import sessions as session_routes
from agentos.api.routes import task_logs as task_log_routes
from agentos.api.routes import telemetry as telemetry_routes
from agentos.api.routes import users as user_routes
from agentos.api.routes import workflow_runs as run_routes
from agentos.api.routes import workflows as workflow_routes
from agentos.bus import Bus
from agentos.config import Settings, proxy_list
from agentos.dashboard import routes as dashboard
from agentos.store import Store, open_store

# what runs beside the app while it is up, given its store (agentos.server.background)
Background = Callable[[Store], AbstractAsyncContextManager[None]]


def create_app(settings: Settings | None = None, store: Store | None = None,
               background: Background | None = None) -> FastAPI:
    """The HTTP app; it opens (and closes) its own store unless one is given.
    ``background(store)`` is entered while the app is up (the server's loops:
    ``agentos.server``)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = store is None
        app.state.store = store or open_store(settings.database_url,
                                              pool_size=settings.db_pool_size)
        store_ = app.state.store
        store_.before_commit(audit.flush, on_driver=audit.flush_on_driver)
        app.state.resolver = tokens.Resolver(store_, settings.auth_cache_s)
        await first_admin(store_, settings)
        await cache.start(store_, settings)
        traces.setup(settings.otlp_endpoint, "agentos-server")
        app.state.bus = Bus(store_, also_listen=(tokens.CHANNEL, cache.CHANNEL))
        await app.state.bus.start()
        try:
            async with background(store_) if background else contextlib.nullcontext():
                yield
        finally:
            await app.state.bus.stop()
            traces.flush()
            await cache.stop(store_)
            if own:
                await app.state.store.close()

    app = FastAPI(
        title="AgentOS",
        version=__version__,
        description="The durable backbone for fleets of cooperating AI agents.",
        lifespan=lifespan,
        dependencies=[Depends(access.guard)],  # every route's access rule, checked once
    )
    app.state.settings = settings
    # the read models this installation has (built-ins + AGENTOS_PROJECTIONS): a bad
    # module is refused here, before the server starts
    app.state.projections = projections.load(settings.projections)
    if store is not None:
        app.state.store = store
    api_errors.install(app)
    # a request is matched against the routes in this order, each tried in turn (twice
    # over: FastAPI's router looks again when it handles the match): the ones agents and
    # workers call most come first (no route before them shares their prefixes)
    app.include_router(health.router)
    app.include_router(tasks.router)
    app.include_router(events.router)
    app.include_router(lock_routes.router)
    app.include_router(auth.router)
    app.include_router(user_routes.router)
    app.include_router(api_keys.router)
    app.include_router(session_routes.router)
    app.include_router(audit_routes.router)
    app.include_router(agents.router)
    app.include_router(subscriptions.router)
    app.include_router(schedule_routes.router)
    app.include_router(tasks.workers_router)
    app.include_router(knowledge.router)
    app.include_router(models.router)
    app.include_router(projection_routes.router)
    app.include_router(operating_routes.router)
    app.include_router(operating_routes.workers_router)
    app.include_router(telemetry_routes.router)
    app.include_router(telemetry_routes.budgets_router)
    app.include_router(workflow_routes.router)
    app.include_router(run_routes.router)
    app.include_router(approval_routes.router)
    app.include_router(metric_routes.router)
    app.include_router(metric_routes.prometheus_router)
    app.include_router(metric_routes.summary_router)
    app.include_router(explain_routes.router)
    app.include_router(task_log_routes.router)
    app.include_router(dashboard.router)
    hot_routes.install(app)  # the single writes agents send most, ahead of their routes
    app.add_middleware(InputGuard)  # innermost: it reads bodies BodyLimit has capped
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    access.document(app)
    openapi.refine(app)
    app.add_middleware(AuditScope)
    app.add_middleware(RequestLog)
    if proxies := proxy_list(settings.trusted_proxies):
        # the client address behind a trusted proxy (audit rows, the login throttle);
        # anyone else's X-Forwarded-For is ignored
        from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=proxies)
    return app


async def first_admin(store: Store, settings: Settings) -> str | None:
    """With no user yet, create ``admin``; a random password is printed, this once."""
    given = settings.admin_password.get_secret_value() if settings.admin_password else None
    generated = await users.ensure_admin(store, given)
    if generated is not None:
        print(f"created user admin with password {generated} (shown once; change it with "
              "`agentos users passwd`)", file=sys.stderr, flush=True)
    return generated
