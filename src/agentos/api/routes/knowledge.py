"""/api/v1/knowledge: documents by namespace and key, and ranked search over them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from agentos import knowledge
from agentos.api.access import PrincipalDep
from agentos.api.deps import SettingsDep, StoreDep
from agentos.api.schemas.knowledge import Document, DocumentIn, Page

router = APIRouter(prefix="/api/v1/knowledge", tags=["knowledge"])


@router.get("", response_model_exclude={"documents": {"__all__": {"content", "embedded"}}})
async def search(
    store: StoreDep,
    settings: SettingsDep,
    q: Annotated[str | None, Query(description="Words to search for (the engine's query "
                                               "syntax; anything it cannot parse is "
                                               "searched as plain words).")] = None,
    namespace: str | None = None,
    tag: Annotated[list[str] | None, Query(description="Only documents with this tag "
                                                       "(repeat: all of them).")] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=knowledge.MAX_PAGE)] = knowledge.DEFAULT_PAGE,
) -> Page:
    """Search (with ``q``: best first, with snippets) or list (by namespace and key)."""
    found = await knowledge.search(store, knowledge.Query(
        q=q, namespace=namespace, tags=tuple(tag or ()), cursor=cursor, limit=limit),
        knowledge.Config.from_settings(settings))
    return Page.model_validate(found, from_attributes=True)


@router.put("/{namespace}/{key:path}", status_code=status.HTTP_201_CREATED,
            response_model_exclude_none=True)
async def put(store: StoreDep, settings: SettingsDep, principal: PrincipalDep,
              response: Response, namespace: str, key: str, body: DocumentIn) -> Document:
    """Create or replace a document (201 when new, 200 when replaced)."""
    doc, created = await knowledge.put(
        store, namespace, key,
        knowledge.Draft(body.content, body.title, tuple(body.tags), body.metadata),
        by=principal.actor, config=knowledge.Config.from_settings(settings))
    if not created:
        response.status_code = status.HTTP_200_OK
    return Document.model_validate(doc)


@router.get("/{namespace}/{key:path}", response_model_exclude_none=True)
async def get(store: StoreDep, namespace: str, key: str) -> Document:
    """One document, with its content."""
    return Document.model_validate(await knowledge.get(store, namespace, key))


@router.delete("/{namespace}/{key:path}", status_code=status.HTTP_204_NO_CONTENT)
async def delete(store: StoreDep, principal: PrincipalDep, namespace: str, key: str) -> None:
    await knowledge.delete(store, namespace, key, by=principal.actor)
