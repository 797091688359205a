"""Hostile input is refused at the edge, on every route and both backends, and writes
nothing: NUL characters (PostgreSQL cannot store them, so neither backend takes one),
JSON nested too deep, bodies that are not UTF-8, integers past 64 bits, NaN and
Infinity. An error nothing else handled answers 500 with a request id and no detail."""

from __future__ import annotations

import logging
import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from agentos.api import access
from agentos.store import Store
from tests.api.test_agents_api import assert_error
from tests.snapshot import snapshot

JSON = {"content-type": "application/json"}
NUL_MESSAGE = "a NUL character (\\u0000) is not allowed"


def operations(app: FastAPI) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path template, OpenAPI operation) of every route of the API."""
    out = []
    for path, ops in app.openapi()["paths"].items():
        for method, op in ops.items():
            out.append((method.upper(), path, op))
    return out


def fill(template: str, nul_in: str | None = None) -> str:
    """The path with every parameter filled in (``nul_in`` gets a NUL)."""
    return re.sub(r"\{(\w+)\}", lambda m: "x%00y" if m.group(1) == nul_in else "x", template)


async def test_a_nul_anywhere_is_refused_on_every_route_and_writes_nothing(
        app: FastAPI, api: httpx.AsyncClient, store: Store) -> None:
    before = await snapshot(store)
    tried = 0
    for method, template, op in operations(app):
        # a NUL in each path parameter
        for name in re.findall(r"\{(\w+)\}", template):
            r = await api.request(method, fill(template, name), headers=JSON, content=b"{}")
            error = assert_error(r, 422, "invalid_input")
            assert error["details"]["errors"] == [{"path": f"path.{name}",
                                                   "message": NUL_MESSAGE}], (method, template)
            tried += 1
        # in each query parameter
        for param in op.get("parameters", []):
            if param["in"] != "query":
                continue
            r = await api.request(method, fill(template), params={param["name"]: "a\x00b"},
                                  headers=JSON, content=b"{}")
            error = assert_error(r, 422, "invalid_input")
            assert error["details"]["errors"][0]["path"] == f"query.{param['name']}"
            tried += 1
        # in a body: a value deep inside, and a key
        if method in ("POST", "PUT", "PATCH"):
            for body, path in ((b'{"name": "a\\u0000b"}', "name"),
                               (b'{"payload": {"list": [1, "\\u0000"]}}', "payload.list[1]"),
                               (b'{"k\\u0000": 1}', "k\\u0000")):
                r = await api.request(method, fill(template), headers=JSON, content=body)
                error = assert_error(r, 422, "invalid_input")
                assert error["details"]["errors"][0]["path"] == path, (method, template)
                tried += 1
    assert tried > 100
    assert await snapshot(store) == before


async def test_a_nul_in_a_yaml_import_is_refused(api: httpx.AsyncClient, store: Store) -> None:
    before = await snapshot(store)
    r = await api.post("/api/v1/agents/import", content=b"name: a\x00b\nversion: 1.0.0\n",
                       headers={"content-type": "application/yaml"})
    assert_error(r, 422, "invalid_input")
    # a NUL written as a YAML escape is caught once parsed
    r = await api.post("/api/v1/agents/import",
                       content=b'name: x\nversion: 1.0.0\ndescription: "a\\0b"\n',
                       headers={"content-type": "application/yaml"})
    error = assert_error(r, 422)
    assert any(e["path"] == "description" for e in error["details"]["errors"]), error
    assert await snapshot(store) == before


@pytest.mark.parametrize(("path", "body", "status", "code", "field"), [
    # nesting: 2,000 levels used to exhaust the parser's recursion (500)
    ("/api/v1/events", b'{"type": "a.b", "payload": {"x": ' + b"[" * 2000 + b"]" * 2000
     + b"}}", 422, "invalid_input", ""),
    # the 65th level (the body, payload, then 63 arrays) is refused; 64 are taken
    ("/api/v1/events", b'{"type": "a.b", "payload": {"x": ' + b"[" * 63 + b"]" * 63 + b"}}",
     422, "invalid_input", "payload.x" + "[0]" * 62),
    ("/api/v1/agents", b"[" * 3000 + b"]" * 3000, 422, "invalid_input", ""),
    # not UTF-8
    ("/api/v1/events", b'{"type": "a.b", "payload": {"x": "\xff"}}', 400, "bad_encoding", None),
    ("/api/v1/agents/import", b"name: \xc3\x28\n", 400, "bad_encoding", None),
    # integers past 64 bits, where they would reach a column or a JSON document
    ("/api/v1/events", b'{"type": "a.b", "payload": {"n": 92233720368547758080}}', 422,
     "invalid_input", "payload.n"),
    ("/api/v1/events", b'{"type": "a.b", "payload": {"n": -9223372036854775809}}', 422,
     "invalid_input", "payload.n"),
    ("/api/v1/locks/r:x/release", b'{"owner": "a", "token": 18446744073709551616}', 422,
     "invalid_input", "token"),
    ("/api/v1/locks/r:x/renew", b'{"owner": "a", "token": 99999999999999999999}', 422,
     "invalid_input", "token"),
    ("/api/v1/tasks/x/heartbeat", b'{"attempt": 1180591620717411303424}', 422,
     "invalid_input", "attempt"),
    # NaN and Infinity are not JSON (Python's parser took them; they were stored as null)
    ("/api/v1/events", b'{"type": "a.b", "payload": {"x": NaN}}', 422, "invalid_input",
     "payload.x"),
    ("/api/v1/events", b'{"type": "a.b", "payload": {"x": [-Infinity]}}', 422,
     "invalid_input", "payload.x[0]"),
    ("/api/v1/events", b'{"type": "a.b", "payload": {"x": 1e999}}', 422, "invalid_input",
     "payload.x"),
    # not JSON at all, or a lone surrogate
    ("/api/v1/events", b'{"type": "a.b",', 400, "malformed_json", None),
    ("/api/v1/events", b'{"type": "a.b", "source": "\\ud800"}', 400, "malformed_json", None),
])
async def test_hostile_bodies_get_a_4xx_naming_the_field_and_write_nothing(
        api: httpx.AsyncClient, store: Store, path: str, body: bytes, status: int, code: str,
        field: str | None) -> None:
    before = await snapshot(store)
    media = "application/yaml" if path.endswith("/import") else "application/json"
    error = assert_error(await api.post(path, content=body, headers={"content-type": media}),
                         status, code)
    if field is not None:
        assert error["details"]["errors"][0]["path"] == field, error
    assert await snapshot(store) == before


async def test_a_json_body_under_another_label_is_held_to_the_same_rules(
        api: httpx.AsyncClient, store: Store) -> None:
    # the event route reads its body as JSON whatever the label says
    before = await snapshot(store)
    for media in ("text/plain", "application/octet-stream", "application/yaml"):
        for body in (b'{"type": "a.b", "source": "a\\u0000"}',
                     b'{"type": "a.b", "payload": {"x": NaN}}'):
            r = await api.post("/api/v1/events", content=body, headers={"content-type": media})
            assert_error(r, 422, "invalid_input")
    assert await snapshot(store) == before


async def test_values_at_the_limits_are_taken(api: httpx.AsyncClient) -> None:
    deep = b"[" * 62 + b"]" * 62
    r = await api.post("/api/v1/events", headers=JSON, content=b'{"type": "a.b", "payload": '
                       b'{"x": ' + deep + b', "big": 9223372036854775807, '
                       b'"small": -9223372036854775808, "f": 1e308, "s": "\\\\u0000"}}')
    assert r.status_code == 201, r.text
    payload = r.json()["payload"]
    assert payload["big"] == 2**63 - 1 and payload["small"] == -(2**63)
    assert payload["s"] == "\\u0000"  # an escaped backslash, then text: no NUL


async def test_integer_query_parameters_are_bounded_to_64_bits(api: httpx.AsyncClient) -> None:
    for path, param in (("/api/v1/events", "after_seq"), ("/api/v1/tasks", "after_seq"),
                        ("/api/v1/audit", "before_seq"), ("/api/v1/events/stream", "after_seq")):
        r = await api.get(path, params={param: str(2**64)})
        assert assert_error(r, 422)["details"]["errors"][0]["path"] == f"query.{param}"
    for cursor in (b"18446744073709551616", b"\xb2"):  # past 64 bits; "²", a digit to isdigit()
        r = await api.get("/api/v1/events/stream", headers={"Last-Event-ID": cursor})
        assert_error(r, 400, "bad_cursor")


# values inside a JSON document an agent definition holds (trigger filters, capability
# versions): no column of their own, and the edge holds every JSON integer to 64 bits
IN_JSON_DOCUMENTS = ("Trigger.", "Capability.")


def test_every_integer_the_api_takes_is_bounded(app: FastAPI) -> None:
    """An unbounded integer parameter or body field would reach the database as is:
    every one in the OpenAPI document has a minimum and a maximum within 64 bits."""
    schema = app.openapi()
    unbounded: list[str] = []
    seen: set[str] = set()

    def check(node: Any, where: str) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref not in seen:  # a model the request uses
                seen.add(ref)
                name = ref.rsplit("/", 1)[-1]
                check(schema["components"]["schemas"][name], name)
            if node.get("type") == "integer" and not where.startswith(IN_JSON_DOCUMENTS):
                low = node.get("minimum", node.get("exclusiveMinimum"))
                high = node.get("maximum", node.get("exclusiveMaximum"))
                if low is None or high is None or low < -(2**63) or high > 2**63 - 1:
                    unbounded.append(where)
            for key, child in node.items():
                check(child, f"{where}.{key}")
        elif isinstance(node, list):
            for n, child in enumerate(node):
                check(child, f"{where}[{n}]")

    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            check(op.get("parameters", []), f"{method} {path} parameters")
            check(op.get("requestBody", {}), f"{method} {path} body")
    assert not unbounded, unbounded


async def test_an_unexpected_error_answers_500_internal_with_a_request_id_only(
        app: FastAPI, api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    # a route that fails the way a bug would, with driver-like text in its exception
    @app.get("/api/v1/test-crash")
    async def crash() -> None:
        raise RuntimeError("relation secret_table violates constraint xyz")

    app.openapi_schema = None
    monkeypatch.setitem(access.RULES, ("GET", "/api/v1/test-crash"), access.read("events"))
    with caplog.at_level(logging.ERROR, logger="agentos.http"):
        r = await api.get("/api/v1/test-crash")
    error = assert_error(r, 500, "internal")
    assert error == {"code": "internal", "message": "internal server error",
                     "details": {"request_id": r.headers["x-request-id"]}}
    assert "secret_table" not in r.text
    logged = [rec for rec in caplog.records if rec.getMessage().startswith("unhandled error")]
    assert logged and logged[0].exc_info is not None
    assert logged[0].request_id == r.headers["x-request-id"]  # type: ignore[attr-defined]
    assert "secret_table" in str(logged[0].exc_info[1])
    # every answer carries an id; a sane one from a proxy is kept
    ok = await api.get("/health", headers={"X-Request-ID": "edge-42"})
    assert ok.headers["x-request-id"] == "edge-42"
    odd = await api.get("/health", headers={"X-Request-ID": "x" * 300})
    assert re.fullmatch(r"[0-9a-f]{32}", odd.headers["x-request-id"])
