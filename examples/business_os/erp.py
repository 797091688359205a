"""The ERP the billing agent talks to: books invoices, and misbehaves as told.

``POST /invoices/{id}`` books the invoice (a ledger id back). ``misbehave`` makes an
invoice's first N requests answer 503 (``fail``) or each of its requests hang for
some seconds (``hang_s``), as ERPs do; ``GET /invoices`` shows what was booked and
how many requests each invoice took.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from examples.simulators.http import JsonServer, Request


class Erp:
    def __init__(self) -> None:
        self.booked: dict[str, dict[str, Any]] = {}
        self.requests: dict[str, int] = {}
        self._rules: dict[str, dict[str, float]] = {}
        self._guard = threading.Lock()
        self._http = JsonServer(self._answer)

    @property
    def url(self) -> str:
        return self._http.url

    def misbehave(self, invoice: str, *, fail: int = 0, hang_s: float = 0.0) -> None:
        with self._guard:
            self._rules[invoice] = {"fail": fail, "hang_s": hang_s}

    def _answer(self, request: Request) -> tuple[int, Any]:
        parts = request.path.strip("/").split("/")
        if request.method == "GET" and parts == ["invoices"]:
            with self._guard:
                return 200, {"booked": self.booked, "requests": self.requests}
        if request.method != "POST" or len(parts) != 2 or parts[0] != "invoices":
            return 404, {"error": f"no route {request.method} {request.path}"}
        invoice = parts[1]
        with self._guard:
            seen = self.requests[invoice] = self.requests.get(invoice, 0) + 1
            rule = self._rules.get(invoice, {})
        if seen <= rule.get("fail", 0):
            return 503, {"error": "ERP busy, try again"}
        if rule.get("hang_s"):
            time.sleep(rule["hang_s"])
            return 504, {"error": "gave up"}
        with self._guard:
            entry = self.booked.setdefault(invoice, {
                "ledger_id": f"GL-{len(self.booked) + 1:05d}", "invoice": invoice,
                "amount": request.body.get("amount"), "currency": request.body.get("currency")})
        return 200, entry

    def start(self) -> Erp:
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()
