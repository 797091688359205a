"""LLM calls recorded through one path (the llm handler and ctx.llm alike), priced from
the maintained price package unless AGENTOS_LLM_PRICES names the model, and charged to
budgets: events at 80 % and 100 %, a spent hard agent budget holds the agent until its
period rolls or it is raised, and a call that would start over it is refused. Both
backends, against the fake OpenAI-compatible server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from agentos import agent_state, budgets, metrics, queue, telemetry
from agentos.explain import task as task_explain
from agentos.metrics import query
from agentos.store import Store
from agentos.store import agent_config as store_holds
from agentos.store.tables import events, llm_calls
from agentos.tasks import Status
from agentos.worker.loop import Worker
from tests.contract.test_handler_kinds import agent, run, submit
from tests.fake_llm import FakeLlm


@pytest.fixture
def fake_llm(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLlm]:
    fake = FakeLlm().start()
    monkeypatch.setenv("AGENTOS_LLM_BASE_URL", fake.base_url)
    monkeypatch.setenv("AGENTOS_LLM_PRICES", json.dumps(
        {"fake-small": {"prompt": 1.0, "completion": 2.0}}))
    yield fake
    fake.stop()


async def calls(store: Store) -> list[dict[str, Any]]:
    async with store.read() as conn:
        rows = (await conn.execute(select(llm_calls).order_by(llm_calls.c.id))).all()
    return [dict(r._mapping) for r in rows]


async def event_types(store: Store, prefix: str) -> list[dict[str, Any]]:
    async with store.read() as conn:
        rows = (await conn.execute(select(events).where(events.c.type.startswith(prefix))
                                   .order_by(events.c.seq))).all()
    return [{"type": r.type, **r.payload} for r in rows]


async def test_handler_and_ctx_llm_calls_are_recorded_alike(store: Store,
                                                            fake_llm: FakeLlm) -> None:
    await agent(store, "writer", {"type": "llm", "prompt": "Write {input.topic}"},
                model={"provider": "openai", "name": "fake-small"})
    await agent(store, "asker", {"type": "python", "target": "tests.handlers:llm_user"},
                model={"provider": "openai", "name": "gpt-4o-mini"})
    written, asked = await run(store, await submit(store, "writer", topic="x"),
                               await submit(store, "asker", calls=2))
    assert written.status is Status.SUCCEEDED and asked.status is Status.SUCCEEDED
    found = await calls(store)
    assert sorted((c["agent"], c["model"], c["provider"], c["outcome"]) for c in found) == [
        ("asker", "gpt-4o-mini", "openai", "ok")] * 2 + [("writer", "fake-small", "openai", "ok")]
    by_agent = {c["agent"]: c for c in found}
    writer, asker = by_agent["writer"], by_agent["asker"]
    assert (writer["prompt_tokens"], writer["completion_tokens"]) == (12, 5)
    assert writer["cost"] == pytest.approx((12 * 1.0 + 5 * 2.0) / 1000)  # AGENTOS_LLM_PRICES
    assert asker["cost"] == pytest.approx(12 * 0.15e-6 + 5 * 0.6e-6)  # genai-prices' table
    assert writer["task_id"] == written.id and writer["attempt"] == 1
    assert writer["correlation_id"] == written.to_dict()["correlation_id"]
    assert writer["latency_ms"] > 0 and writer["recorded_by"].startswith("worker:")
    # the attempt's usage is the sum of its calls
    assert asked.to_dict()["attempts"][0]["tokens"] == {"prompt": 24, "completion": 10,
                                                        "total": 34}
    summary = {r["key"]: r for r in await telemetry.summary(store, "model")}
    assert summary["gpt-4o-mini"]["calls"] == 2 and summary["fake-small"]["total_tokens"] == 17
    days = await telemetry.summary(store, "day")
    assert [d["key"] for d in days] == [datetime.now(UTC).strftime("%Y-%m-%d")]
    assert days[0]["calls"] == 3


async def test_calls_are_metrics_written_with_their_record(store: Store,
                                                          fake_llm: FakeLlm) -> None:
    # Given two agents' calls through the llm handler and ctx.llm, and one that fails
    await agent(store, "writer", {"type": "llm", "prompt": "Write {input.topic}"},
                model={"provider": "openai", "name": "fake-small"})
    await agent(store, "asker", {"type": "python", "target": "tests.handlers:llm_user"},
                model={"provider": "openai", "name": "gpt-4o-mini"})
    await agent(store, "down", {"type": "llm", "prompt": "Hi"},
                model={"provider": "openai", "name": "status-503"}, limits={"max_retries": 0})
    await run(store, await submit(store, "writer", topic="x"),
              await submit(store, "asker", calls=2), await submit(store, "down"))
    # Then their tokens, cost and outcomes are metric series
    async def by(name: str, group: str, **tags: str) -> dict[str | None, float | None]:
        found = await query.run(store, query.Query(name, agg="sum", group_by=group,
                                                   tags=tags or None), query.Retention())
        return {g["group"]: g["points"][0]["value"] for g in found["groups"]}

    assert await by("llm.tokens", "type", agent="writer") == {"completion": 5, "prompt": 12}
    assert await by("llm.tokens", "model") == {"fake-small": 17, "gpt-4o-mini": 34}
    cost = await by("llm.cost_usd", "agent")
    assert cost == {"asker": pytest.approx(2 * (12 * 0.15e-6 + 5 * 0.6e-6)),
                    "writer": pytest.approx((12 * 1.0 + 5 * 2.0) / 1000)}
    assert await by("llm.calls", "outcome") == {"error": 1, "ok": 3}
    # written in the call record's transaction: a reported call counts at once, with
    # nothing left in this process's buffer for a later flush
    await telemetry.record(store, [telemetry.CallIn(model="fake-small", agent="writer",
                                                    prompt_tokens=100, cost=0.5)],
                           by="test", price_table={})
    assert metrics.of(store).pending() == 0
    assert await by("llm.tokens", "type", agent="writer") == {"completion": 5, "prompt": 112}


async def test_a_failed_call_is_recorded_as_an_error(store: Store, fake_llm: FakeLlm) -> None:
    await agent(store, "down", {"type": "llm", "prompt": "Hi"},
                model={"provider": "openai", "name": "status-503"}, limits={"max_retries": 0})
    [task] = await run(store, await submit(store, "down"))
    assert task.status is Status.FAILED
    [call] = await calls(store)
    assert call["outcome"] == "error" and "answered 503" in call["error"]
    assert call["cost"] is None and call["prompt_tokens"] == 0


async def test_budget_events_hold_refusal_and_raise(store: Store, fake_llm: FakeLlm) -> None:
    await agent(store, "spender", {"type": "llm", "prompt": "Hi"},
                model={"provider": "openai", "name": "fake-small"}, limits={"max_retries": 0})
    budget = await budgets.create(store, budgets.BudgetIn(
        scope="agent", target="spender", metric="tokens", period="day", limit=30), by="test")
    soft = await budgets.create(store, budgets.BudgetIn(
        scope="global", metric="cost", period="month", limit=1.0, hard=False), by="test")
    [first] = await run(store, await submit(store, "spender"))  # 17 tokens: 57 %
    assert first.status is Status.SUCCEEDED
    assert await event_types(store, "budget.") == []
    [second] = await run(store, await submit(store, "spender"))  # 34 tokens: over 30
    assert second.status is Status.SUCCEEDED  # a call that starts under the budget runs
    crossed = await event_types(store, "budget.")
    assert [(e["type"], e["budget"]) for e in crossed] == [
        ("budget.warning", budget["id"]), ("budget.exceeded", budget["id"])]
    assert crossed[1]["used"] == 34 and crossed[1]["limit"] == 30
    state = await agent_state.of_agent(store, "spender")
    [hold] = state["held"]
    assert hold["reason"] == "budget" and hold["ref"] == str(budget["id"])
    assert hold["until"] == budgets.period_end("day", datetime.now(UTC)).isoformat()
    # a call that would start over the hard budget is refused, and recorded as such
    with pytest.raises(budgets.BudgetExceeded, match="rolls at"):
        await budgets.check(store, "spender", "fake-small")
    # the agent's next task is held: no claim takes it, it is not failed
    waiting = await submit(store, "spender")
    await Worker(store, burst=True, poll_interval=0.05).run()
    assert (await queue.get(store, waiting)).status is Status.PENDING
    assert len(fake_llm.requests) == 2
    # its explanation names the budget and when the period rolls
    why = await task_explain.explain(store, waiting)
    assert why["gate"] == "budget" and why["until"] == hold["until"]
    assert f"spent its hard budget {budget['id']} (34 of 30 tokens a day)" in why["summary"]
    assert "until the period rolls at" in why["summary"]
    assert (await budgets.get(store, soft["id"]))["used"] == pytest.approx(2 * 0.022)
    raised = await budgets.change(store, budget["id"], budgets.BudgetChange(limit=100),
                                  by="test")
    assert not raised["exceeded"] and raised["used"] == 34
    assert (await agent_state.of_agent(store, "spender"))["held"] == []
    await budgets.check(store, "spender", "fake-small")  # no longer refused
    [resumed] = await run(store, waiting)  # and the held task runs
    assert resumed.status is Status.SUCCEEDED
    lowered = await budgets.change(store, budget["id"], budgets.BudgetChange(limit=10),
                                   by="test")
    assert lowered["exceeded"]
    assert len((await agent_state.of_agent(store, "spender"))["held"]) == 1
    assert [e["type"] for e in await event_types(store, "budget.")][-1] == "budget.exceeded"


async def test_a_refusal_mid_attempt_hands_the_task_back(store: Store,
                                                        fake_llm: FakeLlm) -> None:
    """A handler whose second LLM call is refused by the agent's spent hard budget (its
    first call spent it) neither fails nor spends a retry: the task is handed back,
    held with its agent, and runs once the limit is raised. A model's budget, which
    holds no agent, sends its tasks back to wait a while instead."""
    await agent(store, "asker", {"type": "python", "target": "tests.handlers:llm_user"},
                model={"provider": "openai", "name": "fake-small"}, limits={"max_retries": 0})
    budget = await budgets.create(store, budgets.BudgetIn(
        scope="agent", target="asker", metric="tokens", period="day", limit=10), by="test")
    task_id = await submit(store, "asker", calls=2)
    await Worker(store, burst=True, poll_interval=0.05).run()
    held = await queue.get(store, task_id)
    assert held.status is Status.PENDING  # not failed, though it had no retry to spend
    [attempt] = held.attempts
    assert attempt.outcome == "deferred" and attempt.tokens is not None and \
        attempt.tokens["total"] == 17  # what its first call used is kept
    assert attempt.error["type"] == "budget_exceeded" and attempt.error["budget"] == \
        budget["id"] and attempt.error["scope"] == "agent"
    assert [c["outcome"] for c in await calls(store)] == ["ok", "refused"]
    assert (await agent_state.of_agent(store, "asker"))["held"]  # the hold keeps it
    await budgets.change(store, budget["id"], budgets.BudgetChange(limit=1000), by="test")
    [done] = await run(store, task_id)
    assert done.status is Status.SUCCEEDED and done.attempt == 2
    assert len(done.output["replies"]) == 2

    await budgets.delete(store, budget["id"])
    await budgets.create(store, budgets.BudgetIn(
        scope="model", target="fake-small", metric="tokens", period="day", limit=10),
        by="test")  # spent already: 51 tokens today
    later = await submit(store, "asker", calls=1)
    before = datetime.now(UTC)
    await Worker(store, burst=True, poll_interval=0.05).run()
    waiting = await queue.get(store, later)
    assert waiting.status is Status.SCHEDULED and waiting.attempts[0].outcome == \
        "deferred"
    assert waiting.run_at is not None and before < waiting.run_at <= \
        before + timedelta(seconds=budgets.RECHECK_S + 5)
    # its explanation names the budget and when the period rolls, not a lock
    why = await task_explain.explain(store, later)
    [found] = [f for f in why["findings"] if f["gate"] == "not_due"]
    assert found["blocking"] and found["details"]["kind"] == "budget"
    assert found["details"]["scope"] == "model" and found["details"]["rolls_at"] == \
        budgets.period_end("day", before).isoformat()
    assert found["summary"].startswith("held: the day tokens budget of model fake-small")
    assert "it rolls at" in found["summary"] and "lock" not in found["summary"]


async def test_a_hold_keeps_tasks_until_it_lapses_on_both_claim_paths(store: Store) -> None:
    await agent(store, "plain", {"type": "python", "target": "tests.handlers:echo"})
    await agent(store, "capped", {"type": "python", "target": "tests.handlers:echo"},
                limits={"concurrency": 1})  # claimed by the capped agents' path
    # held for an hour: nothing a loaded machine does in between can outlast it
    async with store.write() as conn:
        for name in ("plain", "capped"):
            await store_holds.hold(conn, name, budgets.HOLD, "1",
                                   datetime.now(UTC) + timedelta(hours=1), {})
    ids = [await submit(store, "plain"), await submit(store, "capped")]
    await Worker(store, burst=True, poll_interval=0.05).run()
    assert [(await queue.get(store, i)).status for i in ids] == [Status.PENDING] * 2
    # then the period rolls: its end moves into the past, the hold's row stays (not
    # released), so only the claim's comparison of ``until`` with now lets them run
    async with store.write() as conn:
        for name in ("plain", "capped"):
            await store_holds.hold(conn, name, budgets.HOLD, "1",
                                   datetime.now(UTC) - timedelta(minutes=1), {})
    done = await run(store, *ids)  # the hold lapsed on its own
    assert [t.status for t in done] == [Status.SUCCEEDED] * 2


async def test_each_threshold_is_crossed_once_a_period(store: Store) -> None:
    """A soft budget warns at 80 % and says exceeded at 100 %, each once in its period,
    however many calls go on past it (a soft budget refuses none of them)."""
    soft = await budgets.create(store, budgets.BudgetIn(
        scope="agent", target="chatty", metric="tokens", period="day", limit=100,
        hard=False), by="test")
    for tokens in (50, 35, 10, 30, 40, 5):  # 50, 85 (warning), 95, 125 (exceeded), ...
        await telemetry.record(store, [telemetry.CallIn(model="m", agent="chatty",
                                                        prompt_tokens=tokens)],
                               by="test", price_table={})
    crossed = await event_types(store, "budget.")
    assert [(e["type"], e["budget"], e["used"]) for e in crossed] == [
        ("budget.warning", soft["id"], 85), ("budget.exceeded", soft["id"], 125)]
    assert (await budgets.get(store, soft["id"]))["used"] == 170
    await budgets.check(store, "chatty", "m")  # soft: never refused


async def test_model_and_global_hard_budgets_refuse_the_calls_they_cover(
        store: Store) -> None:
    model = await budgets.create(store, budgets.BudgetIn(
        scope="model", target="big", metric="tokens", period="day", limit=100), by="test")
    await telemetry.record(store, [telemetry.CallIn(model="big", agent="a",
                                                    prompt_tokens=100)],
                           by="test", price_table={})
    with pytest.raises(budgets.BudgetExceeded, match=f"id {model['id']}"):
        await budgets.check(store, "anyone", "big")  # the model's, for every agent
    await budgets.check(store, "a", "small")  # another model is not covered
    spent = await budgets.create(store, budgets.BudgetIn(
        scope="global", metric="cost", period="month", limit=1.0), by="test")
    await telemetry.record(store, [telemetry.CallIn(model="small", agent="b", cost=1.5)],
                           by="test", price_table={})
    for agent_name, model_name in (("a", "small"), (None, "other")):
        with pytest.raises(budgets.BudgetExceeded) as refused:
            await budgets.check(store, agent_name, model_name)
        assert refused.value.details["scope"] == "global"
        assert refused.value.details["budget"] == spent["id"]
    await budgets.change(store, spent["id"], budgets.BudgetChange(limit=10), by="test")
    await budgets.check(store, "a", "small")  # raised: the call may start


def test_periods_and_thresholds() -> None:
    at = datetime(2026, 12, 31, 23, 59, tzinfo=UTC)
    assert budgets.period_start("day", at) == datetime(2026, 12, 31, tzinfo=UTC)
    assert budgets.period_end("day", at) == datetime(2027, 1, 1, tzinfo=UTC)
    assert budgets.period_start("month", at) == datetime(2026, 12, 1, tzinfo=UTC)
    assert budgets.period_end("month", at) == datetime(2027, 1, 1, tzinfo=UTC)
    assert budgets.period_end("month", datetime(2026, 2, 3, tzinfo=UTC)) == \
        datetime(2026, 3, 1, tzinfo=UTC)
    assert budgets.crossed(100, 0, 79) == []
    assert budgets.crossed(100, 79, 80) == ["warning"]
    assert budgets.crossed(100, 50, 150) == ["warning", "exceeded"]
    assert budgets.crossed(100, 100, 120) == []  # crossed before
    assert budgets.crossed(0, 0, 1) == ["warning", "exceeded"]
