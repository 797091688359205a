"""The asyncio HTTP client: ``Client``'s methods, awaitable.

    async with AsyncClient() as agentos:     # AGENTOS_URL; AGENTOS_TOKEN or `agentos login`
        task = await agentos.submit("echo", {"x": 1}, wait=True)
        async for event in await agentos.stream("alert.*"):
            ...
        async with agentos.lock("device:pixel-7", ttl_s=30, wait_s=60) as lease:
            ...
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Any, TypeVar

import httpx

from agentos import errors
from agentos.api.schemas.common import Page
from agentos.api.schemas.events import Event
from agentos.sdk.client import (
    FINAL_STATUSES,
    LOG_POLL,
    Lease,
    connection,
    default_owner,
    lease_of,
    stream_lost,
    stream_request,
    tls,
    unreachable,
)
from agentos.sdk.core import DEFAULT_TIMEOUT, Call, Plan, Sleep, SseParser, error_from
from agentos.sdk.methods import Methods

T = TypeVar("T")
Item = TypeVar("Item")


class AsyncClient(Methods):
    """One connection pool to one AgentOS server; ``await close()``, or ``async with``."""

    is_async = True

    def __init__(self, base_url: str | None = None, token: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.base_url, headers = connection(base_url, token)
        self.http: httpx.AsyncClient = httpx.AsyncClient(
            base_url=self.base_url, headers=headers, timeout=timeout, transport=transport,
            verify=tls(self.base_url))
        self._timeout = timeout

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        await self.http.aclose()

    async def run(self, plan: Plan[T]) -> T:
        """Carry out a plan: send each call, pause at each sleep, return its result."""
        try:
            step = next(plan)
            while True:
                if isinstance(step, Sleep):
                    await asyncio.sleep(step.seconds)
                    step = plan.send(None)
                    continue
                try:
                    answer = await self._call(step)
                except errors.AgentOSError as exc:
                    step = plan.throw(exc)
                    continue
                step = plan.send(answer)
        except StopIteration as done:
            result: T = done.value
            return result

    async def _call(self, call: Call[T]) -> T:
        response = await self._send(call.request(self.http))
        if not response.is_success:
            raise error_from(response, self.base_url)
        return call.parse(response)

    async def _send(self, request: httpx.Request, stream: bool = False) -> httpx.Response:
        try:
            return await self.http.send(request, stream=stream)
        except httpx.HTTPError as exc:
            raise unreachable(self.base_url, exc) from None

    # ----------------------------------------------------- what is not a plan

    async def iterate(self, method: Callable[..., Awaitable[Page[Item]]], /, **kwargs: Any
                      ) -> AsyncIterator[Item]:
        """Every item of a list method, following its pages:
        ``async for task in client.iterate(client.list_tasks, status="failed")``."""
        while True:
            page = await method(**kwargs)
            for item in page.items():
                yield item
            following = page.next_params()
            if following is None:
                return
            kwargs.update(following)

    def iter_events(self, **filters: Any) -> AsyncIterator[Event]:
        """Every event matching ``filters`` (those of ``list_events``), page after page."""
        return self.iterate(self.list_events, **filters)

    async def log_lines(self, task_id: str, attempt: int | None = None, *,
                        follow: bool = False, poll_s: float = LOG_POLL
                        ) -> AsyncIterator[dict[str, Any]]:
        """Every line of the task's log, following its pages (see ``Client.log_lines``)."""
        after: str | None = None
        while True:
            page = await self.task_logs(task_id, attempt, after)
            for line in page["lines"]:
                yield line
                after = f"{line['attempt']}:{line['line']}"
            if page["next_after"] is not None:
                continue
            if not follow or page["status"] in FINAL_STATUSES:
                return
            await asyncio.sleep(poll_s)

    async def stream(self, type: str = "*", after_seq: int | None = None,
                     last_event_id: str | None = None) -> AsyncEventStream:
        """Follow the log live (see ``Client.stream``); iterate with ``async for``."""
        request = stream_request(self.http, self._timeout, type, after_seq, last_event_id)
        response = await self._send(request, stream=True)
        if not response.is_success:
            await response.aread()
            await response.aclose()
            raise error_from(response, self.base_url)
        return AsyncEventStream(response, self.base_url)

    def lock(self, resource: str, owner: str | None = None, *, ttl_s: float = 30.0,
             wait_s: float = 30.0, priority: int | None = None,
             metadata: dict[str, Any] | None = None) -> AsyncLockBlock:
        """``async with client.lock(resource, ...) as lease:`` (see ``Client.lock``)."""
        return AsyncLockBlock(self, resource, owner or default_owner(), ttl_s, wait_s,
                              priority, metadata)


class AsyncLockBlock:
    """The ``async with client.lock(...)`` block: a task keeps the lease renewed."""

    def __init__(self, client: AsyncClient, resource: str, owner: str, ttl_s: float,
                 wait_s: float, priority: int | None, metadata: dict[str, Any] | None) -> None:
        self.client, self.resource, self.owner = client, resource, owner
        self.ttl_s, self.wait_s, self.priority, self.metadata = ttl_s, wait_s, priority, metadata
        self.lease: Lease | None = None
        self._renewer: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Lease:
        got = await self.client.acquire_lock(self.resource, self.owner, priority=self.priority,
                                             ttl_s=self.ttl_s, wait_s=self.wait_s,
                                             metadata=self.metadata)
        self.lease = lease_of(self.resource, self.owner, self.wait_s, got)
        self._renewer = asyncio.create_task(self._renew(self.lease))
        return self.lease

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            await asyncio.gather(self._renewer, return_exceptions=True)
        if self.lease is not None and not self.lease.lost:
            with contextlib.suppress(errors.Conflict):  # lapsed meanwhile: nothing to give back
                await self.client.release_lock(self.resource, self.owner, self.lease.token)

    async def _renew(self, lease: Lease) -> None:
        while True:
            await asyncio.sleep(self.ttl_s / 3)
            try:
                renewed = await self.client.renew_lock(lease.resource, lease.owner,
                                                       lease.token, self.ttl_s)
            except errors.Conflict:
                lease.lost = True
                return
            except errors.Unavailable:
                continue  # try again at the next beat; the lease may still hold
            lease.expires_at = renewed.expires_at


class AsyncEventStream:
    """``EventStream`` for ``async for``."""

    def __init__(self, response: httpx.Response, base_url: str) -> None:
        self._response = response
        self._base_url = base_url
        self._lines = response.aiter_lines()
        self._parser = SseParser()

    @property
    def last_event_id(self) -> str | None:
        return self._parser.last_event_id

    def __aiter__(self) -> AsyncEventStream:
        return self

    async def __anext__(self) -> Event:
        while (line := await self._next_line()) is not None:
            if (data := self._parser.feed(line)) is not None:
                return Event.model_validate_json(data)
        await self.close()
        raise StopAsyncIteration

    async def _next_line(self) -> str | None:
        try:
            return await anext(self._lines, None)
        except httpx.TransportError as exc:
            await self.close()
            raise stream_lost(self._base_url, exc, self.last_event_id) from None

    async def close(self) -> None:
        await self._response.aclose()

    async def __aenter__(self) -> AsyncEventStream:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()
