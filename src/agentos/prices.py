"""What an LLM call costs: ``AGENTOS_LLM_PRICES`` (per 1,000 tokens, by model name) when
it names the model, else the prices the maintained ``genai-prices`` package ships
(by model, and provider when it knows it); None when neither knows the model.

``genai-prices`` takes half a second to import: it is imported on the first call
that needs it, never at start.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from agentos.config import LlmPrice


def cost(models: Sequence[str], provider: str | None, prompt_tokens: int,
         completion_tokens: int, table: dict[str, LlmPrice]) -> float | None:
    """The cost of a call to the first of ``models`` (the name asked for, then the
    one the provider answered with) that a price table knows."""
    for model in models:
        if model in table:
            price = table[model]
            return (prompt_tokens * price.prompt + completion_tokens * price.completion) / 1000
    for model in models:
        found = _package_cost(model, provider, prompt_tokens, completion_tokens)
        if found is not None:
            return found
    return None


def _package_cost(model: str, provider: str | None, prompt_tokens: int,
                  completion_tokens: int) -> float | None:
    calc = _calculator()
    if calc is None:
        return None
    usage_type, calc_price = calc
    usage = usage_type(input_tokens=prompt_tokens, output_tokens=completion_tokens)
    for provider_id in dict.fromkeys((provider, None)):
        try:
            found = calc_price(usage, model_ref=model, provider_id=provider_id)
        except (LookupError, ValueError):
            continue
        return float(found.total_price)
    return None


@functools.cache
def _calculator() -> tuple[Any, Any] | None:
    try:
        from genai_prices import Usage, calc_price
    except ImportError:  # an installation without it prices only what the table names
        return None
    return Usage, calc_price
