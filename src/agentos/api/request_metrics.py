"""HTTP requests as metrics: ``http.requests`` (counter: method, route, status) and
``http.request_ms`` (histogram: method, route), recorded into the process's buffer
(a dict update; written with its next flush). The route is the matched template
(``/api/v1/tasks/{task_id}``), never the raw path, so ids make no new series."""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agentos import metrics


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

        try:
            await self.app(scope, receive, sending)
        finally:
            route: Any = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            store = getattr(scope["app"].state, "store", None)
            if store is not None:
                recorder = metrics.of(store)
                tags = {"method": scope["method"], "route": template}
                recorder.count("http.requests", 1, {**tags, "status": str(status)})
                recorder.observe("http.request_ms", (time.perf_counter() - started) * 1000,
                                 tags)
