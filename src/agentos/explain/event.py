"""Where would this event go (SPEC §2.12): each published agent's triggers asked about an
event that is not appended, with the capability switches as the router sees them now
(read in the same read transaction, as a routing batch reads them). Nothing is written.

For each agent: the triggers that fire (with the task each would submit: priority,
input, the capability it needs) and, for each one that does not, the first condition
that failed (``router.why_not``: the type glob, a payload filter, a capability
switched off, an agent's own tasks' lifecycle).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from agentos import capabilities, router
from agentos.events import Event, EventIn, Priority
from agentos.router import Routable
from agentos.store import Store
from agentos.store import agent_state as store_state

NOT_APPENDED = "(not appended)"  # the id of the event a preview's task input would name


async def explain(store: Store, event: EventIn) -> dict[str, Any]:
    """Every published agent's verdict on ``event``, matches first."""
    async with store.read() as conn:
        now = await store_state.now(conn)
        agents = await router.routable_agents(store, conn, await capabilities.switched_in(conn),
                                              untriggered=True)
    return verdicts(agents, event, now)


def verdicts(agents: list[Routable], draft: EventIn, now: datetime) -> dict[str, Any]:
    """The explanation of ``draft`` against ``agents`` (pure)."""
    event = Event(0, NOT_APPENDED, draft.type, draft.source, draft.payload,
                  Priority[draft.priority.upper()], draft.correlation_id or NOT_APPENDED,
                  draft.causation_id, draft.run_id, draft.subject, draft.dedup_key, now)
    out = [_agent(agent, event) for agent in agents]
    out.sort(key=lambda a: (not a["routed"], a["agent"]))
    routed = [a["agent"] for a in out if a["routed"]]
    return {"event": {"type": draft.type, "source": draft.source, "payload": draft.payload,
                      "priority": draft.priority},
            "routed_to": routed, "agents": out, "checked_at": now.isoformat(),
            "summary": f"{draft.type} would route to {', '.join(routed)}" if routed
            else f"{draft.type} would route to no agent"}


def _agent(agent: Routable, event: Event) -> dict[str, Any]:
    triggers = []
    for index, trigger in enumerate(agent.triggers):
        failed = router.why_not(agent, trigger, event.type, event.payload)
        entry: dict[str, Any] = {
            "index": index, "event": trigger["event"], "filter": trigger.get("filter", {}),
            "capability": trigger.get("capability"), "priority": int(trigger.get("priority", 5)),
            "matches": failed is None, "failed": failed}
        if failed is None:
            entry["task"] = {"agent": agent.name, "version": agent.version,
                             "priority": entry["priority"],
                             "input": router.task_input(trigger, event),
                             "capability": trigger.get("capability")}
        triggers.append(entry)
    return {"agent": agent.name, "version": agent.version,
            "routed": any(t["matches"] for t in triggers), "triggers": triggers,
            "capabilities": agent.capabilities,
            "summary": _summary(triggers)}


def _summary(triggers: list[dict[str, Any]]) -> str:
    if not triggers:
        return "no triggers"
    fired = [str(t["index"]) for t in triggers if t["matches"]]
    if fired:
        return f"trigger {', '.join(fired)} fires"
    return "; ".join(f"trigger {t['index']}: {t['failed']}" for t in triggers)
