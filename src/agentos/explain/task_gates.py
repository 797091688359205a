"""The built-in gates of a task's explanation: pure decisions over ``gates.Facts``.

    status     gate            holds it when
    ended      ended           (never: why it ended, and who cancelled it)
    running    running         (never: where it runs, its lease)
               lease           its lease lapsed: its worker stopped heartbeating
               cancelling      a cancel was asked for and the handler has not stopped
               approval        its handler waits for a person's approval (ctx.approval)
               sub_task        its handler waits for a sub-agent's task (ctx.call)
    waiting    version_gone    its agent version no longer exists: nothing will claim it
               budget          a spent hard budget holds its agent until the period rolls
               capability      the capability it needs is switched off (another one
                               off: never, only triggers naming that one stop routing)
               resource        a resource it needs is held by someone else
               not_due         scheduled: run_at, a retry's backoff, a lock's retry time, or
                               a spent model or global budget's recheck (it holds no agent)
               no_worker       no live worker serves its agent, or none can load it
               concurrency     its agent's concurrency limit is full
               queue           (never: how many tasks are ahead of it, who will claim it)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from agentos import locks
from agentos.explain import gates
from agentos.explain.gates import ENDED, RUNNING, WAITING, Facts, Finding
from agentos.store.explain import AHEAD_COUNTED
from agentos.tasks import Outcome, Status
from agentos.worker import instances

RUNNING_SHOWN = 10  # running tasks named when a concurrency limit is full


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _at(moment: datetime | str | None) -> str:
    """A moment for people, to the second: 2026-01-31T12:00:00Z."""
    if moment is None:
        return "-"
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _in(now: datetime, moment: datetime) -> str:
    """``in 42 s`` / ``in 3 min`` / ``in 2.5 h`` from ``now``."""
    seconds = max((moment - now).total_seconds(), 0.0)
    if seconds < 120:
        return f"in {seconds:.0f} s"
    if seconds < 5400:
        return f"in {seconds / 60:.0f} min"
    return f"in {seconds / 3600:.1f} h"


def _alive(worker: dict[str, Any], now: datetime) -> bool:
    return bool(worker["last_heartbeat_at"] >= now - timedelta(seconds=instances.ALIVE_WITHIN))


def _worker(worker: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {"id": worker["id"], "host": worker["host"], "agents": worker["agents"],
            "alive": _alive(worker, now), "running": worker["running"],
            "concurrency": worker["concurrency"],
            "last_heartbeat_at": _iso(worker["last_heartbeat_at"]),
            "unloadable": worker.get("unloadable") or {}}


def _serves(worker: dict[str, Any], agent: str) -> bool:
    return worker["agents"] is None or agent in worker["agents"]


# ------------------------------------------------------------------ ended


def _cancelled_how(f: Facts) -> tuple[str, dict[str, Any] | None]:
    t = f.task
    running = bool(t.attempts) and t.attempts[-1].number == t.attempt and \
        t.attempts[-1].outcome == Outcome.CANCELLED.value
    when = f"while attempt {t.attempt} ran" if running else "before it ran again" \
        if t.attempt > t.retry_base else "before it ran"
    row = f.cancelled_by
    if row is None:
        if f.step is not None:
            return (f"cancelled {when}, with its workflow run {f.step['run_id']} "
                    f"({f.step['run_status']})"), None
        return (f"cancelled {when}; no request names it (its parent task's or workflow's "
                "cancellation, or an operator's through the store)"), None
    by = {"actor": row["actor"], "action": row["action"], "at": _iso(row["at"]),
          "audit_seq": row["seq"]}
    if row["action"] == "workflow_runs.cancel":
        return (f"cancelled {when}, with its workflow run {row['resource_id']}, by "
                f"{row['actor']} at {_at(row['at'])}"), by
    if row["action"] == "agents.delete_agent":
        return (f"cancelled {when}: agent {row['resource_id']} was deleted by "
                f"{row['actor']} at {_at(row['at'])}"), by
    return f"cancelled {when} by {row['actor']} at {_at(row['at'])}", by


def _failed_how(f: Facts) -> str:
    t = f.task
    last = t.attempts[-1] if t.attempts else None
    message = (t.error or {}).get("message") or "no error recorded"
    if last is not None and last.outcome == Outcome.TIMEOUT.value:
        reason = f"attempt {last.number} ran past its timeout of {t.timeout_s:g} s"
    elif last is not None and last.outcome == Outcome.LOST.value:
        reason = f"attempt {last.number}'s lease lapsed on worker {last.worker_id} ({message})"
    else:
        reason = message
    used = t.attempt - t.retry_base
    if used > t.max_retries:
        since = f" since the retry after attempt {t.retry_base}" if t.retry_base else ""
        retries = f"no retries left ({used} attempt(s){since}, max_retries {t.max_retries})"
    else:
        retries = "not retried: the error is not retryable"
    return f"failed for good: {reason}; {retries}"


def ended(f: Facts) -> Finding:
    t = f.task
    details: dict[str, Any] = {
        "outcome": t.status.value, "attempts_used": t.attempt - t.retry_base,
        "max_retries": t.max_retries, "finished_at": _iso(t.finished_at),
        "last_error": t.error,
        "attempts": [{"number": a.number, "outcome": a.outcome, "worker_id": a.worker_id,
                      "error": (a.error or {}).get("message")} for a in t.attempts]}
    if t.status is Status.SUCCEEDED:
        last = t.attempts[-1] if t.attempts else None
        where = f" on worker {last.worker_id}" if last and last.worker_id else ""
        took = f" in {last.duration_ms:.0f} ms" if last and last.duration_ms is not None else ""
        summary = f"succeeded on attempt {t.attempt}{where}{took}"
    elif t.status is Status.FAILED:
        summary = _failed_how(f)
    else:
        summary, details["cancelled_by"] = _cancelled_how(f)
    return Finding("ended", summary, blocking=False, details=details)


# ---------------------------------------------------------------- running


def running(f: Facts) -> Finding:
    t = f.task
    worker = next((w for w in f.workers if w["id"] == t.worker_id), None)
    heard = "" if worker is None or _alive(worker, f.now) else \
        f"; its worker was last heard from at {_at(worker['last_heartbeat_at'])}"
    return Finding("running", f"running attempt {t.attempt} on worker {t.worker_id} since "
                   f"{_at(t.started_at)}; lease until {_at(t.lease_expires_at)}{heard}",
                   blocking=False, details={"worker_id": t.worker_id, "attempt": t.attempt,
                                            "started_at": _iso(t.started_at),
                                            "lease_expires_at": _iso(t.lease_expires_at)})


def lease(f: Facts) -> Finding | None:
    t = f.task
    if t.lease_expires_at is None or t.lease_expires_at >= f.now:
        return None
    left = t.max_retries - (t.attempt - t.retry_base)
    then = "retried" if left >= 0 else "failed (no retries left)"
    return Finding("lease", f"its lease lapsed at {_at(t.lease_expires_at)}: worker "
                   f"{t.worker_id} stopped heartbeating; the reaper ends the attempt as lost "
                   f"and the task is {then}",
                   details={"worker_id": t.worker_id,
                            "lease_expires_at": _iso(t.lease_expires_at)})


def cancelling(f: Facts) -> Finding | None:
    if not f.task.cancel_requested:
        return None
    return Finding("cancelling", "a cancel was asked for: the worker stops the handler at "
                   "its next heartbeat (a sync handler must look at ctx.cancelled)")


def approval(f: Facts) -> Finding | None:
    if not f.approvals:
        return None
    first = f.approvals[0]
    expires = f", expires {_at(first['expires_at'])}" if first["expires_at"] else ""
    return Finding("approval", f"its handler waits for approval {first['id']} "
                   f"({first['title']!r}) by a user with the {first['role']} role or "
                   f"higher{expires}", until=first["expires_at"],
                   details={"approvals": [{**a, "expires_at": _iso(a["expires_at"]),
                                           "created_at": _iso(a["created_at"])}
                                          for a in f.approvals]})


def sub_task(f: Facts) -> Finding | None:
    if not f.sub_tasks:
        return None
    first = f.sub_tasks[0]
    more = f" (and {len(f.sub_tasks) - 1} more)" if len(f.sub_tasks) > 1 else ""
    return Finding("sub_task", f"its handler waits for sub-task {first['id']} of agent "
                   f"{first['agent']}, {first['status']}{more}: explain that task",
                   details={"tasks": [{**s, "run_at": _iso(s["run_at"])}
                                      for s in f.sub_tasks]})


# ---------------------------------------------------------------- waiting


def version_gone(f: Facts) -> Finding | None:
    if f.definition is not None:
        return None
    t = f.task
    return Finding("version_gone", f"agent {t.agent} {t.agent_version} no longer exists (the "
                   "agent was deleted): no worker will claim this task; cancel it")


def budget(f: Facts) -> Finding | None:
    held = [h for h in f.holds if h["reason"] == "budget"]
    if not held:
        return None
    hold = max(held, key=lambda h: h["until"] or datetime.max.replace(tzinfo=f.now.tzinfo))
    d = hold["detail"]
    spent = (f"{d.get('used'):g} of {d.get('limit'):g} {d.get('metric')} a {d.get('period')}"
             if isinstance(d.get("used"), int | float) and isinstance(d.get("limit"), int | float)
             else "its limit")
    until = f" until the period rolls at {_at(hold['until'])}" if hold["until"] else ""
    return Finding("budget", f"held: agent {f.task.agent} spent its hard budget "
                   f"{hold['ref']} ({spent}){until}; raising the limit releases it",
                   until=hold["until"], details={"holds": [
                       {"budget": h["ref"], "until": _iso(h["until"]), **h["detail"]}
                       for h in held]})


def resource(f: Facts) -> Finding | None:
    if f.resource_error is not None:
        return Finding("resource", f"its declared resources cannot be named: "
                       f"{f.resource_error}; a worker fails it when it claims it",
                       blocking=False)
    me = locks.task_owner(f.task.id)
    taken = [s for s in f.locks if s.holder is not None and s.holder["owner"] != me
             and not s.holder["lapsed"]]
    if not taken:
        return None
    first = taken[0]
    h = first.holder
    assert h is not None
    who = h["owner"] + (f" (task {h['task_id']} of agent {h['agent']})" if h["task_id"]
                        else "")
    place = (f"; it is number {first.position} of {len(first.queue)} in its queue"
             if first.position is not None else
             f"; {len(first.queue)} waiter(s) queued, it joins when claimed")
    return Finding("resource", f"waiting for {first.resource}, held by {who} until "
                   f"{_at(h['expires_at'])}{place}", details={"resources": [
                       {"resource": s.resource, "holder": s.holder, "queue": s.queue,
                        "position": s.position} for s in taken]})


def not_due(f: Facts) -> Finding | None:
    t = f.task
    if t.status is not Status.SCHEDULED or t.run_at <= f.now:
        return None
    when = f"{_at(t.run_at)} ({_in(f.now, t.run_at)})"
    last = t.attempts[-1] if t.attempts else None
    error = (last.error if last else None) or t.error or {}
    if last is not None and last.outcome == Outcome.DEFERRED.value and \
            error.get("type") == "budget_exceeded":
        # a model's or the global hard budget refused its LLM call: it holds no agent,
        # so the task checks again later (an agent's budget holds it: the budget gate)
        return Finding("not_due", f"held: {error.get('message')}; it checks the budget "
                       f"again at {when}, and runs once the period rolls or the limit is "
                       "raised", until=t.run_at, details={
                           "kind": "budget", "run_at": _iso(t.run_at),
                           "budget": error.get("budget"), "scope": error.get("scope"),
                           "rolls_at": error.get("rolls_at")})
    if last is not None and last.outcome == Outcome.DEFERRED.value:
        summary = (f"handed back to wait for a lock ({error.get('message')}): it runs as "
                   f"soon as the lock is granted, or tries again at {when}")
        kind = "lock"
    elif last is not None:
        summary = (f"retry backoff after attempt {last.number} {last.outcome} "
                   f"({error.get('message') or 'no error recorded'}): due at {when}")
        kind = "backoff"
    else:
        summary = f"not due yet: run_at {when}"
        kind = "run_at"
    return Finding("not_due", summary, until=t.run_at, details={"kind": kind,
                                                                 "run_at": _iso(t.run_at)})


def no_worker(f: Facts) -> Finding | None:
    agent = f.task.agent
    listed = [_worker(w, f.now) for w in f.workers]
    serving = [w for w in listed if w["alive"] and _serves(w, agent)]
    able = [w for w in serving if agent not in w["unloadable"]]
    if able:
        return None
    if serving:
        errors = "; ".join(f"{w['id']}: {w['unloadable'][agent]}" for w in serving)
        return Finding("no_worker", f"no live worker can load agent {agent}'s handler "
                       f"({errors})", details={"workers": listed})
    others = [w["id"] for w in listed if _serves(w, agent)]
    gone = f" (not heard from lately: {', '.join(others)})" if others else ""
    return Finding("no_worker", f"no live worker serves agent {agent}{gone}; start one: "
                   f"agentos worker --agents {agent}", details={"workers": listed})


def concurrency(f: Facts) -> Finding | None:
    cap = ((f.definition or {}).get("limits") or {}).get("concurrency")
    busy = f.agent_tasks.get("running", 0)
    if not cap or busy < cap:
        return None
    shown = f.running[:RUNNING_SHOWN]
    names = ", ".join(r["id"] for r in shown) + (" ..." if busy > len(shown) else "")
    return Finding("concurrency", f"agent {f.task.agent}'s concurrency limit ({cap}) is full: "
                   f"{busy} task(s) run now ({names})",
                   details={"limit": cap, "running": busy, "tasks": [
                       {"id": r["id"], "worker_id": r["worker_id"], "attempt": r["attempt"],
                        "started_at": _iso(r["started_at"]),
                        "lease_expires_at": _iso(r["lease_expires_at"])} for r in shown]})


def capability(f: Facts) -> Finding | None:
    off = [h for h in f.holds if h["reason"] == "capability"]
    if not off:
        return None
    agent, needed = f.task.agent, f.task.capability
    details = {"needs": needed, "switched_off": [
        {"capability": h["ref"], "since": _iso(h["since"]), **(h["detail"] or {})} for h in off]}
    mine = next((h for h in off if h["ref"] == needed), None)
    if mine is not None:
        d = mine["detail"] or {}
        return Finding("capability", f"held: it needs capability {needed} of agent {agent}, "
                       f"switched off by {d.get('by', '?')} ({d.get('reason', '')}); it runs "
                       "once the capability is enabled again", details=details)
    names = ", ".join(h["ref"] for h in off)
    return Finding("capability", f"agent {agent} has capability {names} switched off: "
                   "triggers that need it do not route; this task needs "
                   f"{needed or 'no capability'}, so it is not held", blocking=False,
                   details=details)


def queue(f: Facts) -> Finding | None:
    t = f.task
    serving = [w["id"] for w in f.workers if _alive(w, f.now) and _serves(w, t.agent)]
    workers = f"; live workers serving it: {', '.join(serving)}" if serving else ""
    if t.status is Status.SCHEDULED:
        if t.run_at > f.now:
            return None  # not due: that gate says when
        return Finding("queue", f"due since {_at(t.run_at)}: the next claim makes it ready"
                       f"{workers}", blocking=False)
    ahead = f.ahead or 0
    count = f"more than {AHEAD_COUNTED:,}" if ahead > AHEAD_COUNTED else f"{ahead:,}"
    return Finding("queue", f"{count} task(s) ahead of it in claim order{workers}",
                   blocking=False, details={"ahead": ahead, "workers": serving})


for _name, _check, _statuses, _order in (
    ("ended", ended, ENDED, 0),
    ("running", running, RUNNING, 0),
    ("lease", lease, RUNNING, 10),
    ("cancelling", cancelling, RUNNING, 20),
    ("approval", approval, RUNNING, 30),
    ("sub_task", sub_task, RUNNING, 40),
    ("version_gone", version_gone, WAITING, 0),
    ("budget", budget, WAITING, 10),
    ("resource", resource, WAITING, 20),
    ("not_due", not_due, WAITING, 30),
    ("no_worker", no_worker, WAITING, 40),
    ("concurrency", concurrency, WAITING, 50),
    ("capability", capability, WAITING, 15),
    ("queue", queue, WAITING, 100),
):
    gates.register(_name, _check, statuses=_statuses, order=_order)
