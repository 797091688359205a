"""The desk's read models, folded from its events by AgentOS projections (every server
keeps them live; ``agentos projections rebuild NAME`` folds them again from the log).
The example's servers load them with ``AGENTOS_PROJECTIONS=examples.trading_desk.
projections:ALL``.

    positions      per run and market (``RUN/SYMBOL``): quantity, average entry, realized
                   P&L, fees (fill)
    fills          every fill by run and order id (``RUN/ORDER``), with its correlation
    block_reasons  per reason: how many trades it blocked, the last one (trade_blocked)
    risk_budget    per run and trading day (``RUN/DAY``): the risk of the day's purchases
                   against the budget, the intents the budget blocked (order_submitted,
                   trade_blocked)
    run_summary    per paper run (the exchange account's run id): events by type, mode,
                   first and last event; ``status`` is running while the last event is
                   under 5 minutes old, else stopped
    backtests      per backtest run: status, candles processed of the total, trades

A paper run is the life of one exchange account (``run_id`` in the events), so a
second run of the example on the same database starts its positions and budget anew.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from agentos.events import Event
from agentos.projections import Projection

DESK_EVENTS = ("plan_generated", "plan_judged", "intent", "trade_blocked", "order_submitted",
               "fill")
RUNNING_WITHIN = timedelta(minutes=5)  # a desk with an event this recent is running
RUN_ENDS = ("workflow.succeeded", "workflow.failed", "workflow.cancelled")
NO_RUN = "no_run"  # the run summary of events that name no paper run (manual tests)


class Positions(Projection):
    name = "positions"
    types = ("fill",)
    description = "the desk's position in each market, from its fills"

    def keys(self, event: Event) -> Iterable[str]:
        return [f"{event.payload['run_id']}/{event.payload['symbol']}"]

    def apply(self, state: dict[str, Any], event: Event) -> None:
        f = event.payload
        p = state.setdefault(f"{f['run_id']}/{f['symbol']}", {"qty": 0.0, "avg_entry_price": 0.0,
                                           "realized_pnl": 0.0, "fees": 0.0, "fills": 0})
        qty, price = float(f["qty"]), float(f["fill_price"])
        if f["side"] == "buy":
            held = p["qty"] + qty
            p["avg_entry_price"] = round((p["qty"] * p["avg_entry_price"] + qty * price)
                                         / held, 4)
            p["qty"] = round(held, 8)
        else:
            p["realized_pnl"] = round(p["realized_pnl"] + qty * (price - p["avg_entry_price"]),
                                      2)
            p["qty"] = round(p["qty"] - qty, 8)
            if p["qty"] == 0:
                p["avg_entry_price"] = 0.0
        p["fees"] = round(p["fees"] + float(f.get("cost") or 0.0), 2)
        p["fills"] += 1
        p["mode"] = f.get("mode")


class Fills(Projection):
    name = "fills"
    types = ("fill",)
    description = "every fill by order id"

    def keys(self, event: Event) -> Iterable[str]:
        return [f"{event.payload['run_id']}/{event.payload['order_id']}"]

    def apply(self, state: dict[str, Any], event: Event) -> None:
        f = event.payload
        state[f"{f['run_id']}/{f['order_id']}"] = {
            **{k: f.get(k) for k in ("symbol", "side", "qty", "fill_price", "cost",
                                     "strategy_id", "intent_id", "mode", "time")},
            "correlation_id": event.correlation_id, "at": event.created_at.isoformat()}


class BlockReasons(Projection):
    name = "block_reasons"
    types = ("trade_blocked",)
    description = "blocked trades by reason"

    def keys(self, event: Event) -> Iterable[str]:
        return [event.payload["reason"]]

    def apply(self, state: dict[str, Any], event: Event) -> None:
        b = event.payload
        value = state.setdefault(b["reason"], {"count": 0, "by_symbol": {}})
        value["count"] += 1
        value["by_symbol"][b["symbol"]] = value["by_symbol"].get(b["symbol"], 0) + 1
        value["last"] = {"symbol": b["symbol"], "side": b["side"], "qty": b["qty"],
                         "detail": b.get("detail"), "correlation_id": event.correlation_id,
                         "at": event.created_at.isoformat()}


class RiskBudget(Projection):
    name = "risk_budget"
    types = ("order_submitted", "trade_blocked")
    description = "each trading day's risk against its budget"

    def keys(self, event: Event) -> Iterable[str]:
        p = event.payload
        if (event.type == "order_submitted" and p.get("side") == "buy") or \
                (event.type == "trade_blocked" and p.get("reason") == "risk_budget"):
            return [f"{p['run_id']}/{p['day']}"]
        return []

    def apply(self, state: dict[str, Any], event: Event) -> None:
        p = event.payload
        day = state.setdefault(f"{p['run_id']}/{p['day']}", {
            "used_usd": 0.0, "budget_usd": None, "orders": 0, "blocked": 0})
        if event.type == "order_submitted":
            day["used_usd"] = round(day["used_usd"] + float(p.get("risk_usd") or 0.0), 2)
            day["budget_usd"] = p.get("budget_usd")
            day["orders"] += 1
        else:
            day["blocked"] += 1

    def view(self, key: str, value: Any) -> Any:
        budget = value["budget_usd"]
        return {**value, "remaining_usd": round(budget - value["used_usd"], 2)
                if budget is not None else None,
                "utilization": round(value["used_usd"] / budget, 4) if budget else None}


class RunSummary(Projection):
    name = "run_summary"
    types = DESK_EVENTS
    description = "each paper run's events by type, its mode, running or stopped"

    def keys(self, event: Event) -> Iterable[str]:
        return [str(event.payload.get("run_id") or NO_RUN)]

    def apply(self, state: dict[str, Any], event: Event) -> None:
        desk = state.setdefault(str(event.payload.get("run_id") or NO_RUN), {
            "events": dict.fromkeys(DESK_EVENTS, 0), "mode": None, "first_event_at": None})
        desk["events"][event.type] += 1
        desk["mode"] = event.payload.get("mode") or desk["mode"]
        desk["first_event_at"] = desk["first_event_at"] or event.created_at.isoformat()
        desk["last_event_at"] = event.created_at.isoformat()

    def view(self, key: str, value: Any) -> Any:
        last = datetime.fromisoformat(value["last_event_at"])
        if last.tzinfo is None:
            last = last.replace(tzinfo=UTC)
        recent = datetime.now(UTC) - last < RUNNING_WITHIN
        return {**value, "status": "running" if recent else "stopped"}


class Backtests(Projection):
    name = "backtests"
    types = ("backtest.*", "workflow.started", *RUN_ENDS)
    description = "backtest runs: status and progress"

    def keys(self, event: Event) -> Iterable[str]:
        p = event.payload
        if event.type.startswith("workflow.") and p.get("workflow") != "backtest":
            return []
        return [str(p.get("run_id"))]

    def apply(self, state: dict[str, Any], event: Event) -> None:
        p = event.payload
        run = state.setdefault(str(p["run_id"]), {
            "status": "queued", "candles_total": None, "candles_processed": 0,
            "windows": None, "windows_done": 0, "trades": 0, "started_at": None,
            "completed_at": None})
        if event.type == "workflow.started":
            run["status"], run["started_at"] = "running", event.created_at.isoformat()
        elif event.type == "backtest.planned":
            run["candles_total"], run["windows"] = p["candles_total"], p["windows"]
        elif event.type == "backtest.progress":
            run["candles_processed"] += p["candles"]
            run["windows_done"] += 1
            run["trades"] += p["trades"]
        elif event.type in RUN_ENDS:
            run["status"] = "completed" if event.type == "workflow.succeeded" else \
                event.type.removeprefix("workflow.")
            run["completed_at"] = event.created_at.isoformat()

    def view(self, key: str, value: Any) -> Any:
        total = value["candles_total"]
        return {**value, "progress": round(value["candles_processed"] / total, 4)
                if total else 0.0}


ALL = [Positions(), Fills(), BlockReasons(), RiskBudget(), RunSummary(), Backtests()]
