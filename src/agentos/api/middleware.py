"""ASGI middleware: request logging and ids, the last-resort 500, the request-body cap,
the input guard, the audit scope of a request (pure ASGI, no per-request task).

From the outside in: ``RequestLog`` (an id per request, one log line, its metrics
and span, any error nothing else handled answered 500 ``internal`` with that id and
logged with its details), ``AuditScope``, ``BodyLimit`` (413), ``InputGuard`` (hostile input
refused before routing), then the app. None of them lets an exception reach the
server, which would close a keep-alive connection.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Any
from urllib.parse import parse_qsl

import pydantic_core
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agentos import audit, inputs, logs, traces
from agentos.api import request_metrics

log = logging.getLogger("agentos.http")
REQUEST_ID_HEADER = b"x-request-id"
_GOOD_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")  # one a proxy gives us, if sane
# the scope key of a request body the input guard parsed as JSON and passed (its value,
# for the access guard's audit summary and the hot routes, which need not parse it again)
JSON_BODY = "agentos.json_body"
YAML_TYPES = frozenset({"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"})


async def _send_error(send: Send, status: int, code: str, message: str,
                      details: dict[str, Any] | None = None,
                      headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"error": {"code": code, "message": message, "details": details or {}}},
                      ensure_ascii=False, separators=(",", ":")).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


class RequestLog:
    """One log line per request (method, path, status, duration, request id), its
    metrics and trace span (``request_metrics``); the ``X-Request-ID`` header on every
    answer; and the 500 for an unexpected error: a body with nothing but ``internal``
    and the id, the details in the log. One wrapper of ``send`` sees the status for
    all of them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        started = False
        given = dict(scope.get("headers") or []).get(REQUEST_ID_HEADER, b"").decode("latin-1")
        rid = given if _GOOD_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        token = logs.request_id.set(rid)

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
                message = {**message, "headers": [*message.get("headers", ()),
                                                  (REQUEST_ID_HEADER, rid.encode())]}
            await send(message)

        with traces.span(f"HTTP {scope['method']}",
                         request_metrics.span_attributes(scope, rid)) as span:
            try:
                await self.app(scope, receive, send_wrapper)
            except Exception:
                log.exception("unhandled error in %s %s", scope["method"], scope["path"],
                              extra={"action": "request_crashed", "request_id": rid})
                if started:  # the answer is under way: the connection has to go
                    raise
                await _send_error(send_wrapper, 500, "internal", "internal server error",
                                  {"request_id": rid})
            finally:
                request_metrics.measured(scope, status, start, span)
                if log.isEnabledFor(logging.INFO):
                    log.info(
                        "%s %s %d %.1fms", scope["method"], scope["path"], status,
                        (time.perf_counter() - start) * 1000,
                        extra={"action": "http_request", "status": status,
                               "request_id": rid},
                    )
                logs.request_id.reset(token)


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413 before a handler reads them."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._refuse(send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, counting_receive, send)
        except _TooLarge:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        await _send_error(send, 413, "payload_too_large",
                          f"the request body is over {self.max_bytes} bytes",
                          {"max_bytes": self.max_bytes})


class _TooLarge(Exception):
    pass


class InputGuard:
    """Hostile input refused before any route runs, the same way on every route and
    backend (``agentos.inputs``): a body that is not UTF-8 (400 ``bad_encoding``) or
    not JSON where JSON is due (400 ``malformed_json``); a NUL character in a body
    string or key, a query or a path parameter, JSON nested deeper than
    ``inputs.MAX_DEPTH``, an integer past 64 bits, NaN or Infinity (422
    ``invalid_input``, each field named in ``details.errors``). A body is read once
    here (``BodyLimit`` caps it) and handed on unchanged; one that passed as JSON is
    also in the scope, parsed (``JSON_BODY``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        errors = _query_and_path_problems(scope)
        if errors:
            await _invalid(send, errors)
            return
        if scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        raw = b"".join(chunks)
        if raw and await _body_refused(scope, raw, send):
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": raw, "more_body": False}
            return await receive()  # e.g. the disconnect a long poll watches for

        await self.app(scope, replay, send)


def _query_and_path_problems(scope: Scope) -> list[dict[str, str]]:
    errors: list[dict[str, str]] = []
    query: bytes = scope.get("query_string", b"")
    if b"%00" in query or b"\x00" in query:
        for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            problem = inputs.text_problem(key + value, f"query.{key.replace(chr(0), '')}")
            if problem:
                errors.append(problem)
    if "\x00" in scope["path"]:
        errors.append({"path": f"path.{_path_parameter(scope)}",
                       "message": "a NUL character (\\u0000) is not allowed"})
    return errors


def _path_parameter(scope: Scope) -> str:
    """The name of the path parameter that holds a NUL, from the app's OpenAPI paths
    (only asked when there is one), else the whole path. Parameters are one segment,
    except the few that take a path (a lock's resource): those are tried second."""
    app: Any = scope.get("app")
    paths = app.openapi().get("paths", {}) if hasattr(app, "openapi") else {}
    for segment in ("[^/]+", ".+"):
        for template in paths:
            pattern = re.sub(r"\\\{(\w+)\\\}", rf"(?P<\1>{segment})", re.escape(template))
            found = re.fullmatch(pattern, scope["path"], re.DOTALL)
            for name, value in (found.groupdict() if found else {}).items():
                if "\x00" in value:
                    return name
    return "path"


async def _body_refused(scope: Scope, raw: bytes, send: Send) -> bool:
    """Answer and return True when the body breaks a rule. A body that parses as JSON is
    held to the JSON rules whatever its label (a route may read it as JSON anyway); one
    that does not is refused when labelled JSON, checked as text when labelled YAML or
    text, and left to its route otherwise (which answers 415)."""
    media = dict(scope.get("headers") or []).get(b"content-type", b"").decode("latin-1")
    media = media.split(";")[0].strip().lower()
    labelled_json = media in ("", "application/json") or media.endswith("+json")
    try:
        value = pydantic_core.from_json(raw, allow_inf_nan=False)
    except ValueError as exc:
        try:  # NaN or Infinity: the walk says where
            value = pydantic_core.from_json(raw, allow_inf_nan=True)
        except ValueError:
            return await _not_json(send, raw, media, labelled_json, str(exc))
        errors = inputs.problems(value)
        if errors:
            await _invalid(send, errors)
            return True
    if inputs.needs_walk(raw, value) and (errors := inputs.problems(value)):
        await _invalid(send, errors)
        return True
    scope[JSON_BODY] = value
    return False


async def _not_json(send: Send, raw: bytes, media: str, labelled_json: bool,
                    problem: str) -> bool:
    if "recursion limit" in problem:
        await _invalid(send, [{"path": "", "message":
                               f"nested deeper than {inputs.MAX_DEPTH} levels"}])
        return True
    if not (labelled_json or media in YAML_TYPES or media.startswith("text/")):
        return False
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as bad:
        await _bad_encoding(send, bad)
        return True
    if labelled_json:
        await _send_error(send, 400, "malformed_json",
                          f"the request body is not valid JSON: {problem}")
        return True
    if "\x00" in text:  # YAML: documents.py holds its values to the same rules
        await _invalid(send, [{"path": "body", "message":
                               "a NUL character (\\u0000) is not allowed"}])
        return True
    return False


async def _bad_encoding(send: Send, exc: UnicodeDecodeError) -> None:
    await _send_error(send, 400, "bad_encoding",
                      f"the request body is not UTF-8 (byte {exc.start})",
                      {"position": exc.start})


async def _invalid(send: Send, errors: list[dict[str, str]]) -> None:
    first = errors[0]
    where = f"{first['path']}: " if first["path"] else ""
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    await _send_error(send, 422, "invalid_input", f"{where}{first['message']}{more}",
                      {"errors": errors})


class AuditScope:
    """Each request gets its own audit scope: its entry can never leak into another's."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with audit.request_scope():
            await self.app(scope, receive, send)
