"""explorer: maps an app's screens breadth-first, to the configured depth."""

from __future__ import annotations

from typing import Any

from agentos.worker.handlers import Context

LINKS = {"home": ["search", "profile", "cart"], "search": ["results"],
         "results": ["product"], "product": ["cart"], "cart": ["checkout"],
         "profile": ["settings"]}


async def explore(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    depth = int(ctx.config.get("max_depth") or 5)
    seen, frontier = ["home"], ["home"]
    for _ in range(depth):
        frontier = [n for s in frontier for n in LINKS.get(s, []) if n not in seen]
        seen += frontier
    await ctx.emit("qa.explore.completed", {"device_id": request.get("device_id"),
                                            "screens": len(seen)})
    return {"screens": seen}
