"""trading_desk (seed 003) end to end: a real server and worker, both backends."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from examples.trading_desk import strategy
from examples.trading_desk.projections import ALL
from examples.trading_desk.scenario import caught_up
from tests.examples.conftest import Running, wait_for

PROJECTIONS = [projection.name for projection in ALL]  # positions, fills ... backtests

FILLED = ["plan_generated", "plan_judged", "intent", "order_submitted", "fill"]
BLOCKED = ["plan_generated", "plan_judged", "intent", "trade_blocked"]
REJECTED = ["plan_generated", "plan_judged"]
KILL_SWITCH_BOUND_S = 1.0  # every intent sent later than this after the switch is blocked


def test_trading_desk(run_example: Callable[..., Running]) -> None:
    example = run_example("trading_desk")
    outcome = example.run()
    api = example.client

    def events(type_: str) -> list[dict[str, Any]]:
        return list(api.iter_events(type=type_))

    # each plan's decisions are one correlation: planned, judged, and its intent traded,
    # blocked, or never made (rejected by the judge)
    chains = Counter(tuple(c) for c in outcome["chains"].values())
    assert chains == {tuple(FILLED): 5, tuple(BLOCKED): 2, tuple(REJECTED): 1}
    judged = events("plan_judged")
    assert len(judged) == outcome["plans"] == 8
    assert sum(not e["payload"]["approved"] for e in judged) == 1
    for e in judged:
        assert set(e["payload"]["component_scores"]) == {"trend", "volatility", "reward_risk"}
    # every fill sits in its chain under the same correlation id as its intent
    intents = {e["payload"]["intent_id"]: e for e in events("intent")}
    fills = events("fill")
    assert all(f["correlation_id"] == intents[f["payload"]["intent_id"]]["correlation_id"]
               for f in fills)

    # block reasons: the day's risk budget (one of day 1's four purchases), a sale of more
    # than was held (day 2), and the kill switch; each blocked event says why
    blocked = events("trade_blocked")
    reasons = Counter(e["payload"]["reason"] for e in blocked)
    assert outcome["block_reasons"] == dict(sorted(reasons.items()))
    assert reasons["risk_budget"] == 1 and reasons["insufficient_position"] == 1
    assert all(e["payload"]["detail"] for e in blocked)
    assert len(intents) == len(blocked) + len(fills) == outcome["run_summary"]["events"]["intent"]

    # the read models, folded from the log, agree with the exchange and the log
    assert outcome["positions"] == {s: q for s, q in outcome["exchange_positions"].items() if q}
    from_fills: dict[str, float] = {}
    for f in fills:
        sign = 1 if f["payload"]["side"] == "buy" else -1
        from_fills[f["payload"]["symbol"]] = from_fills.get(f["payload"]["symbol"], 0) + \
            sign * f["payload"]["qty"]
    assert {s: round(q, 6) for s, q in from_fills.items()} == {
        s: round(q, 6) for s, q in outcome["positions"].items()}
    assert outcome["fills"] == len(fills) == len(events("order_submitted"))
    # one order's answer was lost: its execution was retried and the exchange's first
    # fill taken, so every order traded once and is in the log once
    assert outcome["answers_lost"] == 1
    assert outcome["execution_attempts"].count(2) == 1
    assert outcome["execution_attempts"].count(1) == len(intents) - 1
    assert len(fills) == outcome["exchange_orders"]
    assert len({f["payload"]["order_id"] for f in fills}) == len(fills)
    day1 = outcome["risk_budget"]["2025-10-18"]
    assert day1 == {"used_usd": 1500.03, "budget_usd": 1800.0, "orders": 3, "blocked": 1}
    assert "2025-10-20" not in outcome["risk_budget"]  # day 2 only sold
    summary = outcome["run_summary"]
    assert summary["status"] == "running" and summary["mode"] == "paper"
    assert summary["events"] == {t: len(events(t)) for t in (
        "plan_generated", "plan_judged", "intent", "trade_blocked", "order_submitted", "fill")}
    # rebuilt from scratch, each projection comes back to the same state (run_summary's
    # status is worked out when read, from its last event's time: the same within 5 min)
    for name in PROJECTIONS:
        before = api.projection_state(name)["items"]
        assert before, f"{name} folded nothing"
        api.rebuild_projection(name)
        wait_for(f"{name} rebuilt", lambda name=name, before=before: api.get_projection(
            name)["status"] == "live" and api.projection_state(name)["items"] == before,
            running=example)

    # the kill switch: every intent sent more than a second after it went on was blocked
    # for it, none traded from then on; trading resumed once it was off
    drill = outcome["kill_switch"]
    sent = drill["intents"][:-1]
    assert sent[0]["outcome"] == "fill"
    late = [i for i in sent if i["after_switch_s"] > KILL_SWITCH_BOUND_S]
    assert late and {i["outcome"] for i in late} == {"kill_switch"}
    assert drill["last_fill_after_switch_s"] is None or \
        drill["last_fill_after_switch_s"] < KILL_SWITCH_BOUND_S
    assert drill["after_switch_off"] == "fill"
    assert reasons["kill_switch"] == sum(i["outcome"] == "kill_switch" for i in drill["intents"])
    flips = api.audit(action="agents.config_set", actor="user:risk-officer")["entries"]
    assert [e["resource_id"] for e in flips] == ["execution-agent/kill_switch"]

    # the backtest: a workflow whose progress the backtests projection followed window by
    # window, its results the same as the strategy's own over the shipped candles
    bt = outcome["backtest"]
    assert bt["status"] == "completed" and bt["progress"] == 1.0
    assert bt["candles_processed"] == bt["candles_total"] == 3000 and bt["windows_done"] == 12
    assert bt["artifacts"] == ["equity_curve", "results", "trades"]
    params = strategy.Params()
    expected = strategy.report([strategy.simulate(w, 50_000, params, 1800) for w in
                                strategy.windows(["BTC-USD", "ETH-USD"], 250)], 100_000)
    assert bt["results"] == expected["results"]
    assert bt["results"]["trades"] == bt["trades"] > 0
    curve = api.run_artifact(bt["run"], "equity_curve")
    assert len(curve) == 1500 and curve[-1]["equity"] == bt["results"]["final_equity"]
    # the shape the run page charts: a time and numbers only
    assert all(set(point) == {"time", "equity"} and isinstance(point["time"], str)
               and isinstance(point["equity"], int | float) for point in curve)
    assert api.run_artifact(bt["run"], "trades") == expected["trades"]
    run = api.get_run(bt["run"])
    assert [len(s["tasks"]) for s in run["steps"]] == [1, 12, 1]

    # reconciliation: no drift, then the withdrawal the desk did not make is flagged
    assert outcome["reconciliation"] == [[], ["ETH-USD"]]
    assert outcome["drift"] == {"ETH-USD": -0.5}
    [drift] = events("wallet.drift")
    assert drift["payload"]["symbol"] == "ETH-USD"

    # the judge's LLM calls by model: one a plan, large plans to the stronger model
    by_model = Counter(e["payload"]["model"] for e in judged)
    assert outcome["judge_llm_calls"] == dict(by_model)
    assert set(by_model) == {"gpt-4o-mini", "gpt-4o"} and sum(by_model.values()) == 8
    calls = api.query_metric("llm.calls", agg="sum", tags={"agent": "judge"}, group_by="model")
    assert {g["group"]: sum(p["value"] for p in g["points"]) for g in calls["groups"]} == \
        dict(by_model)
    caught_up(api)
