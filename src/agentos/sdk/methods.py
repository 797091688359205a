"""Every method of the AgentOS API, written once for ``Client`` and ``AsyncClient``.

Each method is a plan (see ``core``): it yields the requests it makes and returns
the result as a model of ``agentos.api.schemas``, the same models the server
declares as its response models.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import httpx

from agentos import errors
from agentos.api.schemas import agents as agent_models
from agentos.api.schemas import events as event_models
from agentos.api.schemas import locks as lock_models
from agentos.api.schemas import schedules as schedule_models
from agentos.api.schemas import subscriptions as subscription_models
from agentos.api.schemas import tasks as task_models
from agentos.api.schemas import users as user_models
from agentos.sdk.core import (
    DEFAULT_TIMEOUT,
    Call,
    Plan,
    Sleep,
    WaitTimedOut,
    call,
    call_json,
    call_list,
    call_none,
    call_text,
    endpoint,
    iso,
    params,
    path,
    send,
)

WAIT_CHUNK = 30.0  # seconds one request of ``wait`` long-polls (the server's cap)
RETRY_PAUSE = 0.2  # seconds between attempts when a waiting call lost the server


class Methods:
    """The API's methods; ``Client`` and ``AsyncClient`` run them."""

    base_url: str
    is_async: bool
    http: httpx.Client | httpx.AsyncClient

    # ------------------------------------------------------------- agents

    @endpoint
    def list_agents(self, q: str | None = None, tag: str | None = None,
                    capability: str | None = None, status: str | None = None,
                    event: str | None = None, after: str | None = None,
                    limit: int | None = None) -> Plan[agent_models.AgentPage]:
        """One page of agents by name, each with its current version (or its best of
        ``status``); ``event``: those whose published triggers match that type."""
        return (yield from call("GET", "/api/v1/agents", agent_models.AgentPage, params=params(
            q=q, tag=tag, capability=capability, status=status, event=event, after=after,
            limit=limit)))

    @endpoint
    def create_agent(self, definition: dict[str, Any]) -> Plan[agent_models.AgentVersion]:
        """Create a draft (or replace the draft of that version)."""
        return (yield from call("POST", "/api/v1/agents", agent_models.AgentVersion,
                           json=definition))

    @endpoint
    def import_yaml(self, text: str, publish: bool = False
                    ) -> Plan[agent_models.ImportResult]:
        """Import a YAML stream (all documents or none). Each stored version says
        whether it was ``created``, ``updated`` or ``unchanged``; ``warnings`` name
        what will stop its tasks running (a handler the server cannot load)."""
        return (yield from call("POST", "/api/v1/agents/import", agent_models.ImportResult,
                           content=text.encode("utf-8"),
                           params={"publish": "true"} if publish else None,
                           headers={"Content-Type": "application/yaml"}))

    @endpoint
    def get_agent(self, name: str) -> Plan[agent_models.AgentVersion]:
        """The latest published version, else the newest draft."""
        return (yield from call("GET", path("agents", name), agent_models.AgentVersion))

    @endpoint
    def versions(self, name: str) -> Plan[list[agent_models.AgentSummary]]:
        """Every version of an agent, highest first."""
        return (yield from call_list("GET", path("agents", name, "versions"), "versions",
                                agent_models.AgentSummary))

    @endpoint
    def get_version(self, name: str, version: str) -> Plan[agent_models.AgentVersion]:
        return (yield from call("GET", path("agents", name, "versions", version),
                           agent_models.AgentVersion))

    @endpoint
    def publish(self, name: str, version: str) -> Plan[agent_models.Published]:
        """Publish a draft; ``warnings`` say when the server cannot load its handler."""
        return (yield from call("POST", path("agents", name, "versions", version, "publish"),
                           agent_models.Published))

    @endpoint
    def deprecate(self, name: str, version: str) -> Plan[agent_models.AgentVersion]:
        return (yield from call("POST", path("agents", name, "versions", version, "deprecate"),
                           agent_models.AgentVersion))

    @endpoint
    def archive(self, name: str, version: str) -> Plan[agent_models.AgentVersion]:
        return (yield from call("POST", path("agents", name, "versions", version, "archive"),
                           agent_models.AgentVersion))

    @endpoint
    def delete_draft(self, name: str, version: str) -> Plan[None]:
        return (yield from call_none("DELETE", path("agents", name, "versions", version)))

    @endpoint
    def export(self, name: str, version: str | None = None) -> Plan[str]:
        """The definition as YAML: the current version, or ``version``."""
        return (yield from call_text("GET", path("agents", name, "export"),
                                params=params(version=version)))

    # ------------------------------------------------------------- events

    @endpoint
    def emit(self, /, type: str, payload: dict[str, Any] | None = None,
             **fields: Any) -> Plan[event_models.AppendedEvent]:
        """Append one event; ``fields`` are the other event fields (``source``,
        ``priority``, ``correlation_id``, ``causation_id``, ``run_id``, ``subject``,
        ``dedup_key``). Returns it with its ``seq``, ``id`` and ``duplicate``."""
        body = {"type": type, **({"payload": payload} if payload is not None else {}),
                **{k: v for k, v in fields.items() if v is not None}}
        return (yield from call("POST", "/api/v1/events", event_models.AppendedEvent, json=body))

    @endpoint
    def emit_batch(self, events: list[dict[str, Any]]
                   ) -> Plan[list[event_models.AppendedEvent]]:
        """Append several events in one transaction: all or none."""
        return (yield from call_list("POST", "/api/v1/events", "events",
                                event_models.AppendedEvent, json={"events": events}))

    @endpoint
    def list_events(self, type: str | None = None, source: str | None = None,
                    correlation_id: str | None = None, run_id: str | None = None,
                    priority: str | None = None, since: datetime | str | None = None,
                    until: datetime | str | None = None, after_seq: int | None = None,
                    limit: int | None = None, *, newest_first: bool = False,
                    before_seq: int | None = None) -> Plan[event_models.EventPage]:
        """One page in sequence order (``after_seq`` pages on), or ``newest_first``
        (``before_seq`` pages back). ``type`` is a glob; ``since`` is inclusive,
        ``until`` exclusive."""
        return (yield from call("GET", "/api/v1/events", event_models.EventPage, params=params(
            type=type, source=source, correlation_id=correlation_id, run_id=run_id,
            priority=priority, since=since, until=until, after_seq=after_seq, limit=limit,
            order="desc" if newest_first else None, before_seq=before_seq)))

    @endpoint
    def get_event(self, event_id: str) -> Plan[event_models.Event]:
        return (yield from call("GET", path("events", event_id), event_models.Event))

    @endpoint
    def event_routes(self, event_id: str) -> Plan[event_models.EventRoutes]:
        """The agents an event went to; ``routed`` is False while the router has not
        handled it yet."""
        return (yield from call("GET", path("events", event_id, "routes"),
                           event_models.EventRoutes))

    @endpoint
    def explain_event(self, /, type: str, payload: dict[str, Any] | None = None,
                      **fields: Any) -> Plan[dict[str, Any]]:
        """Which published agents an event would reach, and for the others why not
        (fields: source, priority, ...). Nothing is appended."""
        body = {"type": type, "payload": payload or {},
                **{k: v for k, v in fields.items() if v is not None}}
        return (yield from call_json("POST", "/api/v1/router/explain", json=body))

    @endpoint
    def correlation(self, correlation_id: str) -> Plan[list[dict[str, Any]]]:
        """The events (and tasks) sharing ``correlation_id`` as a causation tree: the
        roots, each with its ``children``."""
        found = yield from call("GET", path("correlations", correlation_id),
                           event_models.Correlation)
        tree: list[dict[str, Any]] = found.tree
        return tree

    @endpoint
    def prune(self, older_than: str, type: str | None = None, dry_run: bool = False
              ) -> Plan[tuple[int, int]]:
        """Delete events older than ``older_than`` (``30d``, ``12h``...): how many were
        deleted (or with ``dry_run`` would be), and how many old ones were kept because
        an unfinished task's correlation still needs them."""
        done = yield from call("POST", "/api/v1/events/prune", event_models.Pruned, json={
            "older_than": older_than, "type": type, "dry_run": dry_run})
        count = done.would_delete if dry_run else done.deleted
        return int(count or 0), done.kept

    # ------------------------------------------------------ subscriptions

    @endpoint
    def create_subscription(self, name: str, type: str = "*", from_start: bool = False
                            ) -> Plan[subscription_models.Subscription]:
        """A named durable subscription; it starts at the log's head unless ``from_start``."""
        return (yield from call("POST", "/api/v1/subscriptions", subscription_models.Subscription,
                           json={"name": name, "type": type, "from_start": from_start}))

    @endpoint
    def list_subscriptions(self, after: str | None = None, limit: int | None = None
                           ) -> Plan[subscription_models.SubscriptionPage]:
        return (yield from call("GET", "/api/v1/subscriptions",
                           subscription_models.SubscriptionPage,
                           params=params(after=after, limit=limit)))

    @endpoint
    def get_subscription(self, name: str) -> Plan[subscription_models.Subscription]:
        return (yield from call("GET", path("subscriptions", name),
                           subscription_models.Subscription))

    @endpoint
    def delete_subscription(self, name: str) -> Plan[None]:
        return (yield from call_none("DELETE", path("subscriptions", name)))

    @endpoint
    def pending(self, name: str, limit: int | None = None, wait_s: float = 0.0
                ) -> Plan[list[event_models.Event]]:
        """The subscription's next events after its cursor; ``ack`` the last you handled.
        With ``wait_s``, wait up to that long for one when there are none (long polling)."""
        return (yield from call_list("GET", path("subscriptions", name, "events"), "events",
                                event_models.Event,
                                params=params(limit=limit, wait_s=wait_s or None),
                                timeout=DEFAULT_TIMEOUT + wait_s))

    @endpoint
    def ack(self, name: str, seq: int) -> Plan[subscription_models.Subscription]:
        """Move the subscription's cursor forward to ``seq``."""
        return (yield from call("POST", path("subscriptions", name, "ack"),
                           subscription_models.Subscription, json={"seq": seq}))

    # ---------------------------------------------------------- schedules

    @endpoint
    def create_schedule(self, name: str, event: str | None = None, *,
                        payload: dict[str, Any] | None = None, priority: str | None = None,
                        task: dict[str, Any] | None = None, cron: str | None = None,
                        timezone: str | None = None, interval_s: float | None = None,
                        at: datetime | str | None = None, misfire: str | None = None,
                        paused: bool = False) -> Plan[schedule_models.Schedule]:
        """A schedule firing ``event`` and/or submitting ``task`` (``{"agent", "version",
        "input", "priority", "max_retries", "timeout_s"}``) on every tick: give exactly
        one of ``cron`` (with an optional ``timezone``), ``interval_s`` or ``at``."""
        template = {"type": event, "payload": payload, "priority": priority}
        body = {"name": name, "cron": cron, "timezone": timezone, "interval_s": interval_s,
                "at": iso(at), "misfire": misfire, "paused": paused, "task": task,
                "event": {k: v for k, v in template.items() if v is not None} if event
                else None}
        return (yield from call("POST", "/api/v1/schedules", schedule_models.Schedule,
                           json={k: v for k, v in body.items() if v is not None}))

    @endpoint
    def list_schedules(self, after: str | None = None, limit: int | None = None
                       ) -> Plan[schedule_models.SchedulePage]:
        return (yield from call("GET", "/api/v1/schedules", schedule_models.SchedulePage,
                           params=params(after=after, limit=limit)))

    @endpoint
    def get_schedule(self, name: str) -> Plan[schedule_models.Schedule]:
        return (yield from call("GET", path("schedules", name), schedule_models.Schedule))

    @endpoint
    def list_schedule_fires(self, name: str, before: str | None = None,
                            limit: int | None = None
                            ) -> Plan[schedule_models.ScheduleFirePage]:
        """One page of the schedule's fires, newest first (``iterate`` follows them)."""
        return (yield from call("GET", path("schedules", name, "fires"),
                                schedule_models.ScheduleFirePage,
                                params=params(before=before, limit=limit)))

    @endpoint
    def patch_schedule(self, /, name: str, **changes: Any) -> Plan[schedule_models.Schedule]:
        """Change some of ``cron``, ``timezone``, ``interval_s``, ``at``, ``event``,
        ``task``, ``misfire``, ``paused``; a new timing restarts from now; ``event=None``
        or ``task=None`` stops firing it."""
        if isinstance(changes.get("at"), datetime):
            changes["at"] = iso(changes["at"])
        return (yield from call("PATCH", path("schedules", name), schedule_models.Schedule,
                           json=changes))

    @endpoint
    def delete_schedule(self, name: str) -> Plan[None]:
        return (yield from call_none("DELETE", path("schedules", name)))

    @endpoint
    def pause_schedule(self, name: str) -> Plan[schedule_models.Schedule]:
        return (yield from call("POST", path("schedules", name, "pause"), schedule_models.Schedule))

    @endpoint
    def resume_schedule(self, name: str) -> Plan[schedule_models.Schedule]:
        """Resume from now on: the ticks that passed while paused are not fired."""
        return (yield from call("POST", path("schedules", name, "resume"),
                           schedule_models.Schedule))

    # -------------------------------------------------------------- tasks

    @endpoint
    def submit(self, /, agent: str, input: dict[str, Any] | None = None, *, wait: bool = False,
               wait_timeout_s: float | None = None, **fields: Any
               ) -> Plan[task_models.TaskDetail]:
        """Submit a task (fields: version, priority, max_retries, timeout_s, run_at,
        idempotency_key, correlation_id, causation_id, capability, type, metadata).
        With ``wait``, return once it
        has ended (see ``wait``), with its attempts."""
        body = {"agent": agent, "input": input or {},
                **{k: iso(v) if k == "run_at" else v for k, v in fields.items()
                   if v is not None}}
        task = yield from call("POST", "/api/v1/tasks", task_models.TaskDetail, json=body)
        if not wait:
            return task
        done: task_models.TaskDetail = yield from self._wait(task.id, wait_timeout_s)
        return done

    @endpoint
    def submit_batch(self, tasks: list[dict[str, Any]]
                     ) -> Plan[list[task_models.SubmittedTask]]:
        return (yield from call_list("POST", "/api/v1/tasks/batch", "tasks",
                                task_models.SubmittedTask, json={"tasks": tasks}))

    @endpoint
    def list_tasks(self, agent: str | None = None, status: str | None = None,
                   correlation_id: str | None = None, *, newest_first: bool = False,
                   before_seq: int | None = None, after_seq: int | None = None,
                   limit: int | None = None, type: str | None = None,
                   since: datetime | str | None = None, until: datetime | str | None = None
                   ) -> Plan[task_models.TaskPage]:
        """One page of tasks in submission order (``after_seq`` pages on), or
        ``newest_first`` (``before_seq`` pages back). ``status="failed"``: dead letters;
        ``since``/``until``: those submitted at or after, and before, these times (with
        a time zone)."""
        return (yield from call("GET", "/api/v1/tasks", task_models.TaskPage, params=params(
            agent=agent, status=status, correlation_id=correlation_id,
            order="desc" if newest_first else None, before_seq=before_seq,
            after_seq=after_seq, limit=limit, type=type, since=since, until=until)))

    @endpoint
    def get_task(self, task_id: str) -> Plan[task_models.TaskDetail]:
        """The task with every attempt (its execution records)."""
        return (yield from call("GET", path("tasks", task_id), task_models.TaskDetail))

    @endpoint
    def wait(self, task_id: str, timeout_s: float | None = None
             ) -> Plan[task_models.TaskDetail]:
        """The task once it has ended (succeeded, failed or cancelled), with its
        attempts: the server holds each request until it ends, up to 30 s a request.
        Raises ``WaitTimedOut`` after ``timeout_s`` (None: wait as long as it takes)."""
        done: task_models.TaskDetail = yield from self._wait(task_id, timeout_s)
        return done

    def _wait(self, task_id: str, timeout_s: float | None) -> Plan[task_models.TaskDetail]:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            left = WAIT_CHUNK if deadline is None else max(deadline - time.monotonic(), 0.0)
            chunk = round(min(left, WAIT_CHUNK), 3)
            try:
                task = yield from call("GET", path("tasks", task_id), task_models.TaskDetail,
                                  params={"wait_s": chunk}, timeout=chunk + DEFAULT_TIMEOUT)
            except errors.Unavailable as exc:
                if exc.code != "server_unreachable" or (
                        deadline is not None and time.monotonic() + RETRY_PAUSE > deadline):
                    raise
                yield Sleep(RETRY_PAUSE)  # a restarting server: ask again
                continue
            if task.final:
                return task
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimedOut(
                    f"task {task_id} is still {task.status} after {timeout_s:g}s",
                    details={"task_id": task_id, "status": task.status})

    @endpoint
    def cancel_task(self, task_id: str) -> Plan[task_models.Task]:
        """Cancel a task: at once if waiting, cooperatively if running."""
        return (yield from call("POST", path("tasks", task_id, "cancel"), task_models.Task))

    @endpoint
    def retry_task(self, task_id: str) -> Plan[task_models.Task]:
        """Run a failed or cancelled task again, with a fresh set of retries."""
        return (yield from call("POST", path("tasks", task_id, "retry"), task_models.Task))

    @endpoint
    def task_logs(self, task_id: str, attempt: int | None = None, after: str | None = None,
                  limit: int | None = None) -> Plan[dict[str, Any]]:
        """A page of the lines the task's handler wrote (ctx.log), oldest first:
        ``{"lines": [...], "status", "attempt", "next_after"}``; pass ``next_after`` as
        ``after`` for the next page (``log_lines`` follows them)."""
        return (yield from call_json("GET", path("tasks", task_id, "logs"), params=params(
            attempt=attempt, after=after, limit=limit)))

    @endpoint
    def explain_task(self, task_id: str) -> Plan[dict[str, Any]]:
        """Why the task is not running (the gate that holds it, every gate's finding),
        or why it ended."""
        return (yield from call_json("GET", path("tasks", task_id, "explain")))

    @endpoint
    def list_workers(self, include_stopped: bool = False, after: str | None = None,
                     limit: int | None = None) -> Plan[task_models.WorkerPage]:
        """Worker instances by id, each with the ``locks`` its running tasks hold."""
        return (yield from call("GET", "/api/v1/workers", task_models.WorkerPage, params=params(
            include_stopped=include_stopped or None, after=after, limit=limit)))

    @endpoint
    def get_worker(self, worker_id: str) -> Plan[dict[str, Any]]:
        """One worker instance: its record, running tasks and the locks they hold."""
        return (yield from call_json("GET", path("workers", worker_id)))

    # ------------------------------------------------------ operating agents

    @endpoint
    def agent_config(self, name: str) -> Plan[dict[str, Any]]:
        """Each declared config key with its type, bounds, default and live value."""
        return (yield from call_json("GET", path("agents", name, "config")))

    @endpoint
    def set_config(self, name: str, key: str, value: Any) -> Plan[dict[str, Any]]:
        """Override a config key live (checked against its declared type and bounds)."""
        return (yield from call_json("PUT", path("agents", name, "config", key),
                                     json={"value": value}))

    @endpoint
    def unset_config(self, name: str, key: str) -> Plan[dict[str, Any]]:
        """Clear a key's override: its default applies again."""
        return (yield from call_json("DELETE", path("agents", name, "config", key)))

    @endpoint
    def capabilities(self, name: str) -> Plan[dict[str, Any]]:
        """Declared capabilities and whether each is enabled now."""
        return (yield from call_json("GET", path("agents", name, "capabilities")))

    @endpoint
    def disable_capability(self, name: str, capability: str, reason: str
                           ) -> Plan[dict[str, Any]]:
        return (yield from call_json(
            "POST", path("agents", name, "capabilities", capability, "disable"),
            json={"reason": reason}))

    @endpoint
    def enable_capability(self, name: str, capability: str, reason: str = ""
                          ) -> Plan[dict[str, Any]]:
        return (yield from call_json(
            "POST", path("agents", name, "capabilities", capability, "enable"),
            json={"reason": reason}))

    @endpoint
    def agent_state(self, name: str) -> Plan[dict[str, Any]]:
        """Status, running tasks, held locks, queue depth, holds, heartbeat, last error."""
        return (yield from call_json("GET", path("agents", name, "state")))

    @endpoint
    def delete_agent(self, name: str, force: bool = False) -> Plan[dict[str, Any]]:
        """Delete an agent and what is kept for operating it (never its logs)."""
        return (yield from call_json("DELETE", path("agents", name),
                                     params={"force": "true"} if force else None))

    # ------------------------------------------------------------ metrics

    @endpoint
    def query_metric(self, name: str, *, agg: str = "avg", bucket: str | None = None,
                     tags: dict[str, str] | None = None, group_by: str | None = None,
                     start: datetime | None = None, end: datetime | None = None
                     ) -> Plan[dict[str, Any]]:
        """A metric over a range (default: the last hour), per bucket and group."""
        return (yield from call_json("GET", "/api/v1/metrics", params=params(**{
            "name": name, "agg": agg, "bucket": bucket, "group_by": group_by,
            "tags": ",".join(f"{k}:{v}" for k, v in tags.items()) if tags else None,
            "from": start, "to": end})))

    @endpoint
    def record_metrics(self, samples: list[dict[str, Any]]) -> Plan[int]:
        """Record samples (name, kind, value, tags, at); how many were accepted."""
        found = yield from call_json("POST", "/api/v1/metrics", json={"samples": samples})
        return int(found["accepted"])

    @endpoint
    def agent_summary(self, name: str, window: str = "24h") -> Plan[dict[str, Any]]:
        """Success rate, p50/p95 duration, throughput, tokens and cost over ``window``."""
        return (yield from call_json("GET", path("agents", name, "summary"),
                                     params={"window": window}))

    @endpoint
    def prometheus(self) -> Plan[str]:
        """GET /metrics: every metric in Prometheus' text format."""
        return (yield from call_text("GET", "/metrics"))

    # ------------------------------------------------------- LLM telemetry

    @endpoint
    def report_llm_calls(self, calls: list[dict[str, Any]]) -> Plan[list[dict[str, Any]]]:
        """Record LLM calls a remote worker made (priced where they carry no cost)."""
        found = yield from call_json("POST", "/api/v1/llm-calls", json={"calls": calls})
        return list(found["calls"])

    @endpoint
    def llm_calls(self, /, **filters: Any) -> Plan[dict[str, Any]]:
        """One page, newest first: ``{"calls": [...], "next_before_id": id or None}``."""
        return (yield from call_json("GET", "/api/v1/llm-calls", params=params(**filters)))

    @endpoint
    def llm_summary(self, /, by: str = "model", **filters: Any) -> Plan[dict[str, Any]]:
        """Calls, tokens, cost per model, agent or day."""
        return (yield from call_json("GET", "/api/v1/llm-calls/summary",
                                     params=params(by=by, **filters)))

    @endpoint
    def create_budget(self, scope: str, metric: str, period: str, limit: float, *,
                      target: str | None = None, hard: bool = True) -> Plan[dict[str, Any]]:
        return (yield from call_json("POST", "/api/v1/budgets", json={
            "scope": scope, "target": target, "metric": metric, "period": period,
            "limit": limit, "hard": hard}))

    @endpoint
    def list_budgets(self) -> Plan[list[dict[str, Any]]]:
        """Every budget with its current period's spend (following the pages)."""
        found: list[dict[str, Any]] = []
        after = None
        while True:
            page = yield from call_json("GET", "/api/v1/budgets",
                                        params=params(after=after, limit=1000))
            found += page["budgets"]
            if (after := page.get("next_after")) is None:
                return found

    @endpoint
    def change_budget(self, /, budget_id: int, **changes: Any) -> Plan[dict[str, Any]]:
        return (yield from call_json("PATCH", path("budgets", str(budget_id)), json=changes))

    @endpoint
    def delete_budget(self, budget_id: int) -> Plan[None]:
        return (yield from call_none("DELETE", path("budgets", str(budget_id))))

    # ---------------------------------------------------------- knowledge

    @endpoint
    def put_document(self, namespace: str, key: str, content: str, *, title: str = "",
                     tags: list[str] | None = None, metadata: dict[str, Any] | None = None
                     ) -> Plan[dict[str, Any]]:
        """Create or replace a document; returns it (without content)."""
        return (yield from call_json("PUT", path("knowledge", namespace, key), json={
            "content": content, "title": title, "tags": tags or [],
            "metadata": metadata or {}}))

    @endpoint
    def get_document(self, namespace: str, key: str) -> Plan[dict[str, Any]]:
        """A document with its content."""
        return (yield from call_json("GET", path("knowledge", namespace, key)))

    @endpoint
    def delete_document(self, namespace: str, key: str) -> Plan[None]:
        return (yield from call_none("DELETE", path("knowledge", namespace, key)))

    @endpoint
    def search_knowledge(self, q: str | None = None, *, namespace: str | None = None,
                         tags: list[str] | None = None, cursor: str | None = None,
                         limit: int | None = None) -> Plan[dict[str, Any]]:
        """One page: ``{"documents": [...], "next_cursor", "mode", "warning"?}``; with
        ``q`` ranked best first (``score``, ``snippet``), without it by namespace and key."""
        return (yield from call_json("GET", "/api/v1/knowledge", params=params(
            q=q, namespace=namespace, cursor=cursor, limit=limit, tag=tags or None)))

    @endpoint
    def iter_knowledge(self, q: str | None = None, *, namespace: str | None = None,
                       tags: list[str] | None = None) -> Plan[list[dict[str, Any]]]:
        """Every matching document, following the pages."""
        found: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = yield from call_json("GET", "/api/v1/knowledge", params=params(
                q=q, namespace=namespace, cursor=cursor, limit=100, tag=tags or None))
            found += page["documents"]
            if (cursor := page["next_cursor"]) is None:
                return found

    # ------------------------------------------------------------- models

    @endpoint
    def register_model(self, /, name: str, version: str, type: str, **fields: Any
                       ) -> Plan[dict[str, Any]]:
        """Register a model version (``framework``, ``description``, ``metrics``,
        ``config``, ``artifact_uri``); it starts in ``training``."""
        return (yield from call_json("POST", "/api/v1/models", json={
            "name": name, "version": version, "type": type, **fields}))

    @endpoint
    def list_models(self, name: str | None = None, status: str | None = None,
                    type: str | None = None, after: int | None = None,
                    limit: int | None = None) -> Plan[dict[str, Any]]:
        """One page: ``{"models": [...], "next_after": id or None}``."""
        return (yield from call_json("GET", "/api/v1/models", params=params(
            name=name, status=status, type=type, after=after, limit=limit)))

    @endpoint
    def get_model(self, name: str) -> Plan[dict[str, Any]]:
        """``{"name", "deployed": [versions], "versions": [...]}``."""
        return (yield from call_json("GET", path("models", name)))

    @endpoint
    def get_model_version(self, name: str, version: str) -> Plan[dict[str, Any]]:
        return (yield from call_json("GET", path("models", name, "versions", version)))

    @endpoint
    def deploy_model(self, name: str, version: str) -> Plan[dict[str, Any]]:
        return (yield from call_json("POST", path("models", name, "versions", version,
                                                  "deploy")))

    @endpoint
    def archive_model(self, name: str, version: str) -> Plan[dict[str, Any]]:
        return (yield from call_json("POST", path("models", name, "versions", version,
                                                  "archive")))

    # -------------------------------------------------------- projections

    @endpoint
    def list_projections(self) -> Plan[list[dict[str, Any]]]:
        """Every read model: cursor, lag and status."""
        found = yield from call_json("GET", "/api/v1/projections")
        return list(found["projections"])

    @endpoint
    def get_projection(self, name: str) -> Plan[dict[str, Any]]:
        return (yield from call_json("GET", path("projections", name)))

    @endpoint
    def rebuild_projection(self, name: str) -> Plan[dict[str, Any]]:
        """Start a rebuild (the server folds the log again; follow ``rebuild.progress``)."""
        return (yield from call_json("POST", path("projections", name, "rebuild")))

    @endpoint
    def projection_state(self, name: str, *, key: str | None = None,
                         prefix: str | None = None, after: str | None = None,
                         limit: int | None = None) -> Plan[dict[str, Any]]:
        """``{"items": {key: value}, "next_after"}``."""
        return (yield from call_json("GET", path("projections", name, "state"),
                                     params=params(key=key, prefix=prefix, after=after,
                                                   limit=limit)))

    # ---------------------------------------------------------- workflows

    @endpoint
    def import_workflows(self, text: str, publish: bool = False
                         ) -> Plan[list[dict[str, Any]]]:
        """Import a YAML stream of workflow definitions (all or none); each version comes
        back with its ``outcome``: created, replaced or unchanged."""
        found = yield from call_json("POST", "/api/v1/workflows/import",
                                     content=text.encode("utf-8"),
                                     params={"publish": "true"} if publish else None,
                                     headers={"Content-Type": "application/yaml"})
        return list(found["workflows"])

    @endpoint
    def create_workflow(self, definition: dict[str, Any], publish: bool = False
                        ) -> Plan[dict[str, Any]]:
        return (yield from call_json("POST", "/api/v1/workflows", json=definition,
                                     params={"publish": "true"} if publish else None))

    @endpoint
    def list_workflows(self, status: str | None = None, after: str | None = None,
                       limit: int | None = None) -> Plan[dict[str, Any]]:
        """One page: ``{"workflows": [summary, ...], "next_after": name or None}``."""
        return (yield from call_json("GET", "/api/v1/workflows", params=params(
            status=status, after=after, limit=limit)))

    @endpoint
    def get_workflow(self, name: str, version: str | None = None) -> Plan[dict[str, Any]]:
        """The current version (latest published, else newest draft), or ``version``."""
        target = (path("workflows", name, "versions", version) if version is not None
                  else path("workflows", name))
        return (yield from call_json("GET", target))

    @endpoint
    def workflow_versions(self, name: str) -> Plan[list[dict[str, Any]]]:
        found = yield from call_json("GET", path("workflows", name, "versions"))
        return list(found["versions"])

    @endpoint
    def publish_workflow(self, name: str, version: str) -> Plan[dict[str, Any]]:
        return (yield from call_json("POST", path("workflows", name, "versions", version,
                                                  "publish")))

    @endpoint
    def deprecate_workflow(self, name: str, version: str) -> Plan[dict[str, Any]]:
        return (yield from call_json("POST", path("workflows", name, "versions", version,
                                                  "deprecate")))

    @endpoint
    def archive_workflow(self, name: str, version: str) -> Plan[dict[str, Any]]:
        return (yield from call_json("POST", path("workflows", name, "versions", version,
                                                  "archive")))

    @endpoint
    def delete_workflow_draft(self, name: str, version: str) -> Plan[None]:
        return (yield from call_none("DELETE", path("workflows", name, "versions", version)))

    @endpoint
    def export_workflow(self, name: str, version: str | None = None) -> Plan[str]:
        return (yield from call_text("GET", path("workflows", name, "export"),
                                     params=params(version=version)))

    @endpoint
    def start_run(self, workflow: str, input: Any = None, *, version: str | None = None,
                  idempotency_key: str | None = None, correlation_id: str | None = None,
                  priority: int | None = None) -> Plan[dict[str, Any]]:
        """Start a workflow run; the run with every step's state."""
        body = {"workflow": workflow, "input": {} if input is None else input,
                "version": version, "idempotency_key": idempotency_key,
                "correlation_id": correlation_id, "priority": priority}
        return (yield from call_json("POST", "/api/v1/workflow-runs",
                                     json={k: v for k, v in body.items() if v is not None}))

    @endpoint
    def list_runs(self, workflow: str | None = None, status: str | None = None,
                  since: datetime | str | None = None, until: datetime | str | None = None,
                  before: str | None = None, limit: int | None = None
                  ) -> Plan[dict[str, Any]]:
        """One page, newest first: ``{"runs": [...], "next_before": id or None}``."""
        return (yield from call_json("GET", "/api/v1/workflow-runs", params=params(
            workflow=workflow, status=status, since=since, until=until, before=before,
            limit=limit)))

    @endpoint
    def get_run(self, run_id: str) -> Plan[dict[str, Any]]:
        """A run: its steps, their first tasks (``run_step_tasks`` pages the rest) and
        attempts, outputs, and its latest transitions."""
        return (yield from call_json("GET", path("workflow-runs", run_id)))

    @endpoint
    def run_step_tasks(self, run_id: str, step: str, *, after: str | None = None,
                       limit: int | None = None) -> Plan[dict[str, Any]]:
        """One page of a run's step's tasks: ``{"tasks": [...], "next_after"}``; ``after``
        is the step's ``tasks_next`` in the run, then each page's ``next_after``."""
        return (yield from call_json("GET", path("workflow-runs", run_id, "steps", step,
                                                 "tasks"),
                                     params=params(after=after, limit=limit)))

    @endpoint
    def run_transitions(self, run_id: str, *, after: str | None = None,
                        limit: int | None = None) -> Plan[dict[str, Any]]:
        """One page of a run's whole transition history, oldest first:
        ``{"transitions": [...], "next_after"}``."""
        return (yield from call_json("GET", path("workflow-runs", run_id, "transitions"),
                                     params=params(after=after, limit=limit)))

    @endpoint
    def cancel_run(self, run_id: str) -> Plan[dict[str, Any]]:
        return (yield from call_json("POST", path("workflow-runs", run_id, "cancel")))

    @endpoint
    def rerun(self, run_id: str, step: str) -> Plan[dict[str, Any]]:
        """Run a failed run again from its failed step ``step``."""
        return (yield from call_json("POST", path("workflow-runs", run_id, "rerun"),
                                     json={"step": step}))

    @endpoint
    def explain_run(self, run_id: str) -> Plan[dict[str, Any]]:
        """What the run waits for now."""
        return (yield from call_json("GET", path("workflow-runs", run_id, "explain")))

    @endpoint
    def run_artifacts(self, run_id: str) -> Plan[list[dict[str, Any]]]:
        found = yield from call_json("GET", path("workflow-runs", run_id, "artifacts"))
        return list(found["artifacts"])

    @endpoint
    def run_artifact(self, run_id: str, name: str) -> Plan[Any]:
        """An artifact's data: the JSON value, or bytes."""
        return (yield from send(Call("GET", path("workflow-runs", run_id, "artifacts", name),
                                     _json_or_bytes)))

    @endpoint
    def wait_run(self, run_id: str, timeout_s: float | None = None,
                 poll_s: float = 0.5) -> Plan[dict[str, Any]]:
        """Poll until the run has ended (or ``timeout_s`` passed: ``Unavailable``)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            run = yield from call_json("GET", path("workflow-runs", run_id))
            if run["status"] != "running":
                return run
            if deadline is not None and time.monotonic() > deadline:
                raise errors.Unavailable(f"run {run_id} is still running after {timeout_s} s",
                                         code="run_still_running")
            yield Sleep(poll_s)

    @endpoint
    def list_approvals(self, status: str | None = None, run_id: str | None = None,
                       before: str | None = None, limit: int | None = None
                       ) -> Plan[dict[str, Any]]:
        """One page, newest first: ``{"approvals": [...], "next_before"}``."""
        return (yield from call_json("GET", "/api/v1/approvals", params=params(
            status=status, run_id=run_id, before=before, limit=limit)))

    @endpoint
    def get_approval(self, approval_id: str) -> Plan[dict[str, Any]]:
        return (yield from call_json("GET", path("approvals", approval_id)))

    @endpoint
    def approve(self, approval_id: str, comment: str | None = None) -> Plan[dict[str, Any]]:
        return (yield from call_json("POST", path("approvals", approval_id, "approve"),
                                     json={"comment": comment} if comment is not None else {}))

    @endpoint
    def reject(self, approval_id: str, comment: str | None = None) -> Plan[dict[str, Any]]:
        return (yield from call_json("POST", path("approvals", approval_id, "reject"),
                                     json={"comment": comment} if comment is not None else {}))

    # ------------------------------------------------------------- access

    @endpoint
    def login(self, username: str, password: str) -> Plan[user_models.Login]:
        """Log in; later calls on this client carry the token."""
        done = yield from call("POST", "/api/v1/auth/login", user_models.Login,
                          json={"username": username, "password": password})
        self.use_token(done.token)
        return done

    @endpoint
    def logout(self) -> Plan[None]:
        """Revoke this client's login token."""
        yield from call_none("POST", "/api/v1/auth/logout")
        self.use_token(None)

    @endpoint
    def me(self) -> Plan[user_models.Me]:
        """Who this client's credential is: a user or an API key, and its role."""
        return (yield from call("GET", "/api/v1/auth/me", user_models.Me))

    @endpoint
    def change_password(self, current: str, new: str) -> Plan[None]:
        """Change your own password; every token of yours is revoked (log in again)."""
        yield from call_none("POST", "/api/v1/auth/password",
                        json={"current_password": current, "new_password": new})

    @endpoint
    def create_user(self, username: str, password: str, role: str = "viewer",
                    email: str | None = None) -> Plan[user_models.User]:
        body = {"username": username, "password": password, "role": role, "email": email}
        return (yield from call("POST", "/api/v1/users", user_models.User,
                           json={k: v for k, v in body.items() if v is not None}))

    @endpoint
    def list_users(self, after: str | None = None, limit: int | None = None
                   ) -> Plan[user_models.UserPage]:
        return (yield from call("GET", "/api/v1/users", user_models.UserPage,
                           params=params(after=after, limit=limit)))

    @endpoint
    def get_user(self, username: str) -> Plan[user_models.User]:
        return (yield from call("GET", path("users", username), user_models.User))

    @endpoint
    def patch_user(self, /, username: str, **changes: Any) -> Plan[user_models.User]:
        """Change ``email``, ``role``, ``active`` or ``password`` (a reset)."""
        return (yield from call("PATCH", path("users", username), user_models.User, json=changes))

    @endpoint
    def delete_user(self, username: str) -> Plan[None]:
        return (yield from call_none("DELETE", path("users", username)))

    @endpoint
    def create_api_key(self, name: str, role: str, expires_in_days: float | None = None,
                       never_expires: bool = False) -> Plan[user_models.NewApiKey]:
        """A new key; its secret is in ``key`` this once."""
        body: dict[str, Any] = {"name": name, "role": role}
        if expires_in_days is not None:
            body["expires_in_days"] = expires_in_days
        if never_expires:
            body["never_expires"] = True
        return (yield from call("POST", "/api/v1/api-keys", user_models.NewApiKey, json=body))

    @endpoint
    def list_api_keys(self, include_revoked: bool = False, after: str | None = None,
                      limit: int | None = None) -> Plan[user_models.ApiKeyPage]:
        return (yield from call("GET", "/api/v1/api-keys", user_models.ApiKeyPage, params=params(
            include_revoked="true" if include_revoked else None, after=after, limit=limit)))

    @endpoint
    def revoke_api_key(self, key_id: str) -> Plan[None]:
        return (yield from call_none("DELETE", path("api-keys", key_id)))

    @endpoint
    def list_sessions(self, include_ended: bool = False, username: str | None = None,
                      before: str | None = None, limit: int | None = None
                      ) -> Plan[dict[str, Any]]:
        """One page of login sessions newest first (live ones unless ``include_ended``):
        ``{"sessions": [...], "next_before": id or None}``."""
        return (yield from call_json("GET", "/api/v1/sessions", params=params(
            include_ended="true" if include_ended else None, username=username,
            before=before, limit=limit)))

    @endpoint
    def end_session(self, session_id: str) -> Plan[None]:
        """End a login session: its token is refused from then on."""
        return (yield from call_none("DELETE", path("sessions", session_id)))

    @endpoint
    def audit(self, /, **filters: Any) -> Plan[dict[str, Any]]:
        """One page, newest first: ``{"entries": [...], "next_before_seq"}``; filters:
        actor, action, resource_type, resource_id, outcome, since, until, before_seq,
        limit."""
        found: dict[str, Any] = yield from call_json("GET", "/api/v1/audit",
                                                params=params(**filters))
        return found

    @endpoint
    def verify_audit(self) -> Plan[dict[str, Any]]:
        found: dict[str, Any] = yield from call_json("GET", "/api/v1/audit/verify")
        return found

    # -------------------------------------------------------------- locks

    @endpoint
    def acquire_lock(self, resource: str, owner: str, *, priority: int | None = None,
                     ttl_s: float | None = None, wait_s: float = 0,
                     metadata: dict[str, Any] | None = None) -> Plan[lock_models.Acquired]:
        """Granted (``token``, ``expires_at``) or not (``position``).

        With ``wait_s`` > 0 the server holds the request until the lock is granted or
        the wait ends; if the server goes away meanwhile, the call asks again until
        the wait ends (the place in the queue is kept)."""
        body = {"owner": owner, "priority": priority, "ttl_s": ttl_s, "metadata": metadata}
        got: lock_models.Acquired = yield from _waiting(
            path("locks", resource, "acquire"), body, wait_s)
        return got

    @endpoint
    def acquire_locks(self, resources: list[str], owner: str, *, priority: int | None = None,
                      ttl_s: float | None = None, wait_s: float = 0,
                      metadata: dict[str, Any] | None = None) -> Plan[lock_models.Acquired]:
        """All of ``resources`` or none: granted with ``locks``, or the ``position`` in
        the queue of the ``resource`` it waits for."""
        body = {"resources": resources, "owner": owner, "priority": priority, "ttl_s": ttl_s,
                "metadata": metadata}
        got: lock_models.Acquired = yield from _waiting("/api/v1/locks/acquire-many", body,
                                                        wait_s)
        return got

    @endpoint
    def acquire_any(self, owner: str, *, resources: list[str] | None = None,
                    prefix: str | None = None, priority: int | None = None,
                    ttl_s: float | None = None, wait_s: float = 0,
                    metadata: dict[str, Any] | None = None) -> Plan[lock_models.Acquired]:
        """The first free of ``resources`` (in that order) or of the resources under
        ``prefix`` (e.g. ``"device:android-"``): granted with its ``resource``, ``token``
        and ``expires_at``, or not, with the ``position`` and ``resource`` of its best
        place; with ``wait_s`` it waits in every one's queue for the first granted."""
        body = {"owner": owner, "resources": resources, "prefix": prefix,
                "priority": priority, "ttl_s": ttl_s, "metadata": metadata}
        got: lock_models.Acquired = yield from _waiting("/api/v1/locks/acquire-any", body,
                                                        wait_s)
        return got

    @endpoint
    def release_lock(self, resource: str, owner: str, token: int
                     ) -> Plan[lock_models.Released]:
        """Give a lock up; ``Conflict`` unless ``owner`` holds it with ``token``."""
        return (yield from call("POST", path("locks", resource, "release"), lock_models.Released,
                           json={"owner": owner, "token": token}))

    @endpoint
    def renew_lock(self, resource: str, owner: str, token: int, ttl_s: float | None = None
                   ) -> Plan[lock_models.LockGrant]:
        body: dict[str, Any] = {"owner": owner, "token": token}
        if ttl_s is not None:
            body["ttl_s"] = ttl_s
        return (yield from call("POST", path("locks", resource, "renew"), lock_models.LockGrant,
                           json=body))

    @endpoint
    def force_release_lock(self, resource: str) -> Plan[lock_models.ForceReleased]:
        """Take a lock from its holder (an operator action); the next waiter gets it."""
        return (yield from call("POST", path("locks", resource, "force-release"),
                           lock_models.ForceReleased))

    @endpoint
    def list_locks(self, type: str | None = None, after: str | None = None,
                   limit: int | None = None) -> Plan[lock_models.LockPage]:
        """Held locks and locks with waiters (``type``: only ``TYPE:...`` resources)."""
        return (yield from call("GET", "/api/v1/locks", lock_models.LockPage,
                           params=params(type=type, after=after, limit=limit)))

    @endpoint
    def get_lock(self, resource: str) -> Plan[lock_models.Lock]:
        """The holder (or None) and the queue of one resource."""
        return (yield from call("GET", path("locks", resource), lock_models.Lock))

    # ------------------------------------------------------------- health

    @endpoint
    def health(self) -> Plan[dict[str, Any]]:
        """The server process is alive."""
        found: dict[str, Any] = yield from call_json("GET", "/health")
        return found

    @endpoint
    def ready(self) -> Plan[dict[str, Any]]:
        """The server's database answers and its schema is current (else ``Unavailable``)."""
        found: dict[str, Any] = yield from call_json("GET", "/ready")
        return found

    def use_token(self, token: str | None) -> None:
        """Send ``token`` with every later request (None: no credential)."""
        if token is None:
            self.http.headers.pop("Authorization", None)
        else:
            self.http.headers["Authorization"] = f"Bearer {token}"


def _waiting(target: str, body: dict[str, Any], wait_s: float) -> Plan[lock_models.Acquired]:
    """A long-polling acquire that asks again while the server is unreachable (a
    restart), until ``wait_s`` ends; the place in the queue is kept meanwhile."""
    body = {k: v for k, v in body.items() if v is not None}
    deadline = time.monotonic() + wait_s
    while True:
        left = max(deadline - time.monotonic(), 0.0)
        try:
            got: lock_models.Acquired = yield from call(
                "POST", target, lock_models.Acquired, json={**body, "wait_s": round(left, 3)},
                timeout=left + DEFAULT_TIMEOUT)
            return got
        except errors.Unavailable as exc:
            if exc.code != "server_unreachable" or time.monotonic() + RETRY_PAUSE > deadline:
                raise
            yield Sleep(RETRY_PAUSE)


def _json_or_bytes(response: httpx.Response) -> Any:
    if response.headers.get("content-type", "").startswith("application/json"):
        return response.json()
    return response.content
