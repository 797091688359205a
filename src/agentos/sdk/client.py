"""A synchronous HTTP client for the AgentOS REST API.

    with Client() as agentos:          # AGENTOS_URL; AGENTOS_TOKEN or `agentos login`
        agentos.import_yaml(text, publish=True)
        agentos.emit("alert.cpu", {"severity": "high"}, priority="high")
        with agentos.stream("alert.*") as events:
            for event in events:       # live, until closed
                ...

    async with agentos.lock("device:pixel-7", ttl_s=30, wait_s=60) as lease:
        ...                            # renewed in the background; lease.token fences writes

Every non-2xx answer raises the ``AgentOSError`` subclass for its status,
carrying the server's ``code``, ``message`` and ``details``; a server that
cannot be reached raises ``Unavailable``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from agentos import __version__, errors
from agentos.config import Settings
from agentos.sdk import credentials

DEFAULT_TIMEOUT = 30.0  # seconds for a whole request
LOG_POLL = 1.0  # seconds between looks of ``follow_logs`` at a task still running

_BY_STATUS: dict[int, type[errors.AgentOSError]] = {
    cls.status: cls
    for cls in (errors.InvalidInput, errors.ValidationFailed, errors.Unauthorized,
                errors.Forbidden, errors.NotFound, errors.Conflict, errors.PayloadTooLarge,
                errors.UnsupportedMedia, errors.RateLimited, errors.Unavailable)
}


class Client:
    """One connection pool to one AgentOS server; close it, or use it in ``with``."""

    def __init__(self, base_url: str | None = None, token: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        settings = Settings()
        self.base_url = (base_url or settings.url).rstrip("/")
        # the credential: given, else AGENTOS_TOKEN, else what `agentos login` stored
        token = token or settings.token or credentials.load(self.base_url)
        headers = {"User-Agent": f"agentos-sdk/{__version__}"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._timeout = timeout
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)
        # a stream is quiet between events (the server sends a comment every 15 s)
        self._stream_timeout = httpx.Timeout(timeout, read=None)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # ------------------------------------------------------------- agents

    def list_agents(self, q: str | None = None, tag: str | None = None,
                    capability: str | None = None, status: str | None = None,
                    event: str | None = None, after: str | None = None,
                    limit: int | None = None) -> dict[str, Any]:
        """One page: ``{"agents": [summary, ...], "next_after": name or None}``."""
        params = {"q": q, "tag": tag, "capability": capability, "status": status,
                  "event": event, "after": after, "limit": limit}
        return self._json("GET", "/api/v1/agents",
                          params={k: v for k, v in params.items() if v is not None})

    def iter_agents(self, q: str | None = None, tag: str | None = None,
                    capability: str | None = None, status: str | None = None,
                    event: str | None = None) -> Iterator[dict[str, Any]]:
        """Every matching agent, following the pages."""
        after = None
        while True:
            page = self.list_agents(q, tag, capability, status, event, after=after)
            yield from page["agents"]
            after = page["next_after"]
            if after is None:
                return

    def create_agent(self, definition: dict[str, Any]) -> dict[str, Any]:
        """Create a draft (or replace the draft of that version)."""
        return self._json("POST", "/api/v1/agents", json=definition)

    def import_yaml(self, text: str, publish: bool = False) -> list[dict[str, Any]]:
        """Import a YAML stream (all documents or none); returns the stored versions."""
        body = self._json("POST", "/api/v1/agents/import", content=text.encode("utf-8"),
                          params={"publish": "true"} if publish else None,
                          headers={"Content-Type": "application/yaml"})
        agents: list[dict[str, Any]] = body["agents"]
        return agents

    def get_agent(self, name: str) -> dict[str, Any]:
        """The latest published version, else the newest draft."""
        return self._json("GET", _path("agents", name))

    def versions(self, name: str) -> list[dict[str, Any]]:
        """Every version of an agent, highest first."""
        versions: list[dict[str, Any]] = self._json("GET", _path("agents", name,
                                                                 "versions"))["versions"]
        return versions

    def get_version(self, name: str, version: str) -> dict[str, Any]:
        return self._json("GET", _path("agents", name, "versions", version))

    def publish(self, name: str, version: str) -> dict[str, Any]:
        return self._json("POST", _path("agents", name, "versions", version, "publish"))

    def deprecate(self, name: str, version: str) -> dict[str, Any]:
        return self._json("POST", _path("agents", name, "versions", version, "deprecate"))

    def archive(self, name: str, version: str) -> dict[str, Any]:
        return self._json("POST", _path("agents", name, "versions", version, "archive"))

    def delete_draft(self, name: str, version: str) -> None:
        self._request("DELETE", _path("agents", name, "versions", version))

    def export(self, name: str, version: str | None = None) -> str:
        """The definition as YAML: the current version, or ``version``."""
        params = {"version": version} if version is not None else None
        return self._request("GET", _path("agents", name, "export"), params=params).text

    # ------------------------------------------------------------- events

    def emit(self, type: str, payload: dict[str, Any] | None = None,
             **fields: Any) -> dict[str, Any]:
        """Append one event; ``fields`` are the other event fields (``source``,
        ``priority``, ``correlation_id``, ``causation_id``, ``run_id``, ``subject``,
        ``dedup_key``). Returns it with its ``seq``, ``id`` and ``duplicate``."""
        body = {"type": type, **({"payload": payload} if payload is not None else {}),
                **{k: v for k, v in fields.items() if v is not None}}
        return self._json("POST", "/api/v1/events", json=body)

    def emit_batch(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Append several events in one transaction: all or none."""
        appended: list[dict[str, Any]] = self._json("POST", "/api/v1/events",
                                                    json={"events": events})["events"]
        return appended

    def list_events(self, type: str | None = None, source: str | None = None,
                    correlation_id: str | None = None, run_id: str | None = None,
                    priority: str | None = None, since: datetime | str | None = None,
                    until: datetime | str | None = None, after_seq: int | None = None,
                    limit: int | None = None) -> dict[str, Any]:
        """One page in sequence order: ``{"events": [...], "next_after_seq": seq or None}``.
        ``type`` is a glob; ``since`` is inclusive, ``until`` exclusive."""
        params = {"type": type, "source": source, "correlation_id": correlation_id,
                  "run_id": run_id, "priority": priority, "since": _iso(since),
                  "until": _iso(until), "after_seq": after_seq, "limit": limit}
        return self._json("GET", "/api/v1/events",
                          params={k: v for k, v in params.items() if v is not None})

    def iter_events(self, type: str | None = None, source: str | None = None,
                    correlation_id: str | None = None, run_id: str | None = None,
                    priority: str | None = None, since: datetime | str | None = None,
                    until: datetime | str | None = None, after_seq: int = 0,
                    page_size: int | None = None) -> Iterator[dict[str, Any]]:
        """Every matching event after ``after_seq``, following the pages."""
        cursor: int | None = after_seq
        while cursor is not None:
            page = self.list_events(type, source, correlation_id, run_id, priority, since,
                                    until, after_seq=cursor, limit=page_size)
            yield from page["events"]
            cursor = page["next_after_seq"]

    def get_event(self, event_id: str) -> dict[str, Any]:
        return self._json("GET", _path("events", event_id))

    def event_routes(self, event_id: str) -> dict[str, Any]:
        """``{"event_id", "routed": bool, "routes": [...]}``: the agents it went to;
        ``routed`` is False while the router has not handled it yet."""
        return self._json("GET", _path("events", event_id, "routes"))

    def explain_event(self, type: str, payload: dict[str, Any] | None = None,
                      **fields: Any) -> dict[str, Any]:
        """Which published agents an event would reach, and for the others why not
        (fields: source, priority, ...). Nothing is appended."""
        body = {"type": type, "payload": payload or {},
                **{k: v for k, v in fields.items() if v is not None}}
        return self._json("POST", "/api/v1/router/explain", json=body)

    def correlation(self, correlation_id: str) -> list[dict[str, Any]]:
        """The events sharing ``correlation_id`` as a causation tree: the roots, each
        with its ``children``."""
        tree: list[dict[str, Any]] = self._json("GET", _path("correlations", correlation_id)
                                                )["tree"]
        return tree

    def prune(self, older_than: str, type: str | None = None, dry_run: bool = False
              ) -> tuple[int, int]:
        """Delete events older than ``older_than`` (``30d``, ``12h``...): how many were
        deleted (or with ``dry_run`` would be), and how many old ones were kept because
        an unfinished task's correlation still needs them."""
        body = self._json("POST", "/api/v1/events/prune", json={
            "older_than": older_than, "type": type, "dry_run": dry_run})
        return int(body["would_delete" if dry_run else "deleted"]), int(body["kept"])

    def stream(self, type: str = "*", after_seq: int | None = None,
               last_event_id: str | None = None) -> EventStream:
        """Follow the log live (Server-Sent Events): matching events from now on, or
        after ``after_seq`` / ``last_event_id``. The connection is open when this
        returns, so bad arguments raise here; iterate the stream, then close it."""
        params: dict[str, str | int] = {"type": type}
        if after_seq is not None:
            params["after_seq"] = after_seq
        headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        request = self._http.build_request("GET", "/api/v1/events/stream", params=params,
                                           headers=headers, timeout=self._stream_timeout)
        response = self._send(request, stream=True)
        if not response.is_success:
            response.read()
            response.close()
            raise error_from(response)
        return EventStream(response, self.base_url)

    # ------------------------------------------------------ subscriptions

    def create_subscription(self, name: str, type: str = "*",
                            from_start: bool = False) -> dict[str, Any]:
        """A named durable subscription; it starts at the log's head unless ``from_start``."""
        return self._json("POST", "/api/v1/subscriptions",
                          json={"name": name, "type": type, "from_start": from_start})

    def list_subscriptions(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._json("GET", "/api/v1/subscriptions"
                                                 )["subscriptions"]
        return found

    def get_subscription(self, name: str) -> dict[str, Any]:
        return self._json("GET", _path("subscriptions", name))

    def delete_subscription(self, name: str) -> None:
        self._request("DELETE", _path("subscriptions", name))

    def pending(self, name: str, limit: int | None = None, wait_s: float = 0.0
                ) -> list[dict[str, Any]]:
        """The subscription's next events after its cursor; ``ack`` the last you handled.
        With ``wait_s``, wait up to that long for one when there are none (long polling)."""
        params = {k: v for k, v in {"limit": limit, "wait_s": wait_s}.items() if v}
        found: list[dict[str, Any]] = self._json(
            "GET", _path("subscriptions", name, "events"), params=params or None,
            timeout=self._timeout + wait_s)["events"]
        return found

    def ack(self, name: str, seq: int) -> dict[str, Any]:
        """Move the subscription's cursor forward to ``seq``."""
        return self._json("POST", _path("subscriptions", name, "ack"), json={"seq": seq})

    # ---------------------------------------------------------- schedules

    def create_schedule(self, name: str, event: str | None = None, *,
                        payload: dict[str, Any] | None = None, priority: str | None = None,
                        task: dict[str, Any] | None = None, cron: str | None = None,
                        timezone: str | None = None, interval_s: float | None = None,
                        at: datetime | str | None = None, misfire: str | None = None,
                        paused: bool = False) -> dict[str, Any]:
        """A schedule firing ``event`` and/or submitting ``task`` (``{"agent", "version",
        "input", "priority", "max_retries", "timeout_s"}``) on every tick: give exactly
        one of ``cron`` (with an optional ``timezone``), ``interval_s`` or ``at``."""
        template = {"type": event, "payload": payload, "priority": priority}
        body = {"name": name, "cron": cron, "timezone": timezone, "interval_s": interval_s,
                "at": _iso(at), "misfire": misfire, "paused": paused, "task": task,
                "event": {k: v for k, v in template.items() if v is not None} if event
                else None}
        return self._json("POST", "/api/v1/schedules",
                          json={k: v for k, v in body.items() if v is not None})

    def list_schedules(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._json("GET", "/api/v1/schedules")["schedules"]
        return found

    def get_schedule(self, name: str) -> dict[str, Any]:
        return self._json("GET", _path("schedules", name))

    def patch_schedule(self, name: str, **changes: Any) -> dict[str, Any]:
        """Change some of ``cron``, ``timezone``, ``interval_s``, ``at``, ``event``,
        ``task``, ``misfire``, ``paused``; a new timing restarts from now; ``event=None``
        or ``task=None`` stops firing it."""
        if isinstance(changes.get("at"), datetime):
            changes["at"] = _iso(changes["at"])
        return self._json("PATCH", _path("schedules", name), json=changes)

    def delete_schedule(self, name: str) -> None:
        self._request("DELETE", _path("schedules", name))

    def pause_schedule(self, name: str) -> dict[str, Any]:
        return self._json("POST", _path("schedules", name, "pause"))

    def resume_schedule(self, name: str) -> dict[str, Any]:
        """Resume from now on: the ticks that passed while paused are not fired."""
        return self._json("POST", _path("schedules", name, "resume"))

    # -------------------------------------------------------------- tasks

    def submit(self, agent: str, input: dict[str, Any] | None = None, **fields: Any
               ) -> dict[str, Any]:
        """Submit a task (fields: version, priority, max_retries, timeout_s, run_at,
        idempotency_key, correlation_id, causation_id, capability, type, metadata)."""
        body = {"agent": agent, "input": input or {},
                **{k: _iso(v) if k == "run_at" else v for k, v in fields.items()
                   if v is not None}}
        return self._json("POST", "/api/v1/tasks", json=body)

    def submit_batch(self, tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        body = self._json("POST", "/api/v1/tasks/batch", json={"tasks": tasks})
        return list(body["tasks"])

    def list_tasks(self, agent: str | None = None, status: str | None = None,
                   correlation_id: str | None = None, after_seq: int | None = None,
                   limit: int | None = None, type: str | None = None) -> dict[str, Any]:
        params = {k: v for k, v in {"agent": agent, "status": status,
                                    "correlation_id": correlation_id, "after_seq": after_seq,
                                    "limit": limit, "type": type}.items() if v is not None}
        return self._json("GET", "/api/v1/tasks", params=params)

    def get_task(self, task_id: str) -> dict[str, Any]:
        return self._json("GET", _path("tasks", task_id))

    def cancel_task(self, task_id: str) -> dict[str, Any]:
        return self._json("POST", _path("tasks", task_id, "cancel"))

    def retry_task(self, task_id: str) -> dict[str, Any]:
        return self._json("POST", _path("tasks", task_id, "retry"))

    def task_logs(self, task_id: str, attempt: int | None = None, after: str | None = None,
                  limit: int | None = None) -> dict[str, Any]:
        """A page of the lines the task's handler wrote (ctx.log), oldest first:
        ``{"lines": [...], "status", "attempt", "next_after"}``; pass ``next_after`` as
        ``after`` for the next page."""
        params = {k: v for k, v in {"attempt": attempt, "after": after, "limit": limit
                                    }.items() if v is not None}
        return self._json("GET", _path("tasks", task_id, "logs"), params=params)

    def log_lines(self, task_id: str, attempt: int | None = None, *, follow: bool = False,
                  poll_s: float = LOG_POLL) -> Iterator[dict[str, Any]]:
        """Every line of the task's log (or of one attempt), page after page; ``follow``:
        then the new ones as they come (a running attempt's arrive with its worker's
        heartbeats) until the task has ended."""
        after: str | None = None
        while True:
            page = self.task_logs(task_id, attempt, after)
            for line in page["lines"]:
                yield line
                after = f"{line['attempt']}:{line['line']}"
            if page["next_after"] is not None:
                continue
            if not follow or page["status"] in ("succeeded", "failed", "cancelled"):
                return  # an ended task's lines were written with its end: none follow
            time.sleep(poll_s)

    def explain_task(self, task_id: str) -> dict[str, Any]:
        """Why the task is not running (the gate that holds it, every gate's finding),
        or why it ended."""
        return self._json("GET", _path("tasks", task_id, "explain"))

    def list_workers(self) -> list[dict[str, Any]]:
        """Worker instances, each with the ``locks`` its running tasks hold."""
        return list(self._json("GET", "/api/v1/workers")["workers"])

    def get_worker(self, worker_id: str) -> dict[str, Any]:
        """One worker instance: its record, running tasks and the locks they hold."""
        return self._json("GET", _path("workers", worker_id))

    # ------------------------------------------------------ operating agents

    def agent_config(self, name: str) -> dict[str, Any]:
        """Each declared config key with its type, bounds, default and live value."""
        return self._json("GET", _path("agents", name, "config"))

    def set_config(self, name: str, key: str, value: Any) -> dict[str, Any]:
        """Override a config key live (checked against its declared type and bounds)."""
        return self._json("PUT", _path("agents", name, "config", key), json={"value": value})

    def unset_config(self, name: str, key: str) -> dict[str, Any]:
        """Clear a key's override: its default applies again."""
        return self._json("DELETE", _path("agents", name, "config", key))

    def capabilities(self, name: str) -> dict[str, Any]:
        """Declared capabilities and whether each is enabled now."""
        return self._json("GET", _path("agents", name, "capabilities"))

    def disable_capability(self, name: str, capability: str, reason: str) -> dict[str, Any]:
        return self._json("POST", _path("agents", name, "capabilities", capability, "disable"),
                          json={"reason": reason})

    def enable_capability(self, name: str, capability: str, reason: str = "") -> dict[str, Any]:
        return self._json("POST", _path("agents", name, "capabilities", capability, "enable"),
                          json={"reason": reason})

    def agent_state(self, name: str) -> dict[str, Any]:
        """Status, running tasks, held locks, queue depth, holds, heartbeat, last error."""
        return self._json("GET", _path("agents", name, "state"))

    def delete_agent(self, name: str, force: bool = False) -> dict[str, Any]:
        """Delete an agent and what is kept for operating it (never its logs)."""
        return self._json("DELETE", _path("agents", name),
                          params={"force": "true"} if force else None)

    # ------------------------------------------------------------ metrics

    def query_metric(self, name: str, *, agg: str = "avg", bucket: str | None = None,
                     tags: dict[str, str] | None = None, group_by: str | None = None,
                     start: datetime | None = None, end: datetime | None = None
                     ) -> dict[str, Any]:
        """A metric over a range (default: the last hour), per bucket and group."""
        params: dict[str, Any] = {"name": name, "agg": agg, "bucket": bucket,
                                  "group_by": group_by,
                                  "tags": ",".join(f"{k}:{v}" for k, v in tags.items())
                                  if tags else None,
                                  "from": start.isoformat() if start else None,
                                  "to": end.isoformat() if end else None}
        return self._json("GET", "/api/v1/metrics",
                          params={k: v for k, v in params.items() if v is not None})

    def record_metrics(self, samples: list[dict[str, Any]]) -> int:
        """Record samples (name, kind, value, tags, at); how many were accepted."""
        return int(self._json("POST", "/api/v1/metrics", json={"samples": samples})["accepted"])

    def agent_summary(self, name: str, window: str = "24h") -> dict[str, Any]:
        """Success rate, p50/p95 duration, throughput, tokens and cost over ``window``."""
        return self._json("GET", _path("agents", name, "summary"), params={"window": window})

    def prometheus(self) -> str:
        """GET /metrics: every metric in Prometheus' text format."""
        return self._request("GET", "/metrics").text

    # ------------------------------------------------------- LLM telemetry

    def report_llm_calls(self, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Record LLM calls a remote worker made (priced where they carry no cost)."""
        return list(self._json("POST", "/api/v1/llm-calls", json={"calls": calls})["calls"])

    def llm_calls(self, **filters: Any) -> dict[str, Any]:
        """One page, newest first: ``{"calls": [...], "next_before_id": id or None}``."""
        return self._json("GET", "/api/v1/llm-calls",
                          params={k: v for k, v in filters.items() if v is not None})

    def llm_summary(self, by: str = "model", **filters: Any) -> dict[str, Any]:
        """Calls, tokens, cost per model, agent or day."""
        return self._json("GET", "/api/v1/llm-calls/summary", params={
            "by": by, **{k: v for k, v in filters.items() if v is not None}})

    def create_budget(self, scope: str, metric: str, period: str, limit: float, *,
                      target: str | None = None, hard: bool = True) -> dict[str, Any]:
        return self._json("POST", "/api/v1/budgets", json={
            "scope": scope, "target": target, "metric": metric, "period": period,
            "limit": limit, "hard": hard})

    def list_budgets(self) -> list[dict[str, Any]]:
        return list(self._json("GET", "/api/v1/budgets")["budgets"])

    def change_budget(self, budget_id: int, **changes: Any) -> dict[str, Any]:
        return self._json("PATCH", _path("budgets", str(budget_id)), json=changes)

    def delete_budget(self, budget_id: int) -> None:
        self._request("DELETE", _path("budgets", str(budget_id)))

    # ------------------------------------------------------------- access

    def login(self, username: str, password: str) -> dict[str, Any]:
        """Log in; later calls on this client carry the token. ``{"token", "expires_at",
        "user"}``."""
        body = self._json("POST", "/api/v1/auth/login",
                          json={"username": username, "password": password})
        self._http.headers["Authorization"] = f"Bearer {body['token']}"
        return body

    def logout(self) -> None:
        """Revoke this client's login token."""
        self._request("POST", "/api/v1/auth/logout")
        self._http.headers.pop("Authorization", None)

    def me(self) -> dict[str, Any]:
        """Who this client's credential is: a user or an API key, and its role."""
        return self._json("GET", "/api/v1/auth/me")

    def change_password(self, current: str, new: str) -> None:
        """Change your own password; every token of yours is revoked (log in again)."""
        self._request("POST", "/api/v1/auth/password",
                      json={"current_password": current, "new_password": new})

    def create_user(self, username: str, password: str, role: str = "viewer",
                    email: str | None = None) -> dict[str, Any]:
        body = {"username": username, "password": password, "role": role, "email": email}
        return self._json("POST", "/api/v1/users",
                          json={k: v for k, v in body.items() if v is not None})

    def list_users(self) -> list[dict[str, Any]]:
        return list(self._json("GET", "/api/v1/users")["users"])

    def get_user(self, username: str) -> dict[str, Any]:
        return self._json("GET", _path("users", username))

    def patch_user(self, username: str, **changes: Any) -> dict[str, Any]:
        """Change ``email``, ``role``, ``active`` or ``password`` (a reset)."""
        return self._json("PATCH", _path("users", username), json=changes)

    def delete_user(self, username: str) -> None:
        self._request("DELETE", _path("users", username))

    def list_sessions(self, include_ended: bool = False, username: str | None = None,
                      limit: int | None = None) -> list[dict[str, Any]]:
        """Login sessions newest first (live ones unless ``include_ended``)."""
        params = {"include_ended": "true" if include_ended else None, "username": username,
                  "limit": limit}
        return list(self._json("GET", "/api/v1/sessions", params={
            k: v for k, v in params.items() if v is not None})["sessions"])

    def end_session(self, session_id: str) -> None:
        """End a login session: its token is refused from then on."""
        self._request("DELETE", _path("sessions", session_id))

    def create_api_key(self, name: str, role: str, expires_in_days: float | None = None,
                       never_expires: bool = False) -> dict[str, Any]:
        """A new key; its secret is in ``["key"]`` this once."""
        body: dict[str, Any] = {"name": name, "role": role}
        if expires_in_days is not None:
            body["expires_in_days"] = expires_in_days
        if never_expires:
            body["never_expires"] = True
        return self._json("POST", "/api/v1/api-keys", json=body)

    def list_api_keys(self, include_revoked: bool = False) -> list[dict[str, Any]]:
        params = {"include_revoked": "true"} if include_revoked else None
        return list(self._json("GET", "/api/v1/api-keys", params=params)["api_keys"])

    def revoke_api_key(self, key_id: str) -> None:
        self._request("DELETE", _path("api-keys", key_id))

    def audit(self, **filters: Any) -> dict[str, Any]:
        """One page, newest first: ``{"entries": [...], "next_before_seq"}``; filters:
        actor, action, resource_type, resource_id, outcome, since, until, before_seq,
        limit."""
        params = {k: _iso(v) for k, v in filters.items() if v is not None}
        return self._json("GET", "/api/v1/audit", params=params)

    def verify_audit(self) -> dict[str, Any]:
        return self._json("GET", "/api/v1/audit/verify")

    # -------------------------------------------------------------- locks

    def acquire_lock(self, resource: str, owner: str, *, priority: int | None = None,
                     ttl_s: float | None = None, wait_s: float = 0,
                     metadata: dict[str, Any] | None = None) -> dict[str, Any]:
        """``{"granted": True, "token", "expires_at"}`` or ``{"granted": False, "position"}``.

        With ``wait_s`` > 0 the server holds the request until the lock is granted or
        the wait ends; if the server goes away meanwhile, the call asks again until
        the wait ends (the place in the queue is kept)."""
        body = {"owner": owner, "priority": priority, "ttl_s": ttl_s, "metadata": metadata}
        return self._waiting("POST", _path("locks", resource, "acquire"), body, wait_s)

    def acquire_locks(self, resources: list[str], owner: str, *, priority: int | None = None,
                      ttl_s: float | None = None, wait_s: float = 0,
                      metadata: dict[str, Any] | None = None) -> dict[str, Any]:
        """All of ``resources`` or none: ``{"granted": True, "locks": [{resource, token,
        expires_at}, ...]}`` or ``{"granted": False, "position", "resource"}``."""
        body = {"resources": resources, "owner": owner, "priority": priority, "ttl_s": ttl_s,
                "metadata": metadata}
        return self._waiting("POST", "/api/v1/locks/acquire-many", body, wait_s)

    def acquire_any(self, owner: str, *, resources: list[str] | None = None,
                    prefix: str | None = None, priority: int | None = None,
                    ttl_s: float | None = None, wait_s: float = 0,
                    metadata: dict[str, Any] | None = None) -> dict[str, Any]:
        """The first free of ``resources`` (in that order) or of the resources under
        ``prefix`` (e.g. ``"device:android-"``): ``{"granted": True, "resource", "token",
        "expires_at"}`` or ``{"granted": False, "position", "resource"}``; with ``wait_s``
        it waits in every one's queue for the first granted."""
        body = {"owner": owner, "resources": resources, "prefix": prefix,
                "priority": priority, "ttl_s": ttl_s, "metadata": metadata}
        return self._waiting("POST", "/api/v1/locks/acquire-any", body, wait_s)

    def release_lock(self, resource: str, owner: str, token: int) -> dict[str, Any]:
        """Give a lock up; ``Conflict`` unless ``owner`` holds it with ``token``."""
        return self._json("POST", _path("locks", resource, "release"),
                          json={"owner": owner, "token": token})

    def renew_lock(self, resource: str, owner: str, token: int, ttl_s: float | None = None
                   ) -> dict[str, Any]:
        body: dict[str, Any] = {"owner": owner, "token": token}
        if ttl_s is not None:
            body["ttl_s"] = ttl_s
        return self._json("POST", _path("locks", resource, "renew"), json=body)

    def force_release_lock(self, resource: str) -> dict[str, Any]:
        """Take a lock from its holder (an operator action); the next waiter gets it."""
        return self._json("POST", _path("locks", resource, "force-release"))

    def list_locks(self, type: str | None = None) -> list[dict[str, Any]]:
        """Held locks and locks with waiters (``type``: only ``TYPE:...`` resources)."""
        return list(self._json("GET", "/api/v1/locks",
                               params={"type": type} if type else None)["locks"])

    def get_lock(self, resource: str) -> dict[str, Any]:
        """``{"resource", "holder": {...} or None, "queue": [...], "last_token"}``."""
        return self._json("GET", _path("locks", resource))

    def lock(self, resource: str, owner: str | None = None, *, ttl_s: float = 30.0,
             wait_s: float = 30.0, priority: int | None = None,
             metadata: dict[str, Any] | None = None) -> LockBlock:
        """``async with client.lock(resource, ...) as lease:`` holds the lock for the
        block, renews it in the background every ``ttl_s / 3``, and releases it on
        exit. Raises ``Conflict`` (code ``lock_unavailable``) if the wait ends first;
        ``lease.lost`` turns true if a renewal is refused (the lease lapsed)."""
        return LockBlock(self, resource, owner or default_owner(), ttl_s, wait_s, priority,
                         metadata)

    def _waiting(self, method: str, path: str, body: dict[str, Any], wait_s: float
                 ) -> dict[str, Any]:
        body = {k: v for k, v in body.items() if v is not None}
        deadline = time.monotonic() + wait_s
        while True:
            left = max(deadline - time.monotonic(), 0.0)
            try:
                return self._json(method, path, json={**body, "wait_s": round(left, 3)},
                                  timeout=left + DEFAULT_TIMEOUT)
            except errors.Unavailable as exc:
                if exc.code != "server_unreachable" or time.monotonic() + 0.2 > deadline:
                    raise
                time.sleep(0.2)  # a restarting server: ask again, the place is kept

    # ---------------------------------------------------------- knowledge

    def put_document(self, namespace: str, key: str, content: str, *, title: str = "",
                     tags: list[str] | None = None, metadata: dict[str, Any] | None = None
                     ) -> dict[str, Any]:
        """Create or replace a document; returns it (without content)."""
        return self._json("PUT", _path("knowledge", namespace, key), json={
            "content": content, "title": title, "tags": tags or [], "metadata": metadata or {}})

    def get_document(self, namespace: str, key: str) -> dict[str, Any]:
        """A document with its content."""
        return self._json("GET", _path("knowledge", namespace, key))

    def delete_document(self, namespace: str, key: str) -> None:
        self._request("DELETE", _path("knowledge", namespace, key))

    def search_knowledge(self, q: str | None = None, *, namespace: str | None = None,
                         tags: list[str] | None = None, cursor: str | None = None,
                         limit: int | None = None) -> dict[str, Any]:
        """One page: ``{"documents": [...], "next_cursor", "mode", "warning"?}``; with
        ``q`` ranked best first (``score``, ``snippet``), without it by namespace and key."""
        params: dict[str, Any] = {"q": q, "namespace": namespace, "cursor": cursor,
                                  "limit": limit, "tag": tags or None}
        return self._json("GET", "/api/v1/knowledge",
                          params={k: v for k, v in params.items() if v is not None})

    def iter_knowledge(self, q: str | None = None, *, namespace: str | None = None,
                       tags: list[str] | None = None) -> Iterator[dict[str, Any]]:
        """Every matching document, following the pages."""
        cursor = None
        while True:
            page = self.search_knowledge(q, namespace=namespace, tags=tags, cursor=cursor,
                                         limit=100)
            yield from page["documents"]
            if (cursor := page["next_cursor"]) is None:
                return

    # ------------------------------------------------------------- models

    def register_model(self, name: str, version: str, type: str, **fields: Any
                       ) -> dict[str, Any]:
        """Register a model version (``framework``, ``description``, ``metrics``,
        ``config``, ``artifact_uri``); it starts in ``training``."""
        return self._json("POST", "/api/v1/models",
                          json={"name": name, "version": version, "type": type, **fields})

    def list_models(self, name: str | None = None, status: str | None = None,
                    type: str | None = None, after: int | None = None,
                    limit: int | None = None) -> dict[str, Any]:
        """One page: ``{"models": [...], "next_after": id or None}``."""
        params = {"name": name, "status": status, "type": type, "after": after,
                  "limit": limit}
        return self._json("GET", "/api/v1/models",
                          params={k: v for k, v in params.items() if v is not None})

    def get_model(self, name: str) -> dict[str, Any]:
        """``{"name", "deployed": [versions], "versions": [...]}``."""
        return self._json("GET", _path("models", name))

    def get_model_version(self, name: str, version: str) -> dict[str, Any]:
        return self._json("GET", _path("models", name, "versions", version))

    def deploy_model(self, name: str, version: str) -> dict[str, Any]:
        return self._json("POST", _path("models", name, "versions", version, "deploy"))

    def archive_model(self, name: str, version: str) -> dict[str, Any]:
        return self._json("POST", _path("models", name, "versions", version, "archive"))

    # -------------------------------------------------------- projections

    def list_projections(self) -> list[dict[str, Any]]:
        """Every read model: cursor, lag and status."""
        return list(self._json("GET", "/api/v1/projections")["projections"])

    def get_projection(self, name: str) -> dict[str, Any]:
        return self._json("GET", _path("projections", name))

    def rebuild_projection(self, name: str) -> dict[str, Any]:
        """Start a rebuild (the server folds the log again; follow ``rebuild.progress``)."""
        return self._json("POST", _path("projections", name, "rebuild"))

    def projection_state(self, name: str, *, key: str | None = None,
                         prefix: str | None = None, after: str | None = None,
                         limit: int | None = None) -> dict[str, Any]:
        """``{"items": {key: value}, "next_after"}``."""
        params = {"key": key, "prefix": prefix, "after": after, "limit": limit}
        return self._json("GET", _path("projections", name, "state"),
                          params={k: v for k, v in params.items() if v is not None})

    # ---------------------------------------------------------- workflows

    def import_workflows(self, text: str, publish: bool = False) -> list[dict[str, Any]]:
        """Import a YAML stream of workflow definitions (all or none); each version comes
        back with its ``outcome``: created, replaced or unchanged."""
        body = self._json("POST", "/api/v1/workflows/import", content=text.encode("utf-8"),
                          params={"publish": "true"} if publish else None,
                          headers={"Content-Type": "application/yaml"})
        return list(body["workflows"])

    def create_workflow(self, definition: dict[str, Any], publish: bool = False
                        ) -> dict[str, Any]:
        return self._json("POST", "/api/v1/workflows", json=definition,
                          params={"publish": "true"} if publish else None)

    def list_workflows(self, status: str | None = None, after: str | None = None,
                       limit: int | None = None) -> dict[str, Any]:
        """One page: ``{"workflows": [summary, ...], "next_after": name or None}``."""
        params = {"status": status, "after": after, "limit": limit}
        return self._json("GET", "/api/v1/workflows",
                          params={k: v for k, v in params.items() if v is not None})

    def get_workflow(self, name: str, version: str | None = None) -> dict[str, Any]:
        """The current version (latest published, else newest draft), or ``version``."""
        if version is not None:
            return self._json("GET", _path("workflows", name, "versions", version))
        return self._json("GET", _path("workflows", name))

    def workflow_versions(self, name: str) -> list[dict[str, Any]]:
        return list(self._json("GET", _path("workflows", name, "versions"))["versions"])

    def publish_workflow(self, name: str, version: str) -> dict[str, Any]:
        return self._json("POST", _path("workflows", name, "versions", version, "publish"))

    def deprecate_workflow(self, name: str, version: str) -> dict[str, Any]:
        return self._json("POST", _path("workflows", name, "versions", version, "deprecate"))

    def archive_workflow(self, name: str, version: str) -> dict[str, Any]:
        return self._json("POST", _path("workflows", name, "versions", version, "archive"))

    def delete_workflow_draft(self, name: str, version: str) -> None:
        self._request("DELETE", _path("workflows", name, "versions", version))

    def export_workflow(self, name: str, version: str | None = None) -> str:
        params = {"version": version} if version is not None else None
        return self._request("GET", _path("workflows", name, "export"), params=params).text

    def start_run(self, workflow: str, input: Any = None, *, version: str | None = None,
                  idempotency_key: str | None = None, correlation_id: str | None = None,
                  priority: int | None = None) -> dict[str, Any]:
        """Start a workflow run; the run with every step's state."""
        body = {"workflow": workflow, "input": {} if input is None else input,
                "version": version, "idempotency_key": idempotency_key,
                "correlation_id": correlation_id, "priority": priority}
        return self._json("POST", "/api/v1/workflow-runs",
                          json={k: v for k, v in body.items() if v is not None})

    def list_runs(self, workflow: str | None = None, status: str | None = None,
                  since: datetime | str | None = None, until: datetime | str | None = None,
                  before: str | None = None, limit: int | None = None) -> dict[str, Any]:
        """One page, newest first: ``{"runs": [...], "next_before": id or None}``."""
        params = {"workflow": workflow, "status": status, "since": _iso(since),
                  "until": _iso(until), "before": before, "limit": limit}
        return self._json("GET", "/api/v1/workflow-runs",
                          params={k: v for k, v in params.items() if v is not None})

    def get_run(self, run_id: str) -> dict[str, Any]:
        """A run: its steps, their tasks and attempts, outputs, and its transitions."""
        return self._json("GET", _path("workflow-runs", run_id))

    def cancel_run(self, run_id: str) -> dict[str, Any]:
        return self._json("POST", _path("workflow-runs", run_id, "cancel"))

    def rerun(self, run_id: str, step: str) -> dict[str, Any]:
        """Run a failed run again from its failed step ``step``."""
        return self._json("POST", _path("workflow-runs", run_id, "rerun"), json={"step": step})

    def explain_run(self, run_id: str) -> dict[str, Any]:
        """What the run waits for now."""
        return self._json("GET", _path("workflow-runs", run_id, "explain"))

    def run_artifacts(self, run_id: str) -> list[dict[str, Any]]:
        return list(self._json("GET", _path("workflow-runs", run_id, "artifacts"))["artifacts"])

    def run_artifact(self, run_id: str, name: str) -> Any:
        """An artifact's data: the JSON value, or bytes."""
        response = self._request("GET", _path("workflow-runs", run_id, "artifacts", name))
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.content

    def wait_run(self, run_id: str, timeout_s: float | None = None,
                 poll_s: float = 0.5) -> dict[str, Any]:
        """Poll until the run has ended (or ``timeout_s`` passed: ``Unavailable``)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            run = self.get_run(run_id)
            if run["status"] != "running":
                return run
            if deadline is not None and time.monotonic() > deadline:
                raise errors.Unavailable(f"run {run_id} is still running after {timeout_s} s",
                                         code="run_still_running")
            time.sleep(poll_s)

    def list_approvals(self, status: str | None = None, run_id: str | None = None,
                       before: str | None = None, limit: int | None = None
                       ) -> dict[str, Any]:
        """One page, newest first: ``{"approvals": [...], "next_before"}``."""
        params = {"status": status, "run_id": run_id, "before": before, "limit": limit}
        return self._json("GET", "/api/v1/approvals",
                          params={k: v for k, v in params.items() if v is not None})

    def get_approval(self, approval_id: str) -> dict[str, Any]:
        return self._json("GET", _path("approvals", approval_id))

    def approve(self, approval_id: str, comment: str | None = None) -> dict[str, Any]:
        return self._json("POST", _path("approvals", approval_id, "approve"),
                          json={"comment": comment} if comment is not None else {})

    def reject(self, approval_id: str, comment: str | None = None) -> dict[str, Any]:
        return self._json("POST", _path("approvals", approval_id, "reject"),
                          json={"comment": comment} if comment is not None else {})

    # ------------------------------------------------------------- health

    def health(self) -> dict[str, Any]:
        """The server process is alive."""
        return self._json("GET", "/health")

    def ready(self) -> dict[str, Any]:
        """The server's database answers and its schema is current (else ``Unavailable``)."""
        return self._json("GET", "/ready")

    # ---------------------------------------------------------- transport

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        body: dict[str, Any] = self._request(method, path, **kwargs).json()
        return body

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self._send(self._http.build_request(method, path, **kwargs))
        if not response.is_success:
            raise error_from(response)
        return response

    def _send(self, request: httpx.Request, stream: bool = False) -> httpx.Response:
        try:
            return self._http.send(request, stream=stream)
        except httpx.TimeoutException:
            raise errors.Unavailable(
                f"the AgentOS server at {self.base_url} did not answer in time",
                code="server_timeout") from None
        except httpx.TransportError as exc:
            raise errors.Unavailable(
                f"cannot reach the AgentOS server at {self.base_url} "
                "(is `agentos serve` running?)",
                code="server_unreachable", details={"reason": str(exc)}) from None


def default_owner() -> str:
    """An owner id unique to this process: host, pid and a random suffix."""
    return f"{socket.gethostname()}-{os.getpid()}-{os.urandom(3).hex()}"


@dataclass
class Lease:
    """A held lock: ``token`` is the fencing token to pass along with every write."""

    resource: str
    owner: str
    token: int
    expires_at: str
    lost: bool = False


class LockBlock:
    """The ``async with client.lock(...)`` block (the client's calls run in threads)."""

    def __init__(self, client: Client, resource: str, owner: str, ttl_s: float,
                 wait_s: float, priority: int | None, metadata: dict[str, Any] | None) -> None:
        self.client, self.resource, self.owner = client, resource, owner
        self.ttl_s, self.wait_s, self.priority, self.metadata = ttl_s, wait_s, priority, metadata
        self.lease: Lease | None = None
        self._renewer: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Lease:
        got = await asyncio.to_thread(
            self.client.acquire_lock, self.resource, self.owner, priority=self.priority,
            ttl_s=self.ttl_s, wait_s=self.wait_s, metadata=self.metadata)
        if not got["granted"]:
            raise errors.Conflict(f"{self.resource} stayed locked for {self.wait_s:g}s",
                                  code="lock_unavailable", details=got)
        self.lease = Lease(self.resource, self.owner, int(got["token"]), got["expires_at"])
        self._renewer = asyncio.create_task(self._renew(self.lease))
        return self.lease

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            await asyncio.gather(self._renewer, return_exceptions=True)
        if self.lease is not None and not self.lease.lost:
            with contextlib.suppress(errors.Conflict):  # lapsed meanwhile: nothing to give back
                await asyncio.to_thread(self.client.release_lock, self.resource, self.owner,
                                        self.lease.token)

    async def _renew(self, lease: Lease) -> None:
        while True:
            await asyncio.sleep(self.ttl_s / 3)
            try:
                renewed = await asyncio.to_thread(self.client.renew_lock, lease.resource,
                                                  lease.owner, lease.token, self.ttl_s)
            except errors.Conflict:
                lease.lost = True
                return
            except errors.Unavailable:
                continue  # try again at the next beat; the lease may still hold
            lease.expires_at = renewed["expires_at"]


class EventStream:
    """The events of one Server-Sent Events response, as dicts, in sequence order.

    Iterating blocks until the next event. The server ending the stream ends the
    iteration; a broken connection raises ``Unavailable`` (code ``stream_lost``).
    Either way, resume with ``client.stream(..., last_event_id=s.last_event_id)``.
    """

    def __init__(self, response: httpx.Response, base_url: str) -> None:
        self.last_event_id: str | None = None
        self._response = response
        self._base_url = base_url
        self._lines = response.iter_lines()

    def __iter__(self) -> EventStream:
        return self

    def __next__(self) -> dict[str, Any]:
        event_id: str | None = None
        data: list[str] = []
        while (line := self._next_line()) is not None:
            if not line:  # a blank line ends a block; a block without data is no event
                if event_id is not None:
                    self.last_event_id = event_id
                if data:
                    event: dict[str, Any] = json.loads("\n".join(data))
                    return event
                event_id = None
                continue
            if line.startswith(":"):  # a comment: ": connected", ": keep-alive"
                continue
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "data":
                data.append(value)
            elif field == "id" and "\0" not in value:
                event_id = value
        self.close()
        raise StopIteration

    def _next_line(self) -> str | None:
        try:
            return next(self._lines, None)
        except httpx.TransportError as exc:
            self.close()
            raise errors.Unavailable(
                f"lost the event stream from {self._base_url}", code="stream_lost",
                details={"reason": str(exc), "last_event_id": self.last_event_id}) from None

    def close(self) -> None:
        self._response.close()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def error_from(response: httpx.Response) -> errors.AgentOSError:
    """The domain error a non-2xx response stands for."""
    status = response.status_code
    cls = _BY_STATUS.get(status) or (errors.InvalidInput if status < 500
                                     else errors.AgentOSError)
    try:
        error = response.json()["error"]
        return cls(str(error["message"]), code=error.get("code"), details=error.get("details"))
    except (ValueError, KeyError, TypeError):
        # not our error shape: a proxy, or not an AgentOS server at all
        text = " ".join(response.text.split())[:200]
        return cls(f"HTTP {status} from {response.request.url}" + (f": {text}" if text else ""),
                   code=f"http_{status}")


def _iso(moment: datetime | str | None) -> str | None:
    return moment.isoformat() if isinstance(moment, datetime) else moment


def _path(*segments: str) -> str:
    return "/api/v1/" + "/".join(quote(s, safe="") for s in segments)
