"""The registry over HTTP: routes, status codes, the error shape, and no writes on errors."""

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from agentos.store import Store
from tests.snapshot import snapshot

EXAMPLE = (Path(__file__).parent.parent / "data" / "qa-manager.yaml").read_text()
YAML = {"Content-Type": "application/yaml"}


def definition(name: str = "a", version: str = "1.0.0", **fields: Any) -> dict[str, Any]:
    return {"name": name, "version": version, "handler": {"type": "python", "target": "m:f"},
            **fields}


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code:
        assert body["error"]["code"] == code
    error: dict[str, Any] = body["error"]
    return error


async def test_import_publish_show_export(api: httpx.AsyncClient) -> None:
    r = await api.post("/api/v1/agents/import?publish=true", content=EXAMPLE, headers=YAML)
    assert r.status_code == 201, r.text
    [agent] = r.json()["agents"]
    assert (agent["name"], agent["version"], agent["status"]) == ("qa-manager", "1.0.0",
                                                                  "published")
    r = await api.get("/api/v1/agents/qa-manager")
    assert r.status_code == 200 and r.json()["definition"] == yaml.safe_load(EXAMPLE)
    r = await api.get("/api/v1/agents/qa-manager/export")
    assert r.headers["content-type"].startswith("application/yaml")
    assert yaml.safe_load(r.text) == yaml.safe_load(EXAMPLE)
    r = await api.get("/api/v1/agents/qa-manager/export", params={"version": "1.0.0"})
    assert yaml.safe_load(r.text) == yaml.safe_load(EXAMPLE)


async def test_create_replace_publish_deprecate_delete(api: httpx.AsyncClient) -> None:
    r = await api.post("/api/v1/agents", json=definition(description="one"))
    assert r.status_code == 201 and r.json()["status"] == "draft"
    r = await api.post("/api/v1/agents", json=definition(description="two"))
    assert r.status_code == 200 and r.json()["definition"]["description"] == "two"
    r = await api.put("/api/v1/agents/a/versions/1.0.0", json=definition(description="three"))
    assert r.status_code == 200 and r.json()["definition"]["description"] == "three"
    await api.post("/api/v1/agents", json=definition(version="1.1.0"))
    r = await api.delete("/api/v1/agents/a/versions/1.1.0")
    assert r.status_code == 204
    r = await api.post("/api/v1/agents/a/versions/1.0.0/publish")
    assert r.status_code == 200 and r.json()["status"] == "published"
    assert r.json()["published_at"]
    r = await api.get("/api/v1/agents/a/versions")
    assert [(v["version"], v["status"]) for v in r.json()["versions"]] == [("1.0.0", "published")]
    r = await api.post("/api/v1/agents/a/versions/1.0.0/deprecate")
    assert r.json()["status"] == "deprecated"
    r = await api.post("/api/v1/agents/a/versions/1.0.0/archive")
    assert r.json()["status"] == "archived"
    r = await api.get("/api/v1/agents/a/versions/1.0.0")
    assert r.json()["status"] == "archived"


async def test_search_params(api: httpx.AsyncClient) -> None:
    await api.post("/api/v1/agents/import?publish=true", content=EXAMPLE, headers=YAML)
    await api.post("/api/v1/agents", json=definition("b", tags=["finance"]))

    async def names(**params: Any) -> list[str]:
        r = await api.get("/api/v1/agents", params=params)
        assert r.status_code == 200, r.text
        return [a["name"] for a in r.json()["agents"]]

    assert await names() == ["b", "qa-manager"]
    assert await names(q="device") == ["qa-manager"]
    assert await names(tag="finance") == ["b"]
    assert await names(capability="test-planning") == ["qa-manager"]
    assert await names(status="draft") == ["b"]
    assert await names(event="alert.disk") == ["qa-manager"]
    r = await api.get("/api/v1/agents", params={"limit": 1})
    assert r.json()["next_after"] == "b"


async def test_multi_document_import_is_all_or_nothing(api: httpx.AsyncClient,
                                                       store: Store) -> None:
    before = await snapshot(store)
    stream = "\n---\n".join([EXAMPLE, EXAMPLE.replace("qa-manager", "qa-two"),
                             "name: x\nversion: 1\nhandler: {type: python, target: m:f}\n"])
    r = await api.post("/api/v1/agents/import", content=stream, headers=YAML)
    error = assert_error(r, 422, "validation_failed")
    assert error["details"]["errors"][0]["document"] == 2
    assert await snapshot(store) == before
    r = await api.post("/api/v1/agents/import", content="\n---\n".join(
        [EXAMPLE, EXAMPLE.replace("qa-manager", "qa-two")]), headers=YAML)
    assert r.status_code == 201 and len(r.json()["agents"]) == 2


BAD_IMPORTS = [
    ("name: [unclosed", 422, "malformed_document", ""),
    ("- a\n- b\n", 422, "validation_failed", ""),
    (EXAMPLE + "colour: red\n", 422, "validation_failed", "colour"),
    (EXAMPLE.replace("priority: 8", "priority: high"), 422, "validation_failed",
     "triggers[0].priority"),
    (EXAMPLE.replace("version: 1.0.0", "version: '1.0'"), 422, "validation_failed", "version"),
    (EXAMPLE.replace("name: qa-manager", "name: QA_Manager"), 422, "validation_failed", "name"),
    (EXAMPLE.replace('"alert.*"', '"alert..*"'), 422, "validation_failed", "triggers[0].event"),
    ("", 422, "malformed_document", ""),
]


@pytest.mark.parametrize(("body", "status", "code", "path"), BAD_IMPORTS)
async def test_bad_imports_write_nothing(api: httpx.AsyncClient, store: Store, body: str,
                                         status: int, code: str, path: str) -> None:
    before = await snapshot(store)
    error = assert_error(await api.post("/api/v1/agents/import", content=body, headers=YAML),
                         status, code)
    assert path in [e["path"] for e in error["details"]["errors"]]
    assert await snapshot(store) == before


async def test_reimport_is_unchanged_and_a_changed_body_names_its_fields(
        api: httpx.AsyncClient, store: Store) -> None:
    first = await api.post("/api/v1/agents/import?publish=true", content=EXAMPLE, headers=YAML)
    assert first.status_code == 201, first.text
    assert [a["result"] for a in first.json()["agents"]] == ["created"]
    before = await snapshot(store)
    for query in ("?publish=true", ""):  # the same file again: like kubectl apply
        again = await api.post(f"/api/v1/agents/import{query}", content=EXAMPLE, headers=YAML)
        assert again.status_code == 200, again.text
        [agent] = again.json()["agents"]
        assert (agent["result"], agent["status"]) == ("unchanged", "published")
    assert await snapshot(store) == before  # nothing written, not even an audit row
    changed = yaml.safe_load(EXAMPLE) | {"description": "changed", "owner": "someone-else"}
    error = assert_error(await api.post("/api/v1/agents/import", content=yaml.safe_dump(changed),
                                        headers=YAML), 409, "version_immutable")
    assert error["details"]["fields"] == ["description", "owner"]
    assert "differs in description, owner" in error["message"]
    assert await snapshot(store) == before
    # a draft: the same body is unchanged, a different one replaces it, publish publishes
    draft = yaml.safe_load(EXAMPLE) | {"version": "1.1.0"}
    created = await api.post("/api/v1/agents/import", content=yaml.safe_dump(draft), headers=YAML)
    assert created.json()["agents"][0]["result"] == "created"
    same = await api.post("/api/v1/agents/import", content=yaml.safe_dump(draft), headers=YAML)
    assert (same.status_code, same.json()["agents"][0]["result"]) == (200, "unchanged")
    other = await api.post("/api/v1/agents/import", headers=YAML,
                           content=yaml.safe_dump(draft | {"description": "d2"}))
    assert (other.status_code, other.json()["agents"][0]["result"]) == (201, "updated")
    published = await api.post("/api/v1/agents/import?publish=true", headers=YAML,
                               content=yaml.safe_dump(draft | {"description": "d2"}))
    assert published.status_code == 201
    assert published.json()["agents"][0]["status"] == "published"


async def test_conflicts_and_missing(api: httpx.AsyncClient, store: Store) -> None:
    await api.post("/api/v1/agents/import?publish=true", content=EXAMPLE, headers=YAML)
    before = await snapshot(store)
    changed = yaml.safe_load(EXAMPLE) | {"description": "changed"}
    assert_error(await api.post("/api/v1/agents", json=changed), 409, "version_immutable")
    assert_error(await api.post("/api/v1/agents/import", content=yaml.safe_dump(changed),
                                headers=YAML), 409)
    assert_error(await api.put("/api/v1/agents/qa-manager/versions/1.0.0", json=changed), 409)
    assert_error(await api.delete("/api/v1/agents/qa-manager/versions/1.0.0"), 409)
    assert_error(await api.post("/api/v1/agents/qa-manager/versions/1.0.0/publish"), 409,
                 "invalid_transition")
    assert_error(await api.post("/api/v1/agents/qa-manager/versions/9.0.0/publish"), 404,
                 "version_not_found")
    assert_error(await api.post("/api/v1/agents/ghost/versions/1.0.0/publish"), 404,
                 "agent_not_found")
    assert_error(await api.get("/api/v1/agents/ghost"), 404, "agent_not_found")
    assert_error(await api.get("/api/v1/agents/ghost/export"), 404)
    assert_error(await api.get("/api/v1/agents/ghost/versions"), 404)
    assert_error(await api.put("/api/v1/agents/qa-manager/versions/2.0.0",
                               json=definition("qa-manager", "2.0.0")), 404)
    assert_error(await api.put("/api/v1/agents/qa-manager/versions/2.0.0",
                               json=definition("other", "2.0.0")), 400, "name_mismatch")
    assert await snapshot(store) == before


@pytest.mark.parametrize(("kwargs", "status", "code"), [
    ({"content": b"{not json", "headers": {"Content-Type": "application/json"}}, 400,
     "malformed_json"),
    ({"json": [1, 2]}, 422, "validation_failed"),
    ({"json": "a string"}, 422, "validation_failed"),
    ({"json": definition(limits={"timeout_s": -5})}, 422, "validation_failed"),
    ({"json": definition(handler={"type": "python", "target": 5})}, 422, "validation_failed"),
])
async def test_bad_json_definitions(api: httpx.AsyncClient, store: Store, kwargs: dict[str, Any],
                                    status: int, code: str) -> None:
    before = await snapshot(store)
    assert_error(await api.post("/api/v1/agents", **kwargs), status, code)
    assert await snapshot(store) == before


async def test_bad_query_parameters(api: httpx.AsyncClient) -> None:
    assert_error(await api.get("/api/v1/agents", params={"status": "bogus"}), 422)
    assert_error(await api.get("/api/v1/agents", params={"limit": 0}), 422)
    assert_error(await api.get("/api/v1/agents", params={"event": "a..b"}), 400, "bad_pattern")
    r = await api.get("/api/v1/agents", params={"q": "'; DROP TABLE agent_versions; --"})
    assert r.status_code == 200 and r.json()["agents"] == []


async def test_import_needs_yaml(api: httpx.AsyncClient) -> None:
    assert_error(await api.post("/api/v1/agents/import", content=EXAMPLE,
                                headers={"Content-Type": "image/png"}), 415)
    assert_error(await api.post("/api/v1/agents/import", content=b"\xff\xfe",
                                headers=YAML), 400, "bad_encoding")


async def test_framework_errors_use_the_error_shape(api: httpx.AsyncClient) -> None:
    assert_error(await api.get("/api/v1/nothing-here"), 404, "not_found")
    assert_error(await api.patch("/api/v1/agents"), 405, "method_not_allowed")


async def test_oversized_bodies_are_refused(api: httpx.AsyncClient, store: Store) -> None:
    before = await snapshot(store)
    big = EXAMPLE + "metadata: {blob: '" + "x" * (5 * 1024 * 1024) + "'}\n"
    assert_error(await api.post("/api/v1/agents/import", content=big, headers=YAML), 413,
                 "payload_too_large")
    assert await snapshot(store) == before


async def test_import_and_publish_warn_when_the_server_cannot_load_the_handler(
        api: httpx.AsyncClient) -> None:
    far = "name: far\nversion: 1.0.0\nhandler: {type: python, target: 'nowhere_at_all:run'}\n"
    r = await api.post("/api/v1/agents/import", content=far, headers=YAML)
    assert r.status_code == 201, r.text  # a warning, not a refusal: a worker may have it
    [warning] = r.json()["warnings"]
    assert (warning["name"], warning["version"], warning["code"]) == (
        "far", "1.0.0", "handler_unloadable")
    assert "ModuleNotFoundError: No module named 'nowhere_at_all'" in warning["message"]
    published = await api.post("/api/v1/agents/far/versions/1.0.0/publish")
    assert published.status_code == 200 and published.json()["status"] == "published"
    assert [w["code"] for w in published.json()["warnings"]] == ["handler_unloadable"]
    gone = "name: gone\nversion: 1.0.0\nhandler: {type: command, argv: [/no/such/tool]}\n"
    r = await api.post("/api/v1/agents/import?publish=true", content=gone, headers=YAML)
    assert "no program /no/such/tool" in r.json()["warnings"][0]["message"]
    near = "name: near\nversion: 1.0.0\nhandler: {type: python, target: 'tests.handlers:echo'}\n"
    r = await api.post("/api/v1/agents/import?publish=true", content=near, headers=YAML)
    assert r.status_code == 201 and r.json()["warnings"] == []
    assert (await api.post("/api/v1/agents/near/versions/1.0.0/deprecate")).status_code == 200
    assert (await api.post("/api/v1/agents/near/versions/1.0.0/publish")).json()[
        "warnings"] == []
