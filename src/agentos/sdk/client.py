"""A synchronous HTTP client for the AgentOS REST API.

    with Client() as agentos:          # AGENTOS_URL, AGENTOS_TOKEN
        agentos.import_yaml(text, publish=True)
        for agent in agentos.iter_agents(tag="qa"):
            ...

Every non-2xx answer raises the ``AgentOSError`` subclass for its status,
carrying the server's ``code``, ``message`` and ``details``; a server that
cannot be reached raises ``Unavailable``.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from agentos import __version__, errors
from agentos.config import Settings

DEFAULT_TIMEOUT = 30.0  # seconds for a whole request

_BY_STATUS: dict[int, type[errors.AgentOSError]] = {
    cls.status: cls
    for cls in (errors.InvalidInput, errors.ValidationFailed, errors.Unauthorized,
                errors.Forbidden, errors.NotFound, errors.Conflict, errors.PayloadTooLarge,
                errors.UnsupportedMedia, errors.RateLimited, errors.Unavailable)
}


class Client:
    """One connection pool to one AgentOS server; close it, or use it in ``with``."""

    def __init__(self, base_url: str | None = None, token: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        settings = Settings()
        self.base_url = (base_url or settings.url).rstrip("/")
        token = token or settings.token
        headers = {"User-Agent": f"agentos-sdk/{__version__}"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # ------------------------------------------------------------- agents

    def list_agents(self, q: str | None = None, tag: str | None = None,
                    capability: str | None = None, status: str | None = None,
                    event: str | None = None, after: str | None = None,
                    limit: int | None = None) -> dict[str, Any]:
        """One page: ``{"agents": [summary, ...], "next_after": name or None}``."""
        params = {"q": q, "tag": tag, "capability": capability, "status": status,
                  "event": event, "after": after, "limit": limit}
        return self._json("GET", "/api/v1/agents",
                          params={k: v for k, v in params.items() if v is not None})

    def iter_agents(self, q: str | None = None, tag: str | None = None,
                    capability: str | None = None, status: str | None = None,
                    event: str | None = None) -> Iterator[dict[str, Any]]:
        """Every matching agent, following the pages."""
        after = None
        while True:
            page = self.list_agents(q, tag, capability, status, event, after=after)
            yield from page["agents"]
            after = page["next_after"]
            if after is None:
                return

    def create_agent(self, definition: dict[str, Any]) -> dict[str, Any]:
        """Create a draft (or replace the draft of that version)."""
        return self._json("POST", "/api/v1/agents", json=definition)

    def import_yaml(self, text: str, publish: bool = False) -> list[dict[str, Any]]:
        """Import a YAML stream (all documents or none); returns the stored versions."""
        body = self._json("POST", "/api/v1/agents/import", content=text.encode("utf-8"),
                          params={"publish": "true"} if publish else None,
                          headers={"Content-Type": "application/yaml"})
        agents: list[dict[str, Any]] = body["agents"]
        return agents

    def get_agent(self, name: str) -> dict[str, Any]:
        """The latest published version, else the newest draft."""
        return self._json("GET", _path("agents", name))

    def versions(self, name: str) -> list[dict[str, Any]]:
        """Every version of an agent, highest first."""
        versions: list[dict[str, Any]] = self._json("GET", _path("agents", name,
                                                                 "versions"))["versions"]
        return versions

    def get_version(self, name: str, version: str) -> dict[str, Any]:
        return self._json("GET", _path("agents", name, "versions", version))

    def publish(self, name: str, version: str) -> dict[str, Any]:
        return self._json("POST", _path("agents", name, "versions", version, "publish"))

    def deprecate(self, name: str, version: str) -> dict[str, Any]:
        return self._json("POST", _path("agents", name, "versions", version, "deprecate"))

    def archive(self, name: str, version: str) -> dict[str, Any]:
        return self._json("POST", _path("agents", name, "versions", version, "archive"))

    def delete_draft(self, name: str, version: str) -> None:
        self._request("DELETE", _path("agents", name, "versions", version))

    def export(self, name: str, version: str | None = None) -> str:
        """The definition as YAML: the current version, or ``version``."""
        params = {"version": version} if version is not None else None
        return self._request("GET", _path("agents", name, "export"), params=params).text

    # ------------------------------------------------------------- health

    def health(self) -> dict[str, Any]:
        """The server process is alive."""
        return self._json("GET", "/health")

    def ready(self) -> dict[str, Any]:
        """The server's database answers and its schema is current (else ``Unavailable``)."""
        return self._json("GET", "/ready")

    # ---------------------------------------------------------- transport

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        body: dict[str, Any] = self._request(method, path, **kwargs).json()
        return body

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise errors.Unavailable(
                f"the AgentOS server at {self.base_url} did not answer in time",
                code="server_timeout") from None
        except httpx.TransportError as exc:
            raise errors.Unavailable(
                f"cannot reach the AgentOS server at {self.base_url} "
                "(is `agentos serve` running?)",
                code="server_unreachable", details={"reason": str(exc)}) from None
        if not response.is_success:
            raise error_from(response)
        return response


def error_from(response: httpx.Response) -> errors.AgentOSError:
    """The domain error a non-2xx response stands for."""
    status = response.status_code
    cls = _BY_STATUS.get(status) or (errors.InvalidInput if status < 500
                                     else errors.AgentOSError)
    try:
        error = response.json()["error"]
        return cls(str(error["message"]), code=error.get("code"), details=error.get("details"))
    except (ValueError, KeyError, TypeError):
        # not our error shape: a proxy, or not an AgentOS server at all
        text = " ".join(response.text.split())[:200]
        return cls(f"HTTP {status} from {response.request.url}" + (f": {text}" if text else ""),
                   code=f"http_{status}")


def _path(*segments: str) -> str:
    return "/api/v1/" + "/".join(quote(s, safe="") for s in segments)
