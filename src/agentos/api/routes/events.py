"""/api/v1/events: append, query, stream (SSE), routes; /api/v1/correlations."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Header, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, StrictBool, TypeAdapter, ValidationError

from agentos import events, inputs, patterns, tokens
from agentos import router as event_router
from agentos.api import access
from agentos.api.deps import BusDep, SettingsDep, StoreDep
from agentos.api.schemas import events as schemas
from agentos.documents import Document, errors_from, raise_invalid
from agentos.errors import InvalidInput, Unauthorized

router = APIRouter(tags=["events"])
HEARTBEAT = 15.0  # seconds between SSE keep-alive comments
MIN_RECHECK = 0.5  # seconds: a stream checks its credential at most this often
_SEQ = re.compile(r"[0-9]{1,19}")


def _parse(body: Any) -> tuple[list[events.EventIn], bool]:
    """One event or ``{"events": [...]}``; every invalid field is reported."""
    if not isinstance(body, dict):
        raise InvalidInput("send an event object or {\"events\": [...]}", code="bad_event")
    batch = set(body) == {"events"}
    items = body["events"] if batch else [body]
    if not isinstance(items, list):
        raise InvalidInput("events must be a list", code="bad_event")
    if len(items) > events.MAX_BATCH:
        raise InvalidInput(f"at most {events.MAX_BATCH} events per batch",
                           code="batch_too_large")
    try:
        return [events.EventIn.model_validate(i) for i in items], batch
    except ValidationError:
        pass
    problems = []
    for n, item in enumerate(items):
        try:
            events.EventIn.model_validate(item)
        except ValidationError as exc:
            prefix = f"events[{n}]." if batch else ""
            problems += [{**e, "path": prefix + e["path"]}
                         for e in errors_from(exc, Document(item))]
    raise_invalid(problems, "event")
    raise AssertionError("unreachable")


class _Batch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    events: list[events.EventIn]


# the fast path: bytes to drafts in one pass of pydantic-core (a batch tried first:
# it is the throughput case); on any error ``_parse`` reports every field's path
_BATCH = TypeAdapter(_Batch)
_ONE = TypeAdapter(events.EventIn)


def _read(raw: bytes) -> tuple[list[events.EventIn], bool]:
    with contextlib.suppress(ValueError):  # ValidationError included
        drafts = _BATCH.validate_json(raw).events
        if len(drafts) > events.MAX_BATCH:
            raise InvalidInput(f"at most {events.MAX_BATCH} events per batch",
                               code="batch_too_large")
        return drafts, True
    with contextlib.suppress(ValueError):
        return [_ONE.validate_json(raw)], False
    try:
        body = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"the request body is not valid JSON: {exc}",
                           code="malformed_json") from None
    return _parse(body)


_ONE_SCHEMA = events.EventIn.model_json_schema()
_BODY_SCHEMA = {"anyOf": [_ONE_SCHEMA, {
    "type": "object", "title": "Batch", "required": ["events"], "additionalProperties": False,
    "properties": {"events": {"type": "array", "items": _ONE_SCHEMA,
                              "maxItems": events.MAX_BATCH}}}]}


@router.post("/api/v1/events", status_code=status.HTTP_201_CREATED, openapi_extra={
    "requestBody": {"required": True, "content": {"application/json": {
        "schema": _BODY_SCHEMA}}}},
    responses={201: {"description": "the event, or {\"events\": [...]} for a batch",
                     "model": schemas.AppendedEvent | schemas.AppendedBatch}})
async def emit(store: StoreDep, settings: SettingsDep, request: Request) -> Response:
    """Append one event, or a batch (``{"events": [...]}``) in one transaction.

    A ``dedup_key`` seen before returns the first event (``duplicate: true``).
    """
    drafts, batch = _read(await request.body())
    appended = await events.append(store, drafts, settings.event_max_payload_bytes)
    code = (status.HTTP_200_OK if all(a.duplicate for a in appended)
            else status.HTTP_201_CREATED)
    return Response(_render(appended, batch), status_code=code, media_type="application/json")


def _render(appended: list[events.Appended], batch: bool) -> bytes:
    out = [{**a.event.to_dict(), "duplicate": a.duplicate} for a in appended]
    return orjson.dumps({"events": out} if batch else out[0])


@router.get("/api/v1/events", response_model=schemas.EventPage)
async def list_events(
    store: StoreDep,
    type: str | None = None,
    source: str | None = None,
    correlation_id: str | None = None,
    run_id: str | None = None,
    priority: str | None = None,
    since: inputs.Moment | None = None,  # a time zone is required: naive times are 422
    until: inputs.Moment | None = None,
    after_seq: Annotated[int, Query(ge=0, le=inputs.INT64_MAX)] = 0,
    limit: Annotated[int, Query(ge=1, le=events.MAX_PAGE)] = 100,
    order: Literal["asc", "desc"] = "asc",
    before_seq: Annotated[int | None, Query(ge=1, le=inputs.INT64_MAX)] = None,
) -> dict[str, Any]:
    """Events in sequence order; page with ``after_seq`` = the previous ``next_after_seq``.
    ``order=desc``: the newest first; page with ``before_seq`` = the previous
    ``next_before_seq``."""
    newest_first = order == "desc"
    if before_seq is not None and not newest_first:
        raise InvalidInput("before_seq pages order=desc", code="bad_cursor")
    page, following = await events.query(store, events.Query(
        type=type, source=source, correlation_id=correlation_id, run_id=run_id,
        priority=priority, since=since, until=until, after_seq=after_seq, limit=limit,
        newest_first=newest_first, before_seq=before_seq))
    cursor = "next_before_seq" if newest_first else "next_after_seq"
    return {"events": [e.to_dict() for e in page], cursor: following}


@router.get("/api/v1/events/stream", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}}})
async def stream(
    request: Request,
    store: StoreDep,
    bus: BusDep,
    settings: SettingsDep,
    type: str = "*",
    after_seq: Annotated[int | None, Query(ge=0, le=inputs.INT64_MAX)] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """Server-Sent Events; each ``id:`` is the sequence number. Reconnect with
    ``Last-Event-ID`` (or ``after_seq``) to resume with nothing lost or repeated.
    The stream checks its credential again at least every AGENTOS_AUTH_CACHE_S (and at
    once on a revocation this server hears of) and ends when it is no longer valid."""
    patterns.check_event_glob(type)
    start = after_seq
    if last_event_id is not None:
        if not _SEQ.fullmatch(last_event_id) or int(last_event_id) > inputs.INT64_MAX:
            raise InvalidInput("Last-Event-ID must be a sequence number", code="bad_cursor")
        start = int(last_event_id)

    if start is None:
        start = await bus.head()  # from now on; sent as the first id so a reconnect has no gap
    check_every = max(settings.auth_cache_s, MIN_RECHECK)

    async def body() -> AsyncIterator[str]:
        yield f": connected\nid: {start}\n\n"
        revoked = store.wakeup(tokens.CHANNEL)
        try:
            async for item in _paced(bus.subscribe(type, start), check_every, revoked):
                if item is None:
                    yield ": keep-alive\n\n"
                elif item is _CHECK:
                    try:
                        await access.recheck(request)
                    except Unauthorized as exc:
                        yield f": closed: {exc.code}\n\n"
                        return
                else:
                    assert isinstance(item, events.Event)
                    data = orjson.dumps(item.to_dict()).decode()
                    yield f"id: {item.seq}\ndata: {data}\n\n"
        finally:
            store.forget_wakeup(tokens.CHANNEL, revoked)

    return StreamingResponse(body(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


_CHECK = object()  # time to check the stream's credential again


async def _paced(source: AsyncIterator[events.Event], check_every: float,
                 revoked: asyncio.Event) -> AsyncIterator[events.Event | object | None]:
    """``source``'s items; None whenever it is quiet for HEARTBEAT seconds; ``_CHECK``
    every ``check_every`` seconds, busy or quiet, and as soon as ``revoked`` is set."""
    iterator = source.__aiter__()
    pending = asyncio.ensure_future(iterator.__anext__())
    woken = asyncio.ensure_future(revoked.wait())
    beat_at = check_at = time.monotonic()
    beat_at += HEARTBEAT
    check_at += check_every
    try:
        while True:
            timeout = max(0.0, min(beat_at, check_at) - time.monotonic())
            done, _ = await asyncio.wait({pending, woken}, timeout=timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
            now = time.monotonic()
            if woken in done or now >= check_at:
                if woken in done:
                    revoked.clear()
                    woken = asyncio.ensure_future(revoked.wait())
                check_at = now + check_every
                yield _CHECK
            if pending in done:
                yield pending.result()
                beat_at = time.monotonic() + HEARTBEAT
                pending = asyncio.ensure_future(iterator.__anext__())
            elif now >= beat_at:
                beat_at = now + HEARTBEAT
                yield None
    finally:
        pending.cancel()
        woken.cancel()


@router.get("/api/v1/events/{event_id}", response_model=schemas.Event)
async def get_event(store: StoreDep, event_id: str) -> dict[str, Any]:
    return (await events.get(store, event_id)).to_dict()


@router.get("/api/v1/events/{event_id}/routes", response_model=schemas.EventRoutes)
async def event_routes(store: StoreDep, event_id: str) -> dict[str, Any]:
    """The agents this event was routed to (one route per matching trigger)."""
    event = await events.get(store, event_id)
    # "routed" first: the router commits an event's routes with its removal from the
    # queue, so once it is routed its routes are all there (read the other way round,
    # two snapshots could say routed with no routes)
    routed = await event_router.is_routed(store, event.seq)
    found = await event_router.routes_of(store, event.seq)
    return {"event_id": event.id, "routed": routed, "routes": [r.to_dict() for r in found]}


class PruneIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    older_than: str
    type: str | None = None
    dry_run: StrictBool = False


@router.post("/api/v1/events/prune", response_model=schemas.Pruned,
             response_model_exclude_none=True)
async def prune(store: StoreDep, body: PruneIn) -> dict[str, Any]:
    """Delete events older than ``older_than`` (e.g. ``30d``); ``dry_run`` only counts.
    ``kept``: old events still needed by an unfinished task's correlation (or not
    routed yet), which are not deleted."""
    pruned = await events.prune(store, events.parse_age(body.older_than), body.type,
                                body.dry_run)
    return {"deleted" if not body.dry_run else "would_delete": pruned.deleted,
            "kept": pruned.kept}


@router.get("/api/v1/correlations/{correlation_id}", response_model=schemas.Correlation)
async def correlation(store: StoreDep, correlation_id: str) -> dict[str, Any]:
    """Everything sharing a correlation id, as a causation tree."""
    tree = await events.correlation(store, correlation_id)
    return {"correlation_id": correlation_id, "tree": tree}
