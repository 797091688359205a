"""The blocking HTTP client for the AgentOS REST API.

    with Client() as agentos:          # AGENTOS_URL; AGENTOS_TOKEN or `agentos login`
        agentos.import_yaml(text, publish=True)
        task = agentos.submit("echo", {"x": 1}, wait=True)     # a TaskDetail, once ended
        for task in agentos.iterate(agentos.list_tasks, status="failed"):
            ...
        with agentos.stream("alert.*") as events:
            for event in events:       # live, until closed
                ...
        with agentos.lock("device:pixel-7", ttl_s=30, wait_s=60) as lease:
            ...                        # renewed in the background; lease.token fences writes

Every method is one of ``methods.Methods`` (``AsyncClient`` has the same ones,
awaitable); results are the models of ``agentos.api.schemas``. Every non-2xx
answer raises the ``AgentOSError`` subclass for its status, carrying the
server's ``code``, ``message`` and ``details``; a server that cannot be reached
raises ``Unavailable``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

import httpx

from agentos import __version__, errors
from agentos.api.schemas.common import Page
from agentos.api.schemas.events import Event
from agentos.config import Settings
from agentos.sdk import credentials
from agentos.sdk.core import DEFAULT_TIMEOUT, Call, Plan, Sleep, SseParser, error_from
from agentos.sdk.methods import Methods

__all__ = ["DEFAULT_TIMEOUT", "Client", "EventStream", "Lease", "LockBlock", "default_owner",
           "error_from"]

LOG_POLL = 1.0  # seconds between looks of ``log_lines(follow=True)`` at a running task
FINAL_STATUSES = ("succeeded", "failed", "cancelled")

T = TypeVar("T")
Item = TypeVar("Item")


def connection(base_url: str | None, token: str | None) -> tuple[str, dict[str, str]]:
    """The server's URL and the headers to send: the URL given, else AGENTOS_URL; the
    token given, else AGENTOS_TOKEN, else the one `agentos login` kept for that URL."""
    settings = Settings()
    base = (base_url or settings.url).rstrip("/")
    token = token or settings.token or credentials.load(base)
    headers = {"User-Agent": f"agentos-sdk/{__version__}"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return base, headers


def tls(base_url: str) -> ssl.SSLContext | bool:
    """What the client checks a server's certificate with: httpx's default context for
    ``https://``; for a plain ``http://`` URL, whose requests (the client sends only
    paths under it, and follows no redirect) never shake hands, a context that trusts no
    certificate, so anything that did try TLS with it would fail rather than go
    unverified. It spares each client the default's CA bundle (~30-50 ms, a tenth of a
    CLI command). With a proxy in the environment (``getproxies``, as httpx reads them)
    the default is kept, to be cautious: how a proxy is reached is httpx's business."""
    if base_url.startswith("http://") and not urllib.request.getproxies():
        return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies, with no roots: trusts none
    return True


def unreachable(base_url: str, exc: httpx.HTTPError) -> errors.Unavailable:
    if isinstance(exc, httpx.TimeoutException):
        return errors.Unavailable(f"the AgentOS server at {base_url} did not answer in time",
                                  code="server_timeout")
    return errors.Unavailable(
        f"cannot reach the AgentOS server at {base_url} (is `agentos serve` running?)",
        code="server_unreachable", details={"reason": str(exc)})


class Client(Methods):
    """One connection pool to one AgentOS server; close it, or use it in ``with``."""

    is_async = False

    def __init__(self, base_url: str | None = None, token: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.base_url, headers = connection(base_url, token)
        self.http: httpx.Client = httpx.Client(base_url=self.base_url, headers=headers,
                                               timeout=timeout, transport=transport,
                                               verify=tls(self.base_url))
        self._timeout = timeout

    def __enter__(self) -> Client:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def run(self, plan: Plan[T]) -> T:
        """Carry out a plan: send each call, pause at each sleep, return its result."""
        try:
            step = next(plan)
            while True:
                if isinstance(step, Sleep):
                    time.sleep(step.seconds)
                    step = plan.send(None)
                    continue
                try:
                    answer = self._call(step)
                except errors.AgentOSError as exc:
                    step = plan.throw(exc)
                    continue
                step = plan.send(answer)
        except StopIteration as done:
            result: T = done.value
            return result

    def _call(self, call: Call[T]) -> T:
        response = self._send(call.request(self.http))
        if not response.is_success:
            raise error_from(response, self.base_url)
        return call.parse(response)

    def _send(self, request: httpx.Request, stream: bool = False) -> httpx.Response:
        try:
            return self.http.send(request, stream=stream)
        except httpx.HTTPError as exc:
            raise unreachable(self.base_url, exc) from None

    # ----------------------------------------------------- what is not a plan

    def iterate(self, method: Callable[..., Page[Item]], /, **kwargs: Any) -> Iterator[Item]:
        """Every item of a list method, following its pages:
        ``for task in client.iterate(client.list_tasks, status="failed")``."""
        while True:
            page = method(**kwargs)
            yield from page.items()
            following = page.next_params()
            if following is None:
                return
            kwargs.update(following)

    def iter_events(self, **filters: Any) -> Iterator[Event]:
        """Every event matching ``filters`` (those of ``list_events``), page after page."""
        return self.iterate(self.list_events, **filters)

    def log_lines(self, task_id: str, attempt: int | None = None, *, follow: bool = False,
                  poll_s: float = LOG_POLL) -> Iterator[dict[str, Any]]:
        """Every line of the task's log (or of one attempt), page after page; ``follow``:
        then the new ones as they come (a running attempt's arrive with its worker's
        heartbeats) until the task has ended."""
        after: str | None = None
        while True:
            page = self.task_logs(task_id, attempt, after)
            for line in page["lines"]:
                yield line
                after = f"{line['attempt']}:{line['line']}"
            if page["next_after"] is not None:
                continue
            if not follow or page["status"] in FINAL_STATUSES:
                return  # an ended task's lines were written with its end: none follow
            time.sleep(poll_s)

    def stream(self, type: str = "*", after_seq: int | None = None,
               last_event_id: str | None = None) -> EventStream:
        """Follow the log live (Server-Sent Events): matching events from now on, or
        after ``after_seq`` / ``last_event_id``. The connection is open when this
        returns, so bad arguments raise here; iterate the stream, then close it."""
        request = stream_request(self.http, self._timeout, type, after_seq, last_event_id)
        response = self._send(request, stream=True)
        if not response.is_success:
            response.read()
            response.close()
            raise error_from(response, self.base_url)
        return EventStream(response, self.base_url)

    def lock(self, resource: str, owner: str | None = None, *, ttl_s: float = 30.0,
             wait_s: float = 30.0, priority: int | None = None,
             metadata: dict[str, Any] | None = None) -> LockBlock:
        """``with client.lock(resource, ...) as lease:`` holds the lock for the block,
        renews it in the background every ``ttl_s / 3``, and releases it on exit
        (``async with`` works too). Raises ``Conflict`` (code ``lock_unavailable``) if
        the wait ends first; ``lease.lost`` turns true if a renewal is refused (the
        lease lapsed)."""
        return LockBlock(self, resource, owner or default_owner(), ttl_s, wait_s, priority,
                         metadata)


def stream_request(http: httpx.Client | httpx.AsyncClient, timeout: float, type: str,
                   after_seq: int | None, last_event_id: str | None) -> httpx.Request:
    """The request of ``stream`` for either client: the log's matching events live,
    after ``after_seq`` or ``last_event_id`` when given."""
    params: dict[str, str | int] = {"type": type}
    if after_seq is not None:
        params["after_seq"] = after_seq
    headers = {"Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    # a stream is quiet between events (the server sends a comment every 15 s)
    return http.build_request("GET", "/api/v1/events/stream", params=params, headers=headers,
                              timeout=httpx.Timeout(timeout, read=None))


def default_owner() -> str:
    """An owner id unique to this process: host, pid and a random suffix."""
    return f"{socket.gethostname()}-{os.getpid()}-{os.urandom(3).hex()}"


@dataclass
class Lease:
    """A held lock: ``token`` is the fencing token to pass along with every write."""

    resource: str
    owner: str
    token: int
    expires_at: Any
    lost: bool = False


def lease_of(resource: str, owner: str, wait_s: float, got: Any) -> Lease:
    """The lease an acquire granted, or ``Conflict`` if it was not granted."""
    if not got.granted:
        raise errors.Conflict(f"{resource} stayed locked for {wait_s:g}s",
                              code="lock_unavailable", details=got.model_dump(mode="json"))
    return Lease(resource, owner, int(got.token), got.expires_at)


class LockBlock:
    """``with client.lock(...)`` (or ``async with``): a renewing thread keeps the lease."""

    def __init__(self, client: Client, resource: str, owner: str, ttl_s: float,
                 wait_s: float, priority: int | None, metadata: dict[str, Any] | None) -> None:
        self.client, self.resource, self.owner = client, resource, owner
        self.ttl_s, self.wait_s, self.priority, self.metadata = ttl_s, wait_s, priority, metadata
        self.lease: Lease | None = None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def __enter__(self) -> Lease:
        got = self.client.acquire_lock(self.resource, self.owner, priority=self.priority,
                                       ttl_s=self.ttl_s, wait_s=self.wait_s,
                                       metadata=self.metadata)
        self.lease = lease = lease_of(self.resource, self.owner, self.wait_s, got)
        self._renewer = threading.Thread(target=self._renew, args=(lease,), daemon=True,
                                         name=f"lock-{self.resource}")
        self._renewer.start()
        return lease

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        if self.lease is not None and not self.lease.lost:
            with contextlib.suppress(errors.Conflict):  # lapsed meanwhile: nothing to give back
                self.client.release_lock(self.resource, self.owner, self.lease.token)

    async def __aenter__(self) -> Lease:
        return await asyncio.to_thread(self.__enter__)

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await asyncio.to_thread(self.__exit__, kind, exc, tb)

    def _renew(self, lease: Lease) -> None:
        while not self._stop.wait(self.ttl_s / 3):
            try:
                renewed = self.client.renew_lock(lease.resource, lease.owner, lease.token,
                                                 self.ttl_s)
            except errors.Conflict:
                lease.lost = True
                return
            except errors.Unavailable:
                continue  # try again at the next beat; the lease may still hold
            lease.expires_at = renewed.expires_at


class EventStream:
    """The events of one Server-Sent Events response, in sequence order.

    Iterating blocks until the next event. The server ending the stream ends the
    iteration; a broken connection raises ``Unavailable`` (code ``stream_lost``).
    Either way, resume with ``client.stream(..., last_event_id=s.last_event_id)``.
    """

    def __init__(self, response: httpx.Response, base_url: str) -> None:
        self._response = response
        self._base_url = base_url
        self._lines = response.iter_lines()
        self._parser = SseParser()

    @property
    def last_event_id(self) -> str | None:
        return self._parser.last_event_id

    def __iter__(self) -> EventStream:
        return self

    def __next__(self) -> Event:
        while (line := self._next_line()) is not None:
            if (data := self._parser.feed(line)) is not None:
                return Event.model_validate_json(data)
        self.close()
        raise StopIteration

    def _next_line(self) -> str | None:
        try:
            return next(self._lines, None)
        except httpx.TransportError as exc:
            self.close()
            raise stream_lost(self._base_url, exc, self.last_event_id) from None

    def close(self) -> None:
        self._response.close()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def stream_lost(base_url: str, exc: Exception, last_event_id: str | None
                ) -> errors.Unavailable:
    return errors.Unavailable(
        f"lost the event stream from {base_url}", code="stream_lost",
        details={"reason": str(exc), "last_event_id": last_event_id})
