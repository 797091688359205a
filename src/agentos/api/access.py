"""Who may call what: one rule per route, checked by one dependency for every route.

``RULES`` maps (method, route path) to the role a route needs and how a call
is audited. ``guard`` runs before every handler: it resolves the bearer
credential (401 when missing or invalid), checks the role (403, and an audit
row saying so), and for a change arranges its audit row to be written in the
change's own transaction. A route with no rule is refused (and
tests/api/test_access_rules.py fails), so a new route cannot ship open by
accident.

Browsers: the dashboard's login also sets an HttpOnly, SameSite=Strict cookie,
accepted for reads only (GET, and logout), so the page and its EventSource
work without exposing a token to scripts or inviting cross-site writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request

from agentos import audit, tokens
from agentos.api.middleware import JSON_BODY
from agentos.dashboard.pages import PAGES
from agentos.errors import Forbidden, Unauthorized
from agentos.roles import Role

COOKIE = "agentos_token"
MAX_DETAIL = 200  # characters of any one value in an audit row's details
SUMMARY_MAX_BYTES = 16 * 1024  # larger bodies (batches) are not read again for a summary
# body fields worth naming in an audit row; nothing else (never a password) is copied
_SUMMARY_FIELDS = ("name", "username", "agent", "type", "version", "role", "active", "email",
                   "priority", "paused", "cron", "interval_s", "expires_at", "worker_id",
                   "older_than", "dry_run", "seq", "attempt", "outcome", "reason",
                   "scope", "target", "metric", "period", "limit", "hard", "workflow", "step",
                   "comment")
# the first of these a body has names what a call without path parameters changes
_NAMING_FIELDS = ("name", "username", "agent", "worker_id", "older_than", "type")


@dataclass(frozen=True)
class Rule:
    role: Role | None  # None: no credential needed
    action: str  # the audit action, <resource>.<verb>
    resource: str  # the audit resource type
    audit: bool  # record each successful call (every change; reads are not recorded)


PUBLIC = Rule(None, "public.read", "public", False)


def read(resource: str, role: Role = Role.VIEWER) -> Rule:
    return Rule(role, f"{resource}.read", resource, False)


def change(role: Role, action: str, audit: bool = True) -> Rule:
    return Rule(role, action, action.split(".")[0], audit)


V, OP, A = Role.VIEWER, Role.OPERATOR, Role.ADMIN

RULES: dict[tuple[str, str], Rule] = {
    # open: probes, the login itself, the API's own docs, the dashboard's assets
    ("GET", "/health"): PUBLIC,
    ("GET", "/ready"): PUBLIC,
    ("POST", "/api/v1/auth/login"): Rule(None, "auth.login", "auth", True),
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/redoc"): PUBLIC,
    ("GET", "/static/{path:path}"): PUBLIC,
    # the dashboard's pages (each draws itself from the routes below, under their rules)
    **{("GET", page.path): read("dashboard", page.role) for page in PAGES},
    # the caller's own session
    ("GET", "/api/v1/auth/me"): read("auth"),
    ("POST", "/api/v1/auth/logout"): change(V, "auth.logout"),
    ("POST", "/api/v1/auth/password"): change(V, "auth.password"),
    # agents: operators write drafts; the lifecycle and imports (which may publish) are admin's
    ("GET", "/api/v1/agents"): read("agents"),
    ("POST", "/api/v1/agents"): change(OP, "agents.create"),
    ("POST", "/api/v1/agents/import"): change(A, "agents.import"),
    ("GET", "/api/v1/agents/{name}"): read("agents"),
    ("GET", "/api/v1/agents/{name}/versions"): read("agents"),
    ("GET", "/api/v1/agents/{name}/versions/{version}"): read("agents"),
    ("PUT", "/api/v1/agents/{name}/versions/{version}"): change(OP, "agents.replace"),
    ("DELETE", "/api/v1/agents/{name}/versions/{version}"): change(OP, "agents.delete"),
    ("POST", "/api/v1/agents/{name}/versions/{version}/publish"): change(A, "agents.publish"),
    ("POST", "/api/v1/agents/{name}/versions/{version}/deprecate"):
        change(A, "agents.deprecate"),
    ("POST", "/api/v1/agents/{name}/versions/{version}/archive"): change(A, "agents.archive"),
    ("GET", "/api/v1/agents/{name}/export"): read("agents"),
    ("DELETE", "/api/v1/agents/{name}"): change(A, "agents.delete_agent"),
    # operating agents: viewers read; operators set live config and switch capabilities
    ("GET", "/api/v1/agents/{name}/config"): read("agents"),
    ("PUT", "/api/v1/agents/{name}/config/{key}"): change(OP, "agents.config_set"),
    ("DELETE", "/api/v1/agents/{name}/config/{key}"): change(OP, "agents.config_unset"),
    ("GET", "/api/v1/agents/{name}/capabilities"): read("agents"),
    ("POST", "/api/v1/agents/{name}/capabilities/{capability}/disable"):
        change(OP, "agents.capability_disable"),
    ("POST", "/api/v1/agents/{name}/capabilities/{capability}/enable"):
        change(OP, "agents.capability_enable"),
    ("GET", "/api/v1/agents/{name}/state"): read("agents"),
    # events
    ("POST", "/api/v1/events"): change(OP, "events.emit"),
    ("GET", "/api/v1/events"): read("events"),
    ("GET", "/api/v1/events/stream"): read("events"),
    ("GET", "/api/v1/events/{event_id}"): read("events"),
    ("GET", "/api/v1/events/{event_id}/routes"): read("events"),
    ("POST", "/api/v1/events/prune"): change(A, "events.prune"),
    ("GET", "/api/v1/correlations/{correlation_id}"): read("events"),
    # durable subscriptions: a consumer moves its own cursor
    ("POST", "/api/v1/subscriptions"): change(OP, "subscriptions.create"),
    ("GET", "/api/v1/subscriptions"): read("subscriptions"),
    ("GET", "/api/v1/subscriptions/{name}"): read("subscriptions"),
    ("DELETE", "/api/v1/subscriptions/{name}"): change(OP, "subscriptions.delete"),
    ("GET", "/api/v1/subscriptions/{name}/events"): read("subscriptions"),
    ("POST", "/api/v1/subscriptions/{name}/ack"): change(OP, "subscriptions.ack"),
    # schedules
    ("POST", "/api/v1/schedules"): change(A, "schedules.create"),
    ("GET", "/api/v1/schedules"): read("schedules"),
    ("GET", "/api/v1/schedules/{name}"): read("schedules"),
    ("GET", "/api/v1/schedules/{name}/fires"): read("schedules"),
    ("PATCH", "/api/v1/schedules/{name}"): change(A, "schedules.change"),
    ("DELETE", "/api/v1/schedules/{name}"): change(A, "schedules.delete"),
    ("POST", "/api/v1/schedules/{name}/pause"): change(A, "schedules.pause"),
    ("POST", "/api/v1/schedules/{name}/resume"): change(A, "schedules.resume"),
    # tasks, and the HTTP worker protocol (a lease extension is no change worth a row)
    ("POST", "/api/v1/tasks"): change(OP, "tasks.submit"),
    ("POST", "/api/v1/tasks/batch"): change(OP, "tasks.submit"),
    ("GET", "/api/v1/tasks"): read("tasks"),
    ("POST", "/api/v1/tasks/claim"): change(OP, "tasks.claim"),
    ("GET", "/api/v1/tasks/{task_id}"): read("tasks"),
    ("POST", "/api/v1/tasks/{task_id}/cancel"): change(OP, "tasks.cancel"),
    ("POST", "/api/v1/tasks/{task_id}/retry"): change(OP, "tasks.retry"),
    ("POST", "/api/v1/tasks/{task_id}/heartbeat"): change(OP, "tasks.heartbeat", audit=False),
    ("POST", "/api/v1/tasks/{task_id}/complete"): change(OP, "tasks.complete"),
    ("POST", "/api/v1/tasks/{task_id}/fail"): change(OP, "tasks.fail"),
    ("GET", "/api/v1/tasks/{task_id}/explain"): read("tasks"),
    ("GET", "/api/v1/tasks/{task_id}/logs"): read("tasks"),
    # a question about an event that is not appended: nothing changes, nothing audited
    ("POST", "/api/v1/router/explain"): read("router"),
    ("GET", "/api/v1/workers"): read("workers"),
    ("GET", "/api/v1/workers/{worker_id}"): read("workers"),
    # locks (a renewal is a lease extension, like a task heartbeat)
    ("GET", "/api/v1/locks"): read("locks"),
    ("GET", "/api/v1/locks/{resource:path}"): read("locks"),
    ("POST", "/api/v1/locks/acquire-many"): change(OP, "locks.acquire"),
    ("POST", "/api/v1/locks/acquire-any"): change(OP, "locks.acquire"),
    ("POST", "/api/v1/locks/{resource:path}/acquire"): change(OP, "locks.acquire"),
    ("POST", "/api/v1/locks/{resource:path}/release"): change(OP, "locks.release"),
    ("POST", "/api/v1/locks/{resource:path}/renew"): change(OP, "locks.renew", audit=False),
    ("POST", "/api/v1/locks/{resource:path}/force-release"): change(A, "locks.force_release"),
    # knowledge: viewers search and read; operators (and agents, through ctx) write
    ("GET", "/api/v1/knowledge"): read("knowledge"),
    ("GET", "/api/v1/knowledge/{namespace}/{key:path}"): read("knowledge"),
    ("PUT", "/api/v1/knowledge/{namespace}/{key:path}"): change(OP, "knowledge.put"),
    ("DELETE", "/api/v1/knowledge/{namespace}/{key:path}"): change(OP, "knowledge.delete"),
    # models: operators register versions; deploying and archiving are admin's
    ("POST", "/api/v1/models"): change(OP, "models.register"),
    ("GET", "/api/v1/models"): read("models"),
    ("GET", "/api/v1/models/{name}"): read("models"),
    ("GET", "/api/v1/models/{name}/versions/{version}"): read("models"),
    ("POST", "/api/v1/models/{name}/versions/{version}/deploy"): change(A, "models.deploy"),
    ("POST", "/api/v1/models/{name}/versions/{version}/archive"): change(A, "models.archive"),
    # projections: viewers read; a rebuild is admin's
    ("GET", "/api/v1/projections"): read("projections"),
    ("GET", "/api/v1/projections/{name}"): read("projections"),
    ("GET", "/api/v1/projections/{name}/state"): read("projections"),
    ("POST", "/api/v1/projections/{name}/rebuild"): change(A, "projections.rebuild"),
    # metrics: viewers read (Prometheus scrapes with a viewer's API key); operators record
    ("GET", "/metrics"): read("metrics"),
    ("GET", "/api/v1/metrics"): read("metrics"),
    ("POST", "/api/v1/metrics"): change(OP, "metrics.record", audit=False),
    ("GET", "/api/v1/agents/{name}/summary"): read("agents"),
    # LLM telemetry: workers (operators) report calls; budgets are admin's to set
    ("POST", "/api/v1/llm-calls"): change(OP, "llm_calls.report"),
    ("GET", "/api/v1/llm-calls"): read("llm_calls"),
    ("GET", "/api/v1/llm-calls/summary"): read("llm_calls"),
    ("POST", "/api/v1/budgets"): change(A, "budgets.create"),
    ("GET", "/api/v1/budgets"): read("budgets"),
    ("GET", "/api/v1/budgets/{budget_id}"): read("budgets"),
    ("PATCH", "/api/v1/budgets/{budget_id}"): change(A, "budgets.change"),
    ("DELETE", "/api/v1/budgets/{budget_id}"): change(A, "budgets.delete"),
    # workflows: definitions like agents (operators write drafts, admins publish and
    # import); operators start, cancel and rerun runs
    ("GET", "/api/v1/workflows"): read("workflows"),
    ("POST", "/api/v1/workflows"): change(OP, "workflows.create"),
    ("POST", "/api/v1/workflows/import"): change(A, "workflows.import"),
    ("GET", "/api/v1/workflows/{name}"): read("workflows"),
    ("GET", "/api/v1/workflows/{name}/versions"): read("workflows"),
    ("GET", "/api/v1/workflows/{name}/versions/{version}"): read("workflows"),
    ("DELETE", "/api/v1/workflows/{name}/versions/{version}"): change(OP, "workflows.delete"),
    ("POST", "/api/v1/workflows/{name}/versions/{version}/publish"):
        change(A, "workflows.publish"),
    ("POST", "/api/v1/workflows/{name}/versions/{version}/deprecate"):
        change(A, "workflows.deprecate"),
    ("POST", "/api/v1/workflows/{name}/versions/{version}/archive"):
        change(A, "workflows.archive"),
    ("GET", "/api/v1/workflows/{name}/export"): read("workflows"),
    ("POST", "/api/v1/workflow-runs"): change(OP, "workflow_runs.start"),
    ("GET", "/api/v1/workflow-runs"): read("workflow_runs"),
    ("GET", "/api/v1/workflow-runs/{run_id}"): read("workflow_runs"),
    ("POST", "/api/v1/workflow-runs/{run_id}/cancel"): change(OP, "workflow_runs.cancel"),
    ("POST", "/api/v1/workflow-runs/{run_id}/rerun"): change(OP, "workflow_runs.rerun"),
    ("GET", "/api/v1/workflow-runs/{run_id}/steps/{step}/tasks"): read("workflow_runs"),
    ("GET", "/api/v1/workflow-runs/{run_id}/transitions"): read("workflow_runs"),
    ("GET", "/api/v1/workflow-runs/{run_id}/explain"): read("workflow_runs"),
    ("GET", "/api/v1/workflow-runs/{run_id}/artifacts"): read("workflow_runs"),
    ("GET", "/api/v1/workflow-runs/{run_id}/artifacts/{name}"): read("workflow_runs"),
    # approvals: any signed-in user may try; the approval's own role decides (403)
    ("GET", "/api/v1/approvals"): read("approvals"),
    ("GET", "/api/v1/approvals/{approval_id}"): read("approvals"),
    ("POST", "/api/v1/approvals/{approval_id}/approve"): change(V, "approvals.approve"),
    ("POST", "/api/v1/approvals/{approval_id}/reject"): change(V, "approvals.reject"),
    # access itself: admin only
    ("POST", "/api/v1/users"): change(A, "users.create"),
    ("GET", "/api/v1/users"): read("users", A),
    ("GET", "/api/v1/users/{username}"): read("users", A),
    ("PATCH", "/api/v1/users/{username}"): change(A, "users.change"),
    ("DELETE", "/api/v1/users/{username}"): change(A, "users.delete"),
    ("POST", "/api/v1/api-keys"): change(A, "api_keys.create"),
    ("GET", "/api/v1/api-keys"): read("api_keys", A),
    ("DELETE", "/api/v1/api-keys/{key_id}"): change(A, "api_keys.revoke"),
    ("GET", "/api/v1/sessions"): read("sessions", A),
    ("DELETE", "/api/v1/sessions/{session_id}"): change(A, "sessions.end"),
    ("GET", "/api/v1/audit"): read("audit", A),
    ("GET", "/api/v1/audit/verify"): read("audit", A),
}


def rule_for(method: str, path: str) -> Rule | None:
    return RULES.get(("GET" if method == "HEAD" else method, path))


def bearer(request: Request, cookie_ok: bool) -> str:
    """The credential the request carries: ``Authorization: Bearer``, or the cookie."""
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, secret = header.partition(" ")
        secret = secret.strip()
        if scheme.lower() != "bearer" or not secret or " " in secret:
            raise Unauthorized("the Authorization header must be 'Bearer <token>'",
                               code="bad_authorization")
        return secret
    cookie = request.cookies.get(COOKIE) if cookie_ok else None
    if cookie:
        return cookie
    raise Unauthorized("this endpoint needs a credential: Authorization: Bearer <token>",
                       code="credential_required")


async def guard(request: Request) -> None:
    """The one access check, run before every route's handler."""
    route = request.scope.get("route")
    rule = rule_for(request.method, getattr(route, "path", ""))
    if rule is None:
        raise Forbidden("this route has no access rule", code="no_access_rule")
    if rule.role is None:
        if rule.audit:
            audit.expect(await _entry(request, rule, None))
        return
    resolver: tokens.Resolver = request.app.state.resolver
    cookie_ok = request.method in ("GET", "HEAD") or rule.action == "auth.logout"
    principal = await resolver.resolve(bearer(request, cookie_ok))
    request.state.principal = principal
    if not principal.role.allows(rule.role):
        entry = await _entry(request, rule, principal)
        entry.outcome = audit.Outcome.DENIED
        entry.details["needs"] = str(rule.role)
        await audit.record(request.app.state.store, entry)
        raise Forbidden(f"{rule.action} needs the {rule.role} role; {principal.actor} is "
                        f"{principal.role}", code="forbidden",
                        details={"needs": str(rule.role), "role": str(principal.role)})
    if rule.audit:
        audit.expect(await _entry(request, rule, principal))


async def _entry(request: Request, rule: Rule, principal: tokens.Principal | None
                 ) -> audit.Entry:
    params = {k: str(v)[:MAX_DETAIL] for k, v in request.path_params.items()}
    details: dict[str, Any] = {}
    if params:
        details["params"] = params
    if request.query_params:
        details["query"] = {k: v[:MAX_DETAIL] for k, v in list(request.query_params.items())[:20]}
    summary = await _body_summary(request)
    if summary:
        details["body"] = summary
    resource_id = _resource_id(params, summary, await _body_resources(request), principal)
    client = request.client
    return audit.Entry(
        actor=principal.actor if principal else "anonymous", action=rule.action,
        resource_type=rule.resource, resource_id=resource_id, details=details,
        actor_role=str(principal.role) if principal else None,
        ip=client.host if client else None,
        user_agent=(request.headers.get("user-agent") or "")[:512] or None)


def _resource_id(params: dict[str, str], summary: dict[str, Any], resources: list[str],
                 principal: tokens.Principal | None) -> str | None:
    """What the row is about, as far as the request says (a change that makes its
    resource, a task or a key, names it once it exists: ``audit.names``)."""
    if set(params) == {"name", "version"}:
        return f"{params['name']}@{params['version']}"
    if params:
        return "/".join(params.values())
    if resources:  # locks, several or a pool of them
        return ",".join(resources)[:audit.MAX_RESOURCE_ID]
    named = next((summary[k] for k in _NAMING_FIELDS if k in summary), None)
    if named is not None:
        return str(named)
    return principal.username if principal is not None else None  # one's own session


async def _body_resources(request: Request) -> list[str]:
    body = await _json_body(request)
    if body is None:
        return []
    if isinstance(body.get("resources"), list):
        return [str(r) for r in body["resources"]]
    return [f"{body['prefix']}*"] if isinstance(body.get("prefix"), str) else []


async def _json_body(request: Request) -> dict[str, Any] | None:
    """A small JSON object body (its bytes are read once: the handler reuses them)."""
    length = request.headers.get("content-length", "")
    if request.method not in ("POST", "PUT", "PATCH") or \
            "json" not in request.headers.get("content-type", "") or \
            not length.isdigit() or int(length) > SUMMARY_MAX_BYTES:
        return None
    if JSON_BODY in request.scope:  # parsed by the input guard
        body = request.scope[JSON_BODY]
    else:
        try:
            body = await request.json()
        except ValueError:
            return None
    return body if isinstance(body, dict) else None


async def _body_summary(request: Request) -> dict[str, Any]:
    """A small JSON body's naming fields."""
    body = await _json_body(request)
    if body is None:
        return {}
    summary: dict[str, Any] = {k: _scalar(body[k]) for k in _SUMMARY_FIELDS if k in body}
    for key in ("events", "tasks"):
        if isinstance(body.get(key), list):
            summary["count"] = len(body[key])
    return summary


def _scalar(value: Any) -> Any:
    if value is None or isinstance(value, bool | int):
        return value
    return str(value)[:MAX_DETAIL]


async def recheck(request: Request) -> tokens.Principal:
    """The request's credential, looked up again: a long-lived request (an event stream,
    a long poll) calls this at least every AGENTOS_AUTH_CACHE_S and ends with 401 (or
    closes) once its credential was revoked, expired, or its user disabled."""
    resolver: tokens.Resolver = request.app.state.resolver
    cookie_ok = request.method in ("GET", "HEAD")
    return await resolver.resolve(bearer(request, cookie_ok), fresh=True)


def document(app: FastAPI) -> None:
    """Say in the OpenAPI schema what the rules say: bearer auth, and the role each
    operation needs (so /docs can "Authorize" once and call anything)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        schema.setdefault("components", {})["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer",
                       "description": "a login token (POST /api/v1/auth/login) or an API key"}}
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                rule = rule_for(method.upper(), path)
                if rule is None or rule.role is None:
                    operation["security"] = []
                else:
                    operation["security"] = [{"bearer": []}]
                    operation["description"] = (f"Needs the **{rule.role}** role.\n\n"
                                                + operation.get("description", ""))
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


async def _principal(request: Request) -> tokens.Principal:
    principal: tokens.Principal = request.state.principal
    return principal


PrincipalDep = Annotated[tokens.Principal, Depends(_principal)]
