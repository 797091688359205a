"""qa-manager: turns an alert into a test campaign and asks executors to run it."""

from __future__ import annotations

from typing import Any

from agentos.worker.handlers import Context

SUITES = {"critical": ["smoke", "regression", "performance"], "high": ["smoke", "regression"]}


async def manage(ctx: Context, alert: dict[str, Any]) -> dict[str, Any]:
    severity = str(alert.get("severity", "high"))
    device = str(alert.get("device_id", "any-device"))
    suites = SUITES.get(severity, ["smoke"])
    for suite in suites:
        await ctx.emit("qa.run.requested", {"device_id": device, "suite": suite,
                                            "reason": alert.get("message", severity)})
    ctx.log.info("planned %d suites for %s", len(suites), device)
    return {"device_id": device, "suites": suites}
