"""The device farm the QA agents drive: five simulated devices behind one HTTP API.

Every write to a device (``install``, ``explore``, ``run``) carries the fencing token
of the lock its caller holds. A device remembers the highest token it has accepted
and refuses a write with a lower one (409, ``stale_token``), as a real device agent
must: a caller whose lease lapsed (a paused process, a sleeping laptop) may still
believe it holds the device after the lock service has granted it to another. A
device taken offline answers 503. Every write is logged with its outcome.

    GET  /devices                    the inventory: id, platform, model, online
    POST /devices/{id}/install       {token, owner, app, version}
    POST /devices/{id}/explore       {token, owner, app, depth}: the screens reached
    POST /devices/{id}/run           {token, owner, app, version, suite, case}: passed or
                                     failed, with the defect that failed it
    GET  /log                        every write: device, op, owner, token, accepted
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from examples.simulators.http import JsonServer, Request

DATA = Path(__file__).parent / "data"
CASE_S = 0.25  # seconds a test case takes on a device
INSTALL_S = 0.2
EXPLORE_S = 0.8


def catalog() -> dict[str, Any]:
    """The devices, the apps' screens, the suites and the known defects (data/farm.json)."""
    found: dict[str, Any] = json.loads((DATA / "farm.json").read_text("utf-8"))
    return found


class Farm:
    def __init__(self) -> None:
        self.catalog = catalog()
        self.devices = {d["id"]: {**d, "online": True} for d in self.catalog["devices"]}
        self.highest: dict[str, int] = {d: 0 for d in self.devices}  # token accepted last
        self.installed: dict[str, str] = {}
        self.log: list[dict[str, Any]] = []
        self._guard = threading.Lock()
        self._http = JsonServer(self._answer)

    @property
    def url(self) -> str:
        return self._http.url

    def set_online(self, device: str, online: bool) -> None:
        with self._guard:
            self.devices[device]["online"] = online

    def _answer(self, request: Request) -> tuple[int, Any]:
        parts = request.path.strip("/").split("/")
        if request.method == "GET" and parts == ["devices"]:
            with self._guard:
                return 200, {"devices": list(self.devices.values())}
        if request.method == "GET" and parts == ["log"]:
            with self._guard:
                return 200, {"writes": list(self.log)}
        if request.method != "POST" or len(parts) != 3 or parts[0] != "devices":
            return 404, {"error": f"no route {request.method} {request.path}"}
        device, op = parts[1], parts[2]
        if device not in self.devices or op not in ("install", "explore", "run"):
            return 404, {"error": f"no device {device} or operation {op}"}
        token = request.body.get("token")
        if not isinstance(token, int) or token < 1:
            return 400, {"error": "a write needs the lock's fencing token"}
        refused = self._fence(device, op, token, str(request.body.get("owner")))
        if refused is not None:
            return refused
        return self._do(device, op, request.body)

    def _fence(self, device: str, op: str, token: int, owner: str) -> tuple[int, Any] | None:
        """Accept the write (raising the device's highest token) or refuse it; log it."""
        with self._guard:
            highest, online = self.highest[device], self.devices[device]["online"]
            accepted = online and token >= highest
            self.log.append({"device": device, "op": op, "owner": owner, "token": token,
                             "highest": highest, "accepted": accepted,
                             "at": round(time.time(), 3)})
            if accepted:
                self.highest[device] = token
        if not online:
            return 503, {"error": f"{device} is offline"}
        if not accepted:
            return 409, {"error": "stale_token", "token": token, "highest": highest}
        return None

    def _do(self, device: str, op: str, body: dict[str, Any]) -> tuple[int, Any]:
        app = self.catalog["apps"].get(str(body.get("app")))
        if app is None:
            return 404, {"error": f"no app {body.get('app')!r}"}
        platform = self.devices[device]["platform"]
        if op == "install":
            time.sleep(INSTALL_S)
            with self._guard:
                self.installed[device] = f"{body['app']}@{body.get('version')}"
            return 200, {"device": device, "installed": self.installed[device]}
        if op == "explore":
            time.sleep(EXPLORE_S)
            depth = int(body.get("depth") or 5)
            seen, frontier = ["home"], ["home"]
            for _ in range(depth):
                frontier = [n for s in frontier for n in app["links"].get(s, []) if n not in seen]
                seen += frontier
            return 200, {"device": device, "screens": seen}
        time.sleep(CASE_S)
        case, version = str(body.get("case")), str(body.get("version"))
        defect = next((d for d in self.catalog["defects"].get(version, [])
                       if d["case"] == case and platform in d["platforms"]), None)
        return 200, {"device": device, "case": case, "passed": defect is None,
                     "duration_ms": int(CASE_S * 1000),
                     **({"defect": defect["summary"], "evidence": f"{device}/{case}.png"}
                        if defect else {})}

    def start(self) -> Farm:
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()
