"""The states of a run and of its steps, and the legal moves between them (pure).

    run:   running ──▶ succeeded          (every step succeeded or was skipped)
              │  └───▶ failed ──rerun──▶ running
              └──────▶ cancelled

    step:  pending ──start──▶ running ──▶ succeeded | failed | cancelled
              │  └──skip──▶ skipped
              └──cancel──▶ cancelled
           (a rerun resets failed, cancelled and the later steps to pending)
"""

from __future__ import annotations

from enum import StrEnum

from agentos.errors import Conflict


class RunStatus(StrEnum):
    RUNNING = "running"  # start, or rerun of a failed run
    SUCCEEDED = "succeeded"  # succeed: every step succeeded or was skipped
    FAILED = "failed"  # fail: a step failed (the others running were cancelled)
    CANCELLED = "cancelled"  # cancel

    @property
    def final(self) -> bool:
        return self is not RunStatus.RUNNING


class StepStatus(StrEnum):
    PENDING = "pending"  # created with the run, or reset by a rerun
    RUNNING = "running"  # start: its tasks, approval, wait or sub-run are under way
    SUCCEEDED = "succeeded"  # succeed: its output is kept
    FAILED = "failed"  # fail: a task, a template, a timeout or a sub-run failed
    SKIPPED = "skipped"  # skip: its condition was false, or a step it needs was skipped
    CANCELLED = "cancelled"  # cancel: the run was cancelled, or failed while it ran

    @property
    def final(self) -> bool:
        return self not in (StepStatus.PENDING, StepStatus.RUNNING)


# action -> (states it may start from, the state it leads to)
RUN_TRANSITIONS: dict[str, tuple[frozenset[RunStatus], RunStatus]] = {
    "succeed": (frozenset({RunStatus.RUNNING}), RunStatus.SUCCEEDED),
    "fail": (frozenset({RunStatus.RUNNING}), RunStatus.FAILED),
    "cancel": (frozenset({RunStatus.RUNNING}), RunStatus.CANCELLED),
    "rerun": (frozenset({RunStatus.FAILED}), RunStatus.RUNNING),
}

STEP_TRANSITIONS: dict[str, tuple[frozenset[StepStatus], StepStatus]] = {
    "start": (frozenset({StepStatus.PENDING}), StepStatus.RUNNING),
    "skip": (frozenset({StepStatus.PENDING}), StepStatus.SKIPPED),
    "succeed": (frozenset({StepStatus.RUNNING}), StepStatus.SUCCEEDED),
    "fail": (frozenset({StepStatus.PENDING, StepStatus.RUNNING}), StepStatus.FAILED),
    "cancel": (frozenset({StepStatus.RUNNING}), StepStatus.CANCELLED),
    "reset": (frozenset({StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.SKIPPED,
                         StepStatus.CANCELLED}), StepStatus.PENDING),
}


def run_transition(current: RunStatus, action: str, run_id: str) -> RunStatus:
    """The run's status after ``action``, or ``Conflict`` when it is not allowed."""
    sources, target = RUN_TRANSITIONS[action]
    if current not in sources:
        allowed = " or ".join(sorted(s.value for s in sources))
        raise Conflict(f"cannot {action} run {run_id}: it is {current.value}, and only a "
                       f"{allowed} run can be", code="invalid_transition",
                       details={"run_id": run_id, "status": current.value, "action": action})
    return target


def step_transition(current: StepStatus, action: str) -> StepStatus | None:
    """The step's status after ``action``, or None when it does not apply (the engine
    then leaves the step as it is: a late result for a step that moved on)."""
    sources, target = STEP_TRANSITIONS[action]
    return target if current in sources else None
