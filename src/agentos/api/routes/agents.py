"""/api/v1/agents: the agent registry over HTTP."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response, status

from agentos import agent_spec, handler_check, registry
from agentos.api.deps import StoreDep
from agentos.api.schemas import agents as schemas
from agentos.errors import InvalidInput, UnsupportedMedia
from agentos.lifecycle import Status

router = APIRouter(prefix="/api/v1/agents", tags=["agents"])

YAML_TYPES = {"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml",
              "application/json", "text/plain", ""}


@router.get("", response_model=schemas.AgentPage)
async def list_agents(
    store: StoreDep,
    q: str | None = None,
    tag: str | None = None,
    capability: str | None = None,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    event: str | None = None,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=registry.MAX_PAGE)] = 100,
) -> dict[str, Any]:
    """Search agents: one entry per agent, its current version (or its best of ``status``)."""
    found, next_after = await registry.search(store, registry.Query(
        q=q, tag=tag, capability=capability, status=status_, event=event, after=after,
        limit=limit))
    return {"agents": [a.summary() for a in found], "next_after": next_after}


@router.post("", status_code=status.HTTP_201_CREATED, response_model=schemas.AgentVersion)
async def create_agent(store: StoreDep, response: Response,
                       definition: Annotated[Any, Body()]) -> dict[str, Any]:
    """Create a draft from a JSON definition (or replace the draft of that version)."""
    version, created = await registry.create(store, agent_spec.from_object(definition))
    if not created:
        response.status_code = status.HTTP_200_OK
    return version.to_dict()


@router.post("/import", status_code=status.HTTP_201_CREATED,
             response_model=schemas.ImportResult)
async def import_agents(store: StoreDep, request: Request, response: Response,
                        publish: bool = False) -> dict[str, Any]:
    """Import YAML (one document or several, ``---`` separated), all or none. Each
    version's ``result``: created, updated or unchanged; 200 when all are unchanged
    (importing the same file again), 409 for a published version whose body differs."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in YAML_TYPES:
        raise UnsupportedMedia(f"send YAML (Content-Type: application/yaml), not {media}")
    try:
        text = (await request.body()).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("the body is not UTF-8 text", code="bad_encoding") from None
    results = await registry.import_results(store, text, publish=publish)
    if all(result == registry.UNCHANGED for _, result in results):
        response.status_code = status.HTTP_200_OK
    imported = [version for version, _ in results]
    return {"agents": [{**v.to_dict(), "result": result} for v, result in results],
            "warnings": await handler_check.warnings(imported)}


@router.get("/{name}", response_model=schemas.AgentVersion)
async def get_agent(store: StoreDep, name: str) -> dict[str, Any]:
    """The agent's latest published version, else its newest draft."""
    version = await registry.get(store, name)
    return version.to_dict()


@router.get("/{name}/versions", response_model=schemas.VersionList)
async def list_versions(store: StoreDep, name: str) -> dict[str, Any]:
    """Every version, highest first."""
    return {"versions": [v.summary() for v in await registry.versions(store, name)]}


@router.get("/{name}/versions/{version}", response_model=schemas.AgentVersion)
async def get_version(store: StoreDep, name: str, version: str) -> dict[str, Any]:
    return (await registry.get(store, name, version)).to_dict()


@router.put("/{name}/versions/{version}", response_model=schemas.AgentVersion)
async def replace_draft(store: StoreDep, name: str, version: str,
                        definition: Annotated[Any, Body()]) -> dict[str, Any]:
    """Replace a draft's definition; published versions are immutable (409)."""
    spec = agent_spec.from_object(definition)
    if (spec.name, spec.version) != (name, version):
        raise InvalidInput(
            f"the body defines {spec.name} {spec.version}, the URL names {name} {version}",
            code="name_mismatch")
    await registry.get(store, name, version)  # 404 when there is no such draft
    return (await registry.create(store, spec))[0].to_dict()


@router.delete("/{name}/versions/{version}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_draft(store: StoreDep, name: str, version: str) -> None:
    """Delete a draft; other versions stay for history (409)."""
    await registry.delete_draft(store, name, version)


async def _change(store: StoreDep, name: str, version: str, action: str) -> dict[str, Any]:
    return (await registry.change_status(store, name, version, action)).to_dict()


@router.post("/{name}/versions/{version}/publish", response_model=schemas.Published)
async def publish(store: StoreDep, name: str, version: str) -> dict[str, Any]:
    """Freeze a draft (or re-publish a deprecated version); ``warnings`` say when this
    server cannot load its handler (a worker that can will run its tasks)."""
    published = await registry.change_status(store, name, version, "publish")
    return {**published.to_dict(), "warnings": await handler_check.warnings([published])}


@router.post("/{name}/versions/{version}/deprecate", response_model=schemas.AgentVersion)
async def deprecate(store: StoreDep, name: str, version: str) -> dict[str, Any]:
    """Stop offering a published version as latest and for routing."""
    return await _change(store, name, version, "deprecate")


@router.post("/{name}/versions/{version}/archive", response_model=schemas.AgentVersion)
async def archive(store: StoreDep, name: str, version: str) -> dict[str, Any]:
    """Retire a deprecated version for good."""
    return await _change(store, name, version, "archive")


@router.get("/{name}/export", response_class=Response,
            responses={200: {"content": {"application/yaml": {}}}})
async def export_agent(store: StoreDep, name: str, version: str | None = None) -> Response:
    """The definition as YAML: the current version, or ``version``."""
    found = await registry.get(store, name, version)
    return Response(registry.to_yaml(found), media_type="application/yaml")
