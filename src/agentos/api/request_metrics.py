"""HTTP requests as metrics, and as trace spans when tracing is on: ``http.requests``
(counter: method, route, status) and ``http.request_ms`` (histogram: method, route),
recorded into the process's buffer (a dict update; written with its next flush). The
route is the matched template (``/api/v1/tasks/{task_id}``), never the raw path, so
ids make no new series. ``RequestLog`` (``middleware``) calls these around each
request, in the one wrapper of ``send`` that also logs it."""

from __future__ import annotations

import time
from typing import Any

from starlette.types import Scope

from agentos import metrics, traces


def span_attributes(scope: Scope, request_id: str) -> dict[str, Any] | None:
    """A request's span's attributes (None when tracing is off: nothing is built)."""
    if not traces.enabled():
        return None
    headers = dict(scope.get("headers") or ())
    return {"http.request.method": scope["method"], "url.path": scope.get("path"),
            "agentos.correlation_id": (headers.get(b"x-correlation-id") or b"").decode(
                "latin-1") or None,
            "agentos.request_id": request_id}


def measured(scope: Scope, status: int, started: float, span: Any) -> None:
    """Record a request that ended with ``status`` (``started``: its perf_counter)."""
    route: Any = scope.get("route")
    template = getattr(route, "path", None) or "unmatched"
    traces.annotate(span, {"http.route": template, "http.response.status_code": status})
    store = getattr(scope["app"].state, "store", None)
    if store is not None:
        recorder = metrics.of(store)
        tags = {"method": scope["method"], "route": template}
        recorder.count("http.requests", 1, {**tags, "status": str(status)})
        recorder.observe("http.request_ms", (time.perf_counter() - started) * 1000, tags)
