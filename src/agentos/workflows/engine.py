"""The workflow engine: moves runs on, durably, in batches.

Every move of a run happens in one transaction that holds the run's row: a run's
start (``runs.start``), its cancel and rerun, and the engine's reaction to what its
steps wait for. That reaction is driven from the event log by a consumer
(``agentos.consumers``, named ``workflows``): the ``task.*`` end of a step's task,
an ``approval.*`` decision, the ``workflow.*`` end of a sub-run and any event a
``wait_event`` step waits for are applied in the transaction that moves the
consumer's cursor, so after a crash of any process nothing is applied twice and
nothing is skipped. A timer ends approvals and waits whose timeout passed.

A ``Batch`` gathers the runs one transaction touches (locked in id order), applies
results to their steps, lets ``plan`` decide the next moves and writes them all
at the end: one submit for every task of every run, one insert per table, the
events last.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from agentos import approvals, consumers, events, ids, queue, registry
from agentos.aio import stop_wakes, wait_wakeup
from agentos.errors import AgentOSError, NotFound, Unavailable
from agentos.events import Draft, Event
from agentos.lifecycle import Status as VersionStatus
from agentos.roles import Role
from agentos.store import Store
from agentos.store import approvals as store_approvals
from agentos.store import consumers as store_consumers
from agentos.store import workflows as store_workflows
from agentos.tasks import TaskIn
from agentos.workflows import definitions, expressions, plan, waits
from agentos.workflows import spec as spec_
from agentos.workflows.plan import RunFacts, StepState
from agentos.workflows.spec import Step, WorkflowSpec
from agentos.workflows.states import RunStatus, StepStatus, run_transition, step_transition

log = logging.getLogger("agentos.workflows")

CONSUMER = "workflows"
SOURCE = "workflows"

# retention keeps a running run's chain, and every event the engine has not read yet
# (a run may be waiting for it)
events.retain("workflows", lambda: store_workflows.events_needed(
    CONSUMER, [s.value for s in RunStatus if not s.final]))
MAX_DEPTH = 8  # sub-runs within sub-runs
TIMER_INTERVAL = 1.0  # seconds between looks for lapsed approvals and waits
TIMER_BATCH = 100
IDLE_READ_S = 1.0  # while no run is running, the follower reads the log this often at most
TASK_ENDS = frozenset({"task.succeeded", "task.failed", "task.cancelled"})
RUN_ENDS = frozenset({"workflow.succeeded", "workflow.failed", "workflow.cancelled"})
DECISIONS = frozenset({"approval.approved", "approval.rejected", "approval.expired"})


@dataclass
class Result:
    """Something a running step waited for happened."""

    run_id: str
    step: str
    outcome: StepStatus  # succeeded, failed or cancelled
    output: Any = None
    error: dict[str, Any] | None = None
    task_id: str | None = None  # one task (fan-out item) of the step ended
    item: int = 0
    round: int = 0
    approval_id: str | None = None
    sub_run_id: str | None = None
    wait: bool = False  # its wait_event matched, or timed out


@dataclass
class Run:
    """A run as one transaction sees and changes it."""

    id: str
    workflow: str
    version: str
    status: RunStatus
    input: Any
    priority: int
    correlation_id: str
    created_by: str
    spec: WorkflowSpec
    steps: dict[str, StepState]
    parent_run_id: str | None = None
    parent_step: str | None = None
    depth: int = 0
    idempotency_key: str | None = None
    output: Any = None
    error: dict[str, Any] | None = None
    finished_at: datetime | None = None
    new: bool = False  # made in this transaction
    dirty: bool = False
    dirty_steps: set[str] = field(default_factory=set)

    @property
    def facts(self) -> RunFacts:
        return RunFacts(self.id, self.workflow, self.version, self.correlation_id, self.input)

    def row(self) -> dict[str, Any]:
        return {"id": self.id, "workflow": self.workflow, "version": self.version,
                "status": self.status.value, "input": self.input, "output": self.output,
                "error": self.error, "priority": self.priority,
                "correlation_id": self.correlation_id,
                "idempotency_key": self.idempotency_key,
                "parent_run_id": self.parent_run_id, "parent_step": self.parent_step,
                "depth": self.depth, "created_by": self.created_by,
                "finished_at": self.finished_at}


_specs: weakref.WeakKeyDictionary[Store, dict[tuple[str, str], WorkflowSpec]] = \
    weakref.WeakKeyDictionary()


async def spec_of(store: Store, conn: AsyncConnection, name: str, version: str
                  ) -> WorkflowSpec:
    """A version's definition; runs use published versions only, which never change,
    so each is read once per process and store."""
    known = _specs.setdefault(store, {})
    found = known.get((name, version))
    if found is None:
        row = await store_workflows.version(conn, name, version)
        if row is None:
            raise NotFound(f"workflow {name} has no version {version}",
                           code="version_not_found")
        found = known[(name, version)] = definitions.parsed(name, version, row.definition)
    return found


class Batch:
    """The runs one write transaction moves, and what it will write (``flush``)."""

    def __init__(self, store: Store, conn: AsyncConnection, now: datetime) -> None:
        self.store = store
        self.conn = conn
        self.now = now
        self.runs: dict[str, Run] = {}
        self.drafts: list[Draft] = []
        self.transitions: list[dict[str, Any]] = []
        self.submits: list[tuple[TaskIn, dict[str, Any]]] = []  # task, its link
        self.link_updates: list[dict[str, Any]] = []
        self.approval_rows: list[dict[str, Any]] = []
        self.wait_rows: list[dict[str, Any]] = []
        self.cancel_tasks: list[str] = []
        self.cancel_approvals: list[str] = []
        self._horizon: int | None = None

    @classmethod
    async def open(cls, store: Store, conn: AsyncConnection, *, may_wait: bool = False
                   ) -> Batch:
        """A batch in ``conn``'s transaction. ``may_wait``: it may arm a wait for an
        event on runs it locks, so it holds the engine's consumer first (``hold``:
        before the runs, in the order a consumer's batch takes them)."""
        if may_wait:
            await store_consumers.hold(conn, CONSUMER)
        return cls(store, conn, await store_workflows.now(conn))

    # ------------------------------------------------------------ loading

    async def load(self, run_ids: set[str]) -> None:
        """Lock and read the runs not loaded yet."""
        wanted = run_ids - self.runs.keys()
        rows = await store_workflows.lock_runs(self.conn, wanted)
        if not rows:
            return
        step_rows = await store_workflows.steps_of(self.conn, [r.id for r in rows])
        by_run: dict[str, dict[str, StepState]] = {}
        for s in step_rows:
            by_run.setdefault(s.run_id, {})[s.step] = StepState.from_row(s)
        for r in rows:
            self.runs[r.id] = Run(
                r.id, r.workflow, r.version, RunStatus(r.status), r.input, r.priority,
                r.correlation_id, r.created_by,
                await spec_of(self.store, self.conn, r.workflow, r.version),
                by_run.get(r.id, {}), r.parent_run_id, r.parent_step, r.depth,
                r.idempotency_key, r.output, r.error, r.finished_at)

    def create(self, version: definitions.WorkflowVersion, input: Any, *, by: str,
               priority: int | None = None, correlation_id: str | None = None,
               idempotency_key: str | None = None, parent: Run | None = None,
               parent_step: str | None = None) -> Run:
        """A new run (written by ``flush``); ``advance`` starts its first steps."""
        spec = version.spec
        run_id = ids.uuid7()
        run = Run(run_id, version.name, version.version, RunStatus.RUNNING, input,
                  priority or (parent.priority if parent else spec.priority),
                  correlation_id or (parent.correlation_id if parent else run_id), by, spec,
                  {s.id: StepState(s.id, s.type, StepStatus.PENDING) for s in spec.steps},
                  parent.id if parent else None, parent_step,
                  parent.depth + 1 if parent else 0, idempotency_key, new=True)
        self.runs[run_id] = run
        self._transition(run, None, None, RunStatus.RUNNING.value, "started")
        self._event(run, "workflow.started", version=run.version,
                    parent_run_id=run.parent_run_id, parent_step=run.parent_step)
        return run

    # ------------------------------------------------------------ results

    async def apply(self, results: list[Result]) -> None:
        """Apply what the steps waited for, then move each run touched on."""
        await self.load({r.run_id for r in results})
        ended = [{"b_task_id": r.task_id, "b_status": r.outcome.value, "b_output": r.output,
                  "b_error": r.error} for r in results if r.task_id is not None]
        await store_workflows.update_links(self.conn, ended)
        touched: list[Run] = []
        for r in results:
            run = self.runs.get(r.run_id)
            state = run.steps.get(r.step) if run is not None else None
            if run is None or state is None or run.status is not RunStatus.RUNNING \
                    or state.status is not StepStatus.RUNNING:
                continue  # a late word for a step that moved on (cancelled, rerun)
            if r.task_id is not None:
                if r.round != state.round:
                    continue
                await self._task_ended(run, state, r)
            elif r.approval_id is not None:
                if r.approval_id == state.approval_id:
                    await self.end(run, state, r.outcome, r.output, r.error)
            elif r.sub_run_id is not None:
                if r.sub_run_id == state.sub_run_id:
                    await self.end(run, state, r.outcome, r.output, r.error)
            elif r.wait:
                await self.end(run, state, r.outcome, r.output, r.error)
            if run not in touched:
                touched.append(run)
        for run in touched:
            await self.advance(run)

    async def _task_ended(self, run: Run, state: StepState, r: Result) -> None:
        state.items_ended = (state.items_ended or 0) + 1
        if r.outcome is not StepStatus.SUCCEEDED:
            state.items_failed = (state.items_failed or 0) + 1
        run.dirty_steps.add(state.step)
        if state.items_total is None:  # one task: its end is the step's
            if r.outcome is StepStatus.SUCCEEDED:
                await self.end(run, state, StepStatus.SUCCEEDED, r.output)
            else:
                await self.end(run, state, StepStatus.FAILED,
                               error=_task_error(r, f"its task {r.task_id}"))
            return
        if r.outcome is not StepStatus.SUCCEEDED and state.error is None:
            state.error = _task_error(r, f"item {r.item} (task {r.task_id})")
        await self._fan_out(run, state)

    # ------------------------------------------------------------- moving on

    async def advance(self, run: Run) -> None:
        """Start, skip or fail what may now, then end the run if it is over."""
        while run.status is RunStatus.RUNNING:
            if plan.outcome(run.spec, run.steps) is RunStatus.FAILED:
                break  # a step failed: start nothing more
            moves = plan.moves(run.spec, run.steps, run.facts)
            if not moves:
                break
            for move in moves:
                state = run.steps[move.step]
                if move.action == "start":
                    if plan.outcome(run.spec, run.steps) is RunStatus.FAILED:
                        break  # one failed as it started: the run fails
                    await self.start(run, run.spec.step(move.step), state)
                else:  # skip or fail: ``moves`` set the status
                    run.dirty_steps.add(move.step)
                    state.finished_at = self.now
                    self._transition(run, move.step, StepStatus.PENDING.value,
                                     state.status.value, move.reason)
                    self._event(run, f"workflow.step.{state.status.value}", step=move.step,
                                reason=move.reason,
                                error=(move.error or {}).get("message"))
        if run.status is not RunStatus.RUNNING:
            return
        over = plan.outcome(run.spec, run.steps)
        if over is RunStatus.FAILED:
            failed = [s for s in run.steps.values() if s.status is StepStatus.FAILED]
            await self.finish(run, RunStatus.FAILED, error={
                "type": "step_failed", "step": failed[0].step,
                "message": f"step {failed[0].step} failed: "
                           f"{(failed[0].error or {}).get('message', 'no error recorded')}"})
        elif over is RunStatus.SUCCEEDED:
            try:
                output = plan.run_output(run.spec, run.steps, run.facts)
            except expressions.ExpressionError as exc:
                await self.finish(run, RunStatus.FAILED, error=plan.template_error("output", exc))
            else:
                await self.finish(run, RunStatus.SUCCEEDED, output=output)

    async def start(self, run: Run, step: Step, state: StepState) -> None:
        """Start a step: its first tasks, its approval, its wait or its sub-run."""
        target = step_transition(state.status, "start")
        assert target is not None
        state.status, state.started_at, state.finished_at = target, self.now, None
        run.dirty_steps.add(step.id)
        self._transition(run, step.id, StepStatus.PENDING.value, target.value, "started")
        self._event(run, "workflow.step.started", step=step.id, kind=step.type,
                    round=state.round)
        try:
            if step.type == "agent":
                await self._start_agent(run, step, state)
            elif step.type == "approval":
                self._start_approval(run, step, state)
            elif step.type == "wait_event":
                await self._start_wait(run, step, state)
            else:
                await self._start_sub_run(run, step, state)
        except expressions.ExpressionError as exc:
            await self.end(run, state, StepStatus.FAILED,
                           error=plan.template_error(step.id, exc))
        except AgentOSError as exc:
            await self.end(run, state, StepStatus.FAILED,
                           error={"type": exc.code, "message": exc.message})

    async def _start_agent(self, run: Run, step: Step, state: StepState) -> None:
        assert step.agent is not None
        await _runnable_agent(self.store, step.agent, step.version)
        items = plan.items_of(step, run.steps, run.facts)
        state.set_items(items)
        state.items_started, state.items_ended, state.items_failed = 0, 0, 0
        await self._fan_out(run, state)

    async def _fan_out(self, run: Run, state: StepState) -> None:
        """Submit the children there is room for, or end the step once it is over."""
        step = run.spec.step(state.step)
        total = 1 if state.items_total is None else state.items_total
        decision = plan.fan_out(total, state.items_started or 0, state.items_ended or 0,
                                state.items_failed or 0, step.max_parallel or max(total, 1),
                                bool(step.continue_on_error))
        if decision.done is StepStatus.FAILED:
            await self.end(run, state, StepStatus.FAILED,
                           error={**(state.error or {}), "message":
                                  f"{state.items_failed} of {total} items failed: "
                                  f"{(state.error or {}).get('message', '')}"})
            return
        if decision.done is StepStatus.SUCCEEDED:
            rows = await store_workflows.outputs_of(self.conn, run.id, state.step, state.round)
            outputs = [r.output if r.status == StepStatus.SUCCEEDED.value else None
                       for r in rows]
            await self.end(run, state, StepStatus.SUCCEEDED, outputs)
            return
        if not decision.start:
            return
        base = plan.scope(run.facts, run.steps)
        items = await self._items(run, state) if state.items_total is not None else None
        for item in decision.start:
            scope = base if items is None else {**base, "item": items[item]}
            rendered = expressions.render(step.input, scope) if step.input is not None \
                else ({} if items is None else {"item": items[item]})
            self._submit(run, step, state, item, rendered)
        state.items_started = decision.start.stop
        run.dirty_steps.add(state.step)

    async def _items(self, run: Run, state: StepState) -> list[Any]:
        """A fan-out's items: set in this transaction, else kept by this process for
        the step's round (they never change within it), else read once."""
        if state.items is None:
            key = (run.id, state.step, state.round)
            found = _ITEMS.get(key)
            if found is None:
                found = await store_workflows.items_of(self.conn, run.id, state.step) or []
            state.items = found
        _ITEMS[(run.id, state.step, state.round)] = state.items
        while len(_ITEMS) > ITEMS_KEPT:
            del _ITEMS[next(iter(_ITEMS))]
        return state.items

    def _submit(self, run: Run, step: Step, state: StepState, item: int,
                input: dict[str, Any]) -> None:
        retry = step.retry
        assert step.agent is not None  # an agent step names its agent (spec)
        task = TaskIn.model_construct(
            agent=step.agent, version=step.version, input=input,
            priority=step.priority or run.priority,
            max_retries=retry.max_retries if retry else None,
            timeout_s=retry.timeout_s if retry else None, run_at=None, idempotency_key=None,
            correlation_id=run.correlation_id, causation_id=run.id)
        self.submits.append((task, {"run_id": run.id, "step": step.id, "round": state.round,
                                    "item": item, "status": "running"}))

    def _start_approval(self, run: Run, step: Step, state: StepState) -> None:
        scope = plan.scope(run.facts, run.steps)
        title = expressions.render(step.title, scope) if step.title else \
            f"{run.workflow}: {step.id}"
        details = expressions.render(step.details, scope) if step.details else {}
        row, draft = approvals.row_of(approvals.Request(
            str(title)[:500], details if isinstance(details, dict) else {"details": details},
            Role(step.role or "operator"), step.timeout_s, step.on_timeout or "reject",
            run.correlation_id, run.id, step.id), self.now)
        self.approval_rows.append(row)
        self.drafts.append(draft)
        state.approval_id = row["id"]

    async def _start_wait(self, run: Run, step: Step, state: StepState) -> None:
        assert step.event is not None
        wanted = expressions.render(step.filter or {}, plan.scope(run.facts, run.steps))
        if self._horizon is None:
            # the wait matches events after the log's horizon; no batch of the engine's
            # consumer may read past that horizon before this wait is there to see:
            # hold the consumer to the end of this transaction, then read the horizon
            await store_consumers.hold(self.conn, CONSUMER)
            self._horizon = await self.store.events.horizon(self.conn)
        self.wait_rows.append({
            "run_id": run.id, "step": step.id, "event_glob": step.event, "filter": wanted,
            "after_seq": self._horizon,
            "expires_at": self.now + timedelta(seconds=step.timeout_s)
            if step.timeout_s else None})

    async def _start_sub_run(self, run: Run, step: Step, state: StepState) -> None:
        assert step.workflow is not None
        if run.depth + 1 > MAX_DEPTH:
            raise expressions.ExpressionError(f"sub-runs nest deeper than {MAX_DEPTH}")
        version = await definitions.runnable(self.conn, step.workflow, step.version)
        child_input = expressions.render(step.input or {}, plan.scope(run.facts, run.steps))
        problems = spec_.input_errors(version.spec.input_schema, child_input)
        if problems:
            raise expressions.ExpressionError(
                f"input of {step.workflow} {version.version}: {problems[0]['message']} at "
                f"{problems[0]['path']}")
        child = self.create(version, child_input, by=run.created_by, parent=run,
                            parent_step=step.id)
        state.sub_run_id = child.id
        await self.advance(child)
        if child.status.final:  # it ended at once (e.g. every step was skipped)
            await self.end(run, state, _STEP_OF_RUN[child.status], child.output, child.error)

    # ------------------------------------------------------------- endings

    async def end(self, run: Run, state: StepState, outcome: StepStatus, output: Any = None,
                  error: dict[str, Any] | None = None, reason: str = "") -> None:
        """End a running step; a failed or cancelled one takes its tasks, approval, wait
        or sub-run with it."""
        action = {StepStatus.SUCCEEDED: "succeed", StepStatus.FAILED: "fail",
                  StepStatus.CANCELLED: "cancel"}[outcome]
        target = step_transition(state.status, action)
        if target is None:
            return
        before = state.status
        state.status, state.finished_at = target, self.now
        state.output = output if target is StepStatus.SUCCEEDED else None
        state.error = error if target is not StepStatus.SUCCEEDED else None
        run.dirty_steps.add(state.step)
        why = reason or (error or {}).get("message") or target.value
        self._transition(run, state.step, before.value, target.value, why)
        self._event(run, f"workflow.step.{target.value}", step=state.step, round=state.round,
                    error=(error or {}).get("message"))
        if target is not StepStatus.SUCCEEDED:
            await self._stop_step(run, state)

    async def _stop_step(self, run: Run, state: StepState) -> None:
        if state.kind == "agent":
            key = (run.id, state.step, state.round)
            self.submits = [s for s in self.submits
                            if (s[1]["run_id"], s[1]["step"], s[1]["round"]) != key]
            self.cancel_tasks += await store_workflows.cancel_links(self.conn, run.id,
                                                                    state.step)
        elif state.kind == "approval" and state.approval_id:
            self.cancel_approvals.append(state.approval_id)
        elif state.kind == "wait_event":
            self.wait_rows = [w for w in self.wait_rows
                              if (w["run_id"], w["step"]) != (run.id, state.step)]
            await store_workflows.take_waits(self.conn, [(run.id, state.step)])
        elif state.kind == "workflow" and state.sub_run_id:
            await self.load({state.sub_run_id})
            child = self.runs.get(state.sub_run_id)
            if child is not None and child.status is RunStatus.RUNNING:
                await self.finish(child, RunStatus.CANCELLED,
                                  error={"type": "cancelled",
                                         "message": f"its parent run {run.id} stopped it"})

    async def finish(self, run: Run, status: RunStatus, output: Any = None,
                     error: dict[str, Any] | None = None) -> None:
        """End the run; a failed or cancelled one cancels its steps still running."""
        action = {RunStatus.SUCCEEDED: "succeed", RunStatus.FAILED: "fail",
                  RunStatus.CANCELLED: "cancel"}[status]
        run_transition(run.status, action, run.id)
        run.status, run.output, run.error, run.finished_at = status, output, error, self.now
        run.dirty = True
        self._transition(run, None, RunStatus.RUNNING.value, status.value,
                         (error or {}).get("message") or status.value)
        if status is not RunStatus.SUCCEEDED:
            for state in run.steps.values():
                if state.status is StepStatus.RUNNING:
                    await self.end(run, state, StepStatus.CANCELLED,
                                   reason=f"the run {status.value}")
        self._event(run, f"workflow.{status.value}", version=run.version,
                    parent_run_id=run.parent_run_id, parent_step=run.parent_step,
                    error=(error or {}).get("message"))

    # ------------------------------------------------------------- writing

    def _transition(self, run: Run, step: str | None, before: str | None, after: str,
                    reason: str) -> None:
        self.transitions.append({"run_id": run.id, "step": step, "from_status": before,
                                 "to_status": after, "reason": reason[:2000],
                                 "at": self.now})

    def _event(self, run: Run, type_: str, **payload: Any) -> None:
        body = {"run_id": run.id, "workflow": run.workflow,
                **{k: v for k, v in payload.items() if v is not None}}
        self.drafts.append(Draft(type_, SOURCE, body, correlation_id=run.correlation_id,
                                 causation_id=run.id, run_id=run.id))

    async def flush(self) -> None:
        """Write everything this batch decided; the events last."""
        conn = self.conn
        new = [r for r in self.runs.values() if r.new]
        if new:
            await store_workflows.insert_runs(conn, [r.row() for r in new])
        await store_workflows.insert_steps(conn, [
            {"run_id": r.id, "step": s.step, "kind": s.kind, **_step_values(s, new=True)}
            for r in new for s in r.steps.values()])
        await store_workflows.update_runs(conn, [
            {"b_id": r.id, "b_status": r.status.value, "b_output": r.output,
             "b_error": r.error, "b_finished_at": r.finished_at}
            for r in self.runs.values() if r.dirty and not r.new])
        await store_workflows.update_steps(conn, [
            {"b_run_id": r.id, "b_step": sid,
             **{f"b_{k}": v for k, v in _step_values(r.steps[sid]).items()}}
            for r in self.runs.values() if not r.new for sid in sorted(r.dirty_steps)])
        if self.submits:
            made = await queue.submit_in(self.store, conn, [t for t, _ in self.submits])
            await store_workflows.insert_links(conn, [
                {**link, "task_id": task.id}
                for (_, link), (task, _) in zip(self.submits, made, strict=True)])
        await store_approvals.insert_many(conn, self.approval_rows)
        await store_workflows.insert_waits(conn, self.wait_rows)
        await store_workflows.insert_transitions(conn, self.transitions)
        drafts: list[Any] = list(self.drafts)
        if self.cancel_tasks:
            drafts += await queue.cancel_in(self.store, conn, self.cancel_tasks)
        if self.cancel_approvals:
            drafts += approvals.cancelled_events(
                await store_approvals.cancel(conn, self.cancel_approvals))
        if drafts:
            await events.append_in(self.store, conn, drafts)
        if any(t["step"] is None and t["to_status"] == RunStatus.RUNNING.value
               for t in self.transitions):  # a run starts: an idle engine wakes
            await self.store.notify(conn, store_workflows.RUNS_CHANNEL)


# fan-outs' items by (run, step, round), newest last: read once, not each child's end
_ITEMS: dict[tuple[str, str, int], list[Any]] = {}
ITEMS_KEPT = 64

_STEP_OF_RUN = {RunStatus.SUCCEEDED: StepStatus.SUCCEEDED, RunStatus.FAILED: StepStatus.FAILED,
                RunStatus.CANCELLED: StepStatus.FAILED}


def _step_values(s: StepState, *, new: bool = False) -> dict[str, Any]:
    """A step's columns to write: ``items`` only where set (they may be long: each
    child's end of a fan-out rewrote them all)."""
    return {**({"items": s.items} if new or s.items_changed else {}),
            "status": s.status.value, "round": s.round,
            "items_started": s.items_started, "items_ended": s.items_ended,
            "items_failed": s.items_failed, "output": s.output, "error": s.error,
            "approval_id": s.approval_id, "sub_run_id": s.sub_run_id,
            "started_at": s.started_at, "finished_at": s.finished_at}


def _task_error(r: Result, what: str) -> dict[str, Any]:
    message = (r.error or {}).get("message") or f"the task was {r.outcome.value}"
    return {"type": "task_" + r.outcome.value, "task_id": r.task_id,
            "message": f"{what} {r.outcome.value}: {message}"}


async def _runnable_agent(store: Store, agent: str, version: str | None) -> None:
    """Refuse (as the step's failure) an agent the queue would not take."""
    if version is None:
        if await registry.latest_published(store, agent) is None:
            raise NotFound(f"agent {agent} has no published version", code="agent_not_runnable")
        return
    found = await registry.get(store, agent, version)
    if found.status is not VersionStatus.PUBLISHED:
        raise NotFound(f"agent {agent} {version} is {found.status.value}, not published",
                       code="agent_not_runnable")


# --------------------------------------------------------- the log's consumer


async def results_of(store: Store, conn: AsyncConnection, batch: list[Event]) -> list[Result]:
    """What a batch of the log means to running steps."""
    out: list[Result] = []
    task_ids = [e.payload["task_id"] for e in batch
                if e.type in TASK_ENDS and isinstance(e.payload.get("task_id"), str)]
    for row in await store_workflows.ended_links(conn, task_ids):
        out.append(Result(row.run_id, row.step, StepStatus(row.task_status), row.task_output,
                          row.task_error, row.task_id, row.item, row.round))
    decided = [e.payload["approval_id"] for e in batch
               if e.type in DECISIONS and e.payload.get("run_id")]
    for row in await store_approvals.of_ids(conn, decided):
        found = approvals.Approval.from_row(row)
        said = approvals.outcome(found)
        if said is None or found.run_id is None or found.step is None:
            continue
        if said["approved"] is None:  # expired, on_timeout: fail
            out.append(Result(found.run_id, found.step, StepStatus.FAILED,
                              error={"type": "approval_expired",
                                     "message": f"approval {found.id} expired"},
                              approval_id=found.id))
        else:
            out.append(Result(found.run_id, found.step, StepStatus.SUCCEEDED, said,
                              approval_id=found.id))
    children = [e.payload["run_id"] for e in batch
                if e.type in RUN_ENDS and e.payload.get("parent_run_id")]
    for child_id in children:
        child = await store_workflows.get_run(conn, child_id)
        if child is None or child.parent_run_id is None or child.parent_step is None:
            continue
        status = RunStatus(child.status)
        if not status.final:
            continue  # rerun since
        out.append(Result(child.parent_run_id, child.parent_step, _STEP_OF_RUN[status],
                          child.output,
                          child.error or ({"type": "sub_run_cancelled",
                                           "message": f"sub-run {child.id} was cancelled"}
                                          if status is RunStatus.CANCELLED else None),
                          sub_run_id=child.id))
    out += await _matched_waits(conn, batch)
    return out


async def _matched_waits(conn: AsyncConnection, batch: list[Event]) -> list[Result]:
    """The waits the batch's events end (``waits.first_matches``); only the waits whose
    glob may match a type in the batch are read."""
    by_type: dict[str, list[Event]] = {}
    for event in batch:
        by_type.setdefault(event.type, []).append(event)
    found = await store_workflows.waits_for(conn, by_type)
    if not found:
        return []
    matched = await waits.first_matches(found, by_type)
    taken = await store_workflows.take_waits(conn, list(matched))
    return [Result(run, step, StepStatus.SUCCEEDED, matched[(run, step)].to_dict(), wait=True)
            for run, step in matched if (run, step) in taken]


def consumer(store: Store) -> consumers.Consumer:
    """The engine's reader of the log (every event: a wait may match any)."""

    async def apply(conn: AsyncConnection, batch: list[Event]) -> bool:
        results = await results_of(store, conn, batch)
        if not results:
            return False  # most batches: the engine's own events, others' tasks
        await apply_isolated(store, conn, results)
        return True

    return consumers.Consumer(CONSUMER, ("*",), apply)


async def apply_isolated(store: Store, conn: AsyncConnection, results: list[Result]) -> None:
    """Apply ``results`` in one savepoint; if that fails other than for a busy or
    unavailable database (those fail the whole batch, which is tried again), apply
    each run's results in a savepoint of its own, and fail a run whose own results
    still fail (``engine_error``): one run's bad state or a bug it meets no longer
    holds back every other run's batch, again and again."""
    try:
        async with store_workflows.savepoint(conn):
            await _apply(store, conn, results)
        return
    except Exception as exc:
        if _transient(store, exc):
            raise
    by_run: dict[str, list[Result]] = {}
    for r in results:
        by_run.setdefault(r.run_id, []).append(r)
    for run_id, own in by_run.items():
        try:
            async with store_workflows.savepoint(conn):
                await _apply(store, conn, own)
            continue
        except Exception as exc:
            if _transient(store, exc):
                raise
            log.exception("workflow run %s: applying %d result(s) failed; failing the run",
                          run_id, len(own), extra={"action": "workflow_apply_failed",
                                                   "run_id": run_id})
            error = {"type": "engine_error",
                     "message": f"the engine could not apply a step's result: "
                                f"{type(exc).__name__}: {str(exc)[:500]}"}
        try:
            async with store_workflows.savepoint(conn):
                work = await Batch.open(store, conn)
                await work.load({run_id})
                run = work.runs.get(run_id)
                if run is not None and run.status is RunStatus.RUNNING:
                    await work.finish(run, RunStatus.FAILED, error=error)
                    await work.flush()
        except Exception as exc:
            if _transient(store, exc):
                raise
            log.exception("workflow run %s could not be failed either; left as it is",
                          run_id, extra={"action": "workflow_fail_failed", "run_id": run_id})


async def _apply(store: Store, conn: AsyncConnection, results: list[Result]) -> None:
    work = await Batch.open(store, conn)
    await work.apply(results)
    await work.flush()


def _transient(store: Store, exc: Exception) -> bool:
    """A busy, locked or unreachable database: the batch is to be tried again whole."""
    if isinstance(exc, store.driver_errors):
        exc = store.translate(exc)
    return isinstance(exc, Unavailable)


# ------------------------------------------------------------------- the timer


async def expire_waits(store: Store) -> int:
    """End the waits whose timeout passed: their steps fail."""
    async with store.write() as conn:
        await store_consumers.hold(conn, CONSUMER)  # before the waits a batch takes too
        lapsed = await store_workflows.lapsed_waits(conn, TIMER_BATCH)
        taken = await store_workflows.take_waits(conn, [(w.run_id, w.step) for w in lapsed])
        if not taken:
            store.nothing_changed(conn)
            return 0
        work = await Batch.open(store, conn)
        await work.apply([Result(run, step, StepStatus.FAILED, wait=True, error={
            "type": "timeout", "message": "no matching event came in time"})
            for run, step in sorted(taken)])
        await work.flush()
    return len(taken)


async def tick(store: Store) -> None:
    """One look for lapsed approvals and waits (a read first: most looks find none)."""
    async with store.read() as conn:
        if not await store_workflows.anything_due(conn):
            return
    await approvals.expire_due(store)
    await expire_waits(store)


async def run(store: Store, stop: asyncio.Event) -> None:
    """The engine in a server: the log's consumer and the timer, until ``stop``."""

    async def timer() -> None:
        while not stop.is_set():
            try:
                await tick(store)
            except Exception:
                log.exception("workflow timer failed", extra={"action": "workflow_timer_failed"})
            await wait_wakeup(stop, TIMER_INTERVAL)

    await asyncio.gather(follow(store, stop), timer())


async def idle(store: Store) -> bool:
    """Whether no run is running: then no event can move a run on (a start or a rerun
    makes its run running before it appends its own events, whose wake-up finds it)."""
    return not await store_workflows.any_running_now(store, RunStatus.RUNNING.value)


async def pass_over(store: Store) -> bool | None:
    """Move the engine's cursor to the log's horizon without reading the events, if
    nothing could come of them: no run is running, no step's task is running and no
    wait is armed (a batch would only move the cursor then). True: the cursor is at
    the horizon; False: something is under way (read the events); None: another
    process holds the cursor. Whatever an event up to the horizon may end or match was
    there before it committed, so before the horizon was read; a start arming a wait
    holds the cursor (``Batch.open``) until its wait is there to see."""
    async with store.write() as conn:
        store.nothing_changed(conn)
        claimed = await store_consumers.claim_batch(conn, CONSUMER)
        if claimed is None:
            return None
        cursor, settled = claimed
        if cursor >= settled:
            return True
        if await store_workflows.busy(conn, RunStatus.RUNNING.value):
            return False
        await store_consumers.relax_durability(conn)
        await store_consumers.advance(conn, CONSUMER, settled, 0)
    return True


async def follow(store: Store, stop: asyncio.Event) -> None:
    """The engine's consumer following the log (``consumers.run``, but cheaper while
    ``idle``). A batch is a dozen statements and reads every event, even one nothing
    waits on. While no run is running nothing an event says can move a run, so the
    follower waits for a run to start (``RUNS_CHANNEL``, notified by a start's or a
    rerun's commit here or, by NOTIFY, in another process) or for the poll interval,
    not for every append: appends wake nothing then, where each cost a server's loop
    a turn and a read. At most every ``IDLE_READ_S`` the cursor passes over what was
    appended meanwhile without reading it (``pass_over``), or, if a task, a wait or a
    run is still under way, a batch reads it. The cursor never passes an event that
    could move anything, so nothing is skipped. A backlog is read through without a
    pause (the batch after one that applied events runs at once), and while a run is
    running every append's wake-up runs a batch."""
    reader = consumer(store)
    started = store.wakeup(store_workflows.RUNS_CHANNEL)
    read_at = -IDLE_READ_S  # monotonic time of the last batch or pass
    behind = False  # the last batch applied events: more may be waiting

    async def turn(pace: consumers.Pace) -> tuple[bool, float | None]:
        nonlocal read_at, behind
        if behind:
            behind = bool(await consumers.step(store, reader, pace))
            return behind, None
        due = read_at + IDLE_READ_S - time.monotonic()
        passed: bool | None = False
        if due > 0:
            started.clear()  # before the read: a start committing after it sets it
            if await idle(store):
                await wait_wakeup(started, min(store.poll_interval, due))
                return True, None  # look again: a run started, a poll or the pass is due
        elif not await store_consumers.news(store, CONSUMER):
            read_at = time.monotonic()  # nothing appended since: nothing to pass over
            return True, None
        else:
            passed = await pass_over(store)
        if passed is False:
            behind = bool(await consumers.step(store, reader, pace))
        read_at = time.monotonic()
        # passed over, nothing under way: wait for a start (above), not for an append
        return behind or passed is True, None

    try:
        async with stop_wakes(stop, started):
            await consumers.run(store, reader, stop, turn)
    finally:
        store.forget_wakeup(store_workflows.RUNS_CHANNEL, started)
