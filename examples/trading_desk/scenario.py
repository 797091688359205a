"""The trading desk's day, as its people would run it through the API.

Install: the six agents, the backtest workflow, a trader and a risk officer, the
exchange's address in the execution agent's and the reconciler's live config. Run:
a backtest over the shipped candles (a workflow with progress; equity curve, trades
and results as artifacts) while the desk paper-trades two days (planner -> judge ->
broker -> execution, each plan's decisions one correlation), the risk officer's kill
switch against the trader's manual intents, a reconciliation before and after a
withdrawal the desk did not make, and the read models the desk watches.
"""

from __future__ import annotations

import functools
import time
from datetime import datetime
from typing import Any

from agentos.examples import (
    Example,
    Simulators,
    ensure_user,
    publish_agents,
    publish_workflows,
    wait_for,
    wait_tasks,
)
from agentos.sdk import Client
from examples.trading_desk.projections import ALL as PROJECTIONS
from examples.trading_desk.strategy import candles

AGENTS = [f"agents/{name}.yaml" for name in ("strategy-planner", "judge", "broker",
                                             "execution-agent", "reconciler", "backtester")]
USERS = {"trader": ("operator", "trader-password-1"),
         "risk-officer": ("operator", "risk-officer-password-1")}
SYMBOLS = ["BTC-USD", "ETH-USD"]
# the paper session: (candle, markets planned) over two market days. One plan's chain
# runs at a time where its trade changes what the next one may do (the day's risk
# budget, the position a sale needs), so the day ends the same way every time.
SESSION = ((417, SYMBOLS), (420, ["BTC-USD"]), (421, ["ETH-USD"]),  # 2025-10-18 09:00-13:00
           (465, SYMBOLS), (468, SYMBOLS))  # 2025-10-20 09:00, 12:00
KILL_DAY = 504  # 2025-10-22: the kill switch
MANUAL_EVERY_S = 0.2  # the trader's manual intents during the kill switch drill
MANUAL_COUNT = 12
FLIP_AFTER = 4  # manual intents sent before the risk officer flips the switch
CACHE_TTL_S = 1.2  # a config change reaches workers sharing SQLite within 1 s
LOSE_ANSWER_AT = 465  # day 2's first order is filled but its answer lost: the retry
# must neither trade nor record it twice
WITHDRAWAL = ("ETH-USD", -0.5)  # moved out on the exchange, not by the desk


def install(client: Client, sims: Simulators) -> list[str]:
    lines = publish_agents(client, EXAMPLE, AGENTS)
    lines += publish_workflows(client, EXAMPLE, ["workflows/backtest.yaml"])
    for name, (role, password) in USERS.items():
        lines.append(ensure_user(client, name, password, role))
    url = sims.handles["exchange"].url
    for agent in ("execution-agent", "reconciler"):
        client.set_config(agent, "exchange_url", url)
    lines.append(f"execution-agent, reconciler exchange_url = {url} (live config)")
    return lines


def run(client: Client, sims: Simulators) -> dict[str, Any]:
    exchange = sims.handles["exchange"]
    backtest = client.start_run("backtest", {"symbols": SYMBOLS, "window_candles": 250,
                                             "initial_cash": 100_000,
                                             "daily_risk_budget_usd": 1800})
    with Client(client.base_url) as trader, Client(client.base_url) as risk_officer:
        trader.login("trader", USERS["trader"][1])
        risk_officer.login("risk-officer", USERS["risk-officer"][1])
        plans = []
        for candle, markets in SESSION:
            exchange.at(candle)
            if candle == LOSE_ANSWER_AT:
                exchange.lose_answers(1)
            plans += _plan(trader, candle, markets, exchange.run_id)
        drill = _kill_switch_drill(client, trader, risk_officer, exchange)
    wait_for("the backtest", lambda: client.get_run(backtest["id"])["status"] in (
        "succeeded", "failed", "cancelled"), timeout_s=90)
    reconciled = [_reconcile(client)]
    venue = exchange.account()["positions"]
    exchange.transfer(*WITHDRAWAL)
    reconciled.append(_reconcile(client))
    caught_up(client)
    run_id = exchange.run_id
    state = {p.name: client.projection_state(p.name, limit=1000)["items"]
             for p in PROJECTIONS if p.name in ("block_reasons", "backtests")}
    for name in ("positions", "fills", "risk_budget"):  # this run's, keyed RUN/...
        state[name] = {k.removeprefix(f"{run_id}/"): v for k, v in client.projection_state(
            name, prefix=f"{run_id}/", limit=1000)["items"].items()}
    state["run_summary"] = client.projection_state("run_summary", key=run_id)["items"]
    return {
        "run_id": run_id,
        "plans": len(plans),
        "chains": {c: [e["type"] for e in client.list_events(correlation_id=c)["events"]
                       if not e["type"].startswith("task.")] for c in plans},
        "positions": {s: v["qty"] for s, v in sorted(state["positions"].items())},
        "exchange_positions": venue,
        "exchange_orders": len(exchange.orders),
        "answers_lost": exchange.answers_lost,
        "execution_attempts": sorted(t["attempt"] for t in client.list_tasks(
            agent="execution-agent", limit=200)["tasks"]),
        "block_reasons": {r: v["count"] for r, v in sorted(state["block_reasons"].items())},
        "risk_budget": {d: {k: v[k] for k in ("used_usd", "budget_usd", "orders", "blocked")}
                        for d, v in sorted(state["risk_budget"].items())},
        "run_summary": {k: state["run_summary"][run_id][k] for k in ("status", "mode",
                                                                      "events")},
        "fills": len(state["fills"]),
        "kill_switch": drill,
        "backtest": {"run": backtest["id"], **{k: state["backtests"][backtest["id"]][k] for k in (
                         "status", "progress", "candles_processed", "candles_total",
                         "windows_done", "trades")},
                     "artifacts": sorted(a["name"] for a in client.run_artifacts(backtest["id"])),
                     "results": client.run_artifact(backtest["id"], "results")},
        "reconciliation": [r["flagged"] for r in reconciled],
        "drift": {r["symbol"]: r["drift"] for r in reconciled[-1]["records"] if r["flagged"]},
        "judge_llm_calls": {row["key"]: row["calls"] for row in
                            client.llm_summary(by="model", agent="judge")["rows"]},
    }


def _plan(trader: Client, candle: int, markets: list[str], run_id: str) -> list[str]:
    """The planner's tasks for each market at ``candle``; waits until each plan's chain
    has ended (judged, and each intent blocked or filled). Their correlation ids."""
    tasks = trader.submit_batch([{"agent": "strategy-planner", "type": "plan",
                                  "input": {"symbol": s, "candle": candle, "run_id": run_id}}
                                 for s in markets])
    correlations = [t["correlation_id"] for t in tasks]
    wait_tasks(trader, [t["id"] for t in tasks])
    for correlation in correlations:
        wait_for(f"the decisions of plan {correlation}",
                 functools.partial(_settled, trader, correlation), timeout_s=30)
    return correlations


def _settled(client: Client, correlation: str) -> bool:
    chain = client.list_events(correlation_id=correlation)["events"]
    judged = [e["payload"] for e in chain if e["type"] == "plan_judged"]
    if not judged:
        return False
    if not judged[0]["approved"]:
        return True  # rejected: the broker makes no intent of it
    count = {t: sum(e["type"] == t for e in chain) for t in ("intent", "trade_blocked", "fill")}
    return bool(count["intent"] == len(judged[0]["plan"]["triggers"])
                == count["trade_blocked"] + count["fill"])


def _kill_switch_drill(admin: Client, trader: Client, risk_officer: Client,
                       exchange: Any) -> dict[str, Any]:
    """The trader sends small manual intents every 0.2 s; after the fourth (and once the
    first has traded) the risk officer turns the kill switch on; then it goes off
    again, and one more manual intent trades. Each intent's outcome, with how long
    after the switch it was sent (the server's clock: the config change's event)."""
    exchange.at(KILL_DAY + 10)
    price = exchange.account()["prices"]["ETH-USD"]
    sent: list[Any] = []  # the SDK's AppendedEvent models
    for n in range(MANUAL_COUNT):
        if n == FLIP_AFTER:  # once the trader's first intent has traded
            wait_for("the first manual intent", lambda: _settled_intent(
                admin, sent[0]["correlation_id"]), timeout_s=30)
            risk_officer.set_config("execution-agent", "kill_switch", True)
        sent.append(trader.emit("intent", _manual(n, price, exchange.run_id),
                                source="desk:trader"))
        time.sleep(MANUAL_EVERY_S)
    # the switch's own change: the newest (an earlier run on this database left others)
    [flipped] = admin.list_events(type="agent.config_changed", newest_first=True,
                                  limit=1)["events"]
    wait_for("the manual intents' outcomes", lambda: all(
        _settled_intent(admin, e["correlation_id"]) for e in sent), timeout_s=30)
    risk_officer.unset_config("execution-agent", "kill_switch")
    time.sleep(CACHE_TTL_S)
    sent.append(trader.emit("intent", _manual(MANUAL_COUNT, price, exchange.run_id),
                            source="desk:trader"))
    wait_for("the manual intents' outcomes", lambda: all(
        _settled_intent(admin, e["correlation_id"]) for e in sent), timeout_s=30)
    flip_at = _at(flipped["created_at"])
    outcomes = [(round(_at(e["created_at"]) - flip_at, 3),
                 _settled_intent(admin, e["correlation_id"])) for e in sent]
    filled_while_on = [after for after, said in outcomes[:-1] if after > 0 and said == "fill"]
    return {"intents": [{"after_switch_s": after, "outcome": said} for after, said in outcomes],
            "last_fill_after_switch_s": max(filled_while_on, default=None),
            "after_switch_off": outcomes[-1][1]}


def _manual(n: int, price: float, run_id: str) -> dict[str, Any]:
    stop = round(price * 0.98, 2)
    return {"run_id": run_id, "intent_id": f"{run_id}:manual-{n}", "trigger_id": f"manual-{n}",
            "strategy_id": "manual",
            "symbol": "ETH-USD", "side": "buy", "qty": 0.1, "entry": price, "stop": stop,
            "risk_usd": round(0.1 * (price - stop), 2)}


def _settled_intent(client: Client, correlation: str) -> str | None:
    """``fill``, the block's reason, or None while the execution agent has not decided."""
    for event in client.list_events(correlation_id=correlation)["events"]:
        if event["type"] == "fill":
            return "fill"
        if event["type"] == "trade_blocked":
            return str(event["payload"]["reason"])
    return None


def _reconcile(client: Client) -> dict[str, Any]:
    task = client.submit("reconciler", {}, type="reconcile")
    done = wait_tasks(client, [task["id"]])[task["id"]]
    if done["status"] != "succeeded":
        raise RuntimeError(f"reconciliation {task['id']} {done['status']}: {done['error']}")
    output: dict[str, Any] = done["output"]
    return output


def caught_up(client: Client) -> None:
    """Wait until every projection has folded the log's head."""
    names = {p.name for p in PROJECTIONS}
    wait_for("the projections to catch up", lambda: all(
        p["lag_events"] == 0 and p["status"] == "live" for p in client.list_projections()
        if p["name"] in names), timeout_s=30)


def _at(moment: datetime | str) -> float:
    """Seconds since the epoch of an event's ``created_at`` (the SDK's datetime)."""
    return (moment if isinstance(moment, datetime)
            else datetime.fromisoformat(moment)).timestamp()


def _simulators() -> Simulators:
    from examples.simulators.llm import FakeLlm
    from examples.trading_desk.exchange import Exchange

    candles()  # read once before the processes start
    exchange, llm = Exchange().start(), FakeLlm().start()
    return Simulators(env={"AGENTOS_LLM_BASE_URL": llm.base_url},
                      handles={"exchange": exchange, "llm": llm},
                      stops=[exchange.stop, llm.stop])


EXAMPLE = Example(
    name="trading_desk", title="Trading desk", seed="003",
    summary="planner -> judge -> broker -> execution on shipped candles, correlated "
            "decisions, projections, a backtest workflow, reconciliation, a kill switch",
    install=install, run=run, simulators=_simulators,
    env={"AGENTOS_PROJECTIONS": "examples.trading_desk.projections:ALL"},
    dashboard=(("/projections/positions", "positions rebuilt from the fills"),
               ("/projections/block_reasons", "blocked trades by reason"),
               ("/projections/risk_budget", "each day's risk against its budget"),
               ("/projections/backtests", "the backtest's progress"),
               ("/workflow-runs", "the backtest run, its windows and artifacts"),
               ("/events?type=fill", "fills; open one for its decision chain"),
               ("/llm", "the judge's LLM calls by model"),
               ("/agents/execution-agent", "the kill switch in its live config")))
