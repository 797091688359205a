"""The exchange the execution agent trades on, in paper mode: the shipped candles are
its market, a clock says which candle is now.

``GET /account``: the paper account's run id (a new one each time the exchange
starts), the market time, its trading day, the last prices, the cash and positions.
``POST /orders`` (``client_order_id``, ``symbol``, ``side``, ``qty``): a market
order, filled at once at the clock's close with the taker fee; the same
``client_order_id`` again answers the first fill (a retried order never trades
twice); a sale of more than is held is refused (409). ``lose_answers(n)``: the
next ``n`` orders are filled but answered 503, as when the answer is lost on the
way back (the desk must retry with the same ``client_order_id``). The scenario moves the clock
(``at``) and may book a ``transfer`` the desk did not make (a withdrawal), which the
reconciliation should flag.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

from examples.simulators.http import JsonServer, Request
from examples.trading_desk.strategy import FEE_RATE, candles


class Exchange:
    def __init__(self, cash: float = 100_000.0) -> None:
        self.run_id = f"paper-{uuid.uuid4().hex[:8]}"  # this paper account's run
        self.cash = cash
        self.positions: dict[str, float] = {}
        self.orders: dict[str, dict[str, Any]] = {}  # by client order id
        self.candle = 0
        self.lost = 0  # answers still to lose (lose_answers)
        self.answers_lost = 0
        self._guard = threading.Lock()
        self._http = JsonServer(self._answer)

    @property
    def url(self) -> str:
        return self._http.url

    def at(self, candle: int) -> None:
        """Move the market's clock to candle number ``candle``."""
        with self._guard:
            self.candle = candle

    def lose_answers(self, n: int = 1) -> None:
        """Fill the next ``n`` orders but answer each with a 503."""
        with self._guard:
            self.lost = n

    def transfer(self, symbol: str, qty: float) -> None:
        """Book a movement of ``qty`` (negative: out) that no order made."""
        with self._guard:
            self.positions[symbol] = round(self.positions.get(symbol, 0.0) + qty, 8)

    def account(self) -> dict[str, Any]:
        with self._guard:
            return self._account()

    def _account(self) -> dict[str, Any]:
        market = candles()
        time = next(iter(market.values()))[self.candle]["time"]
        return {"run_id": self.run_id, "time": time, "day": time[:10], "candle": self.candle,
                "mode": "paper",
                "prices": {s: series[self.candle]["close"] for s, series in market.items()},
                "cash": round(self.cash, 2), "positions": dict(self.positions)}

    def _answer(self, request: Request) -> tuple[int, Any]:
        if request.method == "GET" and request.path == "/account":
            return 200, self.account()
        if request.method == "POST" and request.path == "/orders":
            return self._order(request.body)
        return 404, {"error": f"no route {request.method} {request.path}"}

    def _order(self, body: dict[str, Any]) -> tuple[int, Any]:
        try:
            client_id, symbol = str(body["client_order_id"]), str(body["symbol"])
            side, qty = str(body["side"]), float(body["qty"])
        except (KeyError, TypeError, ValueError):
            return 400, {"error": "client_order_id, symbol, side and qty are needed"}
        if symbol not in candles() or side not in ("buy", "sell") or qty <= 0:
            return 400, {"error": f"cannot {side} {qty} {symbol}"}
        with self._guard:
            if client_id in self.orders:
                return 200, self.orders[client_id]
            price = candles()[symbol][self.candle]["close"]
            held = self.positions.get(symbol, 0.0)
            if side == "sell" and qty > held + 1e-9:
                return 409, {"error": f"selling {qty} {symbol}, holding {held}"}
            fee = round(qty * price * FEE_RATE, 2)
            sign = 1 if side == "buy" else -1
            self.cash -= sign * qty * price + fee
            self.positions[symbol] = round(held + sign * qty, 8)
            fill = self.orders[client_id] = {
                "order_id": f"X-{len(self.orders) + 1:05d}", "client_order_id": client_id,
                "symbol": symbol, "side": side, "qty": qty, "fill_price": price, "fee": fee,
                "time": self._account()["time"], "status": "filled"}
            if self.lost:
                self.lost -= 1
                self.answers_lost += 1
                return 503, {"error": "the answer was lost on its way back"}
        return 200, fill

    def start(self) -> Exchange:
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()
