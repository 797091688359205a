"""``llm`` handlers: one OpenAI-compatible chat completion, its prompt filled from the input.

A chat completion through ``ctx.llm`` (the ``openai`` client at
``AGENTOS_LLM_BASE_URL``) with the model's name and params, a system message
(optional) and the user prompt; ``{input.a.b}`` placeholders take
values from the task input (strings as they are, anything else as JSON; ``{input}``
is the whole input) and a missing one fails the task for good. The output is
``{"content", "model"}``, plus the reply's fields when ``response_format`` is
``json``. The call is recorded (``telemetry``) and its tokens go to ``ctx.usage`` with
its cost (``prices``); a spent hard budget refuses it.
"""

from __future__ import annotations

import json
import re
from typing import Any

from agentos import agent_spec, prices
from agentos.config import LlmPrice, Settings
from agentos.llm_client import BODY_TAIL, Completion
from agentos.worker.handlers.context import Context, Handler, HandlerError, LlmAccess

PLACEHOLDER = re.compile(r"\{input((?:\.[A-Za-z0-9_-]+)*)\}")
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


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


def price(prices_table: dict[str, LlmPrice], names: list[str], completion: Completion,
          provider: str | None = None) -> float | None:
    """The call's cost from the first of ``names`` a price table knows; None if none does."""
    return prices.cost(names, provider, completion.prompt_tokens,
                       completion.completion_tokens, prices_table)


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


def make(spec: agent_spec.LlmHandler, model: agent_spec.ModelRef, settings: Settings) -> Handler:
    async def run(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
        messages = [{"role": "user", "content": fill(spec.prompt, data)}]
        if spec.system:
            messages.insert(0, {"role": "system", "content": fill(spec.system, data)})
        json_mode = spec.response_format == "json"
        # the same path as ctx.llm: budget check, the call, its record, the attempt's usage
        done = await LlmAccess(ctx, settings).chat(messages, model=model, json=json_mode)
        output = {"content": done.content, "model": done.model}
        return {**parse_json(done.content), **output} if json_mode else output

    return run
