"""Every error leaves the API as ``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from agentos import logs
from agentos.errors import AgentOSError, Forbidden, RateLimited, Unauthorized

log = logging.getLogger("agentos.api")

_HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 406: "not_acceptable", 409: "conflict",
    413: "payload_too_large", 415: "unsupported_media_type", 422: "invalid_request",
    429: "rate_limited",
}


def error_response(status: int, code: str, message: str, details: Any = None,
                   headers: Mapping[str, str] | None = None) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    return JSONResponse(body, status_code=status, headers=headers)


async def _domain(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AgentOSError)
    if exc.status == 500:  # a bug: the client gets the request's id, the log the rest
        log.error("request failed: %s", exc.message, exc_info=exc,
                  extra={"action": "request_failed", "code": exc.code})
        return error_response(500, "internal", "internal server error",
                              {"request_id": logs.request_id.get()})
    if exc.status >= 500:
        log.warning("request refused: %s", exc.message,
                    extra={"action": "request_refused", "code": exc.code})
    headers: dict[str, str] = {}
    if isinstance(exc, Unauthorized | Forbidden):
        from agentos.dashboard import routes as dashboard

        if dashboard.is_page(request):  # a person: the sign-in form, or why not
            return dashboard.error_page(exc)
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, RateLimited) and isinstance(exc.details, dict) and \
            "retry_after_s" in exc.details:
        headers["Retry-After"] = str(exc.details["retry_after_s"])
    return error_response(exc.status, exc.code, exc.message, exc.details, headers=headers)


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, str(exc.detail), headers=exc.headers)


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"path": _path(e["loc"]),
         "message": e["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")}
        for e in exc.errors()
    ]
    if any(e["type"] == "json_invalid" for e in exc.errors()):
        return error_response(400, "malformed_json", "the request body is not valid JSON",
                              {"errors": errors})
    first = errors[0] if errors else {"path": "", "message": "invalid request"}
    message = f"{first['path']}: {first['message']}" if first["path"] else first["message"]
    return error_response(422, "invalid_request", message, {"errors": errors})


def _path(loc: tuple[str | int, ...]) -> str:
    """``("body", "event", "type")`` as ``event.type``; query and path keep their source."""
    parts = [str(p) for p in loc]
    if parts[:1] == ["body"]:
        parts = parts[1:]
    return ".".join(parts)


def install(app: FastAPI) -> None:
    app.add_exception_handler(AgentOSError, _domain)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(RequestValidationError, _invalid)
    # any other exception: api.middleware.RequestLog answers 500 with the request's id
