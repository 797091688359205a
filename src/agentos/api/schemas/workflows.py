"""/api/v1/workflows, /api/v1/workflow-runs and /api/v1/approvals: what they take and
give back."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Name = Annotated[str, Field(min_length=1, max_length=63)]


class WorkflowVersion(BaseModel):
    name: str
    version: str
    status: Literal["draft", "published", "deprecated", "archived"]
    description: str | None
    tags: list[str]
    steps: list[str]  # the step ids, in the document's order
    created_at: str
    updated_at: str
    published_at: str | None
    definition: dict[str, Any] | None = None  # in a version's own answer
    outcome: Literal["created", "replaced", "unchanged"] | None = None  # in an import's


class WorkflowPage(BaseModel):
    workflows: list[WorkflowVersion]
    next_after: str | None  # pass as ``after`` for the next page


class WorkflowVersions(BaseModel):
    versions: list[WorkflowVersion]


class Imported(BaseModel):
    workflows: list[WorkflowVersion]


class RunIn(BaseModel):
    """The body of ``POST /api/v1/workflow-runs``."""

    model_config = ConfigDict(extra="forbid")

    workflow: Name
    version: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    input: Any = Field(default_factory=dict)
    idempotency_key: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    correlation_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    priority: Annotated[int, Field(ge=1, le=10)] | None = None


class Run(BaseModel):
    id: str
    workflow: str
    version: str
    status: Literal["running", "succeeded", "failed", "cancelled"]
    input: Any
    output: Any
    error: dict[str, Any] | None
    priority: int
    correlation_id: str
    idempotency_key: str | None
    parent_run_id: str | None
    parent_step: str | None
    created_by: str
    created_at: str
    updated_at: str
    finished_at: str | None


class StepTask(BaseModel):
    task_id: str
    round: int
    item: int
    status: str  # running, or how the task ended
    task_status: str | None
    agent: str | None
    attempt: int | None
    output: Any
    error: dict[str, Any] | None
    attempts: list[dict[str, Any]]


class StepItems(BaseModel):
    total: int
    started: int | None
    ended: int | None
    failed: int | None


class RunStep(BaseModel):
    id: str
    type: Literal["agent", "approval", "wait_event", "workflow"]
    status: Literal["pending", "running", "succeeded", "failed", "skipped", "cancelled"]
    round: int
    depends_on: list[str]
    agent: str | None
    workflow: str | None
    output: Any
    error: dict[str, Any] | None
    items: StepItems | None
    approval_id: str | None
    sub_run_id: str | None
    started_at: str | None
    finished_at: str | None
    tasks: list[StepTask]  # the first runs.TASKS_SHOWN, round then item order
    tasks_total: int
    tasks_next: str | None  # more: GET .../steps/{step}/tasks?after=tasks_next


class Transition(BaseModel):
    step: str | None  # None: the run's own
    from_: str | None = Field(alias="from")
    to: str
    at: str
    reason: str | None

    model_config = ConfigDict(populate_by_name=True)


class RunDetail(Run):
    steps: list[RunStep]
    transitions: list[Transition]  # the latest runs.TRANSITIONS_SHOWN
    transitions_more: bool  # earlier ones were left out: GET .../transitions has them all


class StepTaskPage(BaseModel):
    tasks: list[StepTask]
    next_after: str | None  # pass as ``after`` for the next page


class TransitionPage(BaseModel):
    transitions: list[Transition]  # oldest first
    next_after: str | None  # pass as ``after`` for the next page


class RunPage(BaseModel):
    runs: list[Run]
    next_before: str | None  # pass as ``before`` for the next (older) page


class RerunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    step: Annotated[str, Field(min_length=1, max_length=63)]


class Explanation(BaseModel):
    run_id: str
    status: str
    summary: str
    waiting: list[dict[str, Any]]
    pending_steps: list[str] = Field(default_factory=list)


class Artifact(BaseModel):
    name: str
    step: str | None
    task_id: str | None
    kind: Literal["json", "bytes"]
    size: int
    created_at: str


class Artifacts(BaseModel):
    artifacts: list[Artifact]


class Approval(BaseModel):
    id: str
    status: Literal["pending", "approved", "rejected", "expired", "cancelled"]
    title: str
    details: dict[str, Any]
    role: Literal["viewer", "operator", "admin"]
    on_timeout: Literal["approve", "reject", "fail"]
    expires_at: str | None
    run_id: str | None
    step: str | None
    task_id: str | None
    correlation_id: str
    decided_by: str | None
    comment: str | None
    created_at: str
    decided_at: str | None
    outcome: dict[str, Any] | None  # {approved, by, comment, at} once decided


class ApprovalPage(BaseModel):
    approvals: list[Approval]
    next_before: str | None


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    comment: Annotated[str, Field(max_length=10_000)] | None = None
