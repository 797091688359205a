"""The QA fleet's release day, as its people and systems would run it through the API.

Install: the starter templates qa-manager, explorer and executor (1.0.0), then the
fleet's versions of them (1.1.0) with the farm's address in their live config, and
the farm's five devices made known to the lock service. Run: a lab technician takes
an iPhone from the pool for a manual check and her laptop sleeps past the lease; the
release pipeline announces shop 2.4.0 (``app.release``); the manager plans and
dispatches an exploration and two suites per platform, each taking any free device
of its platform's pool; the laptop wakes and writes to the iPhone with its old token,
which the device refuses; then a Pixel drops out (``alert.device_offline``) and the
manager has the smoke suite rerun, urgently, on the Android devices still online.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from agentos import errors, templates
from agentos.api.schemas.locks import Acquired
from agentos.examples import (
    FINAL,
    Example,
    Simulators,
    publish_agents,
    publish_yaml,
    wait_for,
)
from agentos.sdk import Client

STARTERS = ["qa-manager", "explorer", "executor"]
AGENTS = ["agents/qa-manager.yaml", "agents/explorer.yaml", "agents/executor.yaml"]
APP, VERSION = "shop", "2.4.0"
BENCH_LEASE_S = 1.0  # the lab technician's lease, never renewed: her laptop sleeps
LOST = "device:android-pixel-7"
WAIT_S = 90.0  # for a plan's tasks to end


def install(client: Client, sims: Simulators) -> list[str]:
    farm = sims.handles["farm"]
    lines = []
    for starter in STARTERS:
        lines += publish_yaml(client, templates.read(starter))
    lines += publish_agents(client, EXAMPLE, AGENTS)
    for agent in STARTERS:
        client.set_config(agent, "farm_url", farm.url)
    lines.append(f"farm_url = {farm.url} (live config of the three agents)")
    devices = [d["id"] for d in farm.catalog["devices"]]
    # a prefix pool chooses among resources the lock service has seen: take them once
    got = client.acquire_locks(devices, "qa-fleet-install", ttl_s=5)
    for grant in got["locks"]:
        client.release_lock(grant["resource"], "qa-fleet-install", grant["token"])
    lines.append(f"devices: {', '.join(devices)} (known to the lock service)")
    return lines


def run(client: Client, sims: Simulators) -> dict[str, Any]:
    farm = sims.handles["farm"]
    # qa.cases summed from an hour before this run on, as an earlier run on this
    # database left it: this run's cases are what it adds to that
    since = datetime.now(UTC) - timedelta(hours=1)
    before = _cases_since(client, since)
    keys = {name: client.create_api_key(name, "operator", expires_in_days=1)["key"]
            for name in ("lab-bench", "release-pipeline", "farm-monitor")}
    base = client.base_url
    with Client(base, token=keys["lab-bench"]) as lab, \
            Client(base, token=keys["release-pipeline"]) as ci, \
            Client(base, token=keys["farm-monitor"]) as monitor:
        # the technician takes any iPhone; her laptop sleeps past the lease
        bench = lab.acquire_any("lab-bench", prefix="device:ios-", ttl_s=BENCH_LEASE_S)
        first = _write(farm.url, bench, "install", version="2.3.9")
        wait_for("the bench's lease to lapse", lambda: _lapsed(client, bench))
        # release day
        released = ci.emit("app.release", {"app": APP, "version": VERSION,
                                           "platforms": ["android", "ios"]})
        release = _plan_done(client, released["correlation_id"])
        # the laptop wakes up and carries on where it was
        stale = _write(farm.url, bench, "run", suite="smoke", case="launch")
        # a device drops out of the farm
        farm.set_online(LOST, False)
        alert = monitor.emit("alert.device_offline", {"device_id": LOST,
                                                      "reason": "adb: device offline"},
                             priority="high")
        rerun = _plan_done(client, alert["correlation_id"])
    bugs = client.list_events(type="qa.bug.reported", limit=100)["events"]
    cases = wait_for("the qa.cases metric (flushed every 5 s)",
                     lambda: _cases(client, since, before,
                                    expected=_case_count(release + rerun)), 30)
    writes = farm.log
    stale_accepted = _stale_accepted(writes)
    return {
        "release": _runs(release),
        "rerun": _runs(rerun),
        "bugs": {f"{b['payload']['platform']} {b['payload']['case']}": b["payload"]["defect"]
                 for b in bugs},
        "fencing": {
            "bench": f"{bench['resource']} token {bench['token']}: install "
                     f"{'accepted' if first.status_code == 200 else 'refused'}; after the "
                     f"lapse {stale.status_code} {stale.json().get('error')} (device at "
                     f"{stale.json().get('highest')})",
            "writes": f"{sum(w['accepted'] for w in writes)} accepted, "
                      f"{sum(not w['accepted'] for w in writes)} refused, "
                      f"{len(stale_accepted)} accepted with a stale token"},
        "cases": cases,
        "agents": {a: _rate(client, a) for a in STARTERS},
        "ids": {"bench": bench, "first": first.status_code, "stale": stale.status_code,
                "release": release, "rerun": rerun, "bugs": bugs, "writes": writes,
                "stale_accepted": stale_accepted, "correlations": [
                    released["correlation_id"], alert["correlation_id"]]},
    }


def _write(farm_url: str, grant: Acquired, op: str, **body: Any) -> httpx.Response:
    """A write to a device from outside AgentOS, with the token its lock came with."""
    return httpx.post(f"{farm_url}/devices/{grant['resource']}/{op}", timeout=10, json={
        "token": grant["token"], "owner": "lab-bench", "app": APP, **body})


def _lapsed(client: Client, grant: Acquired) -> bool:
    holder = client.get_lock(grant["resource"])["holder"]
    return holder is None or holder["owner"] != "lab-bench"


def _plan_done(client: Client, correlation_id: str) -> list[dict[str, Any]]:
    """Wait for the manager's plan in this correlation and every task it dispatched to
    end; the tasks, oldest first."""
    plan = wait_for("the manager's plan", lambda: client.list_events(
        type="qa.plan.created", correlation_id=correlation_id)["events"], WAIT_S)[0]
    expected = 1 + int(plan["payload"]["steps"])  # the manager's own task and its plan's

    def ended() -> list[dict[str, Any]] | None:
        tasks = client.list_tasks(correlation_id=correlation_id, limit=100)["tasks"]
        done = len(tasks) == expected and all(t["status"] in FINAL for t in tasks)
        return tasks if done else None

    tasks: list[dict[str, Any]] = wait_for(f"{expected} tasks to end", ended, WAIT_S)
    return tasks


def _runs(tasks: list[dict[str, Any]]) -> dict[str, str]:
    """A line per task: what it did, on which device, with which token."""
    lines = {}
    for task in tasks:
        out, data = task.get("output") or {}, task["input"]
        if task["agent"] == "qa-manager":
            key, said = "qa-manager", f"{task['status']}: dispatched {len(out['dispatched'])}"
        else:
            suite = data.get("suite", "explore")
            key = f"{task['agent']} {data['platform']} {suite}"
            failed = [c for c, r in (out.get("results") or {}).items() if r == "failed"]
            said = (f"{task['status']} on {out.get('device')} (token {out.get('token')}, "
                    f"priority {task['priority']})"
                    + (f", {len(out['screens'])} screens" if "screens" in out else "")
                    + (f", failed: {', '.join(failed)}" if failed else ""))
        lines[key] = said
    return lines


def _case_count(tasks: list[dict[str, Any]]) -> int:
    return sum(len((t.get("output") or {}).get("results") or {}) for t in tasks)


def _cases_since(client: Client, since: datetime) -> dict[str, int]:
    """qa.cases summed from ``since`` on, by outcome."""
    try:
        groups = client.query_metric("qa.cases", agg="sum", group_by="outcome",
                                     start=since)["groups"]
    except errors.NotFound:  # nothing flushed yet
        return {}
    return {str(g["group"]): int(sum(p["value"] or 0 for p in g["points"])) for g in groups}


def _cases(client: Client, since: datetime, before: dict[str, int], expected: int
           ) -> dict[str, int] | None:
    """This run's cases by outcome, once all ``expected`` of them are flushed."""
    now = _cases_since(client, since)
    by = {o: n - before.get(o, 0) for o, n in now.items() if n - before.get(o, 0)}
    return by if sum(by.values()) == expected else None


def _stale_accepted(writes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Writes a device accepted with a token lower than one it had accepted before."""
    highest: dict[str, int] = {}
    stale = []
    for write in writes:
        if write["accepted"]:
            if write["token"] < highest.get(write["device"], 0):
                stale.append(write)
            highest[write["device"]] = max(write["token"], highest.get(write["device"], 0))
    return stale


def _rate(client: Client, agent: str) -> str:
    summary = client.agent_summary(agent, window="1h")
    ok = summary["tasks"].get("succeeded", 0)
    p50 = summary.get("duration_ms", {}).get("p50")
    return f"{ok} succeeded of {sum(summary['tasks'].values())}" + (
        f", p50 {p50:.0f} ms" if p50 is not None else "")


def _simulators() -> Simulators:
    from examples.qa_fleet.farm import Farm

    farm = Farm().start()
    return Simulators(handles={"farm": farm}, stops=[farm.stop])


EXAMPLE = Example(
    name="qa_fleet", title="Continuous QA on a device fleet", seed="000",
    summary="qa-manager, explorer and executor on five lockable devices: a release and a "
            "lost device planned and dispatched, any free device of a pool, fencing",
    install=install, run=run, simulators=_simulators,
    dashboard=(("/locks", "the five devices, their holders and tokens, the queues"),
               ("/events?type=qa.*", "plans, runs, bug reports, tied by correlation"),
               ("/tasks?agent=executor", "the execution history: device, token, duration"),
               ("/agents/executor", "its state and recent tasks"),
               ("/events?type=lock.*", "grants, queueing, the bench's lapsed lease")))
