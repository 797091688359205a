"""The SDK's core, free of I/O: what each API method sends and how it reads the answer.

Every method of the API is written once, in ``methods.Methods``, as a *plan*: a
generator that yields the requests it needs (``Call``) and the pauses between
them (``Sleep``), receives each answer parsed, and returns the method's result.
``Client`` runs plans with a blocking ``httpx.Client``, ``AsyncClient`` with an
``httpx.AsyncClient``; the ``endpoint`` descriptor makes each plan a plain method
on the first and a coroutine method on the second. So a method that takes
several requests (``wait``, a lock acquire that rides out a server restart) is
written once too, and both clients behave the same.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine, Generator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeVar, overload
from urllib.parse import quote

import httpx
from pydantic import BaseModel, TypeAdapter

from agentos import errors

if TYPE_CHECKING:
    from agentos.sdk.aio import AsyncClient
    from agentos.sdk.client import Client

DEFAULT_TIMEOUT = 30.0  # seconds for a whole request

T = TypeVar("T")
P = ParamSpec("P")
M = TypeVar("M", bound=BaseModel)


@dataclass
class Call(Generic[T]):
    """One request and how to read its answer."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: dict[str, Any] | None = None
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float | None = None  # seconds; None: the client's

    def request(self, http: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        kwargs: dict[str, Any] = {"params": self.params, "headers": self.headers or None}
        if self.json is not None:
            kwargs["json"] = self.json
        if self.content is not None:
            kwargs["content"] = self.content
        if self.timeout is not None:
            kwargs["timeout"] = self.timeout
        return http.build_request(self.method, self.path, **kwargs)


@dataclass(frozen=True)
class Sleep:
    """A pause between two calls of a plan."""

    seconds: float


Step = Call[Any] | Sleep
Plan = Generator[Step, Any, T]


def send(request: Call[T]) -> Plan[T]:
    """A plan of one request: its answer, parsed."""
    answer: T = yield request
    return answer


def call(method: str, path: str, model: type[M], **kwargs: Any) -> Plan[M]:
    """A request whose JSON answer is one ``model``."""
    return send(Call(method, path, lambda response: model.model_validate_json(
        response.content), **kwargs))


def call_json(method: str, path: str, **kwargs: Any) -> Plan[dict[str, Any]]:
    """A request whose answer is a JSON object, read as it is."""
    return send(Call(method, path, _object, **kwargs))


def _object(response: httpx.Response) -> dict[str, Any]:
    found: dict[str, Any] = response.json()
    return found


def call_list(method: str, path: str, key: str, item: type[M], **kwargs: Any) -> Plan[list[M]]:
    """A request whose answer holds a list of ``item`` under ``key``."""
    adapter = _list_adapter(item)

    def parse(response: httpx.Response) -> list[M]:
        found: list[M] = adapter.validate_python(response.json()[key])
        return found

    return send(Call(method, path, parse, **kwargs))


@functools.cache
def _list_adapter(item: type[M]) -> TypeAdapter[list[M]]:
    return TypeAdapter(list[item])  # type: ignore[valid-type]


def call_none(method: str, path: str, **kwargs: Any) -> Plan[None]:
    """A request whose answer has no body worth reading (204)."""
    return send(Call(method, path, lambda response: None, **kwargs))


def call_text(method: str, path: str, **kwargs: Any) -> Plan[str]:
    return send(Call(method, path, lambda response: response.text, **kwargs))


class endpoint(Generic[P, T]):  # lower case: a decorator, like property
    """Makes a plan a method: blocking on ``Client``, a coroutine on ``AsyncClient``."""

    def __init__(self, plan: Callable[Concatenate[Any, P], Plan[T]]) -> None:
        self.plan = plan
        functools.update_wrapper(self, plan)  # type: ignore[arg-type]

    @overload
    def __get__(self, client: None, owner: type[Any]) -> endpoint[P, T]: ...

    @overload
    def __get__(self, client: AsyncClient, owner: type[Any]
                ) -> Callable[P, Coroutine[Any, Any, T]]: ...

    @overload
    def __get__(self, client: Client, owner: type[Any]) -> Callable[P, T]: ...

    def __get__(self, client: Any, owner: type[Any]) -> Any:
        if client is None:
            return self
        plan = self.plan

        if client.is_async:
            async def run_async(*args: P.args, **kwargs: P.kwargs) -> T:
                result: T = await client.run(plan(client, *args, **kwargs))
                return result

            return functools.update_wrapper(run_async, plan)

        def run(*args: P.args, **kwargs: P.kwargs) -> T:
            result: T = client.run(plan(client, *args, **kwargs))
            return result

        return functools.update_wrapper(run, plan)


# ------------------------------------------------------------------- errors

_BY_STATUS: dict[int, type[errors.AgentOSError]] = {
    cls.status: cls
    for cls in (errors.InvalidInput, errors.ValidationFailed, errors.Unauthorized,
                errors.Forbidden, errors.NotFound, errors.Conflict, errors.PayloadTooLarge,
                errors.UnsupportedMedia, errors.RateLimited, errors.Unavailable)
}


def error_from(response: httpx.Response, base_url: str | None = None) -> errors.AgentOSError:
    """The domain error a non-2xx response stands for. A 401 says how to get a
    credential for the server at ``base_url`` (``agentos login``)."""
    status = response.status_code
    cls = _BY_STATUS.get(status) or (errors.InvalidInput if status < 500
                                     else errors.AgentOSError)
    try:
        error = response.json()["error"]
        message, code, details = str(error["message"]), error.get("code"), error.get("details")
    except (ValueError, KeyError, TypeError):
        # not our error shape: a proxy, or not an AgentOS server at all
        text = " ".join(response.text.split())[:200]
        message = f"HTTP {status} from {response.request.url}" + (f": {text}" if text else "")
        code, details = f"http_{status}", None
    if status == 401 and base_url is not None:
        message += (f" (log in with `agentos login --url {base_url}`, or set AGENTOS_TOKEN "
                    "to an API key)")
    return cls(message, code=code, details=details)


class WaitTimedOut(errors.AgentOSError):
    """``wait`` ran out of time before the task ended (the task goes on)."""

    status = 408
    default_code = "wait_timed_out"


# ----------------------------------------------------------------- helpers


def iso(moment: datetime | str | None) -> str | None:
    return moment.isoformat() if isinstance(moment, datetime) else moment


def path(*segments: str) -> str:
    return "/api/v1/" + "/".join(quote(s, safe="") for s in segments)


def params(**given: Any) -> dict[str, Any]:
    """Query parameters without the ones not given (None); times as ISO text."""
    return {k: iso(v) for k, v in given.items() if v is not None}


class SseParser:
    """Server-Sent Events from lines: feed each line, get an event's data when a
    block ends. Keeps the last ``id:`` seen, to resume from."""

    def __init__(self) -> None:
        self.last_event_id: str | None = None
        self._id: str | None = None
        self._data: list[str] = []

    def feed(self, line: str) -> str | None:
        """The data of the event this line ends, if it ends one."""
        if not line:  # a blank line ends a block; a block without data is no event
            if self._id is not None:
                self.last_event_id = self._id
            data, self._data, self._id = self._data, [], None
            return "\n".join(data) if data else None
        if line.startswith(":"):  # a comment: ": connected", ": keep-alive"
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self._id = value
        return None
