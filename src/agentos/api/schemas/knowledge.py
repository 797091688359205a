"""/api/v1/knowledge: a document as written, as read, and a page of search results."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class DocumentIn(BaseModel):
    """The body of ``PUT /api/v1/knowledge/{namespace}/{key}`` (sizes are checked by the
    knowledge base: its errors name the limit)."""

    model_config = ConfigDict(extra="forbid")

    content: str
    title: str = ""
    tags: Annotated[list[str], Field(max_length=256)] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)


class Document(BaseModel):
    """A document; ``content`` and ``embedded`` when read by key; ``score``,
    ``snippet`` (the match between <mark> and </mark>, the rest not escaped) and
    ``matched`` (text, vector) in search results."""

    namespace: str
    key: str
    title: str
    tags: list[str]
    metadata: dict[str, Any]
    created_by: str
    updated_by: str
    created_at: str
    updated_at: str
    content: str | None = None
    embedded: bool | None = None
    score: float | None = None
    snippet: str | None = None
    matched: list[str] | None = None


class Page(BaseModel):
    documents: list[Document]
    next_cursor: str | None  # pass as ``cursor`` for the next page
    mode: Literal["list", "text", "hybrid"]
    warning: str | None = None
