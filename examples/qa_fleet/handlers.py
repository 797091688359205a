"""Handlers of the QA fleet: the manager plans and dispatches, explorers map an app,
executors run suites. Explorers and executors take any free device of a pool with
``ctx.lock_any`` and send its fencing token with every write to the device."""

from __future__ import annotations

from typing import Any

import httpx

from agentos.worker.handlers import Context, HandlerError
from examples.qa_fleet.farm import catalog

FARM_TIMEOUT = 10.0  # seconds for one request to the device farm
WAIT_FOR_DEVICE_S = 90.0  # how long a task waits in the pool's queues for a device


# ------------------------------------------------------------------ manager


async def manage(ctx: Context, event: dict[str, Any]) -> dict[str, Any]:
    """``app.release``: explore the new version and run every suite on each platform's
    pool. ``alert.device_offline``: rerun the smoke suite, urgently, on the devices of
    that platform still online (a list that leaves the lost one out)."""
    farm = await _farm(ctx, "GET", "/devices")
    devices = farm["devices"]
    suites = list(ctx.config["suites"].split(","))
    plan: list[dict[str, Any]] = []
    if "device_id" in event:  # alert.device_offline
        lost = next((d for d in devices if d["id"] == event["device_id"]), None)
        if lost is None:
            raise HandlerError(f"no device {event['device_id']} in the farm", retryable=False)
        pool = [d["id"] for d in devices if d["platform"] == lost["platform"]
                and d["online"] and d["id"] != lost["id"]]
        current = await ctx.knowledge.get("qa", "current-release")
        if current is None:
            return {"dispatched": [], "note": "no release under test yet"}
        app, _, version = current["content"].partition("@")
        plan.append({"type": "qa.rerun.requested", "payload": {
            "app": app, "version": version, "platform": lost["platform"], "suite": "smoke",
            "pool": pool, "because": f"{lost['id']} went offline: {event.get('reason')}"}})
    else:  # app.release
        app, version = str(event["app"]), str(event["version"])
        await ctx.knowledge.put("qa", "current-release", f"{app}@{version}",
                                title="The release under test", tags=["release"])
        for platform in event.get("platforms") or sorted({d["platform"] for d in devices}):
            prefix = f"device:{platform}-"
            plan.append({"type": "qa.explore.requested", "payload": {
                "app": app, "version": version, "platform": platform, "prefix": prefix}})
            plan += [{"type": "qa.run.requested", "payload": {
                "app": app, "version": version, "platform": platform, "suite": suite,
                "prefix": prefix}} for suite in suites]
    for step in plan:
        await ctx.emit(step["type"], step["payload"])
    await ctx.emit("qa.plan.created", {"steps": len(plan), "trigger": ctx.task["input"]})
    ctx.metrics.count("qa.plans", 1)
    return {"dispatched": [f"{s['type']} {s['payload']['platform']} "
                           f"{s['payload'].get('suite', 'explore')}" for s in plan]}


# ----------------------------------------------------------------- explorer


async def explore(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    """Install the version on any free device of the platform and map its screens."""
    async with _device(ctx, request) as lease:
        await _write(ctx, lease, "install", {"app": request["app"],
                                             "version": request["version"]})
        found = await _write(ctx, lease, "explore", {"app": request["app"],
                                                     "depth": ctx.config["max_depth"]})
    await ctx.emit("qa.explore.completed", {"device_id": lease.resource,
                                            "screens": found["screens"]})
    return {"device": lease.resource, "token": lease.token, "screens": found["screens"]}


# ----------------------------------------------------------------- executor


async def execute(ctx: Context, run: dict[str, Any]) -> dict[str, Any]:
    """Install the version on any free device of the pool, run the suite's cases, and
    report a bug for each case that fails."""
    cases = catalog()["suites"][run["suite"]]
    results: dict[str, str] = {}
    bugs = []
    async with _device(ctx, run) as lease:
        await _write(ctx, lease, "install", {"app": run["app"], "version": run["version"]})
        for case in cases:
            outcome = await _write(ctx, lease, "run", {
                "app": run["app"], "version": run["version"], "suite": run["suite"],
                "case": case})
            results[case] = "passed" if outcome["passed"] else "failed"
            ctx.metrics.count("qa.cases", 1, tags={"outcome": results[case],
                                                   "platform": run["platform"]})
            ctx.metrics.observe("qa.case_ms", outcome["duration_ms"])
            if not outcome["passed"]:
                bugs.append(await ctx.emit("qa.bug.reported", {
                    "app": run["app"], "version": run["version"], "platform": run["platform"],
                    "suite": run["suite"], "case": case, "device_id": lease.resource,
                    "defect": outcome["defect"], "evidence": outcome["evidence"]},
                    priority="high"))
    failed = sorted(c for c, r in results.items() if r == "failed")
    await ctx.emit("qa.run.completed", {"device_id": lease.resource, "suite": run["suite"],
                                        "platform": run["platform"],
                                        "passed": len(results) - len(failed),
                                        "failed": failed})
    return {"device": lease.resource, "token": lease.token, "suite": run["suite"],
            "results": results, "bugs": [b.id for b in bugs]}


# ------------------------------------------------------------------- shared


def _device(ctx: Context, request: dict[str, Any]) -> Any:
    """Any free device of the request's pool: a list, or every device under a prefix."""
    return ctx.lock_any(request.get("pool"), prefix=request.get("prefix"),
                        wait_s=WAIT_FOR_DEVICE_S)


async def _write(ctx: Context, lease: Any, op: str, body: dict[str, Any]) -> dict[str, Any]:
    """A write to the leased device, fenced by the lease's token."""
    return await _farm(ctx, "POST", f"/devices/{lease.resource}/{op}",
                       {**body, "token": lease.token, "owner": f"task:{ctx.task['id']}"})


async def _farm(ctx: Context, method: str, path: str, body: dict[str, Any] | None = None
                ) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=ctx.config["farm_url"], timeout=FARM_TIMEOUT) as http:
        response = await http.request(method, path, json=body)
    if response.status_code == 409:  # our lease lapsed and the device moved on: never retry
        raise HandlerError(f"{path}: the device refused a stale fencing token "
                           f"({response.json()})", retryable=False)
    if response.status_code >= 400:
        raise HandlerError(f"{method} {path}: {response.status_code} {response.text[:200]}")
    answer: dict[str, Any] = response.json()
    return answer
