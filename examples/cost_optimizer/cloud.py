"""The customers' cloud the cost agents read and the optimizer changes.

``GET /prices``: the monthly price of each type. ``GET /customers/{c}/resources``:
each resource with its type, average CPU over the lookback, monthly cost and state.
``POST /customers/{c}/resources/{r}/stop`` stops an idle one; ``POST .../resize``
(``{"to": TYPE}``) moves one to a smaller type. Each
change is kept in ``actions``; changing a resource twice in the same way is refused
(409), so an optimisation applied twice would show.
"""

from __future__ import annotations

import copy
import json
import threading
from pathlib import Path
from typing import Any

from examples.simulators.http import JsonServer, Request

DATA = Path(__file__).parent / "data" / "customers.json"


def inventory() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DATA.read_text())
    return loaded


class Cloud:
    def __init__(self) -> None:
        data = inventory()
        self.prices: dict[str, float] = data["prices_usd_month"]
        self.resources: dict[str, dict[str, dict[str, Any]]] = {
            customer: {r["id"]: {**copy.deepcopy(r), "state": "running"} for r in found}
            for customer, found in data["customers"].items()}
        self.actions: list[dict[str, Any]] = []
        self._guard = threading.Lock()
        self._http = JsonServer(self._answer)

    @property
    def url(self) -> str:
        return self._http.url

    def _answer(self, request: Request) -> tuple[int, Any]:
        parts = request.path.strip("/").split("/")
        if request.method == "GET" and parts == ["prices"]:
            return 200, self.prices
        if len(parts) < 3 or parts[0] != "customers" or parts[2] != "resources" or \
                parts[1] not in self.resources:
            return 404, {"error": f"no route {request.method} {request.path}"}
        customer = parts[1]
        with self._guard:
            if request.method == "GET" and len(parts) == 3:
                return 200, {"customer": customer, "resources": [
                    {**r, "monthly_usd": self.prices[r["type"]]}
                    for r in self.resources[customer].values()]}
            if request.method == "POST" and len(parts) == 5 and \
                    parts[3] in self.resources[customer]:
                return self._change(customer, self.resources[customer][parts[3]], parts[4],
                                    request.body)
        return 404, {"error": f"no route {request.method} {request.path}"}

    def _change(self, customer: str, resource: dict[str, Any], action: str,
                body: dict[str, Any]) -> tuple[int, Any]:
        if action == "stop":
            if resource["state"] == "stopped":
                return 409, {"error": f"{resource['id']} is stopped already"}
            resource["state"] = "stopped"
        elif action == "resize":
            target = str(body.get("to"))
            if target not in self.prices or target == resource["type"]:
                return 409, {"error": f"cannot resize {resource['id']} to {target}"}
            resource["type"] = target
        else:
            return 404, {"error": f"no action {action}"}
        self.actions.append({"customer": customer, "resource": resource["id"],
                             "action": action, **body})
        return 200, {**resource, "monthly_usd": self.prices[resource["type"]]}

    def start(self) -> Cloud:
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()
