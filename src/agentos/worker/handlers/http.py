"""``http`` handlers: POST the task input as JSON to a webhook; its JSON object
reply is the output.

SSRF protection: the URL's host, and the host of every redirect, must be in
``AGENTOS_HTTP_ALLOW`` (comma-separated ``host``, ``host:port`` or
``*.domain``); empty, the default, allows nothing. Redirects are followed by
hand, one checked hop at a time. A 2xx reply is the output; 408, 429, 5xx and
connection errors are retryable; any other status fails for good.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

import agentos
from agentos import agent_spec
from agentos.config import Settings
from agentos.worker.handlers.context import Context, Handler, HandlerError

MAX_REDIRECTS = 5
CONNECT_TIMEOUT = 10.0  # seconds; the task's timeout bounds the whole call
BODY_TAIL = 500  # characters of a reply quoted in an error
RETRYABLE_STATUS = frozenset({408, 425, 429})
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class AllowList:
    """Hosts a handler may call: ``(host, port or None for any)``; ``*.`` matches subdomains."""

    entries: tuple[tuple[str, int | None], ...]

    @classmethod
    def parse(cls, text: str) -> AllowList:
        entries = []
        for raw in text.split(","):
            item = raw.strip().lower()
            if not item:
                continue
            host, port = item, None
            if item.startswith("["):  # [v6] or [v6]:port
                host, _, rest = item[1:].partition("]")
                port = _port(rest[1:], raw) if rest.startswith(":") else None
            elif item.count(":") == 1:
                host, _, number = item.partition(":")
                port = _port(number, raw)
            if not host:
                raise HandlerError(f"AGENTOS_HTTP_ALLOW entry {raw.strip()!r} names no host",
                                   retryable=False)
            entries.append((host, port))
        return cls(tuple(entries))

    def allows(self, url: httpx.URL) -> bool:
        host = url.host.lower()
        port = url.port or _DEFAULT_PORTS.get(url.scheme)
        for allowed, allowed_port in self.entries:
            if allowed_port is not None and allowed_port != port:
                continue
            if host == allowed or (allowed.startswith("*.") and host.endswith(allowed[1:])):
                return True
        return False

    def check(self, url: httpx.URL) -> None:
        if url.scheme not in _DEFAULT_PORTS:
            raise HandlerError(f"refusing {url}: only http and https", retryable=False)
        if not self.allows(url):
            port = url.port or _DEFAULT_PORTS[url.scheme]
            raise HandlerError(
                f"refusing to call {url.host}:{port}: http handlers may only call hosts "
                f"listed in AGENTOS_HTTP_ALLOW (comma-separated host, host:port or *.domain, "
                f"e.g. AGENTOS_HTTP_ALLOW={url.host}:{port})", retryable=False)


def _port(text: str, entry: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise HandlerError(f"AGENTOS_HTTP_ALLOW entry {entry.strip()!r} has a bad port",
                           retryable=False)
    return int(text)


def make(spec: agent_spec.HttpHandler, settings: Settings) -> Handler:
    allowed = AllowList.parse(settings.http_allow)
    url = httpx.URL(spec.url)

    async def run(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
        headers = {"user-agent": f"agentos/{agentos.__version__}",
                   "x-agentos-task-id": str(ctx.task["id"]),
                   "x-agentos-attempt": str(ctx.task["attempt"]),
                   "x-agentos-correlation-id": str(ctx.task["correlation_id"]),
                   **spec.headers}
        async with httpx.AsyncClient(timeout=httpx.Timeout(None, connect=CONNECT_TIMEOUT),
                                     follow_redirects=False) as client:
            request = client.build_request("POST", url, json=data, headers=headers)
            for _ in range(MAX_REDIRECTS + 1):
                allowed.check(request.url)
                try:
                    response = await client.send(request)
                except httpx.TransportError as exc:
                    raise HandlerError(f"POST {request.url} failed: {exc!r}") from exc
                if response.next_request is None:
                    return reply(response)
                request = response.next_request
        raise HandlerError(f"POST {url}: more than {MAX_REDIRECTS} redirects", retryable=False)

    return run


def reply(response: httpx.Response) -> dict[str, Any]:
    """The output of a webhook's final response, or why it failed."""
    where = f"POST {response.request.url} answered {response.status_code}"
    if not response.is_success:
        retryable = response.status_code >= 500 or response.status_code in RETRYABLE_STATUS
        raise HandlerError(f"{where}: {response.text[:BODY_TAIL]}", retryable=retryable)
    if not response.content.strip():
        return {}
    try:
        output = response.json()
    except ValueError:
        raise HandlerError(f"{where} without a JSON body: {response.text[:BODY_TAIL]!r}",
                           retryable=False) from None
    if not isinstance(output, dict):
        raise HandlerError(f"{where} with JSON {type(output).__name__}, not an object",
                           retryable=False)
    return output
