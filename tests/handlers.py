"""Python handlers the task tests run (imported by workers as tests.handlers:NAME)."""

import asyncio
import os
import time
from pathlib import Path
from typing import Any

from agentos.worker.handlers import Context, HandlerError, ThreadContext


async def echo(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    return {"echo": data, "attempt": ctx.task["attempt"]}


async def emit_then_fail(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Emits ``order.placed`` (derived key) and ``order.filled`` (``data['key']`` when
    given), plus one ``tick`` twice, then fails while attempt <= ``fails``."""
    placed = await ctx.emit("order.placed", {"order": data["order"]})
    filled = await ctx.emit("order.filled", {"order": data["order"], "qty": 5},
                            dedup_key=data.get("key"))
    await ctx.emit("tick", {})
    await ctx.emit("tick", {})  # the same event twice in one attempt: two events
    if ctx.task["attempt"] <= data.get("fails", 1):
        raise RuntimeError(f"attempt {ctx.task['attempt']} fails after emitting")
    return {"placed": placed.id, "filled": filled.id}


async def emit_by_attempt_then_fail(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Emits ``data['type']`` with the attempt in its payload, then fails on attempt 1:
    each attempt's emit is a different event."""
    await ctx.emit(data["type"], {"attempt": ctx.task["attempt"]})
    if ctx.task["attempt"] == 1:
        raise RuntimeError("attempt 1 fails after emitting")
    return {}


def sync_emit_then_fail(ctx: ThreadContext, data: dict[str, Any]) -> dict[str, Any]:
    """``emit_then_fail``'s first emit from a sync handler's thread."""
    placed = ctx.emit("order.placed", {"order": data["order"]})
    if ctx.task["attempt"] <= data.get("fails", 1):
        raise RuntimeError(f"attempt {ctx.task['attempt']} fails after emitting")
    return {"placed": placed.id}


def sync_double(ctx: ThreadContext, data: dict[str, Any]) -> dict[str, Any]:
    return {"double": data["n"] * 2}


async def flaky(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Raises on the first ``fails`` attempts, then succeeds."""
    if ctx.task["attempt"] <= data.get("fails", 2):
        raise RuntimeError(f"attempt {ctx.task['attempt']} fails")
    return {"ok": True}


async def broken(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    raise HandlerError("bad input", retryable=data.get("retryable", True))


async def slow(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    await asyncio.sleep(data.get("seconds", 60))
    return {"slept": True}


async def emitter(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    event = await ctx.emit("work.done", {"value": ctx.config.get("factor")})
    return {"event": event.id}


def record(ctx: ThreadContext, data: dict[str, Any]) -> dict[str, Any]:
    """Appends "task start end pid" to the file in ``data["log"]`` (overlap checks)."""
    start = time.time()
    time.sleep(data.get("seconds", 0))
    end = time.time()
    with Path(data["log"]).open("a") as f:
        f.write(f"{ctx.task['id']} {start} {end} {os.getpid()}\n")
    return {}


def sync_emitter(ctx: ThreadContext, data: dict[str, Any]) -> dict[str, Any]:
    """Uses the context from its thread: emit, heartbeat and a sub-agent call."""
    event = ctx.emit("work.done", {"value": ctx.config.get("factor")})
    ctx.heartbeat()
    sub = ctx.call("echo", {"from": "sync"}) if data.get("call") else None
    return {"event": event.id, "sub": sub}


def patient(ctx: ThreadContext, data: dict[str, Any]) -> dict[str, Any]:
    """Waits ``seconds`` unless cancelled first; appends how it ended to ``data["log"]``."""
    start = time.monotonic()
    stopped = ctx.cancelled.wait(data.get("seconds", 60))
    with Path(data["log"]).open("a") as f:
        f.write(f"{'cancelled' if stopped else 'finished'} {time.monotonic() - start:.3f}\n")
    return {}


async def beater(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Extends its lease by hand after a moment, then keeps running a while."""
    await asyncio.sleep(data.get("before", 0.5))
    await ctx.heartbeat()
    await asyncio.sleep(data.get("after", 1.0))
    return {}


async def hold(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Holds its declared resources for ``seconds``; logs "task start end" to ``data["log"]``."""
    start = time.time()
    await asyncio.sleep(data.get("seconds", 0))
    end = time.time()
    if "log" in data:
        with Path(data["log"]).open("a") as f:
            f.write(f"{ctx.task['id']} {start} {end}\n")
    return {"held": sorted(ctx.held)}


async def extra_lock(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Locks ``data["resource"]`` with ``ctx.lock`` and reports its token."""
    async with ctx.lock(data["resource"], wait_s=data.get("wait_s", 5)) as lease:
        await asyncio.sleep(data.get("seconds", 0))
        token = lease.token
    if data.get("fail_after"):
        raise RuntimeError("fails after its block")
    return {"token": token}


async def librarian(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Writes a document with ``ctx.knowledge``, then reads and searches it back."""
    await ctx.knowledge.put("notes", data["key"], data["text"], title="Learned",
                            tags=["learned"])
    found = await ctx.knowledge.search(data["q"], namespace="notes")
    doc = await ctx.knowledge.get("notes", data["key"])
    missing = await ctx.knowledge.get("notes", "no-such-key")
    return {"found": [d["key"] for d in found], "by": doc and doc["created_by"],
            "missing": missing}


def sync_librarian(ctx: ThreadContext, data: dict[str, Any]) -> dict[str, Any]:
    """The same from a sync handler's thread; a bad key fails the attempt for good."""
    ctx.knowledge.put("notes", data["key"], data["text"])
    found = ctx.knowledge.search(data["q"])
    gone = ctx.knowledge.delete("notes", data["key"])
    return {"found": [d["key"] for d in found], "gone": gone}


async def modelled(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Reports the model its definition's model_ref resolved to."""
    assert ctx.model is not None
    return {"model": ctx.model["name"], "version": ctx.model["version"],
            "config": ctx.model["config"]}


async def config_echo(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Returns the config the attempt sees."""
    return {"config": ctx.config}


async def llm_user(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Calls the LLM ``data["calls"]`` times through ctx.llm."""
    replies = []
    for i in range(data.get("calls", 1)):
        done = await ctx.llm.chat([{"role": "user", "content": f"question {i}"}],
                                  model=data.get("model"))
        replies.append(done.content)
    return {"replies": replies}


async def wf_plan(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """A workflow's planning step: one target per device."""
    return {"targets": [{"device_id": d} for d in data.get("devices", [])]}


async def wf_double(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Fails for ``data["fail"]`` true, else doubles ``n`` (0 when missing)."""
    if data.get("fail"):
        raise HandlerError(f"told to fail on {data}", retryable=False)
    return {"n": data.get("n", 0) * 2, "input": data}


async def wf_artifacts(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Stores a JSON artifact and a bytes one."""
    await ctx.artifact("report", {"ok": True, "input": data})
    await ctx.artifact("raw.bin", b"\x00\x01binary")
    return {"stored": 2}


async def wf_ask(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Asks a person (ctx.approval) and returns the decision."""
    return await ctx.approval(data.get("title", "may I?"), {"why": "test"},
                              data.get("role", "operator"),
                              timeout_s=data.get("timeout_s"))


async def crash_step(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """A crash test's step: a short pause (for a kill to land in), then double ``n``;
    ``fail`` fails for good. Each execution leaves a line in ``data["log"]``."""
    with Path(data["log"]).open("a") as f:
        f.write(f"{ctx.task['id']} {ctx.task['attempt']} {os.getpid()}\n")
    await asyncio.sleep(data.get("pause", 0.1))
    if data.get("fail"):
        raise HandlerError("told to fail", retryable=False)
    return {"n": data.get("n", 0) * 2}
async def measured(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Records ``n`` widgets through ctx.metrics, and the stock left as a gauge."""
    for i in range(data["n"]):
        ctx.metrics.count("widgets.made")
        ctx.metrics.observe("widget.size", 10.0 + i, tags={"color": "red"})
    ctx.metrics.gauge("widgets.stock", 100 - data["n"], tags={"color": "red"})
    return {}


def sync_measured(ctx: ThreadContext, data: dict[str, Any]) -> dict[str, Any]:
    """The same from a sync handler's thread."""
    for i in range(data["n"]):
        ctx.metrics.count("widgets.made")
        ctx.metrics.observe("widget.size", 10.0 + i, tags={"color": "blue"})
    ctx.metrics.gauge("widgets.stock", 100 - data["n"], tags={"color": "blue"})
    return {}


async def chatty(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Logs ``lines`` lines (a warning last), then fails while attempt <= ``fails``;
    ``odd``: first a line no database stores as it is (a NUL, a lone surrogate)."""
    if data.get("odd"):
        ctx.log.info("nul \x00 and \udcff here")
    for n in range(data.get("lines", 3)):
        ctx.log.info("attempt %d line %d", ctx.task["attempt"], n + 1)
    ctx.log.warning(data.get("last", "done"))
    ctx.log.debug("not kept unless the worker logs debug")
    if ctx.task["attempt"] <= data.get("fails", 0):
        try:
            raise ValueError("boom")
        except ValueError:
            ctx.log.exception("attempt %d fails", ctx.task["attempt"])
            raise
    return {}


def sync_chatty(ctx: ThreadContext, data: dict[str, Any]) -> dict[str, Any]:
    """The same lines from a sync handler's thread."""
    for n in range(data.get("lines", 3)):
        ctx.log.info("attempt %d line %d", ctx.task["attempt"], n + 1)
    ctx.log.warning(data.get("last", "done"))
    return {}


async def chatty_slow(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Logs a line, waits ``seconds``, logs another."""
    ctx.log.info("started")
    await asyncio.sleep(data.get("seconds", 1.0))
    ctx.log.info("finished")
    return {}


async def wf_store(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Stores each of ``data["artifacts"]`` (name -> JSON value) as a run's artifact."""
    for name, value in data["artifacts"].items():
        await ctx.artifact(name, value)
    return {"stored": sorted(data["artifacts"])}
