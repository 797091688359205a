"""One OpenAI-compatible chat completion, through the ``openai`` client library, at
``AGENTOS_LLM_BASE_URL``: what the ``llm`` handler and a handler's ``ctx.llm`` call.

The library's own retries are off (a task's retry policy decides); errors say
whether another try may help. One client per event loop and endpoint is kept, so
calls share connections.
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass
from typing import Any

CONNECT_TIMEOUT = 10.0  # seconds; the task's timeout bounds the whole call
BODY_TAIL = 500  # characters of a reply quoted in an error
RETRYABLE_STATUS = frozenset({408, 409, 425, 429})


class LlmError(Exception):
    """The call failed; ``retryable``: another try may succeed."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class Completion:
    content: str
    model: str  # as the provider names it (may be more specific than the one asked for)
    prompt_tokens: int
    completion_tokens: int


_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, str], Any]] = \
    weakref.WeakKeyDictionary()


def _client(base_url: str, api_key: str | None) -> Any:
    import openai  # ~0.3 s to import: only where an LLM is called

    loop = asyncio.get_running_loop()
    per_loop = _clients.setdefault(loop, {})
    key = (base_url, api_key or "")
    if key not in per_loop:
        per_loop[key] = openai.AsyncOpenAI(
            base_url=base_url, api_key=api_key or "unset", max_retries=0,
            timeout=openai.Timeout(None, connect=CONNECT_TIMEOUT))
    return per_loop[key]


async def chat(base_url: str | None, api_key: str | None, model: str,
               messages: list[dict[str, Any]], params: dict[str, Any] | None = None, *,
               json_mode: bool = False) -> Completion:
    """One chat completion of ``model``; raises ``LlmError``."""
    import openai

    if not base_url:
        raise LlmError("set AGENTOS_LLM_BASE_URL to an OpenAI-compatible API "
                       "(e.g. https://api.openai.com/v1) to call an LLM", retryable=False)
    url = base_url.rstrip("/") + "/chat/completions"
    body: dict[str, Any] = {**(params or {}), "model": model, "messages": messages}
    if json_mode:
        body["response_format"] = {"type": "json_object"}
    try:
        reply = await _client(base_url, api_key).chat.completions.create(**body)
    except openai.APIStatusError as exc:
        status = exc.status_code
        raise LlmError(f"POST {url} answered {status}: {exc.response.text[:BODY_TAIL]}",
                       retryable=status >= 500 or status in RETRYABLE_STATUS) from exc
    except (openai.APIConnectionError, openai.APITimeoutError) as exc:
        raise LlmError(f"POST {url} failed: {exc!r}", retryable=True) from exc
    except openai.OpenAIError as exc:
        raise LlmError(f"POST {url}: {exc}", retryable=True) from exc
    try:
        content = reply.choices[0].message.content or ""
        usage = reply.usage
        return Completion(content=str(content), model=str(reply.model or model),
                          prompt_tokens=int(usage.prompt_tokens or 0) if usage else 0,
                          completion_tokens=int(usage.completion_tokens or 0) if usage else 0)
    except (LookupError, TypeError, AttributeError, ValueError) as exc:
        raise LlmError(f"POST {url}: not a chat completion: {str(reply)[:BODY_TAIL]!r}",
                       retryable=True) from exc
