"""``llm`` handlers: one OpenAI-compatible chat completion, its prompt filled from the input.

POST ``{AGENTOS_LLM_BASE_URL}/chat/completions`` with the model's name and params,
a system message (optional) and the user prompt; ``{input.a.b}`` placeholders take
values from the task input (strings as they are, anything else as JSON; ``{input}``
is the whole input) and a missing one fails the task for good. The output is
``{"content", "model"}``, plus the reply's fields when ``response_format`` is
``json``. Tokens go to ``ctx.usage`` with the cost from ``AGENTOS_LLM_PRICES``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import httpx

from agentos import agent_spec
from agentos.config import LlmPrice, Settings
from agentos.worker.handlers.context import Context, Handler, HandlerError

PLACEHOLDER = re.compile(r"\{input((?:\.[A-Za-z0-9_-]+)*)\}")
CONNECT_TIMEOUT = 10.0  # seconds; the task's timeout bounds the whole call
BODY_TAIL = 500  # characters of a reply quoted in an error
RETRYABLE_STATUS = frozenset({408, 409, 425, 429})
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


@dataclass(frozen=True)
class Completion:
    content: str
    model: str  # as the provider names it (may be more specific than the one asked for)
    prompt_tokens: int
    completion_tokens: int


def fill(template: str, data: dict[str, Any]) -> str:
    """The template with each ``{input.path}`` replaced from ``data``."""

    def value(match: re.Match[str]) -> str:
        path = match.group(1)[1:].split(".") if match.group(1) else []
        current: Any = data
        for depth, key in enumerate(path):
            if isinstance(current, dict) and key in current:
                current = current[key]
            elif isinstance(current, list) and key.isdigit() and int(key) < len(current):
                current = current[int(key)]
            else:
                missing = ".".join(["input", *path[:depth + 1]])
                raise HandlerError(f"the prompt uses {match.group(0)} but the task input has "
                                   f"no {missing}", retryable=False)
        return current if isinstance(current, str) else json.dumps(current, ensure_ascii=False)

    return PLACEHOLDER.sub(value, template)


def price(prices: dict[str, LlmPrice], names: list[str], completion: Completion) -> float | None:
    """The call's cost from the first of ``names`` in the price table; None if none is."""
    for name in names:
        if name in prices:
            p = prices[name]
            return (completion.prompt_tokens * p.prompt
                    + completion.completion_tokens * p.completion) / 1000
    return None


def parse_json(content: str) -> dict[str, Any]:
    text = content.strip()
    if fenced := _FENCE.match(text):  # some models wrap JSON in a code fence regardless
        text = fenced.group(1)
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):  # a model's slip: another try may well succeed
        raise HandlerError(f"the model was asked for a JSON object and answered "
                           f"{content[:BODY_TAIL]!r}")
    return parsed


async def chat(settings: Settings, model: agent_spec.ModelRef, messages: list[dict[str, str]],
               *, json_mode: bool = False) -> Completion:
    """One chat completion; errors say whether retrying may help."""
    if not settings.llm_base_url:
        raise HandlerError("set AGENTOS_LLM_BASE_URL to an OpenAI-compatible API "
                           "(e.g. https://api.openai.com/v1) to run llm handlers",
                           retryable=False)
    url = settings.llm_base_url.rstrip("/") + "/chat/completions"
    body: dict[str, Any] = {**model.params, "model": model.name, "messages": messages}
    if json_mode:
        body["response_format"] = {"type": "json_object"}
    headers = {}
    if settings.llm_api_key is not None:
        headers["authorization"] = f"Bearer {settings.llm_api_key.get_secret_value()}"
    async with httpx.AsyncClient(timeout=httpx.Timeout(None, connect=CONNECT_TIMEOUT)) as client:
        try:
            response = await client.post(url, json=body, headers=headers)
        except httpx.TransportError as exc:
            raise HandlerError(f"POST {url} failed: {exc!r}") from exc
    if not response.is_success:
        status = response.status_code
        raise HandlerError(f"POST {url} answered {status}: {response.text[:BODY_TAIL]}",
                           retryable=status >= 500 or status in RETRYABLE_STATUS)
    try:
        reply = response.json()
        content = reply["choices"][0]["message"].get("content") or ""
        usage = reply.get("usage") or {}
        return Completion(content=str(content), model=str(reply.get("model") or model.name),
                          prompt_tokens=int(usage.get("prompt_tokens") or 0),
                          completion_tokens=int(usage.get("completion_tokens") or 0))
    except (ValueError, LookupError, TypeError, AttributeError) as exc:
        raise HandlerError(f"POST {url}: not a chat completion: "
                           f"{response.text[:BODY_TAIL]!r}") from exc


def make(spec: agent_spec.LlmHandler, model: agent_spec.ModelRef, settings: Settings) -> Handler:
    async def run(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
        messages = [{"role": "user", "content": fill(spec.prompt, data)}]
        if spec.system:
            messages.insert(0, {"role": "system", "content": fill(spec.system, data)})
        json_mode = spec.response_format == "json"
        done = await chat(settings, model, messages, json_mode=json_mode)
        ctx.usage.add(done.prompt_tokens, done.completion_tokens,
                      price(settings.llm_prices, [model.name, done.model], done))
        output = {"content": done.content, "model": done.model}
        return {**parse_json(done.content), **output} if json_mode else output

    return run
