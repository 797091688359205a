"""The writes agents and workers send one at a time, served without FastAPI's
per-request machinery.

Submitting a task, appending an event, acquiring or releasing a lock, completing
an attempt and a remote worker's claim are the requests a fleet sends most, one by
one. FastAPI's handling of a request (its routing, its dependency resolution,
checking the answer against the response model) costs about as much server CPU as
Starlette's whole request does (``bench/http_floor.py``). So each of these is also a
plain Starlette route, placed ahead of the FastAPI route of the same method and path,
built from that route:

- the same endpoint function, given what its parameters name: ``store``,
  ``settings``, ``request``, ``response``, the path's parameters, and ``body``,
  parsed and checked with the model the endpoint declares (a body it declares as
  ``Any`` is the JSON value);
- the same access rule, checked by the same ``access.guard`` first;
- the same answers: the route's status code (or the one the endpoint set), its
  ``response_model_exclude_none`` or ``response_model_exclude_unset`` (of a dict
  answer FastAPI keeps the keys it has; the top level's are sent in the model's order,
  nested ones as the endpoint built them, unchecked: so a hot route's endpoint answers
  dicts holding only its model's fields, as ``Task.to_dict`` does), and a body that is
  not valid for the model becomes the same 422 (``RequestValidationError``, answered
  by ``api.errors``).

The FastAPI routes stay: they are what the OpenAPI document describes, and what
answers a method these routes do not serve. ``tests/api/test_hot_routes.py`` sends
the same requests, good and bad, to both and compares the answers.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel, ValidationError
from starlette.routing import Match, Route
from starlette.types import Scope

from agentos.api import access
from agentos.api.middleware import JSON_BODY

# (method, path) of the FastAPI routes served here too
HOT = (
    ("POST", "/api/v1/tasks"),
    ("POST", "/api/v1/events"),
    ("POST", "/api/v1/tasks/{task_id}/complete"),
    ("POST", "/api/v1/locks/{resource:path}/acquire"),
    ("POST", "/api/v1/locks/{resource:path}/release"),
    ("POST", "/api/v1/tasks/claim"),
)
_FROM_APP = {"store": "store", "settings": "settings"}  # parameter: app.state attribute


class HotRoute(Route):
    """A Starlette route that, like FastAPI's, tells the guard which route it is."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is not Match.FULL:  # another method: the FastAPI routes answer (a 405's
            return Match.NONE, {}  # Allow header names their methods)
        child["route"] = self
        return match, child


def install(app: FastAPI) -> None:
    """Put a hot route ahead of each route of ``HOT`` (after every route is added)."""
    found: dict[tuple[str, str], APIRoute] = {}
    # the walk stops at the last of them: FastAPI builds an included router's routes
    # (their parameters' fields) when first walked into, and the routers after those of
    # the hot routes are then built by the first request that needs them, not at start
    # (about a tenth of a server's start, all routers built)
    for context in iter_route_contexts(app.router.routes):
        route = context.original_route
        if isinstance(route, APIRoute):
            for method in route.methods or ():  # the first of a method and path serves
                found.setdefault((method, route.path), route)
        if found.keys() >= set(HOT):
            break
    for method, path in reversed(HOT):
        route = found[(method, path)]
        app.router.routes.insert(0, HotRoute(path, _endpoint(route), methods=[method],
                                              name=route.name, include_in_schema=False))


def _endpoint(route: APIRoute) -> Callable[[Request], Awaitable[Response]]:
    """The Starlette endpoint that runs ``route``'s endpoint as FastAPI would; a
    TypeError for a route using what it does not give (see ``_unsupported``)."""
    call = route.endpoint
    params = list(inspect.signature(call).parameters)
    hints = typing.get_type_hints(call, include_extras=True)
    model = hints.get("body")
    model = model if isinstance(model, type) and issubclass(model, BaseModel) else None
    if problems := _unsupported(route, params, hints):
        raise TypeError(f"{route.path} cannot be a hot route: {'; '.join(problems)}")
    status = route.status_code or 200
    exclude_none = route.response_model_exclude_none
    # the answer's keys, in the response model's order (FastAPI would drop any other)
    fields = tuple(route.response_model.model_fields) if route.response_model else None

    async def endpoint(request: Request) -> Response:
        await access.guard(request)
        answer = Response(status_code=0)  # what the endpoint sets, if it does
        given: dict[str, Any] = {}
        for name in params:
            if name in _FROM_APP:
                given[name] = getattr(request.app.state, _FROM_APP[name])
            elif name == "request":
                given[name] = request
            elif name == "response":
                given[name] = answer
            elif name == "body":
                given[name] = _body(request, await request.body(), model)
            else:
                given[name] = request.path_params[name]
        out = await call(**given)
        if isinstance(out, Response):
            return out
        if fields is not None:
            out = {k: out[k] for k in fields if k in out}
        if exclude_none:
            out = {k: v for k, v in out.items() if v is not None}
        sent = Response(orjson.dumps(out), status_code=answer.status_code or status,
                        media_type="application/json")
        sent.raw_headers += [(k, v) for k, v in answer.raw_headers
                             if k not in (b"content-length", b"content-type")]
        return sent

    return endpoint


def _unsupported(route: APIRoute, params: list[str], hints: dict[str, Any]) -> list[str]:
    """What ``route`` declares that a hot route would not honour: a parameter other
    than those it gives, a path parameter not a string, a body neither a Pydantic model
    nor ``Annotated[Any, Body()]``, dependencies of its own, response model options
    other than ``exclude_none`` and ``exclude_unset``."""
    known = {"request", "response", "body", *_FROM_APP, *route.param_convertors}
    problems = [f"a parameter {p!r}" for p in params if p not in known]
    problems += [f"path parameter {p!r} is not a str" for p in route.param_convertors
                 if p in params and hints.get(p) is not str]
    body = hints.get("body")
    if "body" in params and not (isinstance(body, type) and issubclass(body, BaseModel)) \
            and not (typing.get_origin(body) is typing.Annotated
                     and typing.get_args(body)[0] is Any):
        problems.append(f"a body of {body}")
    if route.dependencies:
        problems.append("dependencies of its own")
    if route.response_model is not None and not (
            isinstance(route.response_model, type)
            and issubclass(route.response_model, BaseModel)):
        problems.append(f"a response model {route.response_model}")
    if route.response_model_exclude_defaults or route.response_model_include \
            or route.response_model_exclude:
        problems.append("response model options other than exclude_none and exclude_unset")
    return problems


def _body(request: Request, raw: bytes, model: type[BaseModel] | None) -> Any:
    """The request body as the endpoint declares it, read as FastAPI reads it: JSON
    only when labelled JSON, else its bytes; FastAPI's 422 when it is not valid."""
    if not raw:
        raise RequestValidationError([{"type": "missing", "loc": ("body",),
                                       "msg": "Field required", "input": None}])
    value: Any = raw
    if _labelled_json(request.headers.get("content-type", "")):
        try:  # the input guard parsed it, or refused it unless it was not labelled JSON
            value = request.scope[JSON_BODY] if JSON_BODY in request.scope \
                else orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise RequestValidationError([{"type": "json_invalid", "loc": ("body", exc.pos),
                                           "msg": "JSON decode error", "input": {}}]) from None
    if model is None:
        return value
    try:  # from the value, as FastAPI does (JSON's words for errors differ)
        return model.model_validate(value, from_attributes=True)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None


def _labelled_json(media: str) -> bool:
    """``application/json`` or ``application/...+json`` (FastAPI's test)."""
    kind, _, sub = media.split(";")[0].strip().lower().partition("/")
    return kind == "application" and (sub == "json" or sub.endswith("+json"))
