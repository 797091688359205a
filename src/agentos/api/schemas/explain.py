"""GET /api/v1/tasks/{id}/explain and POST /api/v1/router/explain."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class Finding(BaseModel):
    """What one gate says: ``blocking`` findings keep the task from running (or ending)."""

    gate: str  # ended, running, lease, cancelling, approval, sub_task, version_gone,
    # budget, resource, not_due, no_worker, concurrency, capability, queue, or a
    # gate another concept registered
    blocking: bool
    summary: str
    until: str | None  # when it lifts by itself
    details: dict[str, Any]


class WorkflowStep(BaseModel):
    run_id: str
    step: str
    round: int
    item: int
    workflow: str
    run_status: str


class TaskExplanation(BaseModel):
    """Why a task is not running (or not ending), or why it ended."""

    task_id: str
    agent: str
    version: str
    status: str
    attempt: int
    gate: str | None  # the gate that holds it now (the first blocking finding)
    summary: str
    until: str | None
    findings: list[Finding]
    workflow: WorkflowStep | None  # the workflow step it runs for
    checked_at: str  # the database's clock when the facts were read


class RoutedTask(BaseModel):
    """The task a firing trigger would submit."""

    agent: str
    version: str
    priority: int
    input: dict[str, Any]
    capability: str | None


class TriggerVerdict(BaseModel):
    index: int
    event: str  # the trigger's event-type glob
    filter: dict[str, Any]
    capability: str | None
    priority: int
    matches: bool
    failed: str | None  # the first condition that failed
    task: RoutedTask | None = None  # what it would submit, when it matches


class AgentVerdict(BaseModel):
    agent: str
    version: str  # its latest published version, the one the router matches
    routed: bool
    triggers: list[TriggerVerdict]
    capabilities: dict[str, bool]  # declared capabilities, enabled now
    summary: str


class ExplainedEvent(BaseModel):
    type: str
    source: str
    payload: dict[str, Any]
    priority: str


class RouteExplanation(BaseModel):
    """Where an event would go: every published agent's verdict, matching ones first."""

    event: ExplainedEvent
    routed_to: list[str]
    agents: list[AgentVerdict]
    summary: str
    checked_at: str
