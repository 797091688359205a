"""HTTP requests as metrics, and as trace spans when tracing is on: ``http.requests``
(counter: method, route, status) and ``http.request_ms`` (histogram: method, route),
recorded into the process's buffer (a dict update; written with its next flush). The
route is the matched template (``/api/v1/tasks/{task_id}``), never the raw path, so
ids make no new series."""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agentos import metrics, traces


class RequestMetrics:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        with traces.span(f"HTTP {scope['method']}", _request_attributes(scope)) as current:
            try:
                await self.app(scope, receive, sending)
            finally:
                self._measured(scope, status, started, current)

    def _measured(self, scope: Scope, status: int, started: float, current: Any) -> None:
        route: Any = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        traces.annotate(current, {"http.route": template, "http.response.status_code": status})
        store = getattr(scope["app"].state, "store", None)
        if store is not None:
            recorder = metrics.of(store)
            tags = {"method": scope["method"], "route": template}
            recorder.count("http.requests", 1, {**tags, "status": str(status)})
            recorder.observe("http.request_ms", (time.perf_counter() - started) * 1000, tags)


def _request_attributes(scope: Scope) -> dict[str, Any] | None:
    if not traces.enabled():
        return None
    headers = dict(scope.get("headers") or ())
    return {"http.request.method": scope["method"], "url.path": scope.get("path"),
            "agentos.correlation_id": (headers.get(b"x-correlation-id") or b"").decode(
                "latin-1") or None,
            "agentos.request_id": (headers.get(b"x-request-id") or b"").decode("latin-1")
            or None}
