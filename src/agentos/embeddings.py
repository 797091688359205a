"""Text embeddings from an OpenAI-compatible API (``AGENTOS_EMBEDDINGS_URL``).

POST ``{url}/embeddings`` with ``{"model", "input": [texts]}``; the answer's
``data[i].embedding`` is the vector of ``input[i]``. Vectors are returned scaled to
unit length, so a dot product is a cosine similarity. Any failure is
``Unavailable`` (``embeddings_unavailable``): the caller decides whether to go on
without.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import httpx

from agentos.config import Settings
from agentos.errors import Unavailable

TIMEOUT = 30.0  # seconds for one request
MAX_INPUT_CHARS = 8000  # characters of a text sent (providers cap inputs near 8k tokens)
MAX_DIMENSIONS = 8192
BODY_TAIL = 300  # characters of a reply quoted in an error


@dataclass(frozen=True)
class Embedder:
    url: str  # the API's base, e.g. https://api.openai.com/v1
    model: str
    api_key: str | None = None
    timeout: float = TIMEOUT

    @classmethod
    def from_settings(cls, settings: Settings) -> Embedder | None:
        if not settings.embeddings_url:
            return None
        key = settings.embeddings_api_key
        return cls(settings.embeddings_url.rstrip("/"), settings.embeddings_model,
                   key.get_secret_value() if key else None)

    async def embed(self, texts: list[str]) -> list[list[float]]:
        """One unit vector per text, in order."""
        endpoint = self.url + "/embeddings"
        headers = {"authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        body = {"model": self.model, "input": [t[:MAX_INPUT_CHARS] or " " for t in texts]}
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.post(endpoint, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise _unavailable(f"POST {endpoint} failed: {exc!r}") from None
        if not response.is_success:
            raise _unavailable(f"POST {endpoint} answered {response.status_code}: "
                               f"{response.text[:BODY_TAIL]}")
        try:
            data = sorted(response.json()["data"], key=lambda d: int(d.get("index", 0)))
            vectors = [unit(item["embedding"]) for item in data]
        except (ValueError, LookupError, TypeError, AttributeError) as exc:
            raise _unavailable(f"POST {endpoint}: not an embeddings answer ({exc}): "
                               f"{response.text[:BODY_TAIL]!r}") from None
        if len(vectors) != len(texts):
            raise _unavailable(f"POST {endpoint}: {len(vectors)} embeddings for "
                               f"{len(texts)} texts")
        return vectors


def unit(values: Any) -> list[float]:
    """``values`` (a list of numbers) scaled to length 1."""
    if not isinstance(values, list) or not 0 < len(values) <= MAX_DIMENSIONS:
        raise ValueError("an embedding must be a non-empty list of numbers")
    floats = [float(v) for v in values]
    norm = math.sqrt(math.fsum(v * v for v in floats))
    if not math.isfinite(norm) or norm == 0:
        raise ValueError("an embedding must have a finite, non-zero length")
    return [v / norm for v in floats]


def _unavailable(message: str) -> Unavailable:
    return Unavailable(message, code="embeddings_unavailable")
