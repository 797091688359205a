"""The dashboard's pages: each has a URL of its own (a link can be shared), a
script under ``static/app/pages/`` that draws it from the REST API, and the
role it is for. The access rules (``api/access.py``) take their page rules
from here, and the navigation shows a person only the pages their role opens.
"""

from __future__ import annotations

from dataclasses import dataclass

from agentos.roles import Role


@dataclass(frozen=True)
class Page:
    path: str  # the URL, with {parameters} as FastAPI spells them
    script: str  # static/app/pages/<script>.js draws it
    title: str
    nav: bool = False  # listed in the navigation (detail pages are reached by links)
    role: Role = Role.VIEWER  # the least role that may open it


PAGES: tuple[Page, ...] = (
    Page("/", "overview", "Overview", nav=True),
    Page("/events", "events", "Events", nav=True),
    Page("/events/{event_id}", "event", "Event"),
    Page("/tasks", "tasks", "Tasks", nav=True),
    Page("/tasks/{task_id}", "task", "Task"),
    Page("/agents", "agents", "Agents", nav=True),
    Page("/agents/{name}", "agent", "Agent"),
    Page("/workflow-runs", "workflow_runs", "Workflow runs", nav=True),
    Page("/workflow-runs/{run_id}", "workflow_run", "Workflow run"),
    Page("/approvals", "approvals", "Approvals", nav=True),
    Page("/workers", "workers", "Workers", nav=True),
    Page("/workers/{worker_id}", "worker", "Worker"),
    Page("/locks", "locks", "Locks", nav=True),
    Page("/schedules", "schedules", "Schedules", nav=True),
    Page("/schedules/{schedule}", "schedule", "Schedule"),
    Page("/subscriptions", "subscriptions", "Subscriptions", nav=True),
    Page("/llm", "llm", "LLM calls", nav=True),
    Page("/knowledge", "knowledge", "Knowledge", nav=True),
    Page("/knowledge/{namespace}/{key:path}", "document", "Document"),
    Page("/models", "models", "Models", nav=True),
    Page("/models/{model}", "model", "Model"),
    Page("/projections", "projections", "Projections", nav=True),
    Page("/projections/{projection}", "projection", "Projection"),
    Page("/users", "users", "Users", nav=True, role=Role.ADMIN),
    Page("/api-keys", "api_keys", "API keys", nav=True, role=Role.ADMIN),
    Page("/audit", "audit", "Audit log", nav=True, role=Role.ADMIN),
)
BY_PATH = {page.path: page for page in PAGES}
