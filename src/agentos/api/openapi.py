"""The OpenAPI document, made exact enough for a client (or a fuzzer) to build valid
requests and to know what an error looks like.

FastAPI's own document is close; ``refine`` mends what it gets wrong for us: the
bounds of integers pass through a float there (``2**63 - 1`` would come out as
``2**63``, a value the API refuses), every error is documented as FastAPI's
validation shape instead of ours (``{"error": {code, message, details}}``), and the
routes that read their body themselves (to report every error with its path and
line) are described with the models they validate against (``BODIES``).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from agentos import inputs
from agentos.agent_spec import AgentSpec
from agentos.tasks import TaskIn

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object", "title": "Error", "required": ["error"],
    "properties": {"error": {
        "type": "object", "required": ["code", "message", "details"],
        "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                       "details": {"type": "object"}}}}}
_ERROR_RESPONSE = {"description": "refused or failed: see ``error.code``",
                   "content": {"application/json": {
                       "schema": {"$ref": "#/components/schemas/Error"}}}}
_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")


class TaskBatch(BaseModel):
    """The body of ``POST /api/v1/tasks/batch``."""

    tasks: list[TaskIn]


# (method, path) -> the model a route that reads its own body validates it against
BODIES: dict[tuple[str, str], type[BaseModel]] = {
    ("post", "/api/v1/agents"): AgentSpec,
    ("put", "/api/v1/agents/{name}/versions/{version}"): AgentSpec,
    ("post", "/api/v1/tasks"): TaskIn,
    ("post", "/api/v1/tasks/batch"): TaskBatch,
}


def refine(app: FastAPI) -> None:
    """Wrap ``app.openapi`` (after the other refinements) with ours."""
    build = app.openapi
    refined: list[dict[str, Any]] = []  # the document last refined

    def openapi() -> dict[str, Any]:
        if refined and app.openapi_schema is refined[0]:
            return refined[0]
        schema = build()
        _exact_bounds(schema)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["Error"] = ERROR_SCHEMA
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        for (method, path), model in BODIES.items():
            operation = schema.get("paths", {}).get(path, {}).get(method)
            if operation is None:
                continue
            body = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(body.pop("$defs", {}))
            components.setdefault(model.__name__, body)
            operation["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}}
        _exact_bounds(components)
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                responses["422"] = _ERROR_RESPONSE
                responses.setdefault("4XX", _ERROR_RESPONSE)
        refined[:] = [schema]
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _exact_bounds(node: Any) -> None:
    """Integer bounds back to integers (``inputs.INT64_MAX`` included)."""
    if isinstance(node, dict):
        for key in _BOUNDS:
            value = node.get(key)
            if isinstance(value, float) and value.is_integer():
                exact = int(value)
                node[key] = (inputs.INT64_MAX if exact == 2**63 else
                             inputs.INT64_MIN if exact == -(2**63) else exact)
        for child in node.values():
            _exact_bounds(child)
    elif isinstance(node, list):
        for child in node:
            _exact_bounds(child)
