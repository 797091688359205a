"""Workflow runs (SPEC §2.8): start, cancel, rerun from a failed step, read, explain.

Each is one transaction through the engine's ``Batch``: a start writes the run,
its steps and its first tasks (or approval, wait, sub-run) together; a cancel
ends the run and cancels its running tasks, approvals, waits and sub-runs; a
rerun resets the named failed step, what comes after it and what was cancelled,
keeping the other steps' outputs, and starts again from there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agentos import audit, events
from agentos.errors import Conflict, InvalidInput, NotFound, ValidationFailed
from agentos.explain import task as task_explain
from agentos.store import Store
from agentos.store import approvals as store_approvals
from agentos.store import workflows as store_workflows
from agentos.workflows import definitions, engine
from agentos.workflows import spec as spec_
from agentos.workflows.spec import ancestors
from agentos.workflows.states import RunStatus, StepStatus, run_transition, step_transition

MAX_PAGE = 500
TASKS_SHOWN = 20  # tasks of each step in a run's detail (step_tasks pages the rest)
TRANSITIONS_SHOWN = 500  # the latest transitions in a run's detail
MAX_INPUT_BYTES = 1024 * 1024


@dataclass(frozen=True)
class StartIn:
    workflow: str
    version: str | None = None
    input: Any = None
    idempotency_key: str | None = None
    correlation_id: str | None = None
    priority: int | None = None


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def summary(row: Any) -> dict[str, Any]:
    return {"id": row.id, "workflow": row.workflow, "version": row.version,
            "status": row.status, "input": row.input, "output": row.output,
            "error": row.error, "priority": row.priority,
            "correlation_id": row.correlation_id, "idempotency_key": row.idempotency_key,
            "parent_run_id": row.parent_run_id, "parent_step": row.parent_step,
            "created_by": row.created_by, "created_at": _iso(row.created_at),
            "updated_at": _iso(row.updated_at), "finished_at": _iso(row.finished_at)}


# ---------------------------------------------------------------------- start


async def start(store: Store, req: StartIn, *, by: str, detail: bool = True
                ) -> tuple[dict[str, Any], bool]:
    """Start a run; returns it (``detail``: with its steps, tasks and transitions, read
    again; else its id, workflow, version and status) and whether it is new (an
    ``idempotency_key`` used before for the same request returns that run; for
    another, 409)."""
    size = len(events.dump_json(req.input).encode())
    if size > MAX_INPUT_BYTES:
        raise InvalidInput(f"the input is {size} bytes; at most {MAX_INPUT_BYTES}",
                           code="input_too_large")
    async with store.read() as conn:
        version = await definitions.runnable(conn, req.workflow, req.version)
    problems = spec_.input_errors(version.spec.input_schema, req.input)
    if problems:
        first = problems[0]
        raise ValidationFailed(f"invalid input: {first['message']} at {first['path']}"
                               + (f" and {len(problems) - 1} more" if len(problems) > 1
                                  else ""), code="invalid_run_input",
                               details={"errors": problems})
    async with store.write() as conn:
        if req.idempotency_key is not None:
            earlier = await store_workflows.run_by_key(conn, req.idempotency_key)
            if earlier is not None:
                _same_request(earlier, req, version.version)
                store.nothing_changed(conn)
                return await get(store, earlier.id), False
        work = await engine.Batch.open(store, conn)
        run = work.create(version, req.input, by=by, priority=req.priority,
                          correlation_id=req.correlation_id,
                          idempotency_key=req.idempotency_key)
        entry = audit.pending()
        if entry is not None:
            entry.resource_id = run.id
        await work.advance(run)
        await work.flush()
    if not detail:
        return {"id": run.id, "workflow": run.workflow, "version": run.version,
                "status": run.status.value}, True
    return await get(store, run.id), True


def _same_request(earlier: Any, req: StartIn, version: str) -> None:
    differ = [name for name, mine, theirs in (
        ("workflow", req.workflow, earlier.workflow),
        ("version", req.version or version, earlier.version),
        ("input", req.input, earlier.input),
        ("priority", req.priority, earlier.priority),
        ("correlation_id", req.correlation_id, earlier.correlation_id))
        if mine is not None and mine != theirs]
    if differ:
        raise Conflict(f"idempotency key {req.idempotency_key!r} was used for another run "
                       f"({', '.join(differ)} differ)", code="idempotency_conflict",
                       details={"run_id": earlier.id, "fields": differ})


# ----------------------------------------------------------- cancel and rerun


async def cancel(store: Store, run_id: str) -> dict[str, Any]:
    """Cancel a running run: its running steps' tasks, approvals, waits and sub-runs
    with it. A run that has ended gets 409."""
    async with store.write() as conn:
        work = await engine.Batch.open(store, conn)
        run = await _locked(work, run_id)
        run_transition(run.status, "cancel", run_id)
        await work.finish(run, RunStatus.CANCELLED,
                          error={"type": "cancelled", "message": "cancelled on request"})
        await work.flush()
    return await get(store, run_id)


async def rerun(store: Store, run_id: str, step: str) -> dict[str, Any]:
    """Run a failed run again from its failed step ``step``: that step, every step
    after it and every cancelled one start over; the others keep their outputs."""
    async with store.write() as conn:
        work = await engine.Batch.open(store, conn, may_wait=True)
        run = await _locked(work, run_id)
        run_transition(run.status, "rerun", run_id)
        state = run.steps.get(step)
        if state is None:
            raise NotFound(f"run {run_id} has no step {step!r}", code="step_not_found",
                           details={"run_id": run_id, "step": step})
        if state.status is not StepStatus.FAILED:
            raise Conflict(f"cannot rerun run {run_id} from {step}: that step is "
                           f"{state.status.value}, not failed", code="step_not_failed",
                           details={"run_id": run_id, "step": step,
                                    "status": state.status.value})
        graph = {s.id: s.depends_on for s in run.spec.steps}
        later = {sid for sid in graph if step in ancestors(graph, sid)}
        for sid, current in run.steps.items():
            if sid == step or sid in later or current.status in (
                    StepStatus.FAILED, StepStatus.CANCELLED):
                target = step_transition(current.status, "reset")
                if target is None:
                    continue
                work._transition(run, sid, current.status.value, target.value,
                                 f"rerun from {step}")
                current.status, current.round = target, current.round + 1
                current.set_items(None)
                current.items_started = current.items_ended = None
                current.items_failed = current.output = current.error = None
                current.approval_id = current.sub_run_id = None
                current.started_at = current.finished_at = None
                run.dirty_steps.add(sid)
        before = run.status
        run.status, run.output, run.error, run.finished_at = RunStatus.RUNNING, None, None, None
        run.dirty = True
        work._transition(run, None, before.value, run.status.value, f"rerun from {step}")
        work._event(run, "workflow.started", version=run.version, rerun_from=step)
        await work.advance(run)
        await work.flush()
    return await get(store, run_id)


async def _locked(work: engine.Batch, run_id: str) -> engine.Run:
    await work.load({run_id})
    run = work.runs.get(run_id)
    if run is None:
        raise NotFound(f"no workflow run {run_id}", code="run_not_found")
    return run


# ---------------------------------------------------------------------- reads


async def get(store: Store, run_id: str, *, tasks_shown: int = TASKS_SHOWN
              ) -> dict[str, Any]:
    """A run with every step's state, the first ``tasks_shown`` of each step's tasks
    with their attempts (``tasks_total`` counts them all; ``tasks_next``, when there
    are more, is the cursor for ``step_tasks``), and its latest ``TRANSITIONS_SHOWN``
    transitions (``transitions_more`` says there were earlier ones): bounded however
    many children a fan-out has, for a page that polls it."""
    async with store.read() as conn:
        row = await store_workflows.get_run(conn, run_id)
        if row is None:
            raise NotFound(f"no workflow run {run_id}", code="run_not_found")
        step_rows = await store_workflows.steps_of(conn, [run_id])
        links = await store_workflows.links_shown(conn, run_id, tasks_shown)
        counts = await store_workflows.link_counts(conn, run_id)
        attempts = await store_workflows.attempts_of(conn, [x.task_id for x in links])
        moves = await store_workflows.transitions_of(conn, run_id, TRANSITIONS_SHOWN + 1)
        spec = await engine.spec_of(store, conn, row.workflow, row.version)
    tasks_of = _step_tasks(links, attempts)
    states = {s.step: s for s in step_rows}
    steps = []
    for step in spec.steps:
        s = states[step.id]
        shown = tasks_of.get(step.id, [])
        total = counts.get(step.id, 0)
        steps.append({
            "id": step.id, "type": step.type, "status": s.status, "round": s.round,
            "depends_on": step.depends_on, "agent": step.agent, "workflow": step.workflow,
            "output": s.output, "error": s.error,
            "items": None if s.items_total is None else {
                "total": s.items_total, "started": s.items_started, "ended": s.items_ended,
                "failed": s.items_failed},
            "approval_id": s.approval_id, "sub_run_id": s.sub_run_id,
            "started_at": _iso(s.started_at), "finished_at": _iso(s.finished_at),
            "tasks": shown, "tasks_total": total,
            "tasks_next": _cursor(shown[-1]) if shown and total > len(shown) else None})
    return {**summary(row), "steps": steps,
            "transitions": [_move(m) for m in moves[-TRANSITIONS_SHOWN:]],
            "transitions_more": len(moves) > TRANSITIONS_SHOWN}


def _move(m: Any) -> dict[str, Any]:
    return {"step": m.step, "from": m.from_status, "to": m.to_status, "at": _iso(m.at),
            "reason": m.reason}


async def transitions(store: Store, run_id: str, *, after: str | None = None,
                      limit: int = MAX_PAGE) -> tuple[list[dict[str, Any]], str | None]:
    """A run's whole transition history, oldest first, a page at a time: the
    transitions after the cursor ``after`` (the previous page's ``next_after``)."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}", code="bad_limit")
    if after is not None and not (after.isdigit() and len(after) <= 18):
        raise InvalidInput(f"after must be a cursor a page gave, not {after!r}",
                           code="bad_cursor")
    async with store.read() as conn:
        if await store_workflows.get_run(conn, run_id) is None:
            raise NotFound(f"no workflow run {run_id}", code="run_not_found")
        moves = await store_workflows.transitions_page(
            conn, run_id, int(after) if after is not None else None, limit + 1)
    return ([_move(m) for m in moves[:limit]],
            str(moves[limit - 1].id) if len(moves) > limit else None)


async def step_tasks(store: Store, run_id: str, step: str, *, after: str | None = None,
                     limit: int = 100) -> tuple[list[dict[str, Any]], str | None]:
    """One step's tasks (round, then item order) with their attempts, after the cursor
    ``after`` (a step's ``tasks_next``, or the previous page's ``next_after``)."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}", code="bad_limit")
    position = _position(after) if after is not None else None
    async with store.read() as conn:
        row = await store_workflows.get_run(conn, run_id)
        if row is None:
            raise NotFound(f"no workflow run {run_id}", code="run_not_found")
        spec = await engine.spec_of(store, conn, row.workflow, row.version)
        if step not in {s.id for s in spec.steps}:
            raise NotFound(f"run {run_id} has no step {step!r}", code="step_not_found",
                           details={"run_id": run_id, "step": step})
        links = await store_workflows.links_page(conn, run_id, step, position, limit + 1)
        attempts = await store_workflows.attempts_of(conn, [x.task_id for x in links[:limit]])
    found = _step_tasks(links[:limit], attempts).get(step, [])
    return found, (_cursor(found[-1]) if len(links) > limit else None)


def _cursor(task: dict[str, Any]) -> str:
    return f"{task['round']}:{task['item']}"


def _position(cursor: str) -> tuple[int, int]:
    parts = cursor.split(":")
    if len(parts) != 2 or not all(p.isdigit() and len(p) <= 9 for p in parts):
        raise InvalidInput(f"after must be ROUND:ITEM as a page gave it, not {cursor!r}",
                           code="bad_cursor")
    return int(parts[0]), int(parts[1])


def _step_tasks(links: list[Any], attempts: list[Any]) -> dict[str, list[dict[str, Any]]]:
    """Links by step, each with its task's attempts."""
    by_task: dict[str, list[dict[str, Any]]] = {}
    for a in attempts:
        by_task.setdefault(a.task_id, []).append({
            "number": a.number, "worker_id": a.worker_id, "outcome": a.outcome,
            "started_at": _iso(a.started_at), "ended_at": _iso(a.ended_at),
            "duration_ms": a.duration_ms, "error": a.error})
    tasks_of: dict[str, list[dict[str, Any]]] = {}
    for x in links:
        tasks_of.setdefault(x.step, []).append({
            "task_id": x.task_id, "round": x.round, "item": x.item, "status": x.status,
            "task_status": x.task_status, "agent": x.agent, "attempt": x.attempt,
            "output": x.output, "error": x.error, "attempts": by_task.get(x.task_id, [])})
    return tasks_of


async def page(store: Store, *, workflow: str | None = None, status: RunStatus | None = None,
               since: datetime | None = None, until: datetime | None = None,
               before: str | None = None, limit: int = 100
               ) -> tuple[list[dict[str, Any]], str | None]:
    """Runs newest first; ``before``: the previous page's ``next_before``."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}", code="bad_limit")
    async with store.read() as conn:
        rows = await store_workflows.page_runs(
            conn, workflow=workflow, status=status.value if status else None, since=since,
            until=until, before=before, limit=limit + 1)
    found = [summary(r) for r in rows[:limit]]
    return found, (found[-1]["id"] if len(rows) > limit else None)


async def explain(store: Store, run_id: str) -> dict[str, Any]:
    """What the run waits for now: each running step's tasks (with each task's own
    explanation), approval and who may give it, awaited event, or sub-run."""
    run = await get(store, run_id)
    if run["status"] != RunStatus.RUNNING.value:
        return {"run_id": run_id, "status": run["status"], "waiting": [],
                "summary": f"the run {run['status']}"
                           + (f": {run['error']['message']}" if run.get("error") else "")}
    waiting: list[dict[str, Any]] = []
    async with store.read() as conn:
        waits = {w.step: w for w in await store_workflows.waits_of(conn, run_id)}
        approvals = {a.id: a for a in await store_approvals.of_ids(
            conn, [s["approval_id"] for s in run["steps"] if s["approval_id"]])}
    for step in run["steps"]:
        if step["status"] != StepStatus.RUNNING.value:
            continue
        entry: dict[str, Any] = {"step": step["id"], "type": step["type"]}
        if step["type"] == "agent":
            async with store.read() as conn:
                open_tasks = await store_workflows.links_page(
                    conn, run_id, step["id"], (step["round"], -1), 20, running=True)
            entry["tasks"] = [{"task_id": t.task_id, "item": t.item,
                               "explain": await _task_explain(store, t.task_id)}
                              for t in open_tasks if t.round == step["round"]]
            held = next((x for x in entry["tasks"] if x["explain"]["gate"]), None)
            still = (step["items"]["started"] or 0) - (step["items"]["ended"] or 0) \
                if step["items"] else len(entry["tasks"])
            entry["summary"] = (f"{still} task(s) of agent {step['agent']} not "
                                "ended" + (f"; task {held['task_id']}: {held['explain']['why']}"
                                           if held else ""))
            if step["items"]:
                entry["items"] = step["items"]
        elif step["type"] == "approval":
            a = approvals.get(step["approval_id"])
            entry["approval"] = {"id": step["approval_id"], "role": a.role if a else None,
                                 "expires_at": _iso(a.expires_at) if a else None,
                                 "title": a.title if a else None}
            entry["summary"] = (f"approval {step['approval_id']} by a user with the "
                                f"{a.role if a else '?'} role or higher")
        elif step["type"] == "wait_event":
            w = waits.get(step["id"])
            entry["event"] = {"type": w.event_glob, "filter": w.filter,
                              "after_seq": w.after_seq,
                              "expires_at": _iso(w.expires_at)} if w else None
            entry["summary"] = (f"an event of type {w.event_glob} matching {w.filter}"
                                if w else "an event")
        else:
            entry["sub_run"] = step["sub_run_id"]
            entry["summary"] = f"sub-run {step['sub_run_id']}"
        waiting.append(entry)
    pending = [s["id"] for s in run["steps"] if s["status"] == StepStatus.PENDING.value]
    return {"run_id": run_id, "status": run["status"], "waiting": waiting,
            "pending_steps": pending,
            "summary": "; ".join(f"{w['step']}: {w['summary']}" for w in waiting)
            or "moving on (the engine has not applied the latest events yet)"}



async def _task_explain(store: Store, task_id: str) -> dict[str, Any]:
    """Where one of the step's tasks stands and the gate that holds it (the task's own
    explanation: ``explain.task``)."""
    found = await task_explain.explain(store, task_id)
    return {"status": found["status"], "attempt": found["attempt"], "gate": found["gate"],
            "until": found["until"], "why": found["summary"]}
