"""Agent definitions as the registry stores them: versions, summaries, imports."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from agentos.api.schemas.common import Model, Page, Timestamp


class AgentSummary(Model):
    """One version of an agent, without its whole definition."""

    name: str
    version: str
    status: str  # draft, published, deprecated, archived
    display_name: str | None
    description: str | None
    role: str | None
    owner: str | None
    tags: list[str]
    capabilities: list[str]
    triggers: list[str]  # event-type globs
    created_at: Timestamp
    updated_at: Timestamp
    published_at: Timestamp | None


class AgentVersion(AgentSummary):
    """One version of an agent with its definition, exactly as written."""

    definition: dict[str, Any]


class AgentPage(Page[AgentSummary]):
    """Agents by name, each with its current version (or its best one of a status)."""

    ITEMS = "agents"
    CURSOR = ("next_after", "after")
    agents: list[AgentSummary]
    next_after: str | None = None


class VersionList(Model):
    versions: list[AgentSummary]


class ImportWarning(Model):
    """Something an import did not refuse but that will stop tasks running."""

    name: str
    version: str
    code: str  # e.g. handler_unloadable
    message: str


class Imported(AgentVersion):
    """A version an import stored: ``result`` is created, updated (a draft replaced)
    or unchanged (identical to the stored version: nothing was written)."""

    result: str = "created"


class Published(AgentVersion):
    """A published version, and what will stop its tasks running (if anything)."""

    warnings: list[ImportWarning] = Field(default_factory=list)


class ImportResult(Model):
    agents: list[Imported]
    warnings: list[ImportWarning] = Field(default_factory=list)
