"""What a run does next, decided from its state alone (pure; ``engine`` applies it).

``moves`` walks the steps in dependency order: a pending step whose needs have all
succeeded starts (or is skipped when its ``when`` is false, or fails when a template
of it fails); one that needs a skipped step is skipped too. ``outcome`` says whether
the run is over. ``fan_out`` says which children of an agent step to submit next and
whether the step is over.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from agentos.workflows import expressions
from agentos.workflows.spec import Step, WorkflowSpec
from agentos.workflows.states import RunStatus, StepStatus

MAX_ITEMS = 10_000  # children of one for_each


@dataclass
class StepState:
    """One step of one run, as stored."""

    step: str
    kind: str
    status: StepStatus
    round: int = 1
    items: list[Any] | None = None  # read only when needed (``items_total``: how many)
    items_started: int | None = None
    items_ended: int | None = None
    items_failed: int | None = None
    output: Any = None
    error: dict[str, Any] | None = None
    approval_id: str | None = None
    sub_run_id: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    items_total: int | None = None  # a fan-out's item count; None: the step is none
    items_changed: bool = False  # ``items`` set or cleared in this transaction

    @classmethod
    def from_row(cls, r: Any) -> StepState:
        return cls(r.step, r.kind, StepStatus(r.status), r.round, None, r.items_started,
                   r.items_ended, r.items_failed, r.output, r.error, r.approval_id,
                   r.sub_run_id, r.started_at, r.finished_at, r.items_total)

    def set_items(self, items: list[Any] | None) -> None:
        if items is None and self.items_total is None:
            return  # no fan-out, as before: nothing to write
        self.items, self.items_changed = items, True
        self.items_total = None if items is None else len(items)


@dataclass(frozen=True)
class RunFacts:
    """What templates see of the run itself (``run``)."""

    id: str
    workflow: str
    version: str
    correlation_id: str
    input: Any

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "workflow": self.workflow, "version": self.version,
                "correlation_id": self.correlation_id}


def scope(run: RunFacts, steps: dict[str, StepState], **more: Any) -> dict[str, Any]:
    """The names templates see: ``input``, ``steps.<id>.output`` (and ``.status``),
    ``run``, and ``item`` when given."""
    return {"input": run.input, "run": run.to_dict(),
            "steps": {sid: {"output": s.output, "status": s.status.value}
                      for sid, s in steps.items()}, **more}


@dataclass(frozen=True)
class Move:
    """One decision: ``start``, ``skip`` or ``fail`` a step, saying why."""

    action: str
    step: str
    reason: str = ""
    error: dict[str, Any] | None = None


def moves(spec: WorkflowSpec, steps: dict[str, StepState], facts: RunFacts) -> list[Move]:
    """The steps to start, skip or fail now, in dependency order. ``steps`` is updated
    for skips and failures (so later steps see them), not for starts."""
    out: list[Move] = []
    for sid in spec.order():
        state = steps[sid]
        if state.status is not StepStatus.PENDING:
            continue
        step = spec.step(sid)
        needs = [steps[d] for d in step.depends_on]
        if any(n.status in (StepStatus.FAILED, StepStatus.CANCELLED) for n in needs):
            continue  # the run fails (or was cancelled): this one waits for a rerun
        if any(not n.status.final for n in needs):
            continue
        skipped = [n.step for n in needs if n.status is StepStatus.SKIPPED]
        if skipped:
            move = Move("skip", sid, f"needs {', '.join(skipped)}, which was skipped")
        else:
            move = _condition(step, steps, facts)
        if move.action == "skip":
            state.status = StepStatus.SKIPPED
        elif move.action == "fail":
            state.status = StepStatus.FAILED
            state.error = move.error
        out.append(move)
    return out


def _condition(step: Step, steps: dict[str, StepState], facts: RunFacts) -> Move:
    if step.when is None or step.when is True:
        return Move("start", step.id)
    if step.when is False:
        return Move("skip", step.id, "when is false")
    try:
        value = expressions.evaluate(step.when, scope(facts, steps))
    except expressions.ExpressionError as exc:
        return Move("fail", step.id, "when failed", template_error("when", exc))
    if _truthy(value):
        return Move("start", step.id)
    return Move("skip", step.id, f"when is {value!r}")


def _truthy(value: Any) -> bool:
    # a template that renders to text: "false", "0", "" and "none" are false too
    if isinstance(value, str):
        return value.strip().lower() not in ("", "false", "0", "no", "none", "null")
    return bool(value)


def template_error(where: str, exc: Exception) -> dict[str, Any]:
    return {"type": "template", "message": f"{where}: {exc}"}


def outcome(spec: WorkflowSpec, steps: dict[str, StepState]) -> RunStatus | None:
    """Whether the run is over: failed once a step failed, succeeded once every step
    succeeded or was skipped; None while it goes on."""
    statuses = {s.status for s in steps.values()}
    if StepStatus.FAILED in statuses:
        return RunStatus.FAILED
    if statuses <= {StepStatus.SUCCEEDED, StepStatus.SKIPPED}:
        return RunStatus.SUCCEEDED
    return None


def run_output(spec: WorkflowSpec, steps: dict[str, StepState], facts: RunFacts) -> Any:
    """The run's output: the definition's ``output`` template, else the outputs of the
    steps nothing depends on, by id."""
    if spec.output is not None:
        return expressions.render(spec.output, scope(facts, steps))
    return {sid: steps[sid].output for sid in spec.leaves()}


def items_of(step: Step, steps: dict[str, StepState], facts: RunFacts) -> list[Any] | None:
    """A ``for_each`` step's items (``ExpressionError`` when they are no list)."""
    if step.for_each is None:
        return None
    items = expressions.render(step.for_each, scope(facts, steps))
    if not isinstance(items, list):
        raise expressions.ExpressionError(
            f"for_each gave {type(items).__name__}, not a list")
    if len(items) > MAX_ITEMS:
        raise expressions.ExpressionError(
            f"for_each gave {len(items)} items; at most {MAX_ITEMS}")
    return items


@dataclass
class FanOut:
    """What to do with an agent step's children now."""

    start: range = field(default_factory=lambda: range(0))
    done: StepStatus | None = None  # the step's end, once decided


def fan_out(total: int, started: int, ended: int, failed: int, max_parallel: int,
            continue_on_error: bool) -> FanOut:
    """Submit children while fewer than ``max_parallel`` run; the step fails at its first
    failed child (unless ``continue_on_error``) and succeeds once all have ended."""
    if failed and not continue_on_error:
        return FanOut(done=StepStatus.FAILED)
    if ended >= total:
        return FanOut(done=StepStatus.SUCCEEDED)
    room = max(0, max_parallel - (started - ended))
    return FanOut(start=range(started, min(total, started + room)))
