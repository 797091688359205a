"""The desk's agents: planner -> judge -> broker -> execution, the backtester and the
reconciler. Each decision is an event in the plan's correlation (``ctx.emit``), so a
fill's whole chain — plan_generated, plan_judged, intent, order_submitted, fill — is
one correlation id; the trading logic itself is ``strategy.py``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from agentos import events
from agentos.worker.handlers import Context, HandlerError
from examples.trading_desk import strategy

EXCHANGE_TIMEOUT = 10.0  # seconds for one exchange request
LOG_PAGE = 1000  # events read at once from the log


async def plan(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """strategy-planner: a plan for ``symbol`` at candle ``candle`` in the paper run
    ``run_id`` -> plan_generated."""
    made = strategy.make_plan(str(data["symbol"]), int(data["candle"]),
                              strategy.Params.of(ctx.config))
    if made is None:
        raise HandlerError(f"candle {data['candle']} has too little history", retryable=False)
    made["run_id"] = data.get("run_id")
    await ctx.emit("plan_generated", made)
    return made


async def judge(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """judge: score a plan (strategy.judge) and ask an LLM for its recommendations; a
    plan of large notional goes to the stronger model -> plan_judged."""
    verdict = strategy.judge(data, strategy.Params.of(ctx.config))
    notional = sum(t["qty"] * t["entry"] for t in data["triggers"])
    model = ctx.config["review_model"] if notional > ctx.config["escalate_above_usd"] else None
    said = await ctx.llm.chat([
        {"role": "system", "content": "You review crypto trading plans for a risk desk. "
                                      "Give at most three short recommendations."},
        {"role": "user", "content": json.dumps({"plan": data, "scores": verdict})}],
        model=model)
    judged = {"run_id": data.get("run_id"), "strategy_id": data["strategy_id"],
              "symbol": data["symbol"], **verdict,
              "recommendations": [said.content], "model": said.model, "plan": data}
    await ctx.emit("plan_judged", judged)
    return {k: v for k, v in judged.items() if k != "plan"}


async def broker(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """broker: an approved plan's triggers -> one intent each."""
    plan_ = data["plan"]
    intents = []
    for trigger in plan_["triggers"]:
        intent = {"run_id": plan_.get("run_id"), "intent_id": trigger["trigger_id"],
                  "trigger_id": trigger["trigger_id"],
                  "strategy_id": plan_["strategy_id"], "symbol": plan_["symbol"],
                  "side": trigger["side"], "qty": trigger["qty"], "entry": trigger["entry"],
                  "stop": trigger["stop"], "risk_usd": strategy.risk(trigger),
                  "score": data["overall_score"]}
        await ctx.emit("intent", intent,
                       dedup_key=f"intent:{plan_.get('run_id')}:{trigger['trigger_id']}")
        intents.append(intent["intent_id"])
    return {"intents": intents}


async def execute(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """execution-agent: check an intent (kill switch, position, cash, the day's risk
    budget) against the exchange's account, then trade it -> trade_blocked with its
    reason, or order_submitted and fill. Runs one intent at a time (concurrency 1), so
    the day's risk read from the log includes every earlier order.

    Safe to retry: each decision's event has the intent's dedup key (one
    ``order_submitted``, ``fill`` or ``trade_blocked`` per intent however many
    attempts), and an attempt that finds its intent's order already submitted (the
    exchange's answer was lost) does not check again (its own fill changed the
    account) but sends the same ``client_order_id``, which the exchange answers with
    the first fill instead of trading twice."""
    config = ctx.config
    url = str(config["exchange_url"]).rstrip("/")
    budget = float(config["daily_risk_budget_usd"])
    async with httpx.AsyncClient(timeout=EXCHANGE_TIMEOUT) as http:
        account = await _call(http, "GET", f"{url}/account")
        common = {"run_id": account["run_id"], "intent_id": data.get("intent_id"),
                  "trigger_id": data.get("trigger_id"), "strategy_id": data.get("strategy_id"),
                  "symbol": data["symbol"], "side": data["side"], "qty": data["qty"],
                  "mode": config["mode"]}
        key = f"{account['run_id']}:{common['intent_id'] or ctx.task['id']}"
        order = await _submitted(ctx, common["intent_id"])
        if order is None:
            used = await risk_used(ctx, account["run_id"], account["day"])
            blocked = strategy.block_reason(data, account, used, budget,
                                            bool(config["kill_switch"]))
            if blocked is not None:
                reason, detail = blocked
                await ctx.emit("trade_blocked", {**common, "reason": reason, "detail": detail,
                                                 "day": account["day"]},
                               dedup_key=f"blocked:{key}")
                return {"blocked": reason, "detail": detail}
            order = {**common, "price": account["prices"][data["symbol"]], "type": "market",
                     "day": account["day"], "risk_usd": data.get("risk_usd", 0.0),
                     "budget_usd": budget, "signal_reason": data.get("score")}
            await ctx.emit("order_submitted", order, dedup_key=f"order:{key}")
        else:
            ctx.log.info("intent %s was submitted by an earlier attempt: asking the exchange "
                         "for its fill", common["intent_id"])
        fill = await _call(http, "POST", f"{url}/orders", json={
            "client_order_id": common["intent_id"], "symbol": data["symbol"],
            "side": data["side"], "qty": data["qty"]})
    await ctx.emit("fill", {**common, "order_id": fill["order_id"],
                            "fill_price": fill["fill_price"], "cost": fill["fee"],
                            "time": fill["time"], "day": order["day"]},
                   dedup_key=f"fill:{key}")
    return {"order_id": fill["order_id"], "fill_price": fill["fill_price"]}


async def _submitted(ctx: Context, intent_id: str | None) -> dict[str, Any] | None:
    """The payload of this intent's order_submitted, when an earlier attempt sent it."""
    if intent_id is None:
        return None
    page, _ = await events.query(ctx.store, events.Query(
        type="order_submitted", correlation_id=ctx.task["correlation_id"], limit=LOG_PAGE))
    return next((dict(e.payload) for e in page if e.payload.get("intent_id") == intent_id),
                None)


async def risk_used(ctx: Context, run_id: str, day: str) -> float:
    """The risk of the run's purchases on ``day`` so far, from its order_submitted events."""
    risks = [float(e.payload.get("risk_usd") or 0.0) async for e in _log(ctx, "order_submitted")
             if e.payload.get("run_id") == run_id and e.payload.get("day") == day
             and e.payload.get("side") == "buy"]
    return round(sum(risks), 2)


async def reconcile(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """reconciler: the position the run's fills in the log add up to, beside what the
    exchange's account holds; a difference above ``drift_threshold`` (in units of the
    asset) is drift -> wallet.drift for each, then reconciliation.completed."""
    threshold = float(data.get("threshold", ctx.config["drift_threshold"]))
    async with httpx.AsyncClient(timeout=EXCHANGE_TIMEOUT) as http:
        account = await _call(http, "GET", f"{str(ctx.config['exchange_url']).rstrip('/')}"
                                           "/account")
    ours: dict[str, float] = {}
    fills = 0
    async for e in _log(ctx, "fill"):
        if e.payload.get("run_id") != account["run_id"]:
            continue
        sign = 1 if e.payload["side"] == "buy" else -1
        ours[e.payload["symbol"]] = ours.get(e.payload["symbol"], 0.0) + sign * e.payload["qty"]
        fills += 1
    records = []
    for symbol in sorted(set(ours) | set(account["positions"])):
        book, venue = round(ours.get(symbol, 0.0), 8), float(account["positions"].get(symbol, 0))
        drift = round(venue - book, 8)
        record = {"symbol": symbol, "from_fills": book, "exchange": venue, "drift": drift,
                  "flagged": abs(drift) > threshold}
        records.append(record)
        if record["flagged"]:
            await ctx.emit("wallet.drift", {**record, "threshold": threshold,
                                            "run_id": account["run_id"]})
    report = {"run_id": account["run_id"], "fills": fills, "threshold": threshold,
              "records": records,
              "flagged": [r["symbol"] for r in records if r["flagged"]]}
    await ctx.emit("reconciliation.completed", report)
    return report


async def backtest(ctx: Context, data: dict[str, Any]) -> Any:
    """backtester, one step of the backtest workflow (``op``): ``prepare`` cuts the
    candles into windows, ``simulate`` trades one window (backtest.progress),
    ``report`` stores the equity curve, the trades and the results as the run's
    artifacts."""
    params = strategy.Params.of(data.get("params") or {})
    if data["op"] == "prepare":
        windows = strategy.windows(list(data["symbols"]), int(data["window_candles"]))
        total = sum(w["end"] - w["start"] for w in windows)
        await ctx.emit("backtest.planned", {"run_id": data["run_id"], "windows": len(windows),
                                            "candles_total": total})
        return {"windows": windows, "candles_total": total}
    if data["op"] == "simulate":
        cash = float(data["initial_cash"]) / len(data["symbols"])
        done = strategy.simulate(data["window"], cash, params,
                                 float(data["daily_risk_budget_usd"]))
        await ctx.emit("backtest.progress", {"run_id": data["run_id"], "symbol": done["symbol"],
                                             "candles": done["candles"],
                                             "trades": len(done["trades"])})
        return done
    if data["op"] == "report":
        made = strategy.report(list(data["windows"]), float(data["initial_cash"]))
        for name in ("equity_curve", "trades", "results"):
            await ctx.artifact(name, made[name])
        return made["results"]
    raise HandlerError(f"unknown op {data['op']!r}", retryable=False)


async def _log(ctx: Context, type_: str) -> AsyncIterator[events.Event]:
    after = 0
    while True:
        page, after_next = await events.query(ctx.store, events.Query(
            type=type_, after_seq=after, limit=LOG_PAGE))
        for event in page:
            yield event
        if after_next is None:
            return
        after = after_next


async def _call(http: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> Any:
    try:
        answer = await http.request(method, url, **kwargs)
    except httpx.TransportError as exc:
        raise HandlerError(f"exchange unreachable: {exc!r}") from exc
    if answer.status_code >= 500:
        raise HandlerError(f"exchange answered {answer.status_code}: {answer.text[:200]}")
    if answer.status_code >= 400:
        raise HandlerError(f"exchange refused: {answer.text[:200]}", retryable=False)
    return answer.json()
