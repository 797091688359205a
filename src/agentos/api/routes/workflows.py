"""/api/v1/workflows: workflow definitions, their versions and lifecycle."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response, status

from agentos.api.deps import StoreDep
from agentos.api.routes.agents import YAML_TYPES
from agentos.api.schemas.workflows import Imported, WorkflowPage, WorkflowVersion, WorkflowVersions
from agentos.errors import InvalidInput, UnsupportedMedia
from agentos.lifecycle import Status
from agentos.workflows import definitions

router = APIRouter(prefix="/api/v1/workflows", tags=["workflows"])


def _full(version: definitions.WorkflowVersion, outcome: str | None = None) -> WorkflowVersion:
    return WorkflowVersion.model_validate({**version.to_dict(), "outcome": outcome})


@router.get("")
async def list_workflows(
    store: StoreDep,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    after: Annotated[str | None, Query(max_length=63)] = None,
    limit: Annotated[int, Query(ge=1, le=definitions.MAX_PAGE)] = 100,
) -> WorkflowPage:
    """One entry per workflow: its current version (or its best of ``status``), by name."""
    found, next_after = await definitions.search(store, status=status_, after=after,
                                                 limit=limit)
    return WorkflowPage(workflows=[WorkflowVersion.model_validate(v.summary()) for v in found],
                        next_after=next_after)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_workflow(store: StoreDep, response: Response,
                          definition: Annotated[Any, Body()], publish: bool = False
                          ) -> WorkflowVersion:
    """Create a draft from a JSON definition (or replace the draft of that version);
    an identical version stored already is ``unchanged`` (200)."""
    saved = await definitions.create(store, definition, publish=publish)
    if saved.outcome != "created":
        response.status_code = status.HTTP_200_OK
    return _full(saved.version, saved.outcome)


@router.post("/import", status_code=status.HTTP_201_CREATED)
async def import_workflows(store: StoreDep, request: Request, response: Response,
                           publish: bool = False) -> Imported:
    """Import YAML (one document or several, ``---`` separated), all or none; 200 when
    every version was stored already, identical."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in YAML_TYPES:
        raise UnsupportedMedia(f"send YAML (Content-Type: application/yaml), not {media}")
    try:
        text = (await request.body()).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("the body is not UTF-8 text", code="bad_encoding") from None
    saved = await definitions.import_yaml(store, text, publish=publish)
    if all(s.outcome == "unchanged" for s in saved):
        response.status_code = status.HTTP_200_OK
    return Imported(workflows=[_full(s.version, s.outcome) for s in saved])


@router.get("/{name}")
async def get_workflow(store: StoreDep, name: str) -> WorkflowVersion:
    """The workflow's latest published version, else its newest draft."""
    return _full(await definitions.get(store, name))


@router.get("/{name}/versions")
async def list_versions(store: StoreDep, name: str) -> WorkflowVersions:
    """Every version, highest first."""
    return WorkflowVersions(versions=[WorkflowVersion.model_validate(v.summary())
                                      for v in await definitions.versions(store, name)])


@router.get("/{name}/versions/{version}")
async def get_version(store: StoreDep, name: str, version: str) -> WorkflowVersion:
    return _full(await definitions.get(store, name, version))


@router.delete("/{name}/versions/{version}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_draft(store: StoreDep, name: str, version: str) -> None:
    """Delete a draft; other versions stay for history (409)."""
    await definitions.delete_draft(store, name, version)


@router.post("/{name}/versions/{version}/publish")
async def publish(store: StoreDep, name: str, version: str) -> WorkflowVersion:
    """Freeze a draft (or re-publish a deprecated version): runs may use it."""
    return _full(await definitions.change_status(store, name, version, "publish"))


@router.post("/{name}/versions/{version}/deprecate")
async def deprecate(store: StoreDep, name: str, version: str) -> WorkflowVersion:
    """No new runs of this version (runs under way go on)."""
    return _full(await definitions.change_status(store, name, version, "deprecate"))


@router.post("/{name}/versions/{version}/archive")
async def archive(store: StoreDep, name: str, version: str) -> WorkflowVersion:
    return _full(await definitions.change_status(store, name, version, "archive"))


@router.get("/{name}/export", response_class=Response,
            responses={200: {"content": {"application/yaml": {}}}})
async def export_workflow(store: StoreDep, name: str, version: str | None = None) -> Response:
    """The definition as YAML: the current version, or ``version``."""
    found = await definitions.get(store, name, version)
    return Response(definitions.to_yaml(found), media_type="application/yaml")
