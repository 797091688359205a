"""The desk's trading logic, pure: the candles, the planner's plan, the judge's scores,
the execution agent's risk checks, and a backtest that runs the same three over the
candles. The agents (``handlers.py``) and the backtest workflow both call these, so a
backtest trades as the live desk would.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

CANDLES = Path(__file__).parent / "data" / "candles.csv"
FEE_RATE = 0.001  # the exchange's taker fee, a share of the notional
JUDGE_WEIGHTS = {"trend": 0.5, "volatility": 0.3, "reward_risk": 0.2}


@dataclass(frozen=True)
class Params:
    """The planner's and the judge's settings (their agents' live config)."""

    fast: int = 12  # candles in the fast moving average
    slow: int = 48  # candles in the slow one
    atr_period: int = 14  # candles in the average true range
    stop_atr: float = 2.0  # the stop sits this many ATRs from the entry
    risk_per_trade_usd: float = 500.0  # what a stopped-out trade may lose
    min_score: float = 0.5  # the judge approves plans scoring at least this

    @classmethod
    def of(cls, config: dict[str, Any]) -> Params:
        fields = cls.__dataclass_fields__
        return cls(**{k: type(getattr(cls(), k))(v) for k, v in config.items() if k in fields})


@cache
def candles() -> dict[str, list[dict[str, Any]]]:
    """The shipped candles by symbol, oldest first."""
    by_symbol: dict[str, list[dict[str, Any]]] = {}
    with CANDLES.open(newline="") as rows:
        for row in csv.DictReader(rows):
            by_symbol.setdefault(row["symbol"], []).append(
                {"time": row["time"], **{k: float(row[k]) for k in
                                         ("open", "high", "low", "close", "volume")}})
    return by_symbol


def indicators(series: list[dict[str, Any]], at: int, p: Params) -> dict[str, float] | None:
    """The moving averages and ATR at candle ``at`` (None before there are enough)."""
    if at < max(p.slow, p.atr_period + 1) - 1:
        return None
    closes = [c["close"] for c in series[at - p.slow + 1: at + 1]]
    ranges = [max(c["high"], prev["close"]) - min(c["low"], prev["close"])
              for prev, c in zip(series[at - p.atr_period: at],
                                 series[at - p.atr_period + 1: at + 1], strict=True)]
    fast, slow = sum(closes[-p.fast:]) / p.fast, sum(closes) / p.slow
    return {"close": series[at]["close"], "fast": round(fast, 4), "slow": round(slow, 4),
            "atr": round(sum(ranges) / p.atr_period, 4),
            "trend": round((fast - slow) / slow, 6)}


def make_plan(symbol: str, at: int, p: Params, qty: float | None = None
              ) -> dict[str, Any] | None:
    """The planner: at candle ``at``, buy with the trend (sized so that the stop loses
    ``risk_per_trade_usd``) or sell against it (``qty``, else the same size)."""
    series = candles()[symbol]
    ind = indicators(series, at, p)
    if ind is None:
        return None
    side = "buy" if ind["trend"] > 0 else "sell"
    stop_distance = p.stop_atr * ind["atr"]
    size = qty if qty is not None else p.risk_per_trade_usd / stop_distance
    price = ind["close"]
    time = series[at]["time"]
    strategy_id = f"sma-{p.fast}-{p.slow}"
    return {
        "strategy_id": strategy_id, "symbol": symbol, "as_of": time, "candle": at,
        "indicators": ind,
        "triggers": [{
            "trigger_id": f"{strategy_id}:{symbol}:{time}:{side}", "side": side,
            "qty": round(size, 6), "entry": price,
            "stop": round(price - stop_distance if side == "buy" else price + stop_distance, 2),
            "target": round(price + 2 * stop_distance if side == "buy"
                            else price - 2 * stop_distance, 2)}]}


def judge(plan: dict[str, Any], p: Params) -> dict[str, Any]:
    """The judge's scores of a plan, each 0..1: how strong its trend is, how calm the
    market, its reward for the risk; approved when the weighted score reaches
    ``min_score``."""
    ind = plan["indicators"]
    [trigger] = plan["triggers"]
    with_trend = (ind["trend"] > 0) == (trigger["side"] == "buy")
    components = {
        "trend": round(min(1.0, abs(ind["trend"]) / 0.02) if with_trend else 0.0, 4),
        "volatility": round(max(0.0, 1.0 - (ind["atr"] / ind["close"]) / 0.02), 4),
        "reward_risk": round(min(1.0, abs(trigger["target"] - trigger["entry"])
                                 / abs(trigger["entry"] - trigger["stop"]) / 3), 4)}
    overall = round(sum(JUDGE_WEIGHTS[k] * v for k, v in components.items()), 4)
    return {"overall_score": overall, "component_scores": components,
            "approved": overall >= p.min_score}


def risk(trigger: dict[str, Any]) -> float:
    """What a trade loses, in USD, if its stop is hit."""
    return round(float(trigger["qty"]) * abs(float(trigger["entry"]) - float(trigger["stop"])), 2)


def block_reason(intent: dict[str, Any], account: dict[str, Any], used_today_usd: float,
                 budget_usd: float, kill_switch: bool) -> tuple[str, str] | None:
    """The execution agent's checks, in order: the kill switch, the position a sale
    needs, the cash a purchase needs, the day's risk budget. (reason, detail) or None."""
    if kill_switch:
        return "kill_switch", "the desk's kill switch is on: no new trades"
    symbol, qty = intent["symbol"], float(intent["qty"])
    held = float(account["positions"].get(symbol, 0.0))
    if intent["side"] == "sell":
        if qty > held + 1e-9:
            return "insufficient_position", f"selling {qty:g} {symbol}, holding {held:g}"
        return None
    cost = qty * float(account["prices"][symbol]) * (1 + FEE_RATE)
    if cost > float(account["cash"]):
        return "insufficient_cash", f"needs {cost:.2f} USD, has {account['cash']:.2f}"
    if used_today_usd + float(intent["risk_usd"]) > budget_usd:
        return "risk_budget", (f"{intent['risk_usd']:.2f} USD more risk would pass the day's "
                               f"budget: {used_today_usd:.2f} of {budget_usd:.2f} used")
    return None


# ------------------------------------------------------------------ backtest


def windows(symbols: list[str], size: int) -> list[dict[str, Any]]:
    """Each symbol's candles cut into windows of ``size`` (the backtest's units of work)."""
    return [{"symbol": s, "start": start, "end": min(start + size, len(candles()[s]))}
            for s in symbols for start in range(0, len(candles()[s]), size)]


def simulate(window: dict[str, Any], cash: float, p: Params, budget_usd: float
             ) -> dict[str, Any]:
    """Trade one window from flat with ``cash``: while flat in a rising market the
    planner plans a purchase each candle, the judge scores it and the execution checks
    its risk; an approved one fills at the close with the fee. The position is sold
    when the trend turns or the stop is hit, and at the window's last close. Returns
    the trades, the candles it ran, and the equity change at each candle's close."""
    symbol, series = window["symbol"], candles()[window["symbol"]]
    qty, stop, used, day = 0.0, 0.0, 0.0, ""
    trades: list[dict[str, Any]] = []
    pnl: list[tuple[str, float]] = []
    start_cash = cash
    for at in range(window["start"], window["end"]):
        time, close = series[at]["time"], series[at]["close"]
        if time[:10] != day:
            day, used = time[:10], 0.0
        ind = indicators(series, at, p)
        last = at == window["end"] - 1
        if qty > 0 and (last or ind is None or ind["trend"] <= 0 or close <= stop):
            cash, qty = _fill(trades, symbol, time, "sell", qty, close, cash, qty, None)
        elif qty == 0 and not last and ind is not None and ind["trend"] > 0:
            plan = make_plan(symbol, at, p)
            assert plan is not None
            verdict = judge(plan, p)
            [trigger] = plan["triggers"]
            intent = {**trigger, "symbol": symbol, "risk_usd": risk(trigger)}
            account = {"positions": {symbol: qty}, "prices": {symbol: close}, "cash": cash}
            if verdict["approved"] and \
                    block_reason(intent, account, used, budget_usd, False) is None:
                cash, qty = _fill(trades, symbol, time, "buy", intent["qty"], close, cash,
                                  qty, verdict["overall_score"])
                stop, used = trigger["stop"], used + intent["risk_usd"]
        pnl.append((time, round(cash + qty * close - start_cash, 2)))
    return {"symbol": symbol, "start": window["start"], "end": window["end"],
            "candles": window["end"] - window["start"], "trades": trades, "pnl": pnl}


def _fill(trades: list[dict[str, Any]], symbol: str, time: str, side: str, qty: float,
          price: float, cash: float, held: float, score: float | None
          ) -> tuple[float, float]:
    notional = qty * price
    fee = notional * FEE_RATE
    trades.append({"time": time, "symbol": symbol, "side": side, "qty": round(qty, 6),
                   "price": price, "fee": round(fee, 2), "score": score})
    if side == "buy":
        return cash - notional - fee, held + qty
    return cash + notional - fee, held - qty


def report(results: list[dict[str, Any]], initial_cash: float) -> dict[str, Any]:
    """The backtest's results from its windows: the equity curve (cash and holdings at
    each candle's close, all markets summed), the trades in time order, the figures."""
    change: dict[str, float] = {}
    for window in sorted(results, key=lambda w: (w["symbol"], w["start"])):
        before = _carried(results, window)
        for time, delta in window["pnl"]:
            change[time] = change.get(time, 0.0) + before + delta
    curve = [(t, round(initial_cash + v, 2)) for t, v in sorted(change.items())]
    trades = sorted((t for w in results for t in w["trades"]), key=lambda t: (t["time"],
                                                                              t["symbol"]))
    peak, drawdown = initial_cash, 0.0
    for _, equity in curve:
        peak = max(peak, equity)
        drawdown = max(drawdown, (peak - equity) / peak)
    final = curve[-1][1] if curve else initial_cash
    return {"equity_curve": [{"time": t, "equity": e} for t, e in curve], "trades": trades,
            "results": {
        "initial_cash": initial_cash, "final_equity": final,
        "return_pct": round((final / initial_cash - 1) * 100, 3),
        "max_drawdown_pct": round(drawdown * 100, 3), "trades": len(trades),
        "fees": round(sum(t["fee"] for t in trades), 2),
        "candles": sum(w["candles"] for w in results)}}


def _carried(results: list[dict[str, Any]], window: dict[str, Any]) -> float:
    """What the symbol's earlier windows ended with (each window starts flat)."""
    return sum(float(w["pnl"][-1][1]) for w in results
               if w["symbol"] == window["symbol"] and w["start"] < window["start"] and w["pnl"])
